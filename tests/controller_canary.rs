//! End-to-end canary scenarios: the real controller against the playground API server through
//! the real `kube` client, one namespace per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use serde_json::json;
use sluice::crd::RolloutPhase;

const STEPS: &str = "        - setWeight: 20\n        - pause: {}\n        - setWeight: 50\n        - pause: {duration: 1s}\n";

/// Deploy, wait for the first revision to be Healthy, return its hash.
async fn deployed(h: &Harness, ns: &str, name: &str, replicas: i32) -> String {
    h.namespace(ns).await;
    h.apply_yaml(ns, &canary_yaml(name, replicas, STEPS)).await;
    h.first_revision_healthy(ns, name).await
}

#[tokio::test]
async fn canary_with_pauses_reaches_promotion_and_then_writes_nothing() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("canary-pauses", "web");
    let v1 = deployed(&h, ns, name, 5).await;
    assert_eq!(
        h.service_hash(ns, "web-stable").await.as_deref(),
        Some(v1.as_str())
    );

    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "indefinite pause at step 1", |r| {
            paused_on_step(r) && step(r) == Some(1) && current_hash(r).as_deref() != Some(&v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    assert_eq!(stable_hash(&r).as_deref(), Some(v1.as_str()), "{r:?}");
    assert_eq!(
        h.service_hash(ns, "web-canary").await.as_deref(),
        Some(v2.as_str())
    );
    assert_eq!(
        h.service_hash(ns, "web-stable").await.as_deref(),
        Some(v1.as_str())
    );
    assert!(
        h.rs_replicas(ns, &v2).await >= 1,
        "canary ReplicaSet scaled up"
    );

    // Promote: clear the pause conditions, as `kubectl sluice promote` does.
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    let r = h
        .wait_rollout(ns, name, "promotion to v2", |r| healthy_at(r, &v2))
        .await;
    assert_eq!(step(&r), Some(4));
    assert_eq!(
        h.service_hash(ns, "web-stable").await.as_deref(),
        Some(v2.as_str())
    );
    h.wait_rollout(ns, name, "old ReplicaSet scaled down", |_| true)
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while h.rs_replicas(ns, &v1).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "v1 ReplicaSet never scaled to 0"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A reconcile with nothing to do writes nothing. Touch an annotation to force one.
    let writes = controller.metrics.writes();
    let before = controller.metrics.reconciles();
    h.patch_spec(
        ns,
        name,
        json!({"metadata": {"annotations": {"touched": "yes"}}}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while controller.metrics.reconciles() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the touch did not trigger a reconcile"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        controller.metrics.writes(),
        writes,
        "a no-op reconcile wrote"
    );
    controller.stop().await;
}

/// Wait for the rollout of a new image to stop at the indefinite pause; returns its hash.
async fn paused_at_first_pause(
    h: &Harness,
    ns: &str,
    name: &str,
    image: &str,
    stable: &str,
) -> String {
    let before = current_hash(&h.rollout(ns, name).await);
    h.set_image(ns, name, image).await;
    let r = h
        .wait_rollout(ns, name, "indefinite pause at step 1", |r| {
            paused_on_step(r)
                && step(r) == Some(1)
                && current_hash(r).is_some_and(|c| c != stable)
                && current_hash(r) != before
        })
        .await;
    current_hash(&r).unwrap()
}

#[tokio::test]
async fn indefinite_pause_holds_until_promoted_by_status_patch() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("indefinite-pause", "web");
    let v1 = deployed(&h, ns, name, 3).await;
    let v2 = paused_at_first_pause(&h, ns, name, "example/app:2", &v1).await;

    // Force reconciles while paused: the rollout stays on step 1.
    let before = controller.metrics.reconciles();
    h.patch_spec(
        ns,
        name,
        json!({"metadata": {"annotations": {"poke": "1"}}}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while controller.metrics.reconciles() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconcile after poke"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = h.rollout(ns, name).await;
    assert!(
        paused_on_step(&r) && step(&r) == Some(1),
        "pause did not hold: {:?}",
        r.status
    );
    assert_eq!(phase(&r), Some(RolloutPhase::Paused));

    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "step 3 (timed pause) reached", |r| {
        step(r).unwrap_or(0) >= 3
    })
    .await;
    h.wait_rollout(ns, name, "promotion to v2", |r| healthy_at(r, &v2))
        .await;
    controller.stop().await;
}

#[tokio::test]
async fn promote_full_skips_remaining_steps() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("promote-full", "web");
    let v1 = deployed(&h, ns, name, 3).await;
    let v2 = paused_at_first_pause(&h, ns, name, "example/app:2", &v1).await;
    h.patch_status(ns, name, json!({"promoteFull": true})).await;
    let r = h
        .wait_rollout(ns, name, "full promotion", |r| healthy_at(r, &v2))
        .await;
    assert!(
        !r.status.as_ref().unwrap().promote_full,
        "promoteFull cleared after promotion"
    );
    assert_eq!(
        h.service_hash(ns, "web-stable").await.as_deref(),
        Some(v2.as_str())
    );
    controller.stop().await;
}

#[tokio::test]
async fn abort_returns_to_stable_and_retry_resumes() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("abort-retry", "web");
    let v1 = deployed(&h, ns, name, 3).await;
    let v2 = paused_at_first_pause(&h, ns, name, "example/app:2", &v1).await;

    h.patch_status(ns, name, json!({"abort": true})).await;
    let r = h
        .wait_rollout(ns, name, "aborted and degraded", |r| {
            phase(r) == Some(RolloutPhase::Degraded) && r.status.as_ref().unwrap().abort
        })
        .await;
    assert_eq!(stable_hash(&r).as_deref(), Some(v1.as_str()));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while h.service_hash(ns, "web-canary").await.as_deref() != Some(v1.as_str())
        || h.rs_replicas(ns, &v2).await != 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "after abort the canary Service must select stable and the canary scale to 0"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.service_hash(ns, "web-stable").await.as_deref(),
        Some(v1.as_str())
    );

    h.patch_status(ns, name, json!({"abort": false})).await;
    h.wait_rollout(ns, name, "retry reaches the pause again", |r| {
        paused_on_step(r) && step(r) == Some(1) && !r.status.as_ref().unwrap().abort
    })
    .await;
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "promotion after retry", |r| healthy_at(r, &v2))
        .await;
    controller.stop().await;
}

