//! The canary strategy for one decision: analysis verdicts, the step loop (every step kind),
//! promotion, replica targets with and without traffic routing, Service selectors and
//! traffic weights. Reads and writes only the `Plan`.

use super::baseline;
use super::model::{Action, AnalysisKind, EventKind};
use super::plan::{Plan, Verdict};
use super::replicas::{
    Counts, basic_counts, basic_plan, canary_scale_at, ceil_div, dynamic_stable_count,
    progress_threshold, traffic_canary_count, weights_around,
};
use super::scaledown::{abort_scale_down, old_replica_sets};
use super::validate::{Canary, Step};
use crate::crd::{CanaryStatus, PauseReason, RolloutStatus, TrafficWeights, WeightDestination};

fn index(p: &Plan) -> usize {
    usize::try_from(p.status.current_step_index.unwrap_or(0).max(0)).unwrap_or(0)
}

fn set_index(p: &mut Plan, i: usize) {
    p.status.current_step_index = Some(i32::try_from(i).unwrap_or(i32::MAX));
}

fn max_weight(c: &Canary) -> i32 {
    c.traffic.as_ref().map_or(100, |t| t.max_weight)
}

/// The weight the replica maths aims at right now.
fn target_weight(p: &Plan, c: &Canary, i: usize) -> i32 {
    if p.status.abort {
        0
    } else if p.promoted() || p.status.promote_full || i >= c.steps.len() {
        max_weight(c)
    } else {
        weights_around(&c.steps, i).0
    }
}

/// The canary weight the current step asks for, as reported in the `Decision`.
pub(crate) fn desired_weight(p: &Plan, c: &Canary) -> i32 {
    target_weight(p, c, index(p))
}

/// Desired (canary, stable) counts for the step at `i`.
fn desired_counts(p: &Plan, c: &Canary, i: usize) -> (i32, i32) {
    let d = p.v.replicas;
    let w = target_weight(p, c, i);
    match &c.traffic {
        None => basic_counts(d, w, 100, c.max_surge),
        Some(t) => {
            let scale = if p.status.promote_full || i >= c.steps.len() {
                None
            } else {
                canary_scale_at(&c.steps, i)
            };
            let canary =
                traffic_canary_count(d, w, t.max_weight, scale, c.min_pods_per_replica_set);
            if !c.dynamic_stable_scale {
                return (canary, d);
            }
            let applied = p.prev.canary.as_ref().and_then(|s| s.weights.as_ref());
            let current = applied.map_or(t.max_weight, |w| w.stable.weight);
            let stable = dynamic_stable_count(d, w, t.max_weight, current);
            // A lower weight waits for the stable pods to carry it (`weights`): until it moves,
            // the canary keeps the pods for the weight it carries now.
            let carried = applied
                .filter(|a| a.canary.pod_template_hash.as_deref() == Some(p.hash.as_str()))
                .map_or(0, |a| {
                    traffic_canary_count(d, a.canary.weight, t.max_weight, None, 0)
                });
            (canary.max(carried), stable)
        }
    }
}

/// The ReplicaSets are at the desired counts of step `i` (what `setWeight` and
/// `setCanaryScale` wait for).
fn at_desired_counts(p: &Plan, c: &Canary, i: usize) -> bool {
    let (_, stable) = desired_counts(p, c, i);
    let new_ok = canary_ready(p, c, i);
    let stable_ok = p.stable_rs().map_or(stable == 0, |rs| {
        // The stable hash still points at the stable ReplicaSet until promotion, so the
        // scale-down rule keeps one of its pods when the target is 0 (`scaledown::plan`); the
        // step waits for that floor, not for a zero it will never reach.
        let expected = if stable == 0 && rs.desired_replicas > 0 && p.v.replicas > 0 {
            1
        } else {
            stable
        };
        rs.desired_replicas == expected && rs.available_replicas >= stable
    });
    let others_ok = c.traffic.is_some()
        || p.others()
            .iter()
            .all(|rs| rs.desired_replicas == 0 && rs.replicas == 0);
    new_ok && stable_ok && others_ok
}

