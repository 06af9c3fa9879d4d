//! A pure model of how the cluster looks right after the controller applied some actions:
//! objects are written, but no pod has become available yet. `decide` uses it to run its
//! planning passes to a fixpoint, and tests use it as their simulator.

use super::hash::TemplateDigest;
use super::model::{Action, Observed, ObservedAnalysisRun, ObservedReplicaSet};
use crate::crd::{AnalysisPhase, POD_TEMPLATE_HASH_LABEL};

/// A ReplicaSet the controller created, with no pod available yet (unless it exists already).
fn create(
    observed: &mut Observed,
    name: &str,
    pod_template_hash: &str,
    template: TemplateDigest,
    replicas: i32,
    revision: i64,
    baseline: bool,
) {
    if observed.replica_sets.iter().any(|rs| rs.name == name) {
        return;
    }
    observed.replica_sets.push(ObservedReplicaSet {
        name: name.to_owned(),
        pod_template_hash: Some(pod_template_hash.to_owned()),
        template,
        desired_replicas: replicas,
        replicas,
        ready_replicas: 0,
        available_replicas: 0,
        revision: Some(revision),
        scale_down_deadline: None,
        created_at: None,
        deleting: false,
        baseline,
    });
}

/// Applies `actions` to `observed` as the controller and the API server would, with no pod
/// becoming available (scaling down removes unavailable pods first, as ReplicaSets do).
pub fn apply_actions(observed: &mut Observed, actions: &[Action]) {
    for action in actions {
        match action {
            Action::CreateReplicaSet {
                name,
                pod_template_hash,
                template,
                replicas,
                revision,
                ..
            } => create(
                observed,
                name,
                pod_template_hash,
                TemplateDigest::of(template),
                *replicas,
                *revision,
                false,
            ),
            Action::CreateBaselineReplicaSet {
                name,
                pod_template_hash,
                replicas,
                revision,
                ..
            } => create(
                observed,
                name,
                pod_template_hash,
                super::baseline::simulated_digest(),
                *replicas,
                *revision,
                true,
            ),
            Action::ScaleReplicaSet { name, replicas } => {
                if let Some(rs) = observed.replica_sets.iter_mut().find(|r| &r.name == name) {
                    rs.desired_replicas = *replicas;
                    rs.replicas = *replicas;
                    rs.available_replicas = rs.available_replicas.min(*replicas);
                    rs.ready_replicas = rs.ready_replicas.min(*replicas);
                }
            }
            Action::SetScaleDownDeadline { name, deadline } => {
                if let Some(rs) = observed.replica_sets.iter_mut().find(|r| &r.name == name) {
                    rs.scale_down_deadline = *deadline;
                }
            }
            Action::SetRevision { name, revision } => {
                if let Some(rs) = observed.replica_sets.iter_mut().find(|r| &r.name == name) {
                    rs.revision = Some(*revision);
                }
            }
            Action::DeleteReplicaSet { name } => observed.replica_sets.retain(|r| &r.name != name),
            Action::SetServiceSelector {
                service,
                pod_template_hash,
            } => {
                let svc = observed
                    .services
                    .entry(service.clone())
                    .or_insert_with(|| Some(Default::default()));
                let svc = svc.get_or_insert_with(Default::default);
                svc.selector
                    .insert(POD_TEMPLATE_HASH_LABEL.into(), pod_template_hash.clone());
            }
            // New weights are unconfirmed: a router that verifies (it reported before) has not
            // confirmed them yet; one that cannot tell still cannot.
            Action::SetWeights(_) => {
                observed.weights_verified = observed.weights_verified.map(|_| false);
            }
            Action::SetHeaderRoute(_) | Action::SetMirrorRoute(_) | Action::RemoveManagedRoutes => {
            }
            Action::CreateAnalysisRun {
                name,
                kind,
                pod_template_hash,
                ..
            } => {
                if observed.analysis_runs.iter().any(|r| &r.name == name) {
                    continue;
                }
                observed.analysis_runs.push(ObservedAnalysisRun {
                    name: name.clone(),
                    kind: *kind,
                    pod_template_hash: pod_template_hash.clone(),
                    phase: AnalysisPhase::Pending,
                    message: None,
                    terminating: false,
                });
            }
            Action::TerminateAnalysisRun { name } => {
                if let Some(run) = observed.analysis_runs.iter_mut().find(|r| &r.name == name) {
                    run.terminating = true;
                }
            }
            Action::ScaleWorkload { replicas } => {
                if let Some(w) = observed.workload.as_mut() {
                    w.replicas = *replicas;
                }
            }
            Action::EvictPod { name } => {
                let pods = observed.restart_pods.iter_mut().flatten();
                if let Some(pod) = pods.into_iter().find(|p| &p.name == name) {
                    pod.evicted = true;
                }
            }
        }
    }
}