#[tokio::test]
async fn new_revision_mid_rollout_restarts_steps_and_drops_the_middle_one() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("new-revision", "web");
    let v1 = deployed(&h, ns, name, 3).await;
    let v2 = paused_at_first_pause(&h, ns, name, "example/app:2", &v1).await;
    let v3 = paused_at_first_pause(&h, ns, name, "example/app:3", &v1).await;
    assert_ne!(v2, v3);
    let r = h.rollout(ns, name).await;
    assert_eq!(
        stable_hash(&r).as_deref(),
        Some(v1.as_str()),
        "stable stays v1"
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while h.rs_replicas(ns, &v2).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "v2 never scaled down"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.service_hash(ns, "web-canary").await.as_deref(),
        Some(v3.as_str())
    );
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "promotion to v3", |r| healthy_at(r, &v3))
        .await;
    controller.stop().await;
}

#[tokio::test]
async fn rollback_to_stable_skips_the_steps() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("rollback-stable", "web");
    let v1 = deployed(&h, ns, name, 3).await;
    let _v2 = paused_at_first_pause(&h, ns, name, "example/app:2", &v1).await;
    h.set_image(ns, name, "example/app:1").await;
    let r = h
        .wait_rollout(ns, name, "back to v1 without pausing", |r| {
            healthy_at(r, &v1)
        })
        .await;
    assert!(r.status.as_ref().unwrap().pause_conditions.is_empty());
    controller.stop().await;
}
