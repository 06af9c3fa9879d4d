//! The `TrafficRouting` condition: when a traffic router cannot be built, read or written, the
//! reconcile fails and backs off, and this module records why on the Rollout's status, so
//! `kubectl get -o yaml`, Argo CD and Flux show it beside the Warning Event. It writes only that
//! condition onto the status as last written (never the decision of the failed reconcile, whose
//! actions did not all happen). The engine's next successful status drops the condition again.

use super::context::Context;
use super::status::{self, StatusError};
use crate::crd::{Rollout, RolloutCondition};
use crate::traffic::TrafficError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub use crate::engine::condition_names::TRAFFIC_ROUTING;

/// The Rollout's status with `TrafficRouting=False` for `error` (reason: the error's category,
/// message: `message`). `lastTransitionTime` is kept while the condition stays False.
pub fn with_failure(
    rollout: &Rollout,
    error: &TrafficError,
    message: &str,
    now: jiff::Timestamp,
) -> crate::crd::RolloutStatus {
    let mut status = rollout.status.clone().unwrap_or_default();
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == TRAFFIC_ROUTING && c.status == "False")
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    status.conditions.retain(|c| c.type_ != TRAFFIC_ROUTING);
    status.conditions.push(RolloutCondition {
        type_: TRAFFIC_ROUTING.to_string(),
        status: "False".to_string(),
        reason: Some(error.category().to_string()),
        message: Some(message.to_string()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(since),
    });
    status
}

/// Write `TrafficRouting=False` for `error` (nothing when it is already there with the same
/// reason and message).
///
/// # Errors
/// When the status patch fails.
pub async fn report(
    ctx: &Context,
    rollout: &Rollout,
    error: &TrafficError,
    message: &str,
) -> Result<Option<String>, StatusError> {
    let same = rollout.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == TRAFFIC_ROUTING
                && c.status == "False"
                && c.reason.as_deref() == Some(error.category())
                && c.message.as_deref() == Some(message)
        })
    });
    if same {
        return Ok(None);
    }
    let status = with_failure(rollout, error, message, jiff::Timestamp::now());
    status::write_status(ctx, rollout, status).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RolloutStatus;

    fn error() -> TrafficError {
        TrafficError::Unusable {
            provider: "smi",
            kind: "TrafficSplit",
            name: "web".into(),
            reason: "spec.backends: no stable backend".into(),
        }
    }

    #[test]
    fn failure_replaces_the_condition_and_keeps_its_transition_time_and_the_rest() {
        let t0: jiff::Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let t1: jiff::Timestamp = "2026-11-22T10:05:00Z".parse().unwrap();
        let mut rollout = Rollout::new("web", Default::default());
        rollout.status = Some(RolloutStatus {
            current_step_index: Some(2),
            ..RolloutStatus::default()
        });
        let first = with_failure(&rollout, &error(), "first", t0);
        assert_eq!(first.current_step_index, Some(2), "{first:?}");
        rollout.status = Some(first);
        let second = with_failure(&rollout, &error(), "second", t1);
        let conds: Vec<_> = second
            .conditions
            .iter()
            .filter(|c| c.type_ == TRAFFIC_ROUTING)
            .collect();
        assert_eq!(conds.len(), 1, "{second:?}");
        assert_eq!(conds[0].status, "False");
        assert_eq!(conds[0].reason.as_deref(), Some(error().category()));
        assert_eq!(conds[0].message.as_deref(), Some("second"));
        assert_eq!(conds[0].last_transition_time, Some(Time(t0)));
        assert_eq!(conds[0].last_update_time, Some(Time(t1)));
    }
}