/// An earlier pass removed the managed routes and none was set since: removing them again
/// changes nothing.
fn routes_removed(out: &[Action]) -> bool {
    out.iter()
        .rev()
        .find(|a| {
            matches!(
                a,
                Action::RemoveManagedRoutes | Action::SetHeaderRoute(_) | Action::SetMirrorRoute(_)
            )
        })
        .is_some_and(|a| matches!(a, Action::RemoveManagedRoutes))
}

/// Merges the actions of several passes where that changes nothing a pod would notice: a
/// scale of a ReplicaSet created in an earlier pass becomes its initial size, and a scale
/// that continues an earlier one in the same direction replaces it, a route set again replaces
/// its earlier setting, and managed routes removed twice are removed once. A scale down followed by a scale up is kept as two writes: the pods
/// removed by the first are really gone.
pub fn compact(observed: &Observed, actions: Vec<Action>) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    for action in actions {
        let keep = match &action {
            Action::RemoveManagedRoutes => !routes_removed(&out),
            Action::SetHeaderRoute(r) => {
                supersede_route(&mut out, &r.name);
                true
            }
            Action::SetMirrorRoute(r) => {
                supersede_route(&mut out, &r.name);
                true
            }
            Action::ScaleReplicaSet { name, replicas } => {
                !into_create(&mut out, name, *replicas)
                    && merge_scale(&mut out, observed, name, *replicas)
            }
            _ => true,
        };
        if keep {
            out.push(action);
        }
    }
    out
}

/// A later setting of a managed route replaces the earlier settings of it since the routes
/// were last removed: drop those.
fn supersede_route(out: &mut Vec<Action>, name: &str) {
    let since = out
        .iter()
        .rposition(|a| matches!(a, Action::RemoveManagedRoutes))
        .map_or(0, |i| i + 1);
    let mut i = since;
    while i < out.len() {
        let same = match &out[i] {
            Action::SetHeaderRoute(r) => r.name == name,
            Action::SetMirrorRoute(r) => r.name == name,
            _ => false,
        };
        if same {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

/// A scale of a ReplicaSet created earlier in the decision becomes its initial size.
fn into_create(out: &mut [Action], name: &str, replicas: i32) -> bool {
    let created = out.iter_mut().find_map(|a| match a {
        Action::CreateReplicaSet {
            name: n, replicas, ..
        }
        | Action::CreateBaselineReplicaSet {
            name: n, replicas, ..
        } if n == name => Some(replicas),
        _ => None,
    });
    created.map(|initial| *initial = replicas).is_some()
}

/// Merges a scale of `name` to `replicas` into the earlier scales of it: one that continues
/// the earlier one in the same direction from the observed size replaces it, one to the size
/// an earlier scale asked for is dropped, and one back to the observed size after replaced
/// scales is no write at all. `true` when the scale is still to be pushed.
fn merge_scale(out: &mut Vec<Action>, observed: &Observed, name: &str, replicas: i32) -> bool {
    let scale_of = |a: &Action| match a {
        Action::ScaleReplicaSet { name: n, replicas } if n == name => Some(*replicas),
        _ => None,
    };
    let original = observed
        .replica_sets
        .iter()
        .find(|r| r.name == name)
        .map_or(0, |r| r.desired_replicas);
    let mut replaced = false;
    while let Some(i) = out.iter().rposition(|a| scale_of(a).is_some()) {
        let first = scale_of(&out[i]).unwrap_or(original);
        if first == replicas {
            return false;
        }
        if (first - original).signum() * (replicas - first).signum() < 0 {
            return true;
        }
        out.remove(i);
        replaced = true;
    }
    !(replaced && replicas == original)
}
