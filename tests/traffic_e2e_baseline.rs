//! End to end with a baseline: the controller walks a Rollout through its steps and an abort
//! on the playground while every router also sends traffic to a third destination, the
//! baseline Service `web-baseline`, and the routing object is read back with `kubectl` after
//! every step: canary, baseline and stable weights at each pause, and all traffic on stable,
//! baseline gone, after the abort.
//!
//! The engine does not put a baseline into `status.canary.weights` yet (the judge's baseline
//! pods are not wired to routing), so the router factory here wraps the real routers and adds
//! the baseline at the canary's weight to every `setWeight` and `verifyWeight`, as the act
//! step will once it does. Everything else (the controller, the routers, the API server) is
//! the real thing. NGINX has no third destination and refuses a baseline (tests/traffic_nginx.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;
mod traffic_common;
mod traffic_e2e_support;

use async_trait::async_trait;
use serde_json::{Value, json};
use sluice::controller::embedded::EmbeddedOptions;
use sluice::crd::{Rollout, SetHeaderRoute, SetMirrorRoute, TrafficWeights, WeightDestination};
use sluice::traffic::{PluginRegistry, RouteContext, TrafficError, TrafficRouter, routers_for};
use traffic_e2e_support::*;

/// A real router whose weights gain the baseline at the canary's weight, taken from stable.
struct WithBaseline(Box<dyn TrafficRouter>);

fn with_baseline(weights: &TrafficWeights) -> TrafficWeights {
    let mut w = weights.clone();
    if w.canary.weight > 0 && w.additional.is_empty() {
        let baseline = w.canary.weight.min(w.stable.weight);
        w.stable.weight -= baseline;
        w.additional.push(WeightDestination {
            weight: baseline,
            service_name: Some("web-baseline".into()),
            pod_template_hash: w.stable.pod_template_hash.clone(),
        });
    }
    w
}

#[async_trait]
impl TrafficRouter for WithBaseline {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn set_weight(&self, c: &RouteContext, w: &TrafficWeights) -> Result<(), TrafficError> {
        self.0.set_weight(c, &with_baseline(w)).await
    }
    async fn set_header_route(
        &self,
        c: &RouteContext,
        r: &SetHeaderRoute,
    ) -> Result<(), TrafficError> {
        self.0.set_header_route(c, r).await
    }
    async fn set_mirror_route(
        &self,
        c: &RouteContext,
        r: &SetMirrorRoute,
    ) -> Result<(), TrafficError> {
        self.0.set_mirror_route(c, r).await
    }
    async fn verify_weight(
        &self,
        c: &RouteContext,
        w: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError> {
        self.0.verify_weight(c, &with_baseline(w)).await
    }
    async fn remove_managed_routes(&self, c: &RouteContext) -> Result<(), TrafficError> {
        self.0.remove_managed_routes(c).await
    }
}

#[allow(clippy::result_large_err)] // The signature of `RoutersFn`.
fn routers_with_baseline(
    rollout: &Rollout,
    client: kube::Client,
    http: reqwest::Client,
    plugins: &PluginRegistry,
) -> Result<Vec<Box<dyn TrafficRouter>>, TrafficError> {
    Ok(routers_for(rollout, client, http, plugins)?
        .into_iter()
        .map(|r| Box::new(WithBaseline(r)) as Box<dyn TrafficRouter>)
        .collect())
}

/// `(canary, baseline, stable)` weights read from a routing object; baseline 0 when absent.
type Reader3 = fn(&Value) -> Option<(i64, i64, i64)>;

fn by(
    list: &Value,
    key: &str,
    canary: &str,
    baseline: &str,
    stable: &str,
) -> Option<(i64, i64, i64)> {
    let weight = |name: &str| {
        list.as_array()?
            .iter()
            .find(|e| e.pointer(key).and_then(Value::as_str) == Some(name))
            .and_then(|e| e["weight"].as_i64())
    };
    Some((
        weight(canary)?,
        weight(baseline).unwrap_or(0),
        weight(stable)?,
    ))
}

fn gateway3(v: &Value) -> Option<(i64, i64, i64)> {
    by(
        &v["spec"]["rules"][0]["backendRefs"],
        "/name",
        "web-canary",
        "web-baseline",
        "web-stable",
    )
}

fn istio3(v: &Value) -> Option<(i64, i64, i64)> {
    by(
        &v["spec"]["http"][0]["route"],
        "/destination/host",
        "web-canary",
        "web-baseline",
        "web-stable",
    )
}

fn smi3(v: &Value) -> Option<(i64, i64, i64)> {
    by(
        &v["spec"]["backends"],
        "/service",
        "web-canary",
        "web-baseline",
        "web-stable",
    )
}

fn traefik3(v: &Value) -> Option<(i64, i64, i64)> {
    by(
        &v["spec"]["weighted"]["services"],
        "/name",
        "web-canary",
        "web-baseline",
        "web-stable",
    )
}

/// Whether the baseline destination is listed at all.
fn lists_baseline(v: &Value) -> bool {
    v.to_string().contains("web-baseline")
}

async fn expect3(
    w: &Walk,
    resource: &str,
    reader: Reader3,
    want: (i64, i64, i64),
    when: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let object = w.get(resource, "web").await;
        if reader(&object) == Some(want) && (want.1 > 0 || !lists_baseline(&object)) {
            return object;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{when}: {resource}/web has (canary, baseline, stable) {:?}, want {want:?}: {object:#}",
            reader(&object)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

const STEPS: &str =
    "        - setWeight: 20\n        - pause: {}\n        - setWeight: 40\n        - pause: {}\n";

async fn walk3(
    ns: &'static str,
    objects: Vec<Value>,
    routing: &str,
    resource: &str,
    reader: Reader3,
    schema: &str,
) {
    let options = EmbeddedOptions {
        routers: Some(routers_with_baseline),
        ..Default::default()
    };
    let w = Walk::start_with(ns, objects, routing, STEPS, options).await;
    w.update().await;
    w.paused_at(1).await;
    let at20 = expect3(&w, resource, reader, (20, 20, 60), "at step 1").await;
    assert_upstream(schema, &at20);
    w.resume().await;
    w.paused_at(3).await;
    expect3(&w, resource, reader, (40, 40, 20), "at step 3").await;
    w.abort().await;
    let after = expect3(&w, resource, reader, (0, 0, 100), "after abort").await;
    assert_upstream(schema, &after);
    w.stop().await;
}

fn two_backends(stable: Value, canary: Value) -> Value {
    json!([stable, canary])
}

#[tokio::test]
async fn gateway_api_baseline_walks_its_steps_and_abort_removes_it() {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": two_backends(
            json!({"name": "web-stable", "port": 80, "weight": 100}),
            json!({"name": "web-canary", "port": 80, "weight": 0}))}]},
    });
    walk3(
        "e2e-baseline-gateway",
        vec![route],
        "        gatewayAPI: {httpRoute: web}\n",
        "httproutes",
        gateway3,
        "gateway-api-httproute.yaml",
    )
    .await;
}

