//! End-to-end blue/green scenarios: manual promotion and autoPromotionSeconds, with the
//! active/preview Service switches and the delayed scale-down of the old stack.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use serde_json::json;
use sluice::crd::PauseReason;

async fn deployed(h: &Harness, ns: &str, name: &str, extra: &str) -> String {
    h.namespace(ns).await;
    h.apply_yaml(ns, &bluegreen_yaml(name, 3, extra)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    let active = format!("{name}-active");
    eventually("active selects v1", || async {
        h.service_hash(ns, &active).await.as_deref() == Some(v1.as_str())
    })
    .await;
    v1
}

#[tokio::test]
async fn manual_promotion_switches_active_and_scales_down_the_old_stack() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("bg-manual", "shop");
    let extra = "      autoPromotionEnabled: false\n      scaleDownDelaySeconds: 1\n";
    let v1 = deployed(&h, ns, name, extra).await;

    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "paused for promotion", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.pause_conditions
                    .iter()
                    .any(|c| c.reason == PauseReason::BlueGreenPause)
            })
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        h.service_hash(ns, "shop-preview").await.as_deref(),
        Some(v2.as_str())
    );
    assert_eq!(
        h.service_hash(ns, "shop-active").await.as_deref(),
        Some(v1.as_str())
    );

    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "promotion to v2", |r| healthy_at(r, &v2))
        .await;
    assert_eq!(
        h.service_hash(ns, "shop-active").await.as_deref(),
        Some(v2.as_str())
    );
    eventually("old stack scaled down after the delay", || async {
        h.rs_replicas(ns, &v1).await == 0
    })
    .await;
    controller.stop().await;
}

#[tokio::test]
async fn auto_promotion_seconds_promotes_without_a_person() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("bg-auto", "shop");
    let extra = "      autoPromotionEnabled: true\n      autoPromotionSeconds: 1\n      scaleDownDelaySeconds: 1\n";
    let v1 = deployed(&h, ns, name, extra).await;
    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "new revision observed", |r| {
            current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    h.wait_rollout(ns, name, "automatic promotion", |r| healthy_at(r, &v2))
        .await;
    assert_eq!(
        h.service_hash(ns, "shop-active").await.as_deref(),
        Some(v2.as_str())
    );
    controller.stop().await;
}
