//! The routers against a real API server (the embedded playground) through a real
//! `kube::Client`: the upstream CRDs are installed, routing objects created, the routers called
//! through the `TrafficRouter` trait, and the objects read back with `kubectl` and asserted.
//! Also: conflicts are retried, no-op calls write nothing, and every example under
//! `examples/traffic/` is accepted by `kubectl apply`.

#![allow(clippy::unwrap_used)] // Test helpers and fixtures panic on bad input by design.

mod kubectl_support;
mod traffic_common;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kubectl_support::Kubectl;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice::crd::{
    HeaderRoutingMatch, Rollout, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions, SimulationOptions};
use sluice::traffic::{RouteContext, TrafficRouter, restore_stable, routers_for};
use std::sync::Arc;
use std::time::Duration;
use traffic_common::{backend_weights, pairs, rollout, upstream_dir, weights, yaml};

const NS: &str = "apps";

async fn start() -> PlaygroundHandle {
    let simulation = SimulationOptions {
        deployments: false,
        replicasets: false,
        pods: false,
        endpoints: false,
        routing: true,
        ..SimulationOptions::default()
    };
    let pg = Playground::start(PlaygroundOptions {
        simulation,
        ..PlaygroundOptions::default()
    })
    .await
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(pg.client());
    let mut all: Vec<CustomResourceDefinition> = sluice::crd::crds();
    for file in [
        "gateway-api-httproute.yaml",
        "gateway-api-grpcroute.yaml",
        "istio-virtualservice.yaml",
        "istio-destinationrule.yaml",
        "smi-trafficsplit-linkerd-smi.yaml",
        "traefik-traefikservice.yaml",
    ] {
        let text = std::fs::read_to_string(upstream_dir().join(file)).unwrap_or_else(|e| {
            panic!(
                "{file}: {e}; the shared folder shared/upstream/crds must be beside the repository"
            )
        });
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            if v.get("kind") == Some(&json!("CustomResourceDefinition")) {
                all.push(serde_json::from_value(v).unwrap());
            }
        }
    }
    for crd in all {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(pg.client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .unwrap();
    pg
}

async fn kubectl(pg: &PlaygroundHandle, args: &[&str], stdin: Option<&str>) -> String {
    Kubectl::new(pg.kubeconfig_path()).ok(args, stdin).await
}

async fn get_json(pg: &PlaygroundHandle, resource: &str, name: &str) -> Value {
    serde_json::from_str(
        &kubectl(
            pg,
            &[
                "get",
                resource,
                name,
                "-n",
                NS,
                "-o",
                "json",
                "--show-managed-fields",
            ],
            None,
        )
        .await,
    )
    .unwrap()
}

async fn create(pg: &PlaygroundHandle, object: Value) {
    let api_version = object["apiVersion"].as_str().unwrap().to_owned();
    let kind = object["kind"].as_str().unwrap().to_owned();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let plural = format!("{}s", kind.to_lowercase())
        .replace("ys", "ies")
        .replace("sss", "sses");
    let ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(group, version, &kind),
        &plural,
    );
    let api: Api<DynamicObject> = Api::namespaced_with(pg.client(), NS, &ar);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .unwrap();
}

/// Creates the Rollout so owner references carry its real uid; returns the route context.
async fn create_rollout(pg: &PlaygroundHandle, routing: &str) -> RouteContext {
    let mut r = rollout(routing);
    r.metadata.uid = None;
    let api: Api<Rollout> = Api::namespaced(pg.client(), NS);
    let created = api.create(&PostParams::default(), &r).await.unwrap();
    RouteContext {
        rollout: Arc::new(created),
        canary_hash: Some("c4n4ry".into()),
        stable_hash: Some("s74b1e".into()),
    }
}

fn routers(pg: &PlaygroundHandle, ctx: &RouteContext) -> Vec<Box<dyn TrafficRouter>> {
    routers_for(
        &ctx.rollout,
        pg.client(),
        reqwest::Client::new(),
        &Default::default(),
    )
    .unwrap()
}

fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str().map(str::to_owned))
        .collect()
}

fn header_step() -> SetHeaderRoute {
    SetHeaderRoute {
        name: "canary-header".into(),
        matches: vec![HeaderRoutingMatch {
            header_name: "x-canary".into(),
            header_value: StringMatch {
                exact: Some("yes".into()),
                ..Default::default()
            },
        }],
    }
}

