//! End-to-end traffic-routed canary through the Gateway API: the controller moves an
//! HTTPRoute's backend weights with the steps, back to 100 % stable at promotion, and the
//! finalizer leaves all traffic on stable when the Rollout is deleted; a router that cannot
//! work shows as `TrafficRouting=False` on the status until it can.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use serde_json::json;
use sluice::crd::RolloutPhase;

fn traffic_condition(r: &sluice::crd::Rollout) -> Option<sluice::crd::RolloutCondition> {
    r.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "TrafficRouting")
        .cloned()
}

async fn weights(h: &Harness, ns: &str) -> Vec<(String, i64)> {
    let route = shop_route_api(h, ns).get("shop").await.unwrap();
    route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["weight"].as_i64().unwrap_or(1),
            )
        })
        .collect()
}

fn weight_of(weights: &[(String, i64)], service: &str) -> i64 {
    weights
        .iter()
        .find(|(n, _)| n == service)
        .map_or(-1, |(_, w)| *w)
}

#[tokio::test]
async fn gateway_api_weights_follow_the_steps_and_return_to_stable() {
    let h = Harness::start().await;
    h.install_httproute_crd().await;
    let ns = "traffic";
    h.namespace(ns).await;
    h.create_shop_route(ns).await;

    let yaml = gateway_canary_yaml(4, "        - setWeight: 30\n        - pause: {}\n");
    let controller = h.controller();
    h.apply_yaml(ns, &yaml).await;
    let v1 = h.first_revision_healthy(ns, "shop").await;

    h.set_image(ns, "shop", "example/app:2").await;
    let r = h
        .wait_rollout(ns, "shop", "paused at 30 %", |r| {
            paused_on_step(r) && current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    eventually("HTTPRoute at 70/30", || async {
        let w = weights(&h, ns).await;
        weight_of(&w, "shop-canary") == 30 && weight_of(&w, "shop-stable") == 70
    })
    .await;

    h.patch_status(ns, "shop", json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, "shop", "promotion", |r| healthy_at(r, &v2))
        .await;
    eventually("HTTPRoute back to 100 % stable", || async {
        let w = weights(&h, ns).await;
        weight_of(&w, "shop-canary") == 0 && weight_of(&w, "shop-stable") == 100
    })
    .await;

    h.delete_rollout(ns, "shop").await;
    let w = weights(&h, ns).await;
    assert_eq!(weight_of(&w, "shop-stable"), 100, "{w:?}");
    controller.stop().await;
}

#[tokio::test]
async fn a_missing_route_is_a_traffic_routing_condition_until_it_exists() {
    let h = Harness::start().await;
    h.install_httproute_crd().await;
    let ns = "traffic-missing";
    h.namespace(ns).await;
    let controller = h.controller();
    h.apply_yaml(
        ns,
        &gateway_canary_yaml(4, "        - setWeight: 30\n        - pause: {}\n"),
    )
    .await;
    let r = h
        .wait_rollout(ns, "shop", "TrafficRouting=False", |r| {
            traffic_condition(r).is_some_and(|c| c.status == "False")
        })
        .await;
    let condition = traffic_condition(&r).unwrap();
    let reason = condition.reason.clone().unwrap();
    let message = condition.message.clone().unwrap();
    assert_eq!(reason, "RoutingObjectNotFound", "{condition:?}");
    assert!(
        message.contains("shop"),
        "the message names the route: {condition:?}"
    );
    assert_ne!(phase(&r), Some(RolloutPhase::Healthy), "{r:?}");
    wait_event(&h, ns, &reason, "").await;

    h.create_shop_route(ns).await;
    h.wait_rollout(ns, "shop", "healthy with the condition gone", |r| {
        phase(r) == Some(RolloutPhase::Healthy) && traffic_condition(r).is_none()
    })
    .await;
    h.set_image(ns, "shop", "example/app:2").await;
    let r = h
        .wait_rollout(ns, "shop", "paused at 30 %", paused_on_step)
        .await;
    eventually("HTTPRoute at 70/30", || async {
        let w = weights(&h, ns).await;
        weight_of(&w, "shop-canary") == 30 && weight_of(&w, "shop-stable") == 70
    })
    .await;
    assert!(traffic_condition(&r).is_none(), "{r:?}");
    controller.stop().await;
}
