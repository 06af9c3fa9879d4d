//! Races between a person's writes and the controller's (issue #15): every status write is
//! guarded by the resourceVersion it was decided from, so a person's abort that lands while the
//! controller's write of a promotion is in flight always wins: the Rollout ends aborted, with
//! `abortedAt`, the canary scaled down and all traffic on stable. The playground's request
//! holds park the controller's write until the abort has landed, so every iteration is the
//! race, deterministically.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use sluice::crd::{FIELD_MANAGER, POD_TEMPLATE_HASH_LABEL, Rollout, RolloutPhase};
use sluice::engine::SCALE_DOWN_DEADLINE_ANNOTATION;
use sluice::playground::HoldFilter;
use sluice::plugin::context::Ctx;

const ITERATIONS: usize = 8;

/// One weight step and a pause for a person: promoting past the pause completes the update.
const STEPS: &str = "        - setWeight: 50\n        - pause: {}\n";

fn racing_yaml() -> String {
    // The canary goes down a second after the abort, so each iteration can see it go.
    gateway_canary_yaml(2, STEPS).replace(
        "      maxSurge: 1\n",
        "      abortScaleDownDelaySeconds: 1\n      maxSurge: 1\n",
    )
}

fn person(h: &Harness, ns: &str) -> Ctx {
    Ctx {
        client: h.client.clone(),
        namespace: ns.into(),
        all_namespaces: false,
        output: None,
        color: false,
    }
}

/// The controller's next status write that names `stableRS`: the promotion.
fn promotion_write() -> HoldFilter {
    HoldFilter {
        verb: "patch".into(),
        resource: "rollouts/status".into(),
        field_manager: Some(FIELD_MANAGER.into()),
        body_contains: Some("\"stableRS\"".into()),
    }
}

async fn route_weights(h: &Harness, ns: &str) -> (i64, i64) {
    let route = shop_route_api(h, ns).get("shop").await.unwrap();
    let refs = route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .clone();
    let weight = |service: &str| {
        refs.iter()
            .find(|b| b["name"] == service)
            .and_then(|b| b["weight"].as_i64())
            .unwrap_or(-1)
    };
    (weight("shop-stable"), weight("shop-canary"))
}

async fn replica_set(h: &Harness, ns: &str, hash: &str) -> ReplicaSet {
    h.replica_sets(ns)
        .await
        .into_iter()
        .find(|rs| rs.labels().get(POD_TEMPLATE_HASH_LABEL).map(String::as_str) == Some(hash))
        .unwrap_or_else(|| panic!("no ReplicaSet for {hash}"))
}

fn aborted(r: &Rollout, stable: &str) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.abort
            && s.aborted_at.is_some()
            && s.phase == Some(RolloutPhase::Degraded)
            && s.stable_rs.as_deref() == Some(stable)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_racing_the_promotion_always_wins() {
    let h = Harness::start().await;
    h.install_httproute_crd().await;
    let ns = "races";
    h.namespace(ns).await;
    h.create_shop_route(ns).await;
    let controller = h.controller();
    h.apply_yaml(ns, &racing_yaml()).await;
    let stable = h.first_revision_healthy(ns, "shop").await;
    let ctx = person(&h, ns);

    for i in 0..ITERATIONS {
        h.set_image(ns, "shop", &format!("example/app:race-{i}"))
            .await;
        let r = h
            .wait_rollout(ns, "shop", "paused on the last step", |r| {
                paused_on_step(r)
                    && step(r) == Some(1)
                    && current_hash(r).is_some_and(|c| c != stable)
            })
            .await;
        let canary = current_hash(&r).unwrap();

        let mut hold = h.playground.holds().hold_next(promotion_write());
        // A person promotes past the pause; the controller decides the promotion and its
        // status write is parked...
        h.patch_status(ns, "shop", json!({"pauseConditions": null}))
            .await;
        assert!(hold.arrived().await, "iteration {i}: no promotion write");
        // ...while another person aborts, as `kubectl sluice abort` does.
        sluice::plugin::abort::abort(&ctx, "shop")
            .await
            .unwrap_or_else(|e| panic!("iteration {i}: abort refused: {e:#}"));
        hold.release();

        let r = h
            .wait_rollout(ns, "shop", "the abort wins", |r| aborted(r, &stable))
            .await;
        assert_eq!(
            current_hash(&r).as_deref(),
            Some(canary.as_str()),
            "iteration {i}: {:?}",
            r.status
        );
        eventually(
            &format!("iteration {i}: traffic back on stable"),
            || async {
                route_weights(&h, ns).await == (100, 0)
                    && h.service_hash(ns, "shop-stable").await.as_deref() == Some(stable.as_str())
                    && h.service_hash(ns, "shop-canary").await.as_deref() == Some(stable.as_str())
            },
        )
        .await;
        eventually(&format!("iteration {i}: canary scaled down"), || async {
            h.rs_replicas(ns, &canary).await == 0
        })
        .await;
        // The stable keeps its pods: the promotion that lost did not leave it a deadline.
        let rs = replica_set(&h, ns, &stable).await;
        assert_eq!(
            rs.spec.as_ref().and_then(|s| s.replicas),
            Some(2),
            "iteration {i}: {rs:?}"
        );
        assert!(
            !rs.annotations()
                .contains_key(SCALE_DOWN_DEADLINE_ANNOTATION),
            "iteration {i}: the stable ReplicaSet is set to go down: {:?}",
            rs.annotations()
        );
        let after = h.rollout(ns, "shop").await;
        assert!(
            aborted(&after, &stable),
            "iteration {i}: {:?}",
            after.status
        );
    }
    h.delete_rollout(ns, "shop").await;
    controller.stop().await;
}

