//! The step cursor and the user operations that move it: reset when the template or the
//! steps change (a new revision mid-rollout), the initial deploy, rollback to stable or
//! within `rollbackWindow` (skip the steps), retry after an abort, a person's abort, and the
//! clearing of `promoteFull` once promoted.

use super::model::EventKind;
use super::plan::{Plan, live};

/// What the cursor needs from the strategy.
pub struct Cursor<'s> {
    /// Number of canary steps (0 for blue/green).
    pub steps: usize,
    /// `currentStepHash` for canary; `None` for blue/green.
    pub steps_hash: Option<&'s str>,
}

fn steps_i32(steps: usize) -> i32 {
    i32::try_from(steps).unwrap_or(i32::MAX)
}

/// Applies the status resets and user operations that come before any strategy logic.
pub fn prepare(p: &mut Plan, cursor: &Cursor) {
    let pod_changed = p.prev.current_pod_hash.as_deref() != Some(p.hash.as_str());
    let steps_changed =
        cursor.steps_hash.is_some() && p.prev.current_step_hash.as_deref() != cursor.steps_hash;
    if pod_changed || steps_changed {
        reset(p, cursor, pod_changed);
    }
    p.status.current_pod_hash = Some(p.hash.clone());
    p.status.current_step_hash = cursor.steps_hash.map(str::to_string);
    if cursor.steps_hash.is_some() && p.status.current_step_index.is_none() {
        p.status.current_step_index = Some(0);
    }
    if cursor.steps_hash.is_none() {
        p.status.current_step_index = None;
    }
    // Retry: a person cleared `abort`; `abortedAt` still remembers the abort.
    if !p.status.abort && p.status.aborted_at.is_some() {
        p.status.aborted_at = None;
        if cursor.steps_hash.is_some() && !p.promoted() {
            p.status.current_step_index = Some(0);
        }
        clear_runs(p);
        p.event(
            EventKind::Normal,
            "RolloutRetry",
            "Retrying the aborted update",
        );
    }
    // A person's abort: record when, once.
    if p.status.abort && p.status.aborted_at.is_none() {
        if p.promoted() {
            // Nothing to abort: the stable is the desired revision.
            p.status.abort = false;
        } else {
            p.status.abort = false;
            p.abort("");
        }
    }
    if p.status.abort && p.promoted() {
        // Nothing left to abort: the stable is the desired revision.
        p.status.abort = false;
        p.status.aborted_at = None;
    }
    if p.status.abort {
        // Argo moves the cursor back to the first step on abort (the end when promoted).
        if cursor.steps_hash.is_some() {
            p.status.current_step_index = Some(0);
        }
    }
    if p.status.promote_full && p.promoted() {
        p.status.promote_full = false;
    }
}

fn clear_runs(p: &mut Plan) {
    if let Some(c) = p.status.canary.as_mut() {
        c.current_step_analysis_run_status = None;
        c.current_background_analysis_run_status = None;
    }
    if let Some(b) = p.status.blue_green.as_mut() {
        b.pre_promotion_analysis_run_status = None;
        b.post_promotion_analysis_run_status = None;
    }
}

fn reset(p: &mut Plan, cursor: &Cursor, pod_changed: bool) {
    let was_mid_update =
        p.prev.current_pod_hash.is_some() && p.prev.current_pod_hash != p.prev.stable_rs;
    p.status.pause_conditions.clear();
    p.status.controller_pause = false;
    p.status.abort = false;
    p.status.aborted_at = None;
    p.status.promote_full = false;
    clear_runs(p);
    if let Some(b) = p.status.blue_green.as_mut() {
        b.scale_up_preview_check_point = false;
    }
    if was_mid_update {
        // The superseded revision's header and mirror routes go with it.
        p.remove_routes = true;
    }
    let steps = steps_i32(cursor.steps);
    p.status.current_step_index = cursor.steps_hash.map(|_| 0);
    if p.status.stable_rs.is_none() {
        // Initial deploy: nothing to compare with, so the first revision is stable at once.
        p.status.stable_rs = Some(p.hash.clone());
        if cursor.steps_hash.is_some() {
            p.status.current_step_index = Some(steps);
        }
        return;
    }
    if p.promoted() {
        if cursor.steps_hash.is_some() {
            p.status.current_step_index = Some(steps);
        }
        if pod_changed && was_mid_update {
            p.event(
                EventKind::Normal,
                "SkipSteps",
                "Rollback to stable ReplicaSet: skipping the steps",
            );
        }
    } else if pod_changed {
        if within_rollback_window(p) || fast_rollback(p) {
            if cursor.steps_hash.is_some() {
                p.status.current_step_index = Some(steps);
            }
            p.status.promote_full = true;
            p.event(
                EventKind::Normal,
                "SkipSteps",
                "Rollback within window: skipping the steps and analysis",
            );
        }
        p.event(
            EventKind::Normal,
            "RolloutUpdated",
            format!("Rollout updated to revision {}", p.new_revision),
        );
    }
}

/// Going back to a ReplicaSet at most `rollbackWindow.revisions` revisions older than stable.
fn within_rollback_window(p: &Plan) -> bool {
    let (Some(window), Some(target), Some(stable)) = (
        p.v.rollback_window,
        p.reused_revision,
        p.stable_rs().and_then(|rs| rs.revision),
    ) else {
        return false;
    };
    if target >= stable {
        return false;
    }
    let between = live(p.observed)
        .filter_map(|rs| rs.revision)
        .filter(|r| *r > target && *r < stable)
        .count();
    i64::try_from(between).unwrap_or(i64::MAX) < i64::from(window)
}

/// Going back to a ReplicaSet that is still up under a scale-down deadline not yet passed.
pub fn fast_rollback(p: &Plan) -> bool {
    p.new_rs.is_some_and(|rs| {
        rs.desired_replicas > 0
            && rs.available_replicas >= p.v.replicas
            && rs.scale_down_deadline.is_some_and(|d| d > p.now)
    })
}