/// The canary side of step `i` is ready: what traffic may be shifted toward. Under
/// dynamicStableScale the stable shrinks only after the weight moved, so it cannot be a
/// precondition of the weight.
/// A baseline must be at the canary's count too, so both sides get traffic together.
fn canary_ready(p: &Plan, c: &Canary, i: usize) -> bool {
    let (canary, _) = desired_counts(p, c, i);
    let needed = progress_threshold(c.progress_threshold.as_ref(), canary);
    p.new_spec() == canary && p.new_available() >= needed && baseline::ready(p, c, canary, needed)
}

fn canary_status<'p>(p: &'p mut Plan) -> &'p mut CanaryStatus {
    p.status.canary.get_or_insert_with(CanaryStatus::default)
}

fn background(p: &mut Plan, c: &Canary) {
    let Some((analysis, starting_step)) = &c.background else {
        return;
    };
    let i = i32::try_from(index(p)).unwrap_or(i32::MAX);
    if p.promoted() || p.status.abort || p.status.promote_full || i < *starting_step {
        return;
    }
    let entry = canary_status(p)
        .current_background_analysis_run_status
        .clone();
    let base = format!("{}-{}-{}", p.v.name, p.hash, p.new_revision);
    let (verdict, entry) = p.follow_run(entry, AnalysisKind::Background, &base, analysis);
    canary_status(p).current_background_analysis_run_status = entry;
    match verdict {
        Verdict::Waiting | Verdict::Passed => {}
        Verdict::Failed(detail) => p.abort(&detail),
        Verdict::Inconclusive => {
            if p.inconclusive() {
                // Accepted by a person: measure again with a new run.
                canary_status(p).current_background_analysis_run_status = None;
                let (_, entry) = p.follow_run(None, AnalysisKind::Background, &base, analysis);
                canary_status(p).current_background_analysis_run_status = entry;
            }
        }
    }
}

/// Moves the cursor as far as the observed state allows.
fn step_loop(p: &mut Plan, c: &Canary) {
    // A router that failed may not carry the step's weight: the step waits for it.
    let weights_refused = p.observed.weights_verified == Some(false) || routers_failing(&p.prev);
    while index(p) < c.steps.len() && !p.status.abort {
        let i = index(p);
        let done = match &c.steps[i] {
            Step::SetWeight(_) | Step::SetCanaryScale(_) => {
                at_desired_counts(p, c, i) && !(c.traffic.is_some() && weights_refused)
            }
            Step::Pause(duration) => {
                if p.has_pause(PauseReason::CanaryPauseStep) {
                    match (duration, p.pause_start(PauseReason::CanaryPauseStep)) {
                        (Some(d), Some(start)) => {
                            let end = start
                                .checked_add(
                                    jiff::SignedDuration::try_from(*d)
                                        .unwrap_or(jiff::SignedDuration::MAX),
                                )
                                .unwrap_or(jiff::Timestamp::MAX);
                            if end <= p.now {
                                true
                            } else {
                                p.timer(end);
                                false
                            }
                        }
                        (None, _) | (Some(_), None) => false,
                    }
                } else if p.take_resume() || duration.is_some_and(|d| d.is_zero()) {
                    true
                } else {
                    let message = match duration {
                        Some(d) => format!("Rollout paused at step {i} for {}s", d.as_secs()),
                        None => format!("Rollout paused at step {i} until promoted"),
                    };
                    p.add_pause(PauseReason::CanaryPauseStep, &message);
                    if let Some(d) = duration {
                        let end = p
                            .stored_now()
                            .checked_add(
                                jiff::SignedDuration::try_from(*d)
                                    .unwrap_or(jiff::SignedDuration::MAX),
                            )
                            .unwrap_or(jiff::Timestamp::MAX);
                        // A sub-second pause may already be over: look again at once.
                        let soonest = p
                            .now
                            .checked_add(jiff::SignedDuration::from_millis(1))
                            .unwrap_or(p.now);
                        p.timer(end.max(soonest));
                    }
                    false
                }
            }
            Step::Analysis(analysis) => {
                let entry = canary_status(p).current_step_analysis_run_status.clone();
                let base = format!("{}-{}-{}-{}", p.v.name, p.hash, p.new_revision, i);
                let kind = AnalysisKind::Step(i32::try_from(i).unwrap_or(i32::MAX));
                let (verdict, entry) = p.follow_run(entry, kind, &base, analysis);
                canary_status(p).current_step_analysis_run_status = entry;
                match verdict {
                    Verdict::Waiting => false,
                    Verdict::Passed => true,
                    Verdict::Failed(detail) => {
                        p.abort(&detail);
                        false
                    }
                    Verdict::Inconclusive => {
                        if p.inconclusive() {
                            // Resumed by a person: analyse the step again with a new run, as
                            // Argo does; the step completes only when an analysis passes.
                            let (_, entry) = p.follow_run(None, kind, &base, analysis);
                            canary_status(p).current_step_analysis_run_status = entry;
                        }
                        false
                    }
                }
            }
            Step::SetHeaderRoute(route) => {
                p.routes.push(Action::SetHeaderRoute(route.clone()));
                true
            }
            Step::SetMirrorRoute(route) => {
                p.routes.push(Action::SetMirrorRoute(route.clone()));
                true
            }
        };
        if !done {
            break;
        }
        p.clear_pause(PauseReason::CanaryPauseStep);
        p.clear_pause(PauseReason::InconclusiveAnalysisRun);
        if let Some(s) = p.status.canary.as_mut() {
            s.current_step_analysis_run_status = None;
        }
        set_index(p, i + 1);
        p.event(
            EventKind::Normal,
            "RolloutStepCompleted",
            format!(
                "Rollout step {}/{} completed ({})",
                i + 1,
                c.steps.len(),
                describe(&c.steps[i])
            ),
        );
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::SetWeight(w) => format!("setWeight: {w}"),
        Step::Pause(Some(d)) => format!("pause: {}s", d.as_secs()),
        Step::Pause(None) => "pause".to_string(),
        Step::SetCanaryScale(_) => "setCanaryScale".to_string(),
        Step::Analysis(_) => "analysis".to_string(),
        Step::SetHeaderRoute(r) => format!("setHeaderRoute: {}", r.name),
        Step::SetMirrorRoute(r) => format!("setMirrorRoute: {}", r.name),
    }
}

