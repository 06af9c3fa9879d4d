//! `spec.restartAt` (Argo's `kubectl argo rollouts restart`): which pods to evict, and when the
//! restart is complete. Pods created before the restart time are evicted at most
//! `max(maxUnavailable, 1)` unavailable at a time, stable ReplicaSet first, then the current
//! one, then the rest, oldest pod first. `status.restartedAt` and the `RolloutRestarted` Event
//! record a restart once none of those pods is left alive. Pods are not watched (a Pod cache at
//! 10,000 Rollouts costs too much memory), so a restart under way is polled, as Argo does.

use super::model::{Action, EventKind, ObservedPod};
use super::plan::Plan;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// How often a restart under way is looked at again.
const POLL_SECONDS: i64 = 30;

/// A restart's progress this pass: the evictions to make, and whether it is under way.
#[derive(Debug, Default, PartialEq)]
pub struct Restarting {
    /// `Action::EvictPod` for each pod to evict now, in order.
    pub evictions: Vec<Action>,
    /// Old pods remain (or the controller has not counted them yet).
    pub under_way: bool,
}

/// Plan this pass of a due restart. `max_unavailable` is the strategy's.
pub fn plan(p: &mut Plan, max_unavailable: i32) -> Restarting {
    let Some(at) = p.v.restart_at else {
        return Restarting::default();
    };
    if at > p.now {
        p.timer(at);
        return Restarting::default();
    }
    if p.status.restarted_at.as_ref().is_some_and(|t| t.0 >= at) {
        return Restarting::default();
    }
    let Some(pods) = p.observed.restart_pods.as_deref() else {
        // Not counted (the controller lists pods only while a restart is due): look again.
        let next = p.after(POLL_SECONDS);
        p.timer(next);
        return Restarting {
            evictions: Vec::new(),
            under_way: true,
        };
    };
    let old = |pod: &&ObservedPod| pod.created_at.is_some_and(|t| t < at);
    // An eviction asked for in this decision is not done until a later look confirms it.
    if !pods
        .iter()
        .filter(old)
        .any(|pod| pod.evicted || !pod.deleting)
    {
        p.status.restarted_at = Some(Time(at));
        p.event(
            EventKind::Normal,
            "RolloutRestarted",
            "All pods created before spec.restartAt were restarted",
        );
        return Restarting::default();
    }
    let next = p.after(POLL_SECONDS);
    p.timer(next);
    let mut candidates: Vec<&ObservedPod> =
        pods.iter().filter(old).filter(|pod| alive(pod)).collect();
    candidates.sort_by_key(|pod| (rank(p, pod), pod.created_at));
    Restarting {
        evictions: candidates
            .into_iter()
            .take(budget(p, pods, max_unavailable))
            .map(|pod| Action::EvictPod {
                name: pod.name.clone(),
            })
            .collect(),
        under_way: true,
    }
}

/// Neither deleting nor evicted.
fn alive(pod: &ObservedPod) -> bool {
    !pod.deleting && !pod.evicted
}

/// Order of ReplicaSets: stable, current, then the rest (Argo's order).
fn rank(p: &Plan, pod: &ObservedPod) -> u8 {
    let hash = pod.pod_template_hash.as_deref();
    if hash.is_some() && hash == p.prev.stable_rs.as_deref() {
        0
    } else if hash.is_some() && hash == p.prev.current_pod_hash.as_deref() {
        1
    } else {
        2
    }
}

/// How many pods may be evicted now: `max(maxUnavailable, 1)` less the pods unavailable as
/// observed (desired replicas of every ReplicaSet less the Ready pods not being deleted) and
/// less the evictions this decision already made (each takes one pod away, Ready or not).
fn budget(p: &Plan, pods: &[ObservedPod], max_unavailable: i32) -> usize {
    let desired: i32 = p
        .observed
        .replica_sets
        .iter()
        .map(|rs| rs.desired_replicas)
        .sum();
    let count = |f: fn(&ObservedPod) -> bool| {
        i32::try_from(pods.iter().filter(|pod| f(pod)).count()).unwrap_or(i32::MAX)
    };
    let ready = count(|pod| pod.ready && !pod.deleting);
    let evicted = count(|pod| pod.evicted);
    let unavailable = (desired - ready).max(0);
    usize::try_from(max_unavailable.max(1) - unavailable - evicted).unwrap_or(0)
}
