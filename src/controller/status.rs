//! Status: write the engine's status to the Rollout's `/status` subresource with one JSON merge
//! patch, and only when it differs from what the object already carries. Condition times are
//! carried over when a condition did not change, so a no-op reconcile writes nothing. Every
//! write carries the `resourceVersion` the decision was made from, so the API server refuses it
//! (409) when anyone changed the Rollout since: a person's abort or promote is never overwritten
//! by a decision that did not see it. Touches only `rollouts` (read) and `rollouts/status`.

use super::context::Context;
use super::leader::NotLeader;
use crate::crd::{FIELD_MANAGER, Rollout, RolloutStatus};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value};

/// Errors of the status step.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// This replica lost the leader Lease; it stopped before writing.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// The status could not be encoded (a bug).
    #[error("encoding the status")]
    Encode(#[source] serde_json::Error),
    /// The Rollout changed since the decision was made (a person's operation, a spec change):
    /// the status was not written and the reconcile must decide again on the new object.
    #[error("status of {name} not written: the rollout changed since resourceVersion {version}")]
    Conflict {
        /// The Rollout.
        name: String,
        /// The resourceVersion the decision was made from.
        version: String,
    },
    /// The patch failed.
    #[error("patching status of {name}")]
    Api {
        /// The Rollout.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Reading the latest Rollout after a conflict failed.
    #[error("reading rollout {name} after a conflict")]
    Read {
        /// The Rollout.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The Rollout lacks a field the API server always sets.
    #[error("rollout has no {field}")]
    Incomplete {
        /// The missing field.
        field: &'static str,
    },
}

impl StatusError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotLeader(_) => "NotLeader",
            Self::Encode(_) => "StatusEncodeError",
            Self::Conflict { .. } => "Conflict",
            Self::Api { .. } | Self::Read { .. } => "ApiError",
            Self::Incomplete { .. } => "ObjectIncomplete",
        }
    }
}

/// Keep `lastTransitionTime` and `lastUpdateTime` of every condition whose status, reason and
/// message did not change, whatever the engine put there.
pub fn carry_condition_times(old: Option<&RolloutStatus>, new: &mut RolloutStatus) {
    let Some(old) = old else { return };
    for condition in &mut new.conditions {
        let Some(previous) = old.conditions.iter().find(|c| c.type_ == condition.type_) else {
            continue;
        };
        if previous.status == condition.status {
            condition.last_transition_time = previous.last_transition_time.clone();
            if previous.reason == condition.reason && previous.message == condition.message {
                condition.last_update_time = previous.last_update_time.clone();
            }
        }
    }
}

/// A JSON merge patch turning `old` into `new`; `None` when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) => {
                        if let Some(diff) = merge_diff(previous, value) {
                            patch.insert(key.clone(), diff);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        // Null in a merge patch deletes, so a new null (never produced by our serializer, which
        // skips empty fields) is written as removal too.
        _ => Some(new.clone()),
    }
}

/// The merge patch body for the `/status` subresource, or `None` when nothing changed.
///
/// # Errors
/// When a status cannot be encoded.
pub fn status_patch(
    old: Option<&RolloutStatus>,
    new: &RolloutStatus,
) -> Result<Option<Value>, StatusError> {
    let old = match old {
        Some(status) => serde_json::to_value(status).map_err(StatusError::Encode)?,
        None => Value::Object(Map::new()),
    };
    let new = serde_json::to_value(new).map_err(StatusError::Encode)?;
    Ok(merge_diff(&old, &new).map(|diff| serde_json::json!({ "status": diff })))
}

/// `patch` made a precondition: it applies only while the object is at `version` (the API
/// server compares `metadata.resourceVersion` of a patched object with the stored one and
/// answers 409 Conflict when they differ, for the status subresource too).
pub fn guarded(mut patch: Value, version: &str) -> Value {
    if let Value::Object(body) = &mut patch {
        body.insert(
            "metadata".into(),
            serde_json::json!({ "resourceVersion": version }),
        );
    }
    patch
}

