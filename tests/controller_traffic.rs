//! End-to-end traffic-routed canary through the Gateway API: the controller moves an
//! HTTPRoute's backend weights with the steps, back to 100 % stable at promotion, and the
//! finalizer leaves all traffic on stable when the Rollout is deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use sluice::crd::RolloutPhase;

const HTTPROUTE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {plural: httproutes, singular: httproute, kind: HTTPRoute, listKind: HTTPRouteList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

fn route_api(h: &Harness, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(h.client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

async fn weights(h: &Harness, ns: &str) -> Vec<(String, i64)> {
    let route = route_api(h, ns).get("shop").await.unwrap();
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
    let crd: CustomResourceDefinition = serde_yaml::from_str(HTTPROUTE_CRD).unwrap();
    Api::<CustomResourceDefinition>::all(h.client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    let ns = "traffic";
    h.namespace(ns).await;
    let route: Value = serde_yaml::from_str(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: public-gw}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs:
        - {name: shop-stable, port: 80, weight: 100}
        - {name: shop-canary, port: 80, weight: 0}
"#,
    )
    .unwrap();
    let route: DynamicObject = serde_json::from_value(route).unwrap();
    route_api(&h, ns)
        .create(&PostParams::default(), &route)
        .await
        .unwrap();

    let yaml = canary_yaml("shop", 4, "        - setWeight: 30\n        - pause: {}\n").replace(
        "      maxSurge: 1\n",
        "      trafficRouting:\n        gatewayAPI:\n          httpRoute: shop\n      maxSurge: 1\n",
    );
    let controller = h.controller();
    h.apply_yaml(ns, &yaml).await;
    let r = h
        .wait_rollout(ns, "shop", "first revision healthy", |r| {
            phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some()
        })
        .await;
    let v1 = stable_hash(&r).unwrap();

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

    h.rollouts(ns)
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    eventually("rollout deleted after clean-up", || async {
        h.rollouts(ns).get_opt("shop").await.unwrap().is_none()
    })
    .await;
    let w = weights(&h, ns).await;
    assert_eq!(weight_of(&w, "shop-stable"), 100, "{w:?}");
    controller.stop().await;
}
