//! `spec.restartAt` (Argo's `kubectl argo rollouts restart`): count this Rollout's pods created
//! before the restart time and evict them through `pods/eviction`, at most
//! `max(maxUnavailable, 1)` unavailable at a time, stable ReplicaSet first, then the current
//! one, then the rest, oldest pod first. Pods are listed on demand, only while a restart is due
//! and not yet recorded: no Pod reflector (its memory at 10,000 Rollouts is the reason), and
//! no API call at all when `restartAt` is unset. The engine records `status.restartedAt` and
//! the `RolloutRestarted` Event once the count reaches zero.

use super::context::Context;
use super::leader::NotLeader;
use crate::crd::{POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::validate::Strategy;
use crate::engine::{Observed, validate};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, EvictParams, ListParams};

/// Errors of the restart step.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// This replica lost the leader Lease; it stopped before evicting.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// Listing or evicting pods failed.
    #[error("{verb} pods of rollout {rollout}")]
    Api {
        /// The call.
        verb: &'static str,
        /// The Rollout.
        rollout: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl RestartError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotLeader(_) => "NotLeader",
            Self::Api { .. } => "ApiError",
        }
    }
}

/// A restart under way: how many old pods remain and which to evict now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restart {
    /// Live pods created before `restartAt` (the engine's `pods_to_restart`).
    pub remaining: i32,
    /// Pods to evict in this reconcile, in order, within the unavailability budget.
    pub evict: Vec<String>,
}

/// The restart time when one is due and not yet recorded in `status.restartedAt`.
pub fn due(rollout: &Rollout, now: Timestamp) -> Option<Timestamp> {
    let at = rollout.spec.restart_at.as_ref()?.0;
    let done = rollout
        .status
        .as_ref()
        .and_then(|s| s.restarted_at.as_ref())
        .is_some_and(|t| t.0 >= at);
    (at <= now && !done).then_some(at)
}

/// Observe a due restart: list the pods of the Rollout's ReplicaSets and plan this round's
/// evictions. `None` (and no API call) when no restart is due or the spec is invalid.
///
/// # Errors
/// When listing the pods fails.
pub async fn observe(
    ctx: &Context,
    rollout: &Rollout,
    observed: &Observed,
    now: Timestamp,
) -> Result<Option<Restart>, RestartError> {
    let Some(at) = due(rollout, now) else {
        return Ok(None);
    };
    let Ok(valid) = validate(rollout, observed) else {
        return Ok(None);
    };
    let namespace = rollout.namespace().unwrap_or_default();
    let hashes: Vec<&str> = observed
        .replica_sets
        .iter()
        .filter_map(|rs| rs.pod_template_hash.as_deref())
        .collect();
    if hashes.is_empty() {
        return Ok(Some(Restart::default()));
    }
    let selector = format!("{POD_TEMPLATE_HASH_LABEL} in ({})", hashes.join(","));
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = pods.list(&ListParams::default().labels(&selector)).await;
    let listed = listed.map_err(|source| RestartError::Api {
        verb: "list",
        rollout: rollout.name_any(),
        source,
    })?;

    // Order of ReplicaSets: stable, current, then the rest (Argo's order).
    let status = rollout.status.clone().unwrap_or_default();
    let rank = |pod: &Pod| -> usize {
        let hash = pod.labels().get(POD_TEMPLATE_HASH_LABEL).cloned();
        if hash.is_some() && hash == status.stable_rs {
            0
        } else if hash.is_some() && hash == status.current_pod_hash {
            1
        } else {
            2
        }
    };
    let owned: Vec<&Pod> = listed
        .items
        .iter()
        .filter(|p| owned_by(p, observed))
        .collect();
    let alive: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let mut old: Vec<&Pod> = alive
        .iter()
        .copied()
        .filter(|p| p.creation_timestamp().is_some_and(|t| t.0 < at))
        .collect();
    old.sort_by_key(|p| (rank(p), p.creation_timestamp().map(|t| t.0)));

    let desired: i32 = observed
        .replica_sets
        .iter()
        .map(|rs| rs.desired_replicas)
        .sum();
    let available = i32::try_from(alive.iter().filter(|p| is_ready(p)).count()).unwrap_or(i32::MAX);
    let max_unavailable = match &valid.strategy {
        Strategy::Canary(c) => c.max_unavailable,
        Strategy::BlueGreen(b) => b.max_unavailable,
    }
    .max(1);
    let unavailable = (desired - available).max(0);
    let budget = usize::try_from(max_unavailable - unavailable).unwrap_or(0);
    Ok(Some(Restart {
        remaining: i32::try_from(old.len()).unwrap_or(i32::MAX),
        evict: old.iter().take(budget).map(|p| p.name_any()).collect(),
    }))
}

/// Evict the planned pods. A pod already gone is fine; a `429` (a PodDisruptionBudget says
/// not now) ends the round quietly, and the engine's poll comes back.
///
/// # Errors
/// When this replica is not the leader, or an eviction fails otherwise.
pub async fn evict(
    ctx: &Context,
    rollout: &Rollout,
    restart: &Restart,
) -> Result<u32, RestartError> {
    let namespace = rollout.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut evicted = 0;
    for name in &restart.evict {
        ctx.leadership.ensure()?;
        match pods.evict(name, &EvictParams::default()).await {
            Ok(_) => {
                evicted += 1;
                tracing::info!(pod = %name, "evicted for restart");
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(kube::Error::Api(status)) if status.code == 429 => {
                tracing::info!(pod = %name, "eviction refused by a disruption budget; retrying later");
                break;
            }
            Err(source) => {
                return Err(RestartError::Api {
                    verb: "evict",
                    rollout: rollout.name_any(),
                    source,
                });
            }
        }
    }
    Ok(evicted)
}

/// Whether the pod's controller is one of the Rollout's ReplicaSets.
fn owned_by(pod: &Pod, observed: &Observed) -> bool {
    pod.owner_references().iter().any(|o| {
        o.controller == Some(true)
            && o.kind == "ReplicaSet"
            && observed.replica_sets.iter().any(|rs| rs.name == o.name)
    })
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crd::RolloutStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn rollout(restart_at: Option<&str>, restarted_at: Option<&str>) -> Rollout {
        let mut r: Rollout = serde_json::from_value(serde_json::json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"strategy": {"canary": {}}}
        }))
        .unwrap();
        r.spec.restart_at = restart_at.map(|t| Time(t.parse().unwrap()));
        r.status = Some(RolloutStatus {
            restarted_at: restarted_at.map(|t| Time(t.parse().unwrap())),
            ..RolloutStatus::default()
        });
        r
    }

    #[test]
    fn due_only_when_set_reached_and_not_recorded() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        assert_eq!(due(&rollout(None, None), now), None, "unset");
        assert_eq!(
            due(&rollout(Some("2026-01-01T00:20:00Z"), None), now),
            None,
            "in the future"
        );
        let at: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        assert_eq!(
            due(&rollout(Some("2026-01-01T00:05:00Z"), None), now),
            Some(at)
        );
        assert_eq!(
            due(
                &rollout(Some("2026-01-01T00:05:00Z"), Some("2026-01-01T00:05:00Z")),
                now
            ),
            None,
            "already recorded"
        );
    }
}
