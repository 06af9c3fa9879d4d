//! Router state on the status. A failing traffic router never stops a reconcile: every router is
//! tried, what each one did is gathered in `RouterOutcomes`, and the rest of the decision is
//! acted on and written. This module turns the outcomes into `status.canary.routers[]` (name,
//! the canary weight it holds, its last error, when it got into that state), the
//! `TrafficRouting=False` condition while one fails, and a Warning Event per failing router.
//! The engine reads `routers[].lastError` on the next reconcile to send the weights again.
//! Also the condition that reports a failed reconcile (`with_failure`). Pure: no I/O.

use crate::crd::{Rollout, RolloutCondition, RolloutPhase, RolloutStatus, RouterStatus};
use crate::engine::{EventKind, EventNote};
use crate::traffic::{TrafficError, TrafficRouter};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub use crate::engine::condition_names::TRAFFIC_ROUTING;

/// Why a router failed, as written to the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterFailure {
    /// The error's category (the Event reason).
    pub reason: &'static str,
    /// The error, causes included.
    pub message: String,
}

/// What one router did in this reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterOutcome {
    /// The router's name.
    pub name: String,
    /// The canary weight it took in this reconcile, if it was sent one.
    pub weight: Option<i32>,
    /// The first failure of this reconcile.
    pub failure: Option<RouterFailure>,
}

/// What every router did in one reconcile, in router order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterOutcomes {
    entries: Vec<RouterOutcome>,
}

impl RouterOutcomes {
    /// One untouched entry per router.
    pub fn for_routers(routers: &[Box<dyn TrafficRouter>]) -> Self {
        let mut outcomes = Self::default();
        for router in routers {
            outcomes.entry(router.name());
        }
        outcomes
    }