#[tokio::test]
async fn a_status_patch_from_an_older_version_is_refused() {
    let h = Harness::start().await;
    let ns = "stale";
    h.namespace(ns).await;
    h.apply_yaml(ns, &canary_yaml("web", 1, STEPS)).await;
    let api: Api<Rollout> = h.rollouts(ns);
    let read = api.get("web").await.unwrap();
    let old = read.resource_version().unwrap();
    h.patch_status(ns, "web", json!({"abort": true})).await;

    let stale = json!({
        "metadata": {"resourceVersion": old},
        "status": {"currentStepIndex": 1},
    });
    let refused = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(stale))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{refused:?}"
    );
    let now = api.get("web").await.unwrap();
    let status = now.status.clone().unwrap_or_default();
    assert!(
        status.abort && status.current_step_index.is_none(),
        "{status:?}"
    );

    let fresh = json!({
        "metadata": {"resourceVersion": now.resource_version()},
        "status": {"currentStepIndex": 1},
    });
    let written = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(fresh))
        .await
        .unwrap();
    let status = written.status.unwrap_or_default();
    assert!(
        status.abort && status.current_step_index == Some(1),
        "{status:?}"
    );
    // No controller runs here, so no finalizer holds the delete.
    api.delete("web", &DeleteParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_is_decided_again_on_the_rollout_it_lands_on() {
    let h = Harness::start().await;
    let ns = "promote-race";
    h.namespace(ns).await;
    let steps = "        - setWeight: 20\n        - setWeight: 40\n        - setWeight: 60\n";
    h.apply_yaml(ns, &canary_yaml("web", 1, steps)).await;
    // Mid-update on the first step, not paused (no controller runs: nothing else writes).
    h.patch_status(
        ns,
        "web",
        json!({"currentPodHash": "new", "stableRS": "old", "currentStepIndex": 0}),
    )
    .await;

    // The person's promote ("skip the current step") is parked after deciding on step 0...
    let mut hold = h.playground.holds().hold_next(HoldFilter {
        verb: "patch".into(),
        resource: "rollouts/status".into(),
        field_manager: Some(sluice::plugin::steer::FIELD_MANAGER.into()),
        body_contains: Some("currentStepIndex".into()),
    });
    let ctx = person(&h, ns);
    let promote =
        tokio::spawn(async move { sluice::plugin::promote::promote(&ctx, "web", false).await });
    assert!(hold.arrived().await, "no promote write");
    // ...while the step completes on its own (as the controller would write it).
    h.patch_status(ns, "web", json!({"currentStepIndex": 1}))
        .await;
    hold.release();

    let done = promote.await.unwrap().unwrap();
    let status = done.rollout.status.unwrap_or_default();
    // Decided again on step 1, the promote skips step 1; unguarded, it would have written
    // step 1 over step 1 and skipped nothing.
    assert_eq!(status.current_step_index, Some(2), "{status:?}");
    let api = h.rollouts(ns);
    api.delete("web", &DeleteParams::default()).await.unwrap();
}