fn mirror_step() -> SetMirrorRoute {
    SetMirrorRoute {
        name: "canary-mirror".into(),
        matches: vec![RouteMatch {
            path: Some(StringMatch {
                prefix: Some("/api".into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        percentage: Some(50),
    }
}

#[tokio::test]
async fn gateway_api_httproute_through_the_api_server() {
    let pg = start().await;
    let route = yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: apps}
spec:
  parentRefs: [{name: public-gw}]
  rules:
  - name: main
    matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs:
    - {name: shop-stable, port: 8080, weight: 100}
    - {name: shop-canary, port: 8080, weight: 0}
"#,
    );
    create(&pg, route).await;
    // As the server stores it, with its defaults.
    let initial = get_json(&pg, "httproutes", "shop").await;
    let ctx = create_rollout(
        &pg,
        "managedRoutes: [{name: canary-header}, {name: canary-mirror}]\ngatewayAPI: {httpRoute: shop}",
    )
    .await;
    let routers = routers(&pg, &ctx);
    let router = &routers[0];

    router.set_weight(&ctx, &weights(20, &[])).await.unwrap();
    let got = get_json(&pg, "httproutes", "shop").await;
    assert_eq!(
        backend_weights(&got["spec"]["rules"][0]),
        pairs(&[("shop-stable", 80), ("shop-canary", 20)]),
        "{got:#}"
    );
    assert!(
        managers(&got).contains(&"sluice-controller".to_owned()),
        "{got:#}"
    );

    // The simulated gateway accepts the new generation; verification waits for it.
    let mut verified = None;
    for _ in 0..50 {
        verified = router.verify_weight(&ctx, &weights(20, &[])).await.unwrap();
        if verified == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        verified,
        Some(true),
        "{:#}",
        get_json(&pg, "httproutes", "shop").await
    );
    assert_eq!(
        router.verify_weight(&ctx, &weights(30, &[])).await.unwrap(),
        Some(false),
        "other weights are not verified"
    );

    router.set_header_route(&ctx, &header_step()).await.unwrap();
    router.set_mirror_route(&ctx, &mirror_step()).await.unwrap();
    let got = get_json(&pg, "httproutes", "shop").await;
    let names: Vec<&str> = got["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["canary-header", "canary-mirror", "main"], "{got:#}");
    assert_eq!(
        got["spec"]["rules"][0]["backendRefs"],
        json!([{"group": "", "kind": "Service", "name": "shop-canary", "port": 8080, "weight": 1}])
    );
    // Repeating the steps, as every reconcile does, writes nothing, server defaults included.
    let rv = got["metadata"]["resourceVersion"].clone();
    router.set_header_route(&ctx, &header_step()).await.unwrap();
    router.set_mirror_route(&ctx, &mirror_step()).await.unwrap();
    router.set_weight(&ctx, &weights(20, &[])).await.unwrap();
    let again = get_json(&pg, "httproutes", "shop").await;
    assert_eq!(again["metadata"]["resourceVersion"], rv, "{again:#}");
    assert_eq!(
        got["spec"]["rules"][1]["filters"][0]["requestMirror"]["percent"],
        json!(50)
    );

    // A conflict on the next patch is retried.
    pg.faults()
        .fail_next(Some("patch"), Some("httproutes"), 409, 1);
    router
        .set_weight(&ctx, &weights(50, &[("shop-baseline", 10)]))
        .await
        .unwrap();
    assert_eq!(pg.faults().pending(), 0);
    let got = get_json(&pg, "httproutes", "shop").await;
    assert_eq!(
        backend_weights(&got["spec"]["rules"][2]),
        pairs(&[
            ("shop-stable", 40),
            ("shop-canary", 50),
            ("shop-baseline", 10)
        ]),
        "{got:#}"
    );

    restore_stable(&routers, &ctx).await.unwrap();
    let got = get_json(&pg, "httproutes", "shop").await;
    assert_eq!(
        got["spec"], initial["spec"],
        "all traffic back on stable, managed rules gone: {got:#}"
    );
    let rv = got["metadata"]["resourceVersion"].clone();
    restore_stable(&routers, &ctx).await.unwrap();
    let again = get_json(&pg, "httproutes", "shop").await;
    assert_eq!(
        again["metadata"]["resourceVersion"], rv,
        "a repeated clean-up writes nothing"
    );
}

#[tokio::test]
async fn istio_subset_split_and_managed_routes_through_the_api_server() {
    let pg = start().await;
    create(
        &pg,
        yaml(
            r#"
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: shop, namespace: apps}
spec:
  host: shop
  subsets:
  - {name: canary, labels: {app: shop}}
  - {name: stable, labels: {app: shop}}
"#,
        ),
    )
    .await;
    let vs = yaml(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: shop, namespace: apps}
spec:
  hosts: [shop]
  http:
  - name: primary
    route:
    - destination: {host: shop, subset: stable}
      weight: 100
    - destination: {host: shop, subset: canary}
      weight: 0
"#,
    );
    create(&pg, vs.clone()).await;
    let ctx = create_rollout(
        &pg,
        "managedRoutes: [{name: canary-header}, {name: canary-mirror}]\nistio:\n  virtualService: {name: shop, routes: [primary]}\n  destinationRule: {name: shop, canarySubsetName: canary, stableSubsetName: stable}",
    )
    .await;
    let routers = routers(&pg, &ctx);
    routers[0]
        .set_weight(&ctx, &weights(20, &[]))
        .await
        .unwrap();
    let dr = get_json(&pg, "destinationrules", "shop").await;
    assert_eq!(
        dr["spec"]["subsets"][0]["labels"],
        json!({"app": "shop", "rollouts-pod-template-hash": "c4n4ry"}),
        "{dr:#}"
    );
    assert_eq!(
        dr["spec"]["subsets"][1]["labels"],
        json!({"app": "shop", "rollouts-pod-template-hash": "s74b1e"})
    );
    let got = get_json(&pg, "virtualservices", "shop").await;
    assert_eq!(
        got["spec"]["http"][0]["route"][0]["weight"],
        json!(80),
        "{got:#}"
    );
    assert_eq!(got["spec"]["http"][0]["route"][1]["weight"], json!(20));

    // The simulated Istio marks the new generation Reconciled; verification waits for it.
    let mut verified = None;
    for _ in 0..50 {
        verified = routers[0]
            .verify_weight(&ctx, &weights(20, &[]))
            .await
            .unwrap();
        if verified == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        verified,
        Some(true),
        "{:#}",
        get_json(&pg, "virtualservices", "shop").await
    );
    assert_eq!(
        routers[0]
            .verify_weight(&ctx, &weights(40, &[]))
            .await
            .unwrap(),
        Some(false)
    );

    routers[0]
        .set_mirror_route(&ctx, &mirror_step())
        .await
        .unwrap();
    routers[0]
        .set_header_route(&ctx, &header_step())
        .await
        .unwrap();
    let got = get_json(&pg, "virtualservices", "shop").await;
    let names: Vec<&str> = got["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["canary-header", "canary-mirror", "primary"],
        "{got:#}"
    );
    assert_eq!(
        got["spec"]["http"][0]["route"],
        json!([{"destination": {"host": "shop", "subset": "canary"}, "weight": 100}])
    );
    assert_eq!(
        got["spec"]["http"][1]["mirror"],
        json!({"host": "shop", "subset": "canary"})
    );

    restore_stable(&routers, &ctx).await.unwrap();
    let got = get_json(&pg, "virtualservices", "shop").await;
    assert_eq!(got["spec"], vs["spec"], "{got:#}");
}

#[tokio::test]
async fn smi_traffic_split_is_created_owned_and_updated() {
    let pg = start().await;
    let ctx = create_rollout(&pg, "smi: {rootService: shop}").await;
    let routers = routers(&pg, &ctx);
    routers[0]
        .set_weight(&ctx, &weights(20, &[("shop-baseline", 20)]))
        .await
        .unwrap();
    let got = get_json(&pg, "trafficsplits.v1alpha1.split.smi-spec.io", "shop").await;
    assert_eq!(got["apiVersion"], json!("split.smi-spec.io/v1alpha1"));
    assert_eq!(
        got["metadata"]["ownerReferences"][0]["uid"],
        json!(ctx.rollout.metadata.uid.clone().unwrap()),
        "{got:#}"
    );
    assert_eq!(
        got["spec"],
        json!({"service": "shop", "backends": [
            {"service": "shop-canary", "weight": 20}, {"service": "shop-baseline", "weight": 20}, {"service": "shop-stable", "weight": 60}]})
    );
    restore_stable(&routers, &ctx).await.unwrap();
    let got = get_json(&pg, "trafficsplits.v1alpha1.split.smi-spec.io", "shop").await;
    assert_eq!(
        got["spec"]["backends"],
        json!([{"service": "shop-canary", "weight": 0}, {"service": "shop-stable", "weight": 100}])
    );
}

#[tokio::test]
async fn nginx_canary_ingress_is_generated_and_the_stable_one_untouched() {
    let pg = start().await;
    create(
        &pg,
        yaml(
            r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: apps}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop-stable, port: {number: 80}}}}
"#,
        ),
    )
    .await;
    let stable_before = get_json(&pg, "ingress", "shop").await;
    let ctx = create_rollout(
        &pg,
        "managedRoutes: [{name: canary-header}]\nnginx: {stableIngress: shop}",
    )
    .await;
    let routers = routers(&pg, &ctx);
    routers[0]
        .set_weight(&ctx, &weights(20, &[]))
        .await
        .unwrap();
    routers[0]
        .set_header_route(&ctx, &header_step())
        .await
        .unwrap();
    let got = get_json(&pg, "ingress", "shop-shop-canary").await;
    let ann = &got["metadata"]["annotations"];
    assert_eq!(
        ann["nginx.ingress.kubernetes.io/canary"],
        json!("true"),
        "{got:#}"
    );
    assert_eq!(
        ann["nginx.ingress.kubernetes.io/canary-weight"],
        json!("20")
    );
    assert_eq!(
        ann["nginx.ingress.kubernetes.io/canary-by-header"],
        json!("x-canary")
    );
    assert_eq!(
        ann["nginx.ingress.kubernetes.io/canary-by-header-value"],
        json!("yes")
    );
    assert_eq!(
        got["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        json!("shop-canary")
    );
    assert_eq!(
        got["metadata"]["ownerReferences"][0]["kind"],
        json!("Rollout")
    );
    restore_stable(&routers, &ctx).await.unwrap();
    let got = get_json(&pg, "ingress", "shop-shop-canary").await;
    let ann = got["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(ann["nginx.ingress.kubernetes.io/canary-weight"], json!("0"));
    assert!(
        !ann.keys().any(|k| k.contains("canary-by-header")),
        "{got:#}"
    );
    let stable_after = get_json(&pg, "ingress", "shop").await;
    assert_eq!(
        stable_after["metadata"]["resourceVersion"],
        stable_before["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn traefik_weighted_service_through_the_api_server() {
    let pg = start().await;
    create(
        &pg,
        yaml(
            r#"
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: shop, namespace: apps}
spec:
  weighted:
    services:
    - {name: shop-stable, port: 80, weight: 100}
    - {name: shop-canary, port: 80, weight: 0}
"#,
        ),
    )
    .await;
    let ctx = create_rollout(&pg, "traefik: {weightedTraefikServiceName: shop}").await;
    let routers = routers(&pg, &ctx);
    routers[0]
        .set_weight(&ctx, &weights(20, &[]))
        .await
        .unwrap();
    let got = get_json(&pg, "traefikservices", "shop").await;
    assert_eq!(
        got["spec"]["weighted"]["services"],
        json!([{"name": "shop-stable", "port": 80, "weight": 80}, {"name": "shop-canary", "port": 80, "weight": 20}]),
        "{got:#}"
    );
    restore_stable(&routers, &ctx).await.unwrap();
    let got = get_json(&pg, "traefikservices", "shop").await;
    assert_eq!(got["spec"]["weighted"]["services"][0]["weight"], json!(100));
    assert_eq!(got["spec"]["weighted"]["services"][1]["weight"], json!(0));
}

#[tokio::test]
async fn every_traffic_example_is_accepted_by_kubectl_apply() {
    let pg = start().await;
    let files = traffic_common::traffic_examples();
    assert!(files.len() >= 6, "{files:?}");
    for (i, file) in files.iter().enumerate() {
        let ns = format!("example-{i}");
        kubectl(&pg, &["create", "namespace", &ns], None).await;
        let text = std::fs::read_to_string(file).unwrap();
        let out = kubectl(&pg, &["apply", "-n", &ns, "-f", "-"], Some(&text)).await;
        assert!(
            out.contains("rollout.sluice.dev/shop created"),
            "{}: {out}",
            file.display()
        );
    }
}
