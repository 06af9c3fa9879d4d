//! The blue/green strategy for one decision: the preview Service follows the newest
//! ReplicaSet, which is scaled to `previewReplicaCount` (or full size); once saturated,
//! pre-promotion analysis, the promotion pause (`autoPromotionEnabled`,
//! `autoPromotionSeconds`), the scale-up checkpoint, the active switch, post-promotion
//! analysis, then the new stable and the old active's scale-down delay.

use super::model::{AnalysisKind, EventKind};
use super::plan::{Plan, Verdict};
use super::scaledown::{abort_scale_down, old_replica_sets};
use super::validate::BlueGreen;
use crate::crd::{BlueGreenStatus, PauseReason};
use jiff::SignedDuration;

fn bg_status<'p>(p: &'p mut Plan) -> &'p mut BlueGreenStatus {
    p.status
        .blue_green
        .get_or_insert_with(BlueGreenStatus::default)
}

/// Plans one blue/green decision.
pub fn reconcile(p: &mut Plan, b: &BlueGreen) {
    let d = p.v.replicas;
    let hash = p.hash.clone();
    let stable = p.status.stable_rs.clone().unwrap_or_else(|| hash.clone());
    if let Some(preview) = b.preview_service.clone() {
        p.selectors.insert(preview, hash.clone());
    }
    let initial = p.observed_selector(&b.active_service).is_none() && p.promoted();
    if initial {
        // Initial deploy: the active Service has nothing to keep serving.
        p.selectors.insert(b.active_service.clone(), hash.clone());
    }
    let halted = p.halted();
    if p.status.abort {
        p.selectors.insert(b.active_service.clone(), stable.clone());
        let stable_full = p.available_of(&stable) >= d;
        if !halted {
            p.targets.insert(stable_name(p, &stable), d);
            let name = p.new_name.clone();
            let spec = p.new_spec();
            let target = abort_scale_down(
                p,
                &name,
                spec,
                stable_full,
                b.abort_scale_down_delay_seconds,
            );
            p.targets.insert(name, target);
        }
    } else if !p.promoted() && !halted {
        progress(p, b);
    }
    if p.promoted() {
        let available = p.new_available();
        p.select(&b.active_service.clone(), &hash, available);
        if !halted {
            p.targets.insert(p.new_name.clone(), d);
        }
    }
    if !halted {
        old_replica_sets(
            p,
            b.scale_down_delay_seconds,
            b.scale_down_delay_revision_limit,
        );
        // An old ReplicaSet the active Service still selects keeps serving at full size.
        if let Some(active) = p.planned_selector(&b.active_service) {
            for rs in p.others() {
                if rs.pod_template_hash.as_deref() == Some(active.as_str()) {
                    p.targets
                        .insert(rs.name.clone(), rs.desired_replicas.max(d));
                }
            }
        }
    }
    let active = p.planned_selector(&b.active_service);
    let preview = b
        .preview_service
        .as_ref()
        .and_then(|s| p.planned_selector(s));
    let s = bg_status(p);
    s.active_selector = active;
    s.preview_selector = preview;
}

fn stable_name(p: &Plan, stable: &str) -> String {
    p.stable_rs()
        .map_or_else(|| format!("{}-{}", p.v.name, stable), |rs| rs.name.clone())
}