    fn entry(&mut self, name: &str) -> &mut RouterOutcome {
        let at = match self.entries.iter().position(|e| e.name == name) {
            Some(at) => at,
            None => {
                self.entries.push(RouterOutcome {
                    name: name.to_owned(),
                    ..RouterOutcome::default()
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[at]
    }

    /// Record a router call's result; the value when it succeeded. The first failure of a
    /// router is kept (later calls often fail for the same reason).
    pub fn record<T>(&mut self, name: &str, result: Result<T, TrafficError>) -> Option<T> {
        match result {
            Ok(value) => {
                self.entry(name);
                Some(value)
            }
            Err(error) => {
                let message = error_chain(&error);
                tracing::warn!(error = %message, provider = name, "traffic router failed");
                let entry = self.entry(name);
                entry.failure.get_or_insert(RouterFailure {
                    reason: error.category(),
                    message,
                });
                None
            }
        }
    }

    /// The router took the canary weight `weight`.
    pub fn took_weight(&mut self, name: &str, weight: i32) {
        self.entry(name).weight = Some(weight);
    }

    /// Whether any router failed in this reconcile.
    pub fn failed(&self) -> bool {
        self.entries.iter().any(|e| e.failure.is_some())
    }

    /// Every router's outcome.
    pub fn entries(&self) -> &[RouterOutcome] {
        &self.entries
    }

    /// A Warning Event per failing router, its reason the error's category.
    pub fn events(&self) -> Vec<EventNote> {
        self.entries
            .iter()
            .filter_map(|e| {
                let failure = e.failure.as_ref()?;
                Some(EventNote {
                    kind: EventKind::Warning,
                    reason: failure.reason,
                    message: format!("traffic router {}: {}", e.name, failure.message),
                })
            })
            .collect()
    }
}

/// Write the routers' state into `status` (the status about to be written; `prev` the one on
/// the object): `canary.routers[]`, and `TrafficRouting=False` while a router fails. A router's
/// `observedTime` changes only when its weight or error does, so a steady state writes nothing.
pub fn apply(
    status: &mut RolloutStatus,
    prev: Option<&RolloutStatus>,
    outcomes: &RouterOutcomes,
    now: jiff::Timestamp,
) {
    if outcomes.entries.is_empty() {
        if let Some(canary) = status.canary.as_mut() {
            canary.routers.clear();
        }
        return;
    }
    let before: &[RouterStatus] = prev
        .and_then(|s| s.canary.as_ref())
        .map_or(&[], |c| c.routers.as_slice());
    let applied = status
        .canary
        .as_ref()
        .and_then(|c| c.weights.as_ref())
        .map(|w| w.canary.weight);
    let routers = outcomes
        .entries
        .iter()
        .map(|e| router_status(e, before.iter().find(|r| r.name == e.name), applied, now))
        .collect();
    status.canary.get_or_insert_with(Default::default).routers = routers;
    let failing: Vec<String> = outcomes
        .entries
        .iter()
        .filter_map(|e| Some(format!("{}: {}", e.name, e.failure.as_ref()?.message)))
        .collect();
    if let Some(first) = outcomes.entries.iter().find_map(|e| e.failure.as_ref()) {
        let message = format!(
            "traffic router {}; the step waits and the call is retried",
            failing.join("; traffic router ")
        );
        set_failure(status, TRAFFIC_ROUTING, first.reason, &message, now);
        if status.phase == Some(RolloutPhase::Healthy) {
            // Not healthy while a router may not carry what the status says.
            status.phase = Some(RolloutPhase::Progressing);
            status.message = Some(message);
        }
    }
}

fn router_status(
    outcome: &RouterOutcome,
    before: Option<&RouterStatus>,
    applied: Option<i32>,
    now: jiff::Timestamp,
) -> RouterStatus {
    // The weight a router holds: what it took now, else what it took before; a router that
    // answers and was never seen by this controller holds what the status says was applied.
    let weight = outcome
        .weight
        .or(before.and_then(|b| b.weight))
        .or(applied.filter(|_| outcome.failure.is_none()));
    let last_error = outcome.failure.as_ref().map(|f| f.message.clone());
    let reason = outcome.failure.as_ref().map(|f| f.reason.to_owned());
    let unchanged = before.is_some_and(|b| b.weight == weight && b.last_error == last_error);
    RouterStatus {
        name: outcome.name.clone(),
        weight,
        last_error,
        reason,
        observed_time: match before {
            Some(b) if unchanged => b.observed_time.clone(),
            _ => Some(Time(now)),
        },
    }
}

/// The Rollout's status as last written, with condition `type_` False for `reason`: what a
/// failed reconcile writes so the failure shows on the object (a first revision included).
/// `lastTransitionTime` is kept while the condition stays False.
pub fn with_failure(
    rollout: &Rollout,
    type_: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> RolloutStatus {
    let mut status = rollout.status.clone().unwrap_or_default();
    set_failure(&mut status, type_, reason, message, now);
    status
}

fn set_failure(
    status: &mut RolloutStatus,
    type_: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) {
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == "False")
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    status.conditions.retain(|c| c.type_ != type_);
    status.conditions.push(RolloutCondition {
        type_: type_.to_string(),
        status: "False".to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(since),
    });
}

/// An error and its causes, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CanaryStatus, TrafficWeights, WeightDestination};

    fn down() -> TrafficError {
        TrafficError::Plugin {
            plugin: "acme/router".into(),
            message: "setWeight: connection refused".into(),
        }
    }

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    fn applied(weight: i32) -> RolloutStatus {
        RolloutStatus {
            current_step_index: Some(2),
            canary: Some(CanaryStatus {
                weights: Some(TrafficWeights {
                    canary: WeightDestination {
                        weight,
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..RolloutStatus::default()
        }
    }

    fn outcomes(failing: bool) -> RouterOutcomes {
        let mut o = RouterOutcomes::default();
        o.record("gatewayAPI", Ok(()));
        o.took_weight("gatewayAPI", 0);
        let result = if failing { Err(down()) } else { Ok(()) };
        o.record("acme/router", result);
        o
    }

    #[test]
    fn every_router_is_reported_and_a_failing_one_is_a_condition_and_an_event() {
        let prev = applied(30);
        let mut status = applied(0);
        apply(
            &mut status,
            Some(&prev),
            &outcomes(true),
            at("2026-11-22T10:00:00Z"),
        );
        let routers = &status.canary.as_ref().unwrap().routers;
        assert_eq!(routers.len(), 2, "{routers:?}");
        assert_eq!(routers[0].name, "gatewayAPI");
        assert_eq!(routers[0].weight, Some(0), "{routers:?}");
        assert_eq!(routers[0].last_error, None);
        assert_eq!(routers[1].name, "acme/router");
        assert_eq!(routers[1].weight, None, "never seen taking a weight");
        assert_eq!(routers[1].reason.as_deref(), Some("TrafficPluginError"));
        assert!(
            routers[1]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("connection refused")),
            "{routers:?}"
        );
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == TRAFFIC_ROUTING)
            .unwrap();
        assert_eq!(condition.status, "False");
        assert!(
            condition
                .message
                .as_deref()
                .is_some_and(|m| m.contains("acme/router")),
            "{condition:?}"
        );
        assert_eq!(status.current_step_index, Some(2), "the decision is kept");
        let events = outcomes(true).events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].reason, "TrafficPluginError");
        assert!(events[0].message.contains("acme/router"), "{events:?}");
    }

    #[test]
    fn observed_time_moves_only_when_the_state_does_and_recovery_clears_the_error() {
        let t0 = at("2026-11-22T10:00:00Z");
        let t1 = at("2026-11-22T10:05:00Z");
        let mut first = applied(0);
        apply(&mut first, None, &outcomes(true), t0);
        let mut again = applied(0);
        apply(&mut again, Some(&first), &outcomes(true), t1);
        assert_eq!(
            first.canary, again.canary,
            "same state, nothing new to write"
        );
        let mut recovered = applied(0);
        let mut back = outcomes(false);
        back.took_weight("acme/router", 0);
        apply(&mut recovered, Some(&again), &back, t1);
        let routers = &recovered.canary.as_ref().unwrap().routers;
        assert_eq!(routers[1].last_error, None, "{routers:?}");
        assert_eq!(routers[1].weight, Some(0));
        assert_eq!(routers[1].observed_time, Some(Time(t1)));
        assert_eq!(
            routers[0].observed_time,
            Some(Time(t0)),
            "the healthy router did not change"
        );
        assert!(
            !recovered
                .conditions
                .iter()
                .any(|c| c.type_ == TRAFFIC_ROUTING),
            "{recovered:?}"
        );
    }

    #[test]
    fn failure_condition_keeps_its_transition_time_and_the_rest() {
        let t0 = at("2026-11-22T10:00:00Z");
        let t1 = at("2026-11-22T10:05:00Z");
        let mut rollout = Rollout::new("web", Default::default());
        rollout.status = Some(applied(10));
        let first = with_failure(&rollout, "Progressing", "ObjectOwnedByAnother", "a", t0);
        assert_eq!(first.current_step_index, Some(2), "{first:?}");
        rollout.status = Some(first);
        let second = with_failure(&rollout, "Progressing", "ObjectOwnedByAnother", "b", t1);
        let conds: Vec<_> = second
            .conditions
            .iter()
            .filter(|c| c.type_ == "Progressing")
            .collect();
        assert_eq!(conds.len(), 1, "{second:?}");
        assert_eq!(conds[0].message.as_deref(), Some("b"));
        assert_eq!(conds[0].last_transition_time, Some(Time(t0)));
        assert_eq!(conds[0].last_update_time, Some(Time(t1)));
    }
}