fn promote(p: &mut Plan, c: &Canary) {
    let i = index(p);
    let end = i >= c.steps.len();
    if p.promoted() || p.status.abort || !(end || p.status.promote_full) {
        return;
    }
    let needed = progress_threshold(c.progress_threshold.as_ref(), p.v.replicas);
    if p.new_available() < needed || p.new_spec() < p.v.replicas.min(needed.max(1)) {
        return;
    }
    let message = if p.status.promote_full {
        "Full promotion requested".to_string()
    } else {
        format!("Completed all {} canary steps", c.steps.len())
    };
    p.demoted = p.status.stable_rs.clone();
    p.status.stable_rs = Some(p.hash.clone());
    p.status.promote_full = false;
    p.status.pause_conditions.clear();
    p.status.controller_pause = false;
    if !c.steps.is_empty() {
        set_index(p, c.steps.len());
    }
    // Every managed route goes, those the last steps set in this decision included.
    p.routes.clear();
    p.remove_routes = true;
    p.event(EventKind::Normal, "RolloutCompleted", message);
}

/// Plans one canary decision.
pub fn reconcile(p: &mut Plan, c: &Canary) {
    if !p.promoted() && !p.status.abort {
        background(p, c);
    }
    if !p.promoted() && !p.status.abort && !p.status.promote_full && !p.halted() {
        step_loop(p, c);
        // The cursor may have reached the background analysis' starting step just now.
        let started = p
            .status
            .canary
            .as_ref()
            .is_some_and(|s| s.current_background_analysis_run_status.is_some());
        if !started && !p.status.abort {
            background(p, c);
        }
    }
    if !p.halted() {
        promote(p, c);
    }
    if !p.halted() {
        targets(p, c);
    }
    baseline::targets(p, c);
    services(p, c);
    weights(p, c);
    if p.retry_routers {
        if p.promoted() || p.status.abort {
            // Removing the managed routes may be what failed: do it again until every router
            // did.
            p.remove_routes = true;
        } else if !p.remove_routes {
            // A failed router may have missed a header or mirror route: send every route the
            // steps so far set again, as the weights are.
            p.routes = routes_before(c, index(p));
        }
    }
    let status = baseline::status(p, c);
    if status.is_some() || p.status.canary.is_some() {
        canary_status(p).baseline = status;
    }
}

