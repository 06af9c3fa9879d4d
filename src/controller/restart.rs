//! `spec.restartAt` (Argo's `kubectl argo rollouts restart`), the controller's side: list this
//! Rollout's pods while a restart is due and not yet recorded, for the engine to choose which
//! to evict (`engine::restart`); the act step evicts them (`Action::EvictPod`). Pods are
//! listed on demand: no Pod reflector (its memory at 10,000 Rollouts is the reason), and no
//! API call at all when `restartAt` is unset.

use super::context::Context;
use crate::crd::{POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::{Observed, ObservedPod};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

/// Listing the pods of a due restart failed.
#[derive(Debug, thiserror::Error)]
#[error("list pods of rollout {rollout}")]
pub struct RestartError {
    /// The Rollout.
    rollout: String,
    /// The client's error.
    #[source]
    source: kube::Error,
}

impl RestartError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        "ApiError"
    }
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

/// The pods of the Rollout's ReplicaSets while a restart is due; `None` (and no API call)
/// otherwise.
///
/// # Errors
/// When listing the pods fails.
pub async fn observe(
    ctx: &Context,
    rollout: &Rollout,
    observed: &Observed,
    now: Timestamp,
) -> Result<Option<Vec<ObservedPod>>, RestartError> {
    if due(rollout, now).is_none() {
        return Ok(None);
    }
    let hashes: Vec<&str> = observed
        .replica_sets
        .iter()
        .filter_map(|rs| rs.pod_template_hash.as_deref())
        .collect();
    if hashes.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let namespace = rollout.namespace().unwrap_or_default();
    let selector = format!("{POD_TEMPLATE_HASH_LABEL} in ({})", hashes.join(","));
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| RestartError {
            rollout: rollout.name_any(),
            source,
        })?;
    Ok(Some(
        listed
            .items
            .iter()
            .filter(|pod| owned_by(pod, observed))
            .map(observed_pod)
            .collect(),
    ))
}

fn observed_pod(pod: &Pod) -> ObservedPod {
    ObservedPod {
        name: pod.name_any(),
        pod_template_hash: pod.labels().get(POD_TEMPLATE_HASH_LABEL).cloned(),
        created_at: pod.creation_timestamp().map(|t| t.0),
        ready: is_ready(pod),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        evicted: false,
    }
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
