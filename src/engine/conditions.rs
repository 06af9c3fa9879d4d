//! Status summary: replica counts, the progress deadline, Argo's conditions (Progressing,
//! Available, Paused, Healthy, Completed, InvalidSpec) and the kstatus ones (Ready,
//! Reconciling, Stalled), the phase and its message. `lastTransitionTime` moves only when a
//! condition's status changes; `lastUpdateTime` only when the condition changes (and, for
//! Progressing, when progress is made: it is the progress deadline's clock).

use super::model::EventKind;
use super::plan::{Plan, live};
use crate::crd::{RolloutCondition, RolloutPhase, RolloutStatus};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Condition types and reasons Sluice writes.
pub mod names {
    /// Progressing.
    pub const PROGRESSING: &str = "Progressing";
    /// Available.
    pub const AVAILABLE: &str = "Available";
    /// Paused.
    pub const PAUSED: &str = "Paused";
    /// Healthy.
    pub const HEALTHY: &str = "Healthy";
    /// Completed.
    pub const COMPLETED: &str = "Completed";
    /// InvalidSpec.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// kstatus Ready.
    pub const READY: &str = "Ready";
    /// kstatus Reconciling.
    pub const RECONCILING: &str = "Reconciling";
    /// kstatus Stalled.
    pub const STALLED: &str = "Stalled";
    /// TrafficRouting=False while a traffic router fails; written by the controller when a
    /// reconcile fails on a router, dropped by the next status the engine computes.
    pub const TRAFFIC_ROUTING: &str = "TrafficRouting";
    /// Progressing=False after an abort.
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    /// Progressing=False after the deadline.
    pub const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
}
use names::*;

/// Sets a condition in `out`, keeping the times of `prev` when nothing relevant changed.
// The arguments are the condition's fields; a builder would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn set_condition(
    out: &mut Vec<RolloutCondition>,
    prev: &[RolloutCondition],
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
    update_time: Option<Timestamp>,
) {
    let status = if status { "True" } else { "False" };
    set_condition_status(out, prev, type_, status, reason, message, now, update_time);
}

