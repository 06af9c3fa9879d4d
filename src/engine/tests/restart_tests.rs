//! `spec.restartAt`: which pods the engine evicts (old pods only, stable ReplicaSet first,
//! oldest first, within `max(maxUnavailable, 1)` unavailable), and when it records the restart
//! (never in the decision that evicts the last old pod).

use super::fixtures::*;
use crate::crd::*;
use crate::engine::*;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use std::time::Duration;

fn at(secs: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

/// A healthy `web` of 4 pods with `maxUnavailable` and a restart due 60 s after `t0`, and the
/// clock at the restart time.
fn restarting(max_unavailable: i32) -> World {
    let r = Rollout::test()
        .replicas(4)
        .with_canary(|c| c.max_unavailable = Some(IntOrString::Int(max_unavailable)))
        .with_spec(|s| s.restart_at = Some(Time(at(60))))
        .build();
    let mut w = World::healthy(r);
    w.advance(60);
    w
}

fn pod(name: &str, image: &str, created: i64, ready: bool) -> ObservedPod {
    ObservedPod {
        name: name.into(),
        pod_template_hash: Some(hash_of(image)),
        created_at: Some(at(created)),
        ready,
        deleting: false,
        evicted: false,
    }
}

fn evicted(d: &Decision) -> Vec<&str> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::EvictPod { name } => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn waits_for_the_restart_time_then_polls_until_pods_are_counted() {
    let r = Rollout::test()
        .with_spec(|s| s.restart_at = Some(Time(at(60))))
        .build();
    let mut w = World::healthy(r);
    assert_eq!(w.last.requeue_after, Some(Duration::from_secs(60)));
    w.advance(60);
    let d = w.step().clone();
    assert!(evicted(&d).is_empty(), "nothing counted, nothing evicted");
    assert_eq!(d.status.message.as_deref(), Some("rollout is restarting"));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
    assert_eq!(d.status.restarted_at, None);
}

#[test]
fn evicts_old_pods_oldest_first_within_the_budget() {
    let mut w = restarting(2);
    w.observed.restart_pods = Some(vec![
        pod("b", "nginx:1", -20, true),
        pod("a", "nginx:1", -30, true),
        pod("new", "nginx:1", 61, true),
        pod("c", "nginx:1", -10, true),
    ]);
    let d = w.step().clone();
    assert_eq!(evicted(&d), ["a", "b"], "{}", brief_actions(&d.actions));
    assert_eq!(d.status.restarted_at, None);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
}

#[test]
fn the_stable_replica_set_goes_before_other_revisions() {
    let mut w = restarting(3);
    w.observed.restart_pods = Some(vec![
        pod("old-rev", "nginx:0", -100, true),
        pod("stable-2", "nginx:1", -10, true),
        pod("stable-1", "nginx:1", -20, true),
        pod("new", "nginx:1", 61, true),
    ]);
    let d = w.step().clone();
    assert_eq!(evicted(&d), ["stable-1", "stable-2", "old-rev"]);
}

#[test]
fn unavailable_pods_use_up_the_budget() {
    let mut w = restarting(1);
    w.observed.restart_pods = Some(vec![
        pod("a", "nginx:1", -30, false),
        pod("b", "nginx:1", -20, true),
        pod("c", "nginx:1", -10, true),
        pod("d", "nginx:1", -5, true),
    ]);
    let d = w.step().clone();
    assert!(evicted(&d).is_empty(), "{}", brief_actions(&d.actions));
    assert_eq!(d.status.message.as_deref(), Some("rollout is restarting"));
}

#[test]
fn zero_max_unavailable_still_evicts_one_at_a_time() {
    let mut w = restarting(0);
    w.observed.restart_pods = Some(vec![
        pod("a", "nginx:1", -30, true),
        pod("b", "nginx:1", -20, true),
        pod("c", "nginx:1", -10, true),
        pod("d", "nginx:1", -5, true),
    ]);
    let d = w.step().clone();
    assert_eq!(evicted(&d), ["a"]);
}

#[test]
fn the_decision_that_evicts_the_last_old_pod_does_not_record_the_restart() {
    let mut w = restarting(1);
    let mut pods = vec![
        pod("new-1", "nginx:1", 61, true),
        pod("new-2", "nginx:1", 62, true),
        pod("new-3", "nginx:1", 63, true),
        pod("last", "nginx:1", -1, true),
    ];
    w.observed.restart_pods = Some(pods.clone());
    let d = w.step().clone();
    assert_eq!(evicted(&d), ["last"]);
    assert_eq!(
        d.status.restarted_at, None,
        "the eviction may yet be refused"
    );
    assert!(!d.events.iter().any(|e| e.reason == "RolloutRestarted"));

    // The next look finds it terminating: the restart is recorded once.
    pods[3].deleting = true;
    w.observed.restart_pods = Some(pods);
    w.advance(30);
    let d = w.step().clone();
    assert!(evicted(&d).is_empty());
    assert_eq!(d.status.restarted_at.as_ref().map(|t| t.0), Some(at(60)));
    assert_eq!(d.status.phase, Some(RolloutPhase::Healthy));
    assert!(d.events.iter().any(|e| e.reason == "RolloutRestarted"));
    let again = w.step().clone();
    assert!(again.actions.is_empty() && again.events.is_empty());
}

#[test]
fn no_pods_at_all_completes_the_restart() {
    let mut w = restarting(1);
    w.observed.restart_pods = Some(Vec::new());
    let d = w.step().clone();
    assert_eq!(d.status.restarted_at.as_ref().map(|t| t.0), Some(at(60)));
}

proptest! {
    /// Whatever the pods, the engine evicts only live pods created before `restartAt`, never
    /// more than the unavailability budget allows, stable ReplicaSet first and oldest first
    /// within it, and deciding again on the world its evictions produce evicts nothing more.
    #[test]
    fn evictions_respect_age_budget_and_order(
        max_unavailable in 0..4i32,
        pods in prop::collection::vec((0..3usize, -50..50i64, any::<bool>(), any::<bool>()), 0..10),
    ) {
        let images = ["nginx:1", "nginx:0", "nginx:9"];
        let mut w = restarting(max_unavailable);
        let observed: Vec<ObservedPod> = pods
            .iter()
            .enumerate()
            .map(|(i, (image, created, ready, deleting))| ObservedPod {
                deleting: *deleting,
                ..pod(&format!("p{i}"), images[*image], *created + 60, *ready)
            })
            .collect();
        w.observed.restart_pods = Some(observed.clone());
        let d = w.step().clone();
        let names = evicted(&d);
        let find = |n: &str| observed.iter().find(|p| p.name == n).unwrap();
        for n in &names {
            let p = find(n);
            prop_assert!(!p.deleting && p.created_at.unwrap() < at(60), "{p:?}");
        }
        let ready = observed.iter().filter(|p| p.ready && !p.deleting).count() as i32;
        // Every eviction takes one unit of the budget, Ready pod or not.
        let budget = (max_unavailable.max(1) - (4 - ready).max(0)).max(0) as usize;
        prop_assert!(names.len() <= budget, "{names:?} over budget {budget}");
        let key = |p: &ObservedPod| (p.pod_template_hash != Some(hash_of("nginx:1")), p.created_at);
        prop_assert!(names.windows(2).all(|w| key(find(w[0])) <= key(find(w[1]))));
        let again = decide(&w.rollout, &w.observed, w.now);
        prop_assert!(evicted(&again).is_empty(), "evicted twice: {}", brief_actions(&again.actions));
    }
}
