//! Tenancy end to end: a Rollout naming an HTTPRoute another Rollout claimed first, a route in
//! another namespace without `--allow-cross-namespace-routing`, and the API server's own
//! `kubernetes` Service each get `InvalidSpec` and an Event naming the problem, and nothing in
//! the cluster changes: no ReplicaSet, the route and the Service as they were. When the first
//! claimant of a Deployment is deleted, the next one proceeds. With the flag, the
//! Rollout routing through the other namespace becomes healthy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use sluice::controller::Settings;
use sluice::controller::embedded::EmbeddedOptions;
use sluice::crd::Rollout;

const STEPS: &str = "        - setWeight: 20\n        - pause: {}\n";

fn invalid_spec(r: &Rollout) -> Option<String> {
    r.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "InvalidSpec" && c.status == "True")
        .map(|c| c.message.clone().unwrap_or_default())
}

/// Waits for `InvalidSpec` with `want` in its message, an Event saying the same, and checks that
/// the Rollout created no ReplicaSet.
async fn refused(h: &Harness, ns: &str, name: &str, want: &str) {
    let r = h
        .wait_rollout(ns, name, "InvalidSpec", |r| invalid_spec(r).is_some())
        .await;
    let message = invalid_spec(&r).unwrap();
    assert!(message.contains(want), "{name}: {message}");
    wait_event(h, ns, "InvalidSpec", want).await;
    let prefix = format!("{name}-");
    let mine: Vec<_> = h
        .replica_sets(ns)
        .await
        .into_iter()
        .filter_map(|rs| rs.metadata.name)
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(mine.is_empty(), "{name} created {mine:?}");
}

fn thief_yaml(name: &str, routing: &str) -> String {
    canary_yaml(name, 2, STEPS).replace(
        "      maxSurge: 1\n",
        &format!("      trafficRouting:\n        gatewayAPI:\n{routing}      maxSurge: 1\n"),
    )
}

/// The HTTPRoute `shop` in `ns`, splitting between the Services of the Rollout `remote`.
async fn remote_route(h: &Harness, ns: &str) {
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "shop"},
        "spec": {"parentRefs": [{"name": "public-gw"}], "rules": [{"backendRefs": [
            {"name": "remote-stable", "port": 80, "weight": 100},
            {"name": "remote-canary", "port": 80, "weight": 0}
        ]}]}
    }))
    .unwrap();
    shop_route_api(h, ns)
        .create(&PostParams::default(), &route)
        .await
        .unwrap();
}

async fn route_spec(h: &Harness, ns: &str) -> Value {
    serde_json::to_value(shop_route_api(h, ns).get("shop").await.unwrap().data["spec"].clone())
        .unwrap()
}

#[tokio::test]
async fn claims_cross_namespace_routes_and_the_api_server_service_are_refused() {
    let h = Harness::start().await;
    install_httproute_crd(&h).await;
    let controller = h.controller();
    let (ns, other) = ("tenants", "elsewhere");
    h.namespace(ns).await;
    h.namespace(other).await;
    create_shop_route(&h, ns).await;
    remote_route(&h, other).await;
    h.apply_yaml(ns, &gateway_canary_yaml(2, STEPS)).await;
    h.first_revision_healthy(ns, "shop").await;
    let before = route_spec(&h, ns).await;

    // Another Rollout naming the route `shop` already routes.
    h.apply_yaml(ns, &thief_yaml("thief", "          httpRoute: shop\n"))
        .await;
    refused(
        &h,
        ns,
        "thief",
        "HTTPRoute \"shop\" is already claimed by Rollout \"shop\"",
    )
    .await;
    // A route in another namespace, without the flag.
    let remote = thief_yaml(
        "remote",
        &format!("          httpRoute: shop\n          namespace: {other}\n"),
    );
    h.apply_yaml(ns, &remote).await;
    refused(
        &h,
        ns,
        "remote",
        "need the controller flag --allow-cross-namespace-routing",
    )
    .await;
    // The API server's Service, as every cluster has it.
    let kubernetes: Service = serde_json::from_value(json!({
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]}
    }))
    .unwrap();
    let services: Api<Service> = Api::namespaced(h.client.clone(), "default");
    services
        .create(&PostParams::default(), &kubernetes)
        .await
        .unwrap();
    let api_yaml = canary_yaml("api", 1, STEPS)
        .replace("stableService: api-stable", "stableService: kubernetes");
    h.apply_yaml("default", &api_yaml).await;
    refused(
        &h,
        "default",
        "api",
        "Service \"kubernetes\" fronts the Kubernetes API server",
    )
    .await;

    assert_eq!(
        route_spec(&h, ns).await,
        before,
        "the claimed route is untouched"
    );
    let untouched = services.get("kubernetes").await.unwrap();
    assert_eq!(
        untouched.spec.unwrap().selector,
        None,
        "no selector written"
    );
    assert!(
        untouched
            .metadata
            .annotations
            .unwrap_or_default()
            .is_empty(),
        "no managed-by annotation"
    );
    controller.stop().await;

    // With the flag, the route in the other namespace is the Rollout's to use.
    let controller = h.controller_with(EmbeddedOptions {
        settings: Settings {
            allow_cross_namespace_routing: true,
            ..Settings::default()
        },
        ..EmbeddedOptions::default()
    });
    let remote_before = route_spec(&h, other).await;
    h.wait_rollout(ns, "remote", "healthy with the flag", |r| {
        invalid_spec(r).is_none() && stable_hash(r).is_some()
    })
    .await;
    assert_eq!(
        route_spec(&h, other).await,
        remote_before,
        "the first revision keeps all traffic on stable"
    );
    controller.stop().await;
}

fn workload_rollout(name: &str) -> String {
    format!(
        "apiVersion: sluice.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: legacy}}
  workloadRef: {{apiVersion: apps/v1, kind: Deployment, name: legacy}}
  strategy:
    canary:
      steps:
        - setWeight: 50
"
    )
}

/// Two Rollouts taking their template from one Deployment: the second waits with InvalidSpec
/// naming the first, and proceeds on its own once the first is deleted.
#[tokio::test]
async fn the_next_claimant_proceeds_once_the_first_is_gone() {
    let h = Harness::start().await;
    let controller = h.controller();
    let ns = "claims";
    h.namespace(ns).await;
    h.apply_yaml(
        ns,
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: legacy}
spec:
  replicas: 2
  selector:
    matchLabels: {app: legacy}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      containers:
        - name: app
          image: example/legacy:1
",
    )
    .await;
    h.apply_yaml(ns, &workload_rollout("first")).await;
    h.first_revision_healthy(ns, "first").await;
    h.apply_yaml(ns, &workload_rollout("second")).await;
    refused(
        &h,
        ns,
        "second",
        r#"Deployment "legacy" is already claimed by Rollout "first""#,
    )
    .await;
    h.delete_rollout(ns, "first").await;
    h.wait_rollout(ns, "second", "healthy once the first is gone", |r| {
        invalid_spec(r).is_none() && stable_hash(r).is_some()
    })
    .await;
    controller.stop().await;
}