fn targets(p: &mut Plan, c: &Canary) {
    let i = index(p);
    let d = p.v.replicas;
    let new = Counts {
        name: p.new_name.clone(),
        spec: p.new_spec(),
        available: p.new_available(),
        revision: p.new_revision,
    };
    let stable_rs = if p.promoted() { None } else { p.stable_rs() };
    let stable = stable_rs.map(|rs| Counts {
        name: rs.name.clone(),
        spec: rs.desired_replicas,
        available: rs.available_replicas,
        revision: rs.revision.unwrap_or(0),
    });
    let others: Vec<Counts> = p
        .others()
        .iter()
        .map(|rs| Counts {
            name: rs.name.clone(),
            spec: rs.desired_replicas,
            available: rs.available_replicas,
            revision: rs.revision.unwrap_or(0),
        })
        .collect();
    match &c.traffic {
        None => {
            let (canary_target, stable_target) = if p.promoted() {
                (d, 0)
            } else {
                desired_counts(p, c, i)
            };
            let plan = basic_plan(
                d,
                c.max_surge,
                c.max_unavailable,
                &new,
                stable.as_ref(),
                &others,
                canary_target,
                stable_target,
            );
            p.targets.extend(plan);
        }
        Some(_) => {
            if p.promoted() {
                p.targets.insert(new.name.clone(), d);
            } else if p.status.abort {
                let stable_full = stable.as_ref().is_some_and(|s| s.available >= d);
                if let Some(s) = &stable {
                    p.targets.insert(s.name.clone(), d);
                }
                let name = new.name.clone();
                let target = abort_scale_down(
                    p,
                    &name,
                    new.spec,
                    stable_full,
                    c.abort_scale_down_delay_seconds,
                );
                p.targets.insert(name, target);
            } else {
                let (canary_target, stable_target) = desired_counts(p, c, i);
                p.targets.insert(new.name.clone(), canary_target);
                if let Some(s) = &stable {
                    p.targets.insert(s.name.clone(), stable_target);
                }
            }
            old_replica_sets(
                p,
                c.scale_down_delay_seconds,
                c.scale_down_delay_revision_limit,
            );
        }
    }
}

fn services(p: &mut Plan, c: &Canary) {
    let stable_hash = p.status.stable_rs.clone().unwrap_or_else(|| p.hash.clone());
    let stable_available = p.available_of(&stable_hash);
    if let Some(svc) = c.stable_service.clone() {
        p.select(&svc, &stable_hash, stable_available);
    }
    if let Some(svc) = c.canary_service.clone() {
        if p.promoted() || p.status.abort {
            p.select(&svc, &stable_hash, stable_available);
        } else if p.new_available() > 0 {
            let hash = p.hash.clone();
            let available = p.new_available();
            p.select(&svc, &hash, available);
        } else if p.observed_selector(&svc).is_none() {
            // An adopted Service that selects every pod: narrow it to stable first.
            p.select(&svc, &stable_hash, stable_available);
        }
    }
    baseline::service(p, c, &stable_hash, stable_available);
}

