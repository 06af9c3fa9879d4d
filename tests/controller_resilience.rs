//! End-to-end resilience: the controller killed and restarted mid-step, API errors and dropped
//! watches injected by the playground, two replicas under leader election, and the finalizer's
//! clean-up on delete.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use serde_json::json;
use sluice::controller::LeaseSettings;
use sluice::controller::embedded::EmbeddedOptions;
use sluice::crd::RolloutPhase;
use sluice::engine::MANAGED_BY_ANNOTATION;
use std::collections::BTreeMap;
use std::time::Duration;

const TIMED_STEPS: &str = "        - setWeight: 20\n        - pause: {duration: 3s}\n        - setWeight: 60\n        - pause: {}\n";

async fn deployed(h: &Harness, ns: &str, name: &str, steps: &str) -> String {
    h.namespace(ns).await;
    h.apply_yaml(ns, &canary_yaml(name, 3, steps)).await;
    h.first_revision_healthy(ns, name).await
}

/// No step-completed Event appears twice: steps were neither repeated nor skipped.
async fn assert_each_step_completed_once(h: &Harness, ns: &str, steps: usize) {
    wait_event(h, ns, "RolloutStepCompleted", &format!("step {steps}/")).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (reason, note) in events(h, ns).await {
        if reason == "RolloutStepCompleted" {
            *seen.entry(note).or_default() += 1;
        }
    }
    for (note, count) in &seen {
        assert_eq!(*count, 1, "step event repeated: {note} ({seen:?})");
    }
    for i in 1..=steps {
        assert!(
            seen.keys().any(|n| n.contains(&format!("step {i}/"))),
            "step {i} never completed: {seen:?}"
        );
    }
}

#[tokio::test]
async fn killed_mid_step_the_restarted_controller_neither_repeats_nor_skips() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("restart", "web");
    let v1 = deployed(&h, ns, name, TIMED_STEPS).await;
    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "in the timed pause", |r| {
            paused_on_step(r) && step(r) == Some(1) && current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    let pause_started = r.status.as_ref().unwrap().pause_conditions[0]
        .start_time
        .clone();

    controller.kill().await;
    let controller = h.controller();
    // The first reconcile of the new controller keeps the pause and its start time.
    let before = controller.metrics.reconciles();
    eventually("the new controller reconciled", || async {
        controller.metrics.reconciles() > before
    })
    .await;
    let r = h.rollout(ns, name).await;
    if step(&r) == Some(1) {
        assert_eq!(
            r.status.as_ref().unwrap().pause_conditions[0].start_time,
            pause_started,
            "pause start moved on restart"
        );
    }
    let r = h
        .wait_rollout(ns, name, "indefinite pause at step 3", |r| {
            paused_on_step(r) && step(r) == Some(3)
        })
        .await;
    assert_eq!(current_hash(&r).as_deref(), Some(v2.as_str()));

    // Kill again in the indefinite pause, promote while no controller runs.
    controller.kill().await;
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    let controller = h.controller();
    h.wait_rollout(ns, name, "promotion", |r| healthy_at(r, &v2))
        .await;
    assert_each_step_completed_once(&h, ns, 4).await;
    controller.stop().await;
}

#[tokio::test]
async fn api_errors_and_dropped_watches_lose_no_progress() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("faults", "web");
    let v1 = deployed(&h, ns, name, TIMED_STEPS).await;
    let faults = h.playground.faults();
    faults.fail_next(Some("patch"), Some("rollouts/status"), 500, 3);
    faults.fail_next(Some("patch"), Some("replicasets"), 503, 2);
    faults.fail_next(Some("create"), Some("replicasets"), 500, 1);
    h.set_image(ns, name, "example/app:2").await;
    h.wait_rollout(ns, name, "step 1 despite errors", |r| {
        step(r).unwrap_or(0) >= 1 && current_hash(r).is_some_and(|c| c != v1)
    })
    .await;
    h.playground.drop_watches();
    faults.fail_next(Some("patch"), Some("services"), 500, 2);
    let r = h
        .wait_rollout(ns, name, "indefinite pause at step 3", |r| {
            paused_on_step(r) && step(r) == Some(3)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    h.playground.force_gone();
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "promotion after a forced 410", |r| {
        healthy_at(r, &v2)
    })
    .await;
    assert_each_step_completed_once(&h, ns, 4).await;
    controller.stop().await;
}

fn lease(identity: &str) -> EmbeddedOptions {
    let mut lease =
        LeaseSettings::new("sluice-test-lock".into(), "default".into(), identity.into());
    lease.lease_duration = Duration::from_secs(2);
    lease.renew_deadline = Duration::from_millis(1500);
    lease.retry_period = Duration::from_millis(200);
    EmbeddedOptions {
        lease: Some(lease),
        ..EmbeddedOptions::default()
    }
}