fn progress(p: &mut Plan, b: &BlueGreen) {
    let d = p.v.replicas;
    let hash = p.hash.clone();
    let stable = p.status.stable_rs.clone().unwrap_or_else(|| hash.clone());
    p.targets.insert(stable_name(p, &stable), d);
    let checkpoint = p
        .status
        .blue_green
        .as_ref()
        .is_some_and(|s| s.scale_up_preview_check_point);
    let preview_size = match b.preview_replica_count {
        Some(n) if !checkpoint && !p.status.promote_full => n.min(d),
        Some(_) | None => d,
    };
    p.targets.insert(p.new_name.clone(), preview_size);
    let saturated = |p: &Plan, n: i32| p.new_spec() == n && p.new_available() >= n;
    let active_is_new = p.planned_selector(&b.active_service).as_deref() == Some(hash.as_str());
    if !active_is_new {
        if !saturated(p, preview_size) {
            return;
        }
        // The checkpoint records a promotion already granted (analysis passed, pause over).
        if !p.status.promote_full && !checkpoint {
            if let Some(analysis) = &b.pre_promotion {
                let entry = bg_status(p).pre_promotion_analysis_run_status.clone();
                let base = format!("{}-{}-{}-pre", p.v.name, hash, p.new_revision);
                let (verdict, entry) =
                    p.follow_run(entry, AnalysisKind::PrePromotion, &base, analysis);
                bg_status(p).pre_promotion_analysis_run_status = entry;
                match verdict {
                    Verdict::Passed => {}
                    Verdict::Waiting => {
                        p.deadline_exempt = true;
                        return;
                    }
                    Verdict::Failed(detail) => {
                        p.abort(&detail);
                        p.selectors.insert(b.active_service.clone(), stable);
                        return;
                    }
                    Verdict::Inconclusive => {
                        if p.inconclusive() {
                            // Resumed by a person: analyse again with a new run.
                            let (_, entry) =
                                p.follow_run(None, AnalysisKind::PrePromotion, &base, analysis);
                            bg_status(p).pre_promotion_analysis_run_status = entry;
                        }
                        p.deadline_exempt = true;
                        return;
                    }
                }
            }
            if !pause_passed(p, b) {
                return;
            }
        }
        if preview_size < d {
            bg_status(p).scale_up_preview_check_point = true;
            p.targets.insert(p.new_name.clone(), d);
            return;
        }
        if !saturated(p, d) {
            return;
        }
        p.selectors.insert(b.active_service.clone(), hash.clone());
        p.event(
            EventKind::Normal,
            "SwitchService",
            format!(
                "Switched selector for service {:?} to {hash}",
                b.active_service
            ),
        );
    }
    p.targets.insert(p.new_name.clone(), d);
    if let (Some(analysis), false) = (&b.post_promotion, p.status.promote_full) {
        let entry = bg_status(p).post_promotion_analysis_run_status.clone();
        let base = format!("{}-{}-{}-post", p.v.name, hash, p.new_revision);
        let (verdict, entry) = p.follow_run(entry, AnalysisKind::PostPromotion, &base, analysis);
        bg_status(p).post_promotion_analysis_run_status = entry;
        match verdict {
            Verdict::Passed => {}
            Verdict::Waiting => {
                p.deadline_exempt = true;
                return;
            }
            Verdict::Failed(detail) => {
                p.abort(&detail);
                // Post-promotion failure switches production back to the old stable.
                p.selectors.insert(b.active_service.clone(), stable);
                return;
            }
            Verdict::Inconclusive => {
                if p.inconclusive() {
                    // Resumed by a person: analyse again with a new run.
                    let (_, entry) =
                        p.follow_run(None, AnalysisKind::PostPromotion, &base, analysis);
                    bg_status(p).post_promotion_analysis_run_status = entry;
                }
                p.deadline_exempt = true;
                return;
            }
        }
    }
    p.demoted = Some(stable);
    p.status.stable_rs = Some(hash);
    p.status.promote_full = false;
    p.status.pause_conditions.clear();
    p.status.controller_pause = false;
    bg_status(p).scale_up_preview_check_point = false;
    p.event(
        EventKind::Normal,
        "RolloutCompleted",
        "Completed blue-green update",
    );
}

/// The promotion pause: none with auto-promotion; a timed one with `autoPromotionSeconds`;
/// an open-ended one without auto-promotion. True once it is over.
fn pause_passed(p: &mut Plan, b: &BlueGreen) -> bool {
    let timed = b.auto_promotion_enabled && b.auto_promotion_seconds > 0;
    if b.auto_promotion_enabled && !timed {
        return true;
    }
    if let Some(start) = p.pause_start(PauseReason::BlueGreenPause) {
        if timed {
            let end = start
                .checked_add(SignedDuration::from_secs(i64::from(
                    b.auto_promotion_seconds,
                )))
                .unwrap_or(jiff::Timestamp::MAX);
            if end <= p.now {
                p.clear_pause(PauseReason::BlueGreenPause);
                return true;
            }
            p.timer(end);
        }
        p.deadline_exempt = true;
        return false;
    }
    if p.take_resume() {
        return true;
    }
    p.add_pause(
        PauseReason::BlueGreenPause,
        "Rollout paused before switching the active Service",
    );
    if timed {
        let end = p
            .stored_now()
            .checked_add(SignedDuration::from_secs(i64::from(
                b.auto_promotion_seconds,
            )))
            .unwrap_or(jiff::Timestamp::MAX);
        p.timer(end);
    }
    p.deadline_exempt = true;
    false
}
