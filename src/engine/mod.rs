//! The pure decision engine: `decide(&Rollout, &Observed, now) -> Decision`. No kube client,
//! no async runtime, no clock: everything it needs arrives as arguments.
//!
//! Pipeline of one decision: validate (→ `ValidatedRollout` or `InvalidSpec`), identify the
//! ReplicaSets (hash, collisions, revision), move the cursor for user operations and spec
//! changes (`cursor`), run the strategy (`canary` or `bluegreen`) on a `Plan`, apply the
//! safety rules to scaling (`scaledown`), summarise the status (`conditions`), then emit the
//! actions in a safe order and the earliest timer as `requeue_after`. `decide` repeats that
//! pass over the world its own writes produce (`simulate`) until nothing changes, so a
//! decision is a fixpoint: deciding again on its result asks for nothing.

pub mod baseline;
mod bluegreen;
mod canary;
mod conditions;
mod cursor;
pub mod duration;
pub mod hash;
pub mod measure;
mod model;
mod plan;
pub mod replicas;
mod restart;
mod scaledown;
pub mod simulate;
pub mod validate;

pub use conditions::names as condition_names;
pub use model::*;
pub use validate::{InvalidSpec, ValidatedRollout, validate};

use crate::crd::{Rollout, RolloutPhase, RolloutStatus, WorkloadScaleDown};
use conditions::names::INVALID_SPEC;
use conditions::set_condition;
use cursor::Cursor;
use jiff::Timestamp;
use plan::Plan;
use std::time::Duration;
use validate::Strategy;

/// Planning passes before `decide` gives up on reaching a fixpoint. Passes end quickly:
/// the simulated world gains no available pods, so only writes settle.
const MAX_PASSES: usize = 8;

/// Decides what should happen next for one Rollout, given what the controller observed and
/// the current time. Pure: the same inputs always give the same `Decision`.
///
/// One pass plans from the world as observed; its own writes can make a further step due at
/// once (a ReplicaSet scaled to its target completes a step). So `decide` runs passes over
/// the world as it will be after the writes (`simulate`) until a pass changes nothing, and
/// returns every pass' actions merged: deciding again on the result asks for nothing.
pub fn decide(rollout: &Rollout, observed: &Observed, now: Timestamp) -> Decision {
    let mut current = rollout.clone();
    let mut world = observed.clone();
    let mut out = Decision::default();
    for pass in 0..MAX_PASSES {
        let pass = decide_once(&current, &world, now, pass == 0);
        out.events.extend(pass.events);
        // A pass that only changes status (an abort decided from an analysis verdict) can
        // still make the next pass act, so the fixpoint covers status too.
        let settled = pass.actions.is_empty() && current.status.as_ref() == Some(&pass.status);
        out.status = pass.status;
        out.requeue_after = pass.requeue_after;
        out.desired_weight = pass.desired_weight;
        if settled {
            break;
        }
        simulate::apply_actions(&mut world, &pass.actions);
        out.actions.extend(pass.actions);
        current.status = Some(out.status.clone());
    }
    out.actions = simulate::compact(observed, out.actions);
    out
}