#[tokio::test]
async fn two_replicas_with_leader_election_only_the_leader_writes() {
    let h = Harness::start().await;
    let a = h.controller_with(lease("replica-a"));
    let b = h.controller_with(lease("replica-b"));
    eventually("one leader", || async {
        a.leadership.is_leader() || b.leadership.is_leader()
    })
    .await;
    assert!(
        !(a.leadership.is_leader() && b.leadership.is_leader()),
        "two leaders"
    );
    let (leader, follower) = if a.leadership.is_leader() {
        (a, b)
    } else {
        (b, a)
    };

    let (ns, name) = ("leader", "web");
    let v1 = deployed(
        &h,
        ns,
        name,
        "        - setWeight: 20\n        - pause: {}\n",
    )
    .await;
    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "paused at step 1", |r| {
            paused_on_step(r) && current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    assert!(leader.metrics.writes() > 0, "the leader wrote");
    assert_eq!(follower.metrics.writes(), 0, "the follower wrote");

    // The leader dies; the follower takes over once the Lease expires, and finishes the job.
    leader.kill().await;
    eventually("the follower becomes leader", || async {
        follower.leadership.is_leader()
    })
    .await;
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "promotion by the new leader", |r| {
        healthy_at(r, &v2)
    })
    .await;
    assert!(follower.metrics.writes() > 0);
    follower.stop().await;
}

#[tokio::test]
async fn deleting_a_rollout_runs_the_finalizer_and_releases_services() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("finalizer", "web");
    deployed(
        &h,
        ns,
        name,
        "        - setWeight: 20\n        - pause: {}\n",
    )
    .await;
    let r = h.rollout(ns, name).await;
    assert!(
        r.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == "sluice.dev/cleanup")),
        "finalizer added: {:?}",
        r.metadata
    );
    let services: Api<Service> = Api::namespaced(h.client.clone(), ns);
    let stable = services.get("web-stable").await.unwrap();
    assert!(
        stable
            .metadata
            .annotations
            .unwrap()
            .contains_key(MANAGED_BY_ANNOTATION)
    );

    h.delete_rollout(ns, name).await;
    let stable = services.get("web-stable").await.unwrap();
    assert!(
        !stable
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(MANAGED_BY_ANNOTATION),
        "managed-by annotation removed"
    );
    assert_eq!(
        h.service_hash(ns, "web-stable").await,
        None,
        "hash selector removed"
    );
    controller.stop().await;
}

/// A controller that starts while its ReplicaSet list keeps failing decides nothing until it
/// has the ReplicaSets: an empty cache reads as "the stable ReplicaSet is gone", on which the
/// engine promotes the canary (found by the fault campaign, on an aborted update).
#[tokio::test]
async fn a_restarted_controller_decides_nothing_before_its_replica_sets_are_listed() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("unsynced", "web");
    let steps = "        - setWeight: 20\n        - pause: {}\n";
    let v1 = deployed(&h, ns, name, steps).await;
    h.set_image(ns, name, "example/app:2").await;
    h.wait_rollout(ns, name, "paused at step 1", |r| {
        paused_on_step(r) && step(r) == Some(1) && current_hash(r).is_some_and(|c| c != v1)
    })
    .await;

    controller.kill().await;
    let faults = h.playground.faults();
    faults.fail_next(Some("list"), Some("replicasets"), 500, 3);
    let controller = h.controller();
    eventually("the ReplicaSet list failed three times", || async {
        faults.pending() == 0
    })
    .await;
    // Promoted by hand: the controller walks on from the pause, never skips it.
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    let r = h
        .wait_rollout(ns, name, "promoted", |r| {
            stable_hash(r).is_some_and(|s| s != v1) && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await;
    // The pause was completed as a step, not skipped.
    wait_event(&h, ns, "RolloutStepCompleted", "step 2/2").await;
    let seen = events(&h, ns).await;
    assert!(
        !seen.iter().any(|(reason, _)| reason == "SkipSteps"),
        "the restarted controller took the stable ReplicaSet as gone: {seen:?}; {}",
        serde_json::to_string_pretty(&r.status).unwrap()
    );
    controller.stop().await;
}

/// How many times an Event with this reason and note was published in `ns` (Event objects and
/// their series counts).
async fn published(h: &Harness, ns: &str, reason: &str, note: &str) -> i32 {
    use k8s_openapi::api::events::v1::Event;
    Api::<Event>::namespaced(h.client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason) && e.note.as_deref() == Some(note))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum()
}

/// A step whose status write fails is decided again by the retry; its Event is still
/// published once (found by the fault campaign).
#[tokio::test]
async fn a_failed_status_write_does_not_publish_the_step_event_twice() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("event-once", "web");
    let steps = "        - setWeight: 20\n        - pause: {}\n        - setWeight: 60\n        - pause: {}\n";
    let v1 = deployed(&h, ns, name, steps).await;
    h.set_image(ns, name, "example/app:2").await;
    let mut r = h
        .wait_rollout(ns, name, "paused at step 1", |r| {
            paused_on_step(r) && step(r) == Some(1) && current_hash(r).is_some_and(|c| c != v1)
        })
        .await;

    // The controller's next status patch fails; the promotion below is a PUT, not a patch.
    h.playground
        .faults()
        .fail_next(Some("patch"), Some("rollouts/status"), 500, 1);
    r.status.as_mut().unwrap().pause_conditions.clear();
    h.rollouts(ns)
        .replace_status(name, &Default::default(), &r)
        .await
        .unwrap();
    h.wait_rollout(ns, name, "paused at step 3", |r| {
        paused_on_step(r) && step(r) == Some(3)
    })
    .await;
    assert_eq!(
        h.playground.faults().pending(),
        0,
        "the status patch failed"
    );
    let note = "Rollout step 2/4 completed (pause)";
    assert_eq!(published(&h, ns, "RolloutStepCompleted", note).await, 1);
    controller.stop().await;
}
