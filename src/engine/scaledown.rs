//! Old ReplicaSets: scale-down deadlines (`scaleDownDelaySeconds`, the abort delay,
//! `scaleDownDelayRevisionLimit`), removal of a deadline when a ReplicaSet becomes new or
//! stable again, `revisionHistoryLimit` clean-up, and the two safety rules every plan passes:
//! the availability gate and "never empty a ReplicaSet that still serves a Service".

use super::model::Action;
use super::plan::{Plan, live};
use super::replicas::{Counts, availability_gate};
use std::collections::BTreeSet;

/// The target of the canary (or preview) after an abort: kept until the stable is fully
/// available, then kept until a deadline `delay` seconds later, then 0. `delay == 0` keeps
/// it up for good.
pub fn abort_scale_down(p: &mut Plan, name: &str, spec: i32, stable_full: bool, delay: i32) -> i32 {
    if !stable_full || delay == 0 {
        return spec;
    }
    let current = p
        .new_rs
        .filter(|rs| rs.name == name)
        .and_then(|rs| rs.scale_down_deadline);
    match current {
        Some(deadline) if deadline <= p.now => 0,
        Some(deadline) => {
            p.timer(deadline);
            spec
        }
        None if spec == 0 => 0,
        None => {
            let deadline = p.after(i64::from(delay));
            p.deadlines.insert(name.to_string(), Some(deadline));
            p.timer(deadline);
            spec
        }
    }
}

/// Plans the ReplicaSets that are neither new nor stable: the stable just demoted gets a
/// deadline `delay` seconds away; one with a deadline waits for it; any other goes to 0.
/// At most `limit` of them stay up while their delay runs, newest first.
pub fn old_replica_sets(p: &mut Plan, delay: i32, limit: Option<i32>) {
    let demoted = p.demoted.clone();
    let mut waiting: Vec<(i64, String)> = Vec::new();
    for rs in p.others() {
        if rs.desired_replicas == 0 {
            p.targets.insert(rs.name.clone(), 0);
            continue;
        }
        let target = match rs.scale_down_deadline {
            Some(deadline) if deadline <= p.now => 0,
            Some(deadline) => {
                p.timer(deadline);
                rs.desired_replicas
            }
            None if delay > 0 && demoted.is_some() && rs.pod_template_hash == demoted => {
                let deadline = p.after(i64::from(delay));
                p.deadlines.insert(rs.name.clone(), Some(deadline));
                p.timer(deadline);
                rs.desired_replicas
            }
            None => 0,
        };
        if target > 0 {
            waiting.push((rs.revision.unwrap_or(0), rs.name.clone()));
        }
        p.targets.insert(rs.name.clone(), target);
    }
    if let Some(limit) = limit {
        waiting.sort_by(|a, b| b.cmp(a));
        let keep = usize::try_from(limit.max(0)).unwrap_or(0);
        for (_, name) in waiting.into_iter().skip(keep) {
            p.targets.insert(name, 0);
        }
    }
}

/// Hashes that must keep pods: what the production Services will select after this
/// decision, the stable, and a canary or baseline that receives weight.
pub fn referenced(p: &Plan, services: &[String]) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for svc in services {
        if let Some(h) = p.planned_selector(svc) {
            set.insert(h);
        }
    }
    if let Some(stable) = &p.status.stable_rs {
        set.insert(stable.clone());
    }
    let weights = p
        .weights
        .clone()
        .or_else(|| p.status.canary.as_ref().and_then(|c| c.weights.clone()));
    if let Some(w) = weights {
        let weighted = std::iter::once(w.canary).chain(w.additional);
        set.extend(
            weighted
                .filter(|d| d.weight > 0)
                .filter_map(|d| d.pod_template_hash),
        );
    }
    set
}

/// Turns the plan's targets into ScaleReplicaSet actions (folding the new ReplicaSet's count
/// into its creation), after the availability gate and the reference guard.
pub fn scale_actions(
    p: &mut Plan,
    max_unavailable: i32,
    services: &[String],
) -> (Vec<Action>, Vec<Action>, Option<i32>) {
    let mut order: Vec<Counts> = p
        .others()
        .iter()
        .map(|rs| Counts {
            name: rs.name.clone(),
            spec: rs.desired_replicas,
            available: rs.available_replicas,
            revision: rs.revision.unwrap_or(0),
        })
        .collect();
    if let Some(rs) = p.new_rs {
        order.push(Counts {
            name: rs.name.clone(),
            spec: rs.desired_replicas,
            available: rs.available_replicas,
            revision: 0,
        });
    }
    if let Some(rs) = p.stable_rs()
        && !order.iter().any(|c| c.name == rs.name)
    {
        order.push(Counts {
            name: rs.name.clone(),
            spec: rs.desired_replicas,
            available: rs.available_replicas,
            revision: 0,
        });
    }
    let mut targets = p.targets.clone();
    availability_gate(p.v.replicas, max_unavailable, &order, &mut targets);
    let keep = referenced(p, services);
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    let mut create = None;
    for (name, target) in targets {
        let Some(rs) = live(p.observed).find(|rs| rs.name == name) else {
            if name == p.new_name {
                create = Some(target.max(0));
            }
            continue;
        };
        let mut target = target.max(0);
        let hash = rs.pod_template_hash.clone().unwrap_or_default();
        if target == 0 && rs.desired_replicas > 0 && p.v.replicas > 0 && keep.contains(&hash) {
            // Still serving: keep one pod until nothing points at it.
            target = 1.min(rs.desired_replicas);
        }
        if target == rs.desired_replicas {
            continue;
        }
        let action = Action::ScaleReplicaSet {
            name: name.clone(),
            replicas: target,
        };
        if target > rs.desired_replicas {
            ups.push(action)
        } else {
            downs.push(action)
        }
    }
    if p.new_rs.is_none() && create.is_none() {
        // Even a halted rollout records its new revision as an empty ReplicaSet.
        create = Some(0);
    }
    (ups, downs, create)
}

/// Deadline annotations to remove: a new or stable ReplicaSet that is not being aborted
/// away serves again (fast rollback), so its old deadline no longer applies.
pub fn clear_stale_deadlines(p: &mut Plan) {
    let mut names = Vec::new();
    if let Some(rs) = p.new_rs
        && rs.scale_down_deadline.is_some()
        && !p.status.abort
    {
        names.push(rs.name.clone());
    }
    if let Some(rs) = p.stable_rs()
        && rs.scale_down_deadline.is_some()
        && !names.contains(&rs.name)
    {
        names.push(rs.name.clone());
    }
    for name in names {
        p.deadlines.entry(name).or_insert(None);
    }
}

/// Fully scaled-down old ReplicaSets beyond `revisionHistoryLimit`, oldest first.
pub fn history_cleanup(p: &Plan, services: &[String]) -> Vec<Action> {
    let keep = referenced(p, services);
    let candidates: Vec<_> = p
        .others()
        .into_iter()
        .filter(|rs| rs.desired_replicas == 0 && rs.replicas == 0)
        .filter(|rs| {
            rs.pod_template_hash
                .as_ref()
                .is_none_or(|h| !keep.contains(h))
        })
        .collect();
    let limit = usize::try_from(p.v.revision_history_limit.max(0)).unwrap_or(0);
    let excess = candidates.len().saturating_sub(limit);
    candidates
        .into_iter()
        .take(excess)
        .map(|rs| Action::DeleteReplicaSet {
            name: rs.name.clone(),
        })
        .collect()
}