#[tokio::test]
async fn istio_baseline_walks_its_steps_and_abort_removes_it() {
    let vs = json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": two_backends(
            json!({"destination": {"host": "web-stable"}, "weight": 100}),
            json!({"destination": {"host": "web-canary"}, "weight": 0}))}]},
    });
    walk3(
        "e2e-baseline-istio",
        vec![vs],
        "        istio: {virtualService: {name: web, routes: [primary]}}\n",
        "virtualservices",
        istio3,
        "istio-virtualservice.yaml",
    )
    .await;
}

#[tokio::test]
async fn smi_baseline_walks_its_steps_and_abort_removes_it() {
    walk3(
        "e2e-baseline-smi",
        vec![],
        "        smi: {rootService: web-stable}\n",
        "trafficsplits.v1alpha1.split.smi-spec.io",
        smi3,
        "smi-trafficsplit-linkerd-smi.yaml",
    )
    .await;
}

#[tokio::test]
async fn traefik_baseline_walks_its_steps_and_abort_removes_it() {
    let ts = json!({
        "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
        "metadata": {"name": "web"},
        "spec": {"weighted": {"services": two_backends(
            json!({"name": "web-stable", "port": 80, "weight": 100}),
            json!({"name": "web-canary", "port": 80, "weight": 0}))}},
    });
    walk3(
        "e2e-baseline-traefik",
        vec![ts],
        "        traefik: {weightedTraefikServiceName: web}\n",
        "traefikservices",
        traefik3,
        "traefik-traefikservice.yaml",
    )
    .await;
}

fn grpc3(v: &Value) -> Option<(i64, i64, i64)> {
    gateway3(v)
}

#[tokio::test]
async fn grpc_route_baseline_walks_its_steps_and_abort_removes_it() {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": two_backends(
            json!({"name": "web-stable", "port": 80, "weight": 100}),
            json!({"name": "web-canary", "port": 80, "weight": 0}))}]},
    });
    walk3(
        "e2e-baseline-grpc",
        vec![route],
        "        gatewayAPI: {grpcRoute: web}\n",
        "grpcroutes",
        grpc3,
        "gateway-api-grpcroute.yaml",
    )
    .await;
}

/// The TLS and TCP routes' weights, which must agree.
fn istio_tls_tcp3(v: &Value) -> Option<(i64, i64, i64)> {
    let read = |route: &Value| {
        by(
            route,
            "/destination/host",
            "web-canary",
            "web-baseline",
            "web-stable",
        )
    };
    let tls = read(&v["spec"]["tls"][0]["route"])?;
    (read(&v["spec"]["tcp"][0]["route"])? == tls).then_some(tls)
}

#[tokio::test]
async fn istio_tls_and_tcp_baseline_walks_its_steps_and_abort_removes_it() {
    let route = two_backends(
        json!({"destination": {"host": "web-stable", "port": {"number": 443}}, "weight": 100}),
        json!({"destination": {"host": "web-canary", "port": {"number": 443}}, "weight": 0}),
    );
    let vs = json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web.example.com"],
            "tls": [{"match": [{"port": 443, "sniHosts": ["web.example.com"]}], "route": route}],
            "tcp": [{"match": [{"port": 5432}], "route": route}]},
    });
    walk3(
        "e2e-baseline-istio-tls-tcp",
        vec![vs],
        "        istio: {virtualService: {name: web, tlsRoutes: [{port: 443, sniHosts: [web.example.com]}], tcpRoutes: [{port: 5432}]}}\n",
        "virtualservices",
        istio_tls_tcp3,
        "istio-virtualservice.yaml",
    )
    .await;
}