fn weights(p: &mut Plan, c: &Canary) {
    let Some(t) = &c.traffic else {
        return;
    };
    let (Some(canary_svc), Some(stable_svc)) = (c.canary_service.clone(), c.stable_service.clone())
    else {
        return;
    };
    let i = index(p);
    let canary_hash = p.planned_selector(&canary_svc);
    let stable_hash = p.planned_selector(&stable_svc);
    let canary_is_new = canary_hash.as_deref() == Some(p.hash.as_str());
    let previous = p.prev.canary.as_ref().and_then(|s| s.weights.clone());
    let weight = if p.promoted() || p.status.abort || p.new_available() == 0 || !canary_is_new {
        0
    } else if p.status.promote_full {
        previous
            .as_ref()
            .map_or(0, |w| w.canary.weight)
            .clamp(0, t.max_weight)
    } else {
        let (current, before) = if i >= c.steps.len() {
            (t.max_weight, weights_around(&c.steps, c.steps.len()).0)
        } else {
            weights_around(&c.steps, i)
        };
        if canary_ready(p, c, i) {
            current
        } else {
            before.min(current)
        }
    };
    let additional: Vec<WeightDestination> = baseline::destination(p, c, weight, t.max_weight)
        .into_iter()
        .collect();
    let stable_weight = t.max_weight - weight - additional.iter().map(|d| d.weight).sum::<i32>();
    // Under dynamicStableScale the stable may be smaller than the share it is about to get
    // back (abort, a lower weight): hold the weights until its pods are available.
    if c.dynamic_stable_scale
        && let (Some(prev), Some(hash)) = (&previous, &stable_hash)
    {
        let share = stable_weight;
        let needed = ceil_div(
            i64::from(p.v.replicas),
            i64::from(share),
            i64::from(t.max_weight),
        );
        // A baseline that lost its pods loses its weight even so: it can serve nothing.
        let baseline_lost = prev
            .additional
            .iter()
            .any(|a| a.weight > 0 && !additional.contains(a));
        if share > prev.stable.weight && i64::from(p.available_of(hash)) < needed && !baseline_lost
        {
            return;
        }
    }
    let desired = TrafficWeights {
        canary: WeightDestination {
            weight,
            service_name: Some(canary_svc),
            pod_template_hash: canary_hash,
        },
        stable: WeightDestination {
            weight: stable_weight,
            service_name: Some(stable_svc),
            pod_template_hash: stable_hash,
        },
        additional,
        verified: None,
    };
    let same = previous.as_ref().is_some_and(|w| {
        w.canary == desired.canary
            && w.stable == desired.stable
            && w.additional == desired.additional
    });
    // A router that failed last time may hold other weights than the status says: send them
    // again until every router has taken them.
    if same && !p.retry_routers {
        let verified = p.observed.weights_verified;
        if verified == Some(false) {
            // The routers have not confirmed yet: look again soon (Argo's 10 s retry).
            let at = p.after(10);
            p.timer(at);
        }
        if let Some(w) = canary_status(p).weights.as_mut() {
            w.verified = verified;
        }
    } else {
        if !same {
            weight_event(p, &desired);
        }
        canary_status(p).weights = Some(desired.clone());
        p.weights = Some(desired);
    }
}

/// The header and mirror routes the steps before `i` set: the last setting of each route, in
/// the order of those settings (a route without matches removes it, and is sent as such).
fn routes_before(c: &Canary, i: usize) -> Vec<Action> {
    let mut routes: Vec<(&str, Action)> = Vec::new();
    for step in c.steps.iter().take(i) {
        let (name, action) = match step {
            Step::SetHeaderRoute(r) => (r.name.as_str(), Action::SetHeaderRoute(r.clone())),
            Step::SetMirrorRoute(r) => (r.name.as_str(), Action::SetMirrorRoute(r.clone())),
            _ => continue,
        };
        routes.retain(|(n, _)| *n != name);
        routes.push((name, action));
    }
    routes.into_iter().map(|(_, action)| action).collect()
}

fn weight_event(p: &mut Plan, desired: &TrafficWeights) {
    let (weight, stable_weight) = (desired.canary.weight, desired.stable.weight);
    p.event(
        EventKind::Normal,
        "TrafficWeightUpdated",
        match desired.additional.first() {
            Some(b) => format!(
                "Traffic weight updated to {weight} (canary) / {} (baseline) / {stable_weight} (stable)",
                b.weight
            ),
            None => format!("Traffic weight updated to {weight} (canary) / {stable_weight} (stable)"),
        },
    );
}

/// Whether the controller reported a traffic router failing after its last attempt
/// (`status.canary.routers[].lastError`).
pub fn routers_failing(status: &RolloutStatus) -> bool {
    status
        .canary
        .as_ref()
        .is_some_and(|c| c.routers.iter().any(|r| r.last_error.is_some()))
}