#[allow(clippy::too_many_arguments)]
fn set_condition_status(
    out: &mut Vec<RolloutCondition>,
    prev: &[RolloutCondition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
    update_time: Option<Timestamp>,
) {
    let old = prev.iter().find(|c| c.type_ == type_);
    let same_status = old.is_some_and(|c| c.status == status);
    let unchanged = old.is_some_and(|c| {
        c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    let transition = match old {
        Some(c) if same_status => c.last_transition_time.clone().unwrap_or(Time(now)),
        Some(_) | None => Time(now),
    };
    let update = match (update_time, old) {
        (Some(t), _) => Time(t),
        (None, Some(c)) if unchanged => c.last_update_time.clone().unwrap_or(Time(now)),
        (None, Some(_) | None) => Time(now),
    };
    out.push(RolloutCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_update_time: Some(update),
        last_transition_time: Some(transition),
    });
}

fn find<'c>(conds: &'c [RolloutCondition], type_: &str) -> Option<&'c RolloutCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// What counts as progress for the deadline.
fn progress_key(s: &RolloutStatus) -> impl PartialEq + use<> {
    (
        s.current_pod_hash.clone(),
        s.current_step_hash.clone(),
        s.current_step_index,
        s.stable_rs.clone(),
        s.updated_replicas,
        s.ready_replicas,
        s.available_replicas,
        s.replicas,
        s.blue_green
            .as_ref()
            .map(|b| (b.active_selector.clone(), b.preview_selector.clone())),
    )
}

/// Fills the replica counts of the status from the observed ReplicaSets.
pub fn counts(p: &mut Plan, active_hash: Option<&str>) {
    // A baseline runs beside the Rollout's pods, not as some of them.
    let all: Vec<_> = live(p.observed).filter(|rs| !rs.baseline).collect();
    let total: i32 = all.iter().map(|rs| rs.replicas).sum();
    let updated = p.new_rs.map_or(0, |rs| rs.replicas);
    let (ready, available, hpa, selector) = match active_hash {
        // Blue/green reports the active ReplicaSet.
        Some(h) => {
            let rs = all
                .iter()
                .find(|rs| rs.pod_template_hash.as_deref() == Some(h));
            let sel = if p.v.selector.is_empty() {
                format!("{}={h}", crate::crd::POD_TEMPLATE_HASH_LABEL)
            } else {
                format!(
                    "{},{}={h}",
                    p.v.selector,
                    crate::crd::POD_TEMPLATE_HASH_LABEL
                )
            };
            (
                rs.map_or(0, |r| r.ready_replicas),
                rs.map_or(0, |r| r.available_replicas),
                rs.map_or(0, |r| r.replicas),
                sel,
            )
        }
        None => (
            all.iter().map(|rs| rs.ready_replicas).sum(),
            all.iter().map(|rs| rs.available_replicas).sum(),
            total,
            p.v.selector.clone(),
        ),
    };
    p.status.replicas = Some(total);
    p.status.updated_replicas = Some(updated);
    p.status.ready_replicas = Some(ready);
    p.status.available_replicas = Some(available);
    p.status.hpa_replicas = Some(hpa);
    p.status.selector = Some(selector);
}

/// The update is done: promoted and the desired count available.
pub fn complete(p: &Plan) -> bool {
    p.promoted() && p.new_available() >= p.v.replicas
}

/// Whether the progress deadline has passed, and the progress clock.
pub fn deadline(p: &Plan) -> (bool, Timestamp) {
    let prev = find(&p.prev.conditions, PROGRESSING);
    let progressed = progress_key(&p.prev) != progress_key(&p.status);
    let clock = match prev {
        Some(c) if !progressed && c.status != "Unknown" => {
            c.last_update_time.as_ref().map_or(p.now, |t| t.0)
        }
        Some(_) | None => p.now,
    };
    let counted = !complete(p)
        && !p.v.paused
        && p.status.pause_conditions.is_empty()
        && !p.status.abort
        && !p.deadline_exempt;
    if !counted {
        return (false, clock);
    }
    let already =
        !progressed && prev.is_some_and(|c| c.reason.as_deref() == Some(DEADLINE_EXCEEDED));
    let due = clock
        .checked_add(SignedDuration::from_secs(i64::from(
            p.v.progress_deadline_seconds,
        )))
        .unwrap_or(Timestamp::MAX);
    (already || due <= p.now, clock)
}

/// Computes conditions, phase and message; records events for transitions.
pub fn finish(p: &mut Plan, blue_green: bool, restarting: bool) {
    let now = p.now;
    let prev = p.prev.conditions.clone();
    let (exceeded, clock) = deadline(p);
    let d = p.v.replicas;
    let rs_name = p.new_name.clone();
    let paused = p.v.paused || !p.status.pause_conditions.is_empty();
    let (prog_status, prog_reason, prog_message) = if p.status.abort {
        let message = p
            .abort_message
            .clone()
            .or_else(|| {
                find(&prev, PROGRESSING)
                    .filter(|c| c.reason.as_deref() == Some(ROLLOUT_ABORTED))
                    .and_then(|c| c.message.clone())
            })
            .unwrap_or_else(|| format!("Rollout aborted update to revision {}", p.new_revision));
        ("False", ROLLOUT_ABORTED, message)
    } else if exceeded {
        (
            "False",
            DEADLINE_EXCEEDED,
            format!("ReplicaSet {rs_name:?} has timed out progressing."),
        )
    } else if paused {
        ("Unknown", "RolloutPaused", "Rollout is paused".to_string())
    } else if complete(p) {
        (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet {rs_name:?} has successfully progressed."),
        )
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet {rs_name:?} is progressing."),
        )
    };
    if exceeded
        && find(&prev, PROGRESSING).and_then(|c| c.reason.as_deref()) != Some(DEADLINE_EXCEEDED)
    {
        p.event(EventKind::Warning, DEADLINE_EXCEEDED, prog_message.clone());
    }
    if prog_status == "True" && !exceeded {
        let due = clock
            .checked_add(SignedDuration::from_secs(i64::from(
                p.v.progress_deadline_seconds,
            )))
            .unwrap_or(Timestamp::MAX);
        if !complete(p) && !p.deadline_exempt {
            p.timer(due);
        }
    }
    let available = p.status.available_replicas.unwrap_or(0) >= d;
    let promoted = p.promoted();
    let updated = p.status.updated_replicas.unwrap_or(0);
    let total = p.status.replicas.unwrap_or(0);
    let (phase, message) = if p.status.abort {
        (
            RolloutPhase::Degraded,
            format!("{ROLLOUT_ABORTED}: {prog_message}"),
        )
    } else if exceeded {
        (
            RolloutPhase::Degraded,
            format!("{DEADLINE_EXCEEDED}: {prog_message}"),
        )
    } else if p.v.paused {
        (RolloutPhase::Paused, "manually paused".to_string())
    } else if let Some(c) = p.status.pause_conditions.first() {
        (RolloutPhase::Paused, format!("{:?}", c.reason))
    } else if restarting {
        (
            RolloutPhase::Progressing,
            "rollout is restarting".to_string(),
        )
    } else if updated < d {
        (
            RolloutPhase::Progressing,
            "more replicas need to be updated".to_string(),
        )
    } else if p.new_available() < updated.min(d) {
        (
            RolloutPhase::Progressing,
            "updated replicas are still becoming available".to_string(),
        )
    } else if blue_green
        && p.status
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.as_deref())
            != Some(p.hash.as_str())
    {
        (
            RolloutPhase::Progressing,
            "active service cutover pending".to_string(),
        )
    } else if blue_green && !promoted {
        (
            RolloutPhase::Progressing,
            "waiting for post-promotion verification to complete".to_string(),
        )
    } else if !blue_green && !promoted {
        (
            RolloutPhase::Progressing,
            "waiting for all steps to complete".to_string(),
        )
    } else if !blue_green
        && p.status.canary.as_ref().is_none_or(|c| c.weights.is_none())
        && total > updated
    {
        (
            RolloutPhase::Progressing,
            "old replicas are pending termination".to_string(),
        )
    } else {
        (RolloutPhase::Healthy, String::new())
    };
    let was_manual = find(&prev, PAUSED)
        .is_some_and(|c| c.status == "True" && c.message.as_deref() == Some("manually paused"));
    if p.v.paused && !was_manual {
        p.event(
            EventKind::Normal,
            "RolloutPaused",
            "Rollout paused by spec.paused",
        );
    } else if !p.v.paused && was_manual {
        p.event(
            EventKind::Normal,
            "RolloutResumed",
            "Rollout resumed: spec.paused cleared",
        );
    }
    let mut out = Vec::new();
    set_condition_status(
        &mut out,
        &prev,
        PROGRESSING,
        prog_status,
        prog_reason,
        &prog_message,
        now,
        Some(clock).filter(|_| prog_status == "True"),
    );
    set_condition(
        &mut out,
        &prev,
        AVAILABLE,
        available,
        "AvailableReason",
        if available {
            "Rollout has minimum availability"
        } else {
            "Rollout does not have minimum availability"
        },
        now,
        None,
    );
    let pause_message = if p.v.paused {
        "manually paused".to_string()
    } else {
        p.status
            .pause_conditions
            .first()
            .map(|c| format!("{:?}", c.reason))
            .unwrap_or_default()
    };
    set_condition(
        &mut out,
        &prev,
        PAUSED,
        paused,
        "RolloutPaused",
        &pause_message,
        now,
        None,
    );
    let healthy = phase == RolloutPhase::Healthy;
    set_condition(
        &mut out,
        &prev,
        HEALTHY,
        healthy,
        "RolloutHealthy",
        if healthy {
            "Rollout is healthy"
        } else {
            "Rollout is not healthy"
        },
        now,
        None,
    );
    set_condition(
        &mut out,
        &prev,
        COMPLETED,
        promoted,
        "RolloutCompleted",
        if promoted {
            "Rollout completed update to the desired revision"
        } else {
            "Rollout not completed"
        },
        now,
        None,
    );
    kstatus(&mut out, &prev, phase, &message, now);
    // Keep conditions other writers own (ReplicaFailure, ...); InvalidSpec is ours and gone, and
    // so is TrafficRouting: the controller adds it back while a router fails.
    for c in &prev {
        let ours = [
            PROGRESSING,
            AVAILABLE,
            PAUSED,
            HEALTHY,
            COMPLETED,
            INVALID_SPEC,
            READY,
            RECONCILING,
            STALLED,
            TRAFFIC_ROUTING,
        ];
        if !ours.contains(&c.type_.as_str()) {
            out.push(c.clone());
        }
    }
    p.status.conditions = out;
    p.status.phase = Some(phase);
    p.status.message = if message.is_empty() {
        None
    } else {
        Some(message)
    };
    p.status.observed_generation = p.v.generation;
}

/// kstatus conditions from the phase.
pub fn kstatus(
    out: &mut Vec<RolloutCondition>,
    prev: &[RolloutCondition],
    phase: RolloutPhase,
    message: &str,
    now: Timestamp,
) {
    let (ready, reconciling, stalled, reason) = match phase {
        RolloutPhase::Healthy => (true, false, false, "RolloutHealthy"),
        RolloutPhase::Progressing => (false, true, false, "RolloutProgressing"),
        RolloutPhase::Paused => (false, true, false, "RolloutPaused"),
        RolloutPhase::Degraded => (false, false, true, "RolloutDegraded"),
    };
    let message = if message.is_empty() {
        "Rollout is healthy"
    } else {
        message
    };
    set_condition(out, prev, READY, ready, reason, message, now, None);
    set_condition(
        out,
        prev,
        RECONCILING,
        reconciling,
        reason,
        message,
        now,
        None,
    );
    set_condition(out, prev, STALLED, stalled, reason, message, now, None);
}