/// Patch the status when it changed, guarded by the resourceVersion of `rollout` (the object
/// the new status was decided from). Returns the resourceVersion of the written object, or
/// `None` when there was nothing to write.
///
/// # Errors
/// `Conflict` when the Rollout changed since `rollout` was read (decide again on the latest
/// object, never resend this body); otherwise when this replica is not the leader, or the
/// patch fails.
pub async fn write_status(
    ctx: &Context,
    rollout: &Rollout,
    mut new: RolloutStatus,
) -> Result<Option<String>, StatusError> {
    carry_condition_times(rollout.status.as_ref(), &mut new);
    let Some(patch) = status_patch(rollout.status.as_ref(), &new)? else {
        return Ok(None);
    };
    let version = rollout.resource_version().ok_or(StatusError::Incomplete {
        field: "metadata.resourceVersion",
    })?;
    ctx.leadership.ensure()?;
    let api = rollouts(ctx, rollout)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let name = rollout.name_any();
    let patch = guarded(patch, &version);
    match api.patch_status(&name, &params, &Patch::Merge(patch)).await {
        Ok(written) => Ok(written.resource_version()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Err(StatusError::Conflict { name, version })
        }
        Err(source) => Err(StatusError::Api { name, source }),
    }
}

/// The Rollout as the API server has it now (not the cache, which may not have caught up with
/// the write that caused a conflict); `None` when it is gone.
///
/// # Errors
/// When the read fails.
pub async fn read_latest(ctx: &Context, rollout: &Rollout) -> Result<Option<Rollout>, StatusError> {
    let api = rollouts(ctx, rollout)?;
    let name = rollout.name_any();
    api.get_opt(&name)
        .await
        .map_err(|source| StatusError::Read { name, source })
}

fn rollouts(ctx: &Context, rollout: &Rollout) -> Result<Api<Rollout>, StatusError> {
    let namespace = rollout
        .namespace()
        .ok_or(StatusError::Incomplete { field: "namespace" })?;
    Ok(Api::namespaced(ctx.client.clone(), &namespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{RolloutCondition, RolloutPhase};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn condition(status: &str, at: &str) -> RolloutCondition {
        RolloutCondition {
            type_: "Progressing".into(),
            status: status.into(),
            reason: Some("ReplicaSetUpdated".into()),
            message: None,
            last_update_time: Some(Time(at.parse().unwrap())),
            last_transition_time: Some(Time(at.parse().unwrap())),
        }
    }

    #[test]
    fn equal_statuses_need_no_patch() {
        let status = RolloutStatus {
            phase: Some(RolloutPhase::Healthy),
            current_step_index: Some(3),
            ..RolloutStatus::default()
        };
        assert_eq!(status_patch(Some(&status), &status).unwrap(), None);
    }

    #[test]
    fn only_changed_and_removed_fields_are_patched() {
        let old = RolloutStatus {
            phase: Some(RolloutPhase::Paused),
            current_step_index: Some(1),
            controller_pause: true,
            ..RolloutStatus::default()
        };
        let new = RolloutStatus {
            phase: Some(RolloutPhase::Paused),
            current_step_index: Some(2),
            ..RolloutStatus::default()
        };
        let patch = status_patch(Some(&old), &new).unwrap().unwrap();
        assert_eq!(
            patch,
            json!({"status": {"currentStepIndex": 2, "controllerPause": null}}),
            "patch: {patch}"
        );
    }

    #[test]
    fn a_guarded_patch_names_the_version_it_was_decided_from() {
        let old = RolloutStatus::default();
        let new = RolloutStatus {
            current_step_index: Some(2),
            ..RolloutStatus::default()
        };
        let patch = guarded(status_patch(Some(&old), &new).unwrap().unwrap(), "41");
        assert_eq!(
            patch,
            json!({"metadata": {"resourceVersion": "41"}, "status": {"currentStepIndex": 2}}),
            "patch: {patch}"
        );
    }

    #[test]
    fn unchanged_condition_keeps_its_times() {
        let old = RolloutStatus {
            conditions: vec![condition("True", "2026-01-01T00:00:00Z")],
            ..RolloutStatus::default()
        };
        let mut new = RolloutStatus {
            conditions: vec![condition("True", "2026-06-01T00:00:00Z")],
            ..RolloutStatus::default()
        };
        carry_condition_times(Some(&old), &mut new);
        assert_eq!(new, old);
        assert_eq!(status_patch(Some(&old), &new).unwrap(), None);
    }

    #[test]
    fn changed_condition_status_moves_transition_time() {
        let old = RolloutStatus {
            conditions: vec![condition("True", "2026-01-01T00:00:00Z")],
            ..RolloutStatus::default()
        };
        let mut new = RolloutStatus {
            conditions: vec![condition("False", "2026-06-01T00:00:00Z")],
            ..RolloutStatus::default()
        };
        carry_condition_times(Some(&old), &mut new);
        assert_eq!(
            new.conditions[0].last_transition_time,
            Some(Time("2026-06-01T00:00:00Z".parse().unwrap()))
        );
    }
}