/// One planning pass over the world as given. Only the `first` pass of a decision sends the
/// routers reported failing everything again; the later ones plan as if it was sent.
fn decide_once(rollout: &Rollout, observed: &Observed, now: Timestamp, first: bool) -> Decision {
    let prev = rollout.status.clone().unwrap_or_default();
    let v = match validate(rollout, observed) {
        Ok(v) => v,
        Err(invalid) => return invalid_spec(rollout, prev, &invalid, now),
    };
    let mut p = Plan::new(&v, observed, prev, now);
    p.retry_routers = first && canary::routers_failing(&p.prev);
    let (steps, steps_hash, production, max_unavailable, traffic_routes) = match &v.strategy {
        Strategy::Canary(c) => (
            c.steps.len(),
            Some(c.steps_hash.as_str()),
            [c.stable_service.clone(), c.canary_service.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
            c.max_unavailable,
            c.traffic.as_ref().is_some_and(|t| t.has_managed_routes),
        ),
        Strategy::BlueGreen(b) => (
            0,
            None,
            vec![b.active_service.clone()],
            b.max_unavailable,
            false,
        ),
    };
    cursor::prepare(&mut p, &Cursor { steps, steps_hash });
    if let Strategy::Canary(c) = &v.strategy {
        let i = usize::try_from(p.status.current_step_index.unwrap_or(0).max(0)).unwrap_or(0);
        if matches!(
            c.steps.get(i),
            Some(validate::Step::Pause(_) | validate::Step::Analysis(_))
        ) {
            p.deadline_exempt = true;
        }
    }
    // progressDeadlineAbort: decided on the state as found, before the strategy acts.
    conditions::counts(&mut p, None);
    if v.progress_deadline_abort && !p.status.abort && !p.promoted() && conditions::deadline(&p).0 {
        p.abort("progress deadline exceeded");
    }
    let desired_weight = match &v.strategy {
        Strategy::Canary(c) => {
            canary::reconcile(&mut p, c);
            Some(canary::desired_weight(&p, c))
        }
        Strategy::BlueGreen(b) => {
            bluegreen::reconcile(&mut p, b);
            None
        }
    };
    let restarting = restart::plan(&mut p, max_unavailable);
    scaledown::clear_stale_deadlines(&mut p);
    let (ups, downs, create) = scaledown::scale_actions(&mut p, max_unavailable, &production);
    let deletes = scaledown::history_cleanup(&p, &production);
    if p.status.abort || p.promoted() {
        // An aborted or finished update stops every run it started.
        p.live_runs.clear();
    }
    let terminate: Vec<Action> = observed
        .analysis_runs
        .iter()
        .filter(|r| {
            matches!(
                r.phase,
                crate::crd::AnalysisPhase::Pending | crate::crd::AnalysisPhase::Running
            ) && !r.terminating
                && !p.live_runs.contains(&r.name)
        })
        .map(|r| Action::TerminateAnalysisRun {
            name: r.name.clone(),
        })
        .collect();
    let active = match &v.strategy {
        Strategy::BlueGreen(b) => Some(p.planned_selector(&b.active_service).unwrap_or_default()),
        Strategy::Canary(_) => None,
    };
    conditions::counts(&mut p, active.as_deref());
    conditions::finish(&mut p, active.is_some(), restarting.under_way);
    if let Some(w) = &observed.workload {
        p.status.workload_observed_generation = Some(w.generation.to_string());
    }
    let workload = workload_action(&p);

    let mut actions = Vec::new();
    if let (None, Some(replicas)) = (p.new_rs, create) {
        actions.push(Action::CreateReplicaSet {
            name: p.new_name.clone(),
            pod_template_hash: p.hash.clone(),
            template: Box::new(hash::strip_hash_label(&v.template)),
            replicas,
            revision: p.new_revision,
            min_ready_seconds: v.min_ready_seconds,
        });
        p.event(
            EventKind::Normal,
            "NewReplicaSetCreated",
            format!(
                "Created ReplicaSet {} (revision {}) with {replicas} replicas",
                p.new_name, p.new_revision
            ),
        );
    }
    actions.extend(p.baseline_create.take());
    actions.append(&mut p.revisions);
    let deadlines = std::mem::take(&mut p.deadlines);
    for (name, deadline) in &deadlines {
        let current = observed
            .replica_sets
            .iter()
            .find(|rs| &rs.name == name)
            .and_then(|rs| rs.scale_down_deadline);
        if deadline.is_none() && current.is_some() {
            actions.push(Action::SetScaleDownDeadline {
                name: name.clone(),
                deadline: None,
            });
        }
    }
    for action in &ups {
        if let Action::ScaleReplicaSet { name, replicas } = action {
            p.event(
                EventKind::Normal,
                "ScalingReplicaSet",
                format!("Scaled up ReplicaSet {name} to {replicas}"),
            );
        }
    }
    actions.extend(ups);
    let selectors = p.selectors.clone();
    for (service, hash) in &selectors {
        if p.observed_selector(service).as_deref() != Some(hash.as_str()) {
            actions.push(Action::SetServiceSelector {
                service: service.clone(),
                pod_template_hash: hash.clone(),
            });
            if active.is_some() {
                // Blue/green reports its switches in bluegreen.rs; preview moves are routine.
            } else {
                p.event(
                    EventKind::Normal,
                    "SwitchService",
                    format!("Switched selector for service {service:?} to {hash}"),
                );
            }
        }
    }
    if let Some(w) = p.weights.take() {
        actions.push(Action::SetWeights(w));
    }
    if p.remove_routes && traffic_routes {
        actions.push(Action::RemoveManagedRoutes);
    }
    actions.append(&mut p.routes);
    for action in &downs {
        if let Action::ScaleReplicaSet { name, replicas } = action {
            p.event(
                EventKind::Normal,
                "ScalingReplicaSet",
                format!("Scaled down ReplicaSet {name} to {replicas}"),
            );
        }
    }
    actions.extend(downs);
    for (name, deadline) in deadlines {
        if deadline.is_some() {
            actions.push(Action::SetScaleDownDeadline { name, deadline });
        }
    }
    actions.extend(deletes);
    actions.append(&mut p.baseline_deletes);
    actions.extend(terminate);
    actions.append(&mut p.create_runs);
    actions.extend(workload);
    actions.extend(restarting.evictions);

    let requeue_after = p
        .timers
        .iter()
        .filter(|t| **t > now)
        .min()
        .and_then(|t| Duration::try_from(t.duration_since(now)).ok());
    Decision {
        status: p.status,
        actions,
        events: p.events,
        requeue_after,
        desired_weight,
    }
}

/// `workloadRef.scaleDown`: scale the referenced Deployment down once (or as) the Rollout's
/// pods are available.
fn workload_action(p: &Plan) -> Option<Action> {
    let workload = p.observed.workload.as_ref()?;
    let target = match p.v.workload_scale_down? {
        WorkloadScaleDown::Never => return None,
        WorkloadScaleDown::Onsuccess => {
            if p.status.phase == Some(RolloutPhase::Healthy) {
                0
            } else {
                workload.replicas
            }
        }
        WorkloadScaleDown::Progressively => {
            (p.v.replicas - p.new_available()).clamp(0, workload.replicas)
        }
    };
    (target < workload.replicas).then_some(Action::ScaleWorkload { replicas: target })
}

/// A spec the engine refuses: `InvalidSpec`, Degraded, Stalled, one Event on the change, no
/// workload actions and no requeue (a change to the Rollout triggers the next decision).
fn invalid_spec(
    rollout: &Rollout,
    prev: RolloutStatus,
    invalid: &InvalidSpec,
    now: Timestamp,
) -> Decision {
    let message = invalid.to_string();
    let mut status = prev.clone();
    let mut out = Vec::new();
    set_condition(
        &mut out,
        &prev.conditions,
        INVALID_SPEC,
        true,
        INVALID_SPEC,
        &message,
        now,
        None,
    );
    conditions::kstatus(
        &mut out,
        &prev.conditions,
        RolloutPhase::Degraded,
        &format!("{INVALID_SPEC}: {message}"),
        now,
    );
    for c in &prev.conditions {
        if !out.iter().any(|o| o.type_ == c.type_) {
            out.push(c.clone());
        }
    }
    status.conditions = out;
    status.phase = Some(RolloutPhase::Degraded);
    status.message = Some(format!("{INVALID_SPEC}: {message}"));
    status.observed_generation = rollout.metadata.generation;
    let already = prev
        .conditions
        .iter()
        .any(|c| c.type_ == INVALID_SPEC && c.message.as_deref() == Some(message.as_str()));
    let events = if already {
        Vec::new()
    } else {
        vec![EventNote {
            kind: EventKind::Warning,
            reason: "InvalidSpec",
            message,
        }]
    };
    Decision {
        status,
        actions: Vec::new(),
        events,
        requeue_after: None,
        desired_weight: None,
    }
}

#[cfg(test)]
mod tests;
