//! End to end with a baseline: the controller walks a Rollout with
//! `spec.strategy.canary.baseline` through its steps on the playground, and itself runs the
//! baseline ReplicaSet (the stable template, labelled `rollout.sluice.dev/role: baseline`) and
//! sends it the canary's weight through every router that has a third destination. After
//! every step the routing object, the baseline ReplicaSet, its pods, the baseline Service and
//! the Rollout's status are read back with the real `kubectl`: canary, baseline and stable
//! weights and as many baseline pods as canary pods at each pause; after an abort and after a
//! promotion the baseline is gone and all traffic is on one side; a new revision mid-rollout
//! gets a fresh baseline of its own revision. A canary without traffic routing runs its
//! baseline too, and NGINX (no third destination) is refused up front.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;
mod kubectl_support;
mod traffic_common;
mod traffic_e2e_support;

use controller_support::*;
use serde_json::{Value, json};
use sluice::engine::baseline::{ROLE_LABEL, baseline_hash};
use traffic_common::kubectl_json;
use traffic_e2e_support::*;

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

/// The baseline's lines under `spec.strategy.canary`, after the routing (Walk puts `routing`
/// right under `trafficRouting:`, so a line at its parent's indentation is a sibling).
const BASELINE: &str = "      baseline:\n        service: web-baseline\n        metadata: {labels: {team: checkout}}\n";

/// The baseline Service: it selects the app; the controller narrows it to the baseline pods.
fn baseline_service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web-baseline"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
}

async fn kubectl(h: &Harness, ns: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-n", ns]);
    kubectl_json(h.playground.kubeconfig_path(), &all).await
}

/// The baseline ReplicaSets of `ns`, as `kubectl get replicasets -l ROLE=baseline` lists them.
async fn baseline_replica_sets(h: &Harness, ns: &str) -> Value {
    kubectl(
        h,
        ns,
        &[
            "get",
            "replicasets",
            "-l",
            &format!("{ROLE_LABEL}=baseline"),
        ],
    )
    .await
}

/// What `kubectl` shows of the baseline: `(ReplicaSets, spec.replicas, ready pods)`, the
/// pods' hash, and the Service's selected hash.
#[derive(Debug, PartialEq)]
struct Seen {
    replica_sets: usize,
    replicas: i64,
    ready_pods: usize,
    pod_hash: Option<String>,
    service_hash: Option<String>,
}

async fn seen(h: &Harness, ns: &str) -> Seen {
    let role = format!("{ROLE_LABEL}=baseline");
    let rs = baseline_replica_sets(h, ns).await;
    let rs = rs["items"].as_array().unwrap().clone();
    let pods = kubectl(h, ns, &["get", "pods", "-l", &role]).await;
    let pods = pods["items"].as_array().unwrap().clone();
    let ready = |p: &&Value| {
        p["metadata"]["deletionTimestamp"].is_null()
            && p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    };
    let hash = |v: &Value| {
        v["metadata"]["labels"]["rollouts-pod-template-hash"]
            .as_str()
            .map(str::to_owned)
    };
    let svc = kubectl(h, ns, &["get", "service", "web-baseline"]).await;
    Seen {
        replica_sets: rs.len(),
        replicas: rs
            .iter()
            .filter_map(|r| r["spec"]["replicas"].as_i64())
            .sum(),
        ready_pods: pods.iter().filter(ready).count(),
        pod_hash: pods.iter().find(ready).and_then(hash),
        service_hash: svc["spec"]["selector"]["rollouts-pod-template-hash"]
            .as_str()
            .map(str::to_owned),
    }
}

/// Waits (bounded) until `kubectl` shows the baseline as `want`.
async fn expect_seen(h: &Harness, ns: &str, want: &Seen, when: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = seen(h, ns).await;
        if &got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{when}: the baseline is {got:?}, want {want:?}; rollout status: {:#?}",
            h.rollout(ns, "web").await.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// One canary pod and one baseline pod of the stable template, selected by the baseline
/// Service and shown in the Rollout's status.
async fn expect_running(h: &Harness, ns: &str, v1: &str, when: &str) {
    let b = baseline_hash(v1);
    let want = Seen {
        replica_sets: 1,
        replicas: 1,
        ready_pods: 1,
        pod_hash: Some(b.clone()),
        service_hash: Some(b.clone()),
    };
    expect_seen(h, ns, &want, when).await;
    let rs = baseline_replica_sets(h, ns).await;
    let template = &rs["items"][0]["spec"]["template"];
    assert_eq!(
        template["spec"]["containers"][0]["image"], "example/app:1",
        "{when}: the stable image"
    );
    assert_eq!(
        template["metadata"]["labels"]["team"], "checkout",
        "{when}: baseline.metadata"
    );
    let rollout = kubectl(h, ns, &["get", "rollout", "web"]).await;
    let status = &rollout["status"]["canary"]["baseline"];
    assert_eq!(
        (
            status["podTemplateHash"].as_str(),
            status["availableReplicas"].as_i64()
        ),
        (Some(b.as_str()), Some(1)),
        "{when}: status.canary.baseline in {rollout:#}"
    );
    assert_ne!(
        h.service_hash(ns, "web-stable").await.as_deref(),
        Some(b.as_str()),
        "{when}: the stable Service selects baseline pods"
    );
}

/// No baseline left: no ReplicaSet, no pods, the Service back on `hash`.
async fn expect_gone(h: &Harness, ns: &str, hash: &str, when: &str) {
    let want = Seen {
        replica_sets: 0,
        replicas: 0,
        ready_pods: 0,
        pod_hash: None,
        service_hash: Some(hash.to_owned()),
    };
    expect_seen(h, ns, &want, when).await;
    let rollout = kubectl(h, ns, &["get", "rollout", "web"]).await;
    assert!(
        rollout["status"]["canary"]["baseline"].is_null(),
        "{when}: status still shows a baseline: {rollout:#}"
    );
}

async fn start3(ns: &'static str, mut objects: Vec<Value>, routing: &str) -> Walk {
    objects.push(baseline_service());
    Walk::start(ns, objects, &format!("{routing}{BASELINE}"), STEPS).await
}

async fn walk3(
    ns: &'static str,
    objects: Vec<Value>,
    routing: &str,
    resource: &str,
    reader: Reader3,
    schema: &str,
) {
    let w = start3(ns, objects.clone(), routing).await;
    expect_gone(&w.h, ns, &w.v1, "first deploy").await;
    w.update().await;
    w.paused_at(1).await;
    let at20 = expect3(&w, resource, reader, (20, 20, 60), "at step 1").await;
    assert_upstream(schema, &at20);
    expect_running(&w.h, ns, &w.v1, "at step 1").await;
    w.resume().await;
    w.paused_at(3).await;
    expect3(&w, resource, reader, (40, 40, 20), "at step 3").await;
    expect_running(&w.h, ns, &w.v1, "at step 3").await;
    w.abort().await;
    let after = expect3(&w, resource, reader, (0, 0, 100), "after abort").await;
    assert_upstream(schema, &after);
    expect_gone(&w.h, ns, &w.v1, "after abort").await;
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

#[tokio::test]
async fn promotion_removes_the_baseline_and_leaves_all_traffic_on_the_new_stable() {
    let ns = "e2e-baseline-promote";
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": two_backends(
            json!({"name": "web-stable", "port": 80, "weight": 100}),
            json!({"name": "web-canary", "port": 80, "weight": 0}))}]},
    });
    let w = start3(ns, vec![route], "        gatewayAPI: {httpRoute: web}\n").await;
    w.update().await;
    w.paused_at(1).await;
    expect3(&w, "httproutes", gateway3, (20, 20, 60), "at step 1").await;
    expect_running(&w.h, ns, &w.v1, "at step 1").await;
    w.resume().await;
    w.paused_at(3).await;
    w.resume().await;
    let v1 = w.v1.clone();
    let r =
        w.h.wait_rollout(ns, "web", "promoted", move |r| {
            stable_hash(r).is_some_and(|s| s != v1) && healthy_at(r, &stable_hash(r).unwrap())
        })
        .await;
    let v2 = stable_hash(&r).unwrap();
    let after = expect3(&w, "httproutes", gateway3, (0, 0, 100), "after promotion").await;
    assert_upstream("gateway-api-httproute.yaml", &after);
    expect_gone(&w.h, ns, &v2, "after promotion").await;
    assert_eq!(w.h.service_hash(ns, "web-stable").await, Some(v2));
    w.stop().await;
}

#[tokio::test]
async fn without_traffic_routing_the_baseline_runs_as_many_pods_as_the_canary() {
    let ns = "e2e-baseline-basic";
    let h = Harness::start().await;
    let controller = h.controller();
    h.namespace(ns).await;
    let service = serde_yaml::to_string(&baseline_service()).unwrap();
    let yaml = canary_yaml("web", 2, STEPS)
        .replace("      steps:\n", &format!("{BASELINE}      steps:\n"));
    h.apply_yaml(ns, &format!("{service}---\n{yaml}")).await;
    let v1 = h.first_revision_healthy(ns, "web").await;
    expect_gone(&h, ns, &v1, "first deploy").await;
    h.set_image(ns, "web", "example/app:2").await;
    for (index, when) in [(1, "at step 1"), (3, "at step 3")] {
        let r = h
            .wait_rollout(ns, "web", when, move |r| {
                paused_on_step(r) && step(r) == Some(index)
            })
            .await;
        expect_running(&h, ns, &v1, when).await;
        let canary = current_hash(&r).unwrap();
        assert_eq!(
            h.rs_replicas(ns, &canary).await,
            1,
            "{when}: one canary pod"
        );
        h.patch_status(ns, "web", json!({"pauseConditions": null}))
            .await;
    }
    h.patch_status(ns, "web", json!({"abort": true})).await;
    expect_gone(&h, ns, &v1, "after abort").await;
    controller.stop().await;
}

#[tokio::test]
async fn nginx_with_a_baseline_is_refused_by_the_api_server() {
    let ns = "e2e-baseline-nginx";
    let h = Harness::start().await;
    h.namespace(ns).await;
    let yaml = rollout_yaml("        nginx: {stableIngress: web}\n")
        .replace("      steps:\n", &format!("{BASELINE}      steps:\n"));
    let rollout = yaml.split("---").last().unwrap();
    let rollout: sluice::crd::Rollout = serde_yaml::from_str(rollout).unwrap();
    let error = h
        .rollouts(ns)
        .create(&Default::default(), &rollout)
        .await
        .expect_err("an nginx Rollout with a baseline must be refused");
    assert!(
        error
            .to_string()
            .contains("nginx router cannot send traffic to a baseline"),
        "{error}"
    );
}

#[tokio::test]
async fn a_new_revision_mid_rollout_gets_a_fresh_baseline() {
    let ns = "e2e-baseline-revision";
    let w = start3(ns, vec![], "        smi: {rootService: web-stable}\n").await;
    let smi = "trafficsplits.v1alpha1.split.smi-spec.io";
    w.update().await;
    let v2 = current_hash(&w.paused_at(1).await).unwrap();
    expect_running(&w.h, ns, &w.v1, "revision 2 at step 1").await;
    let first = baseline_replica_sets(&w.h, ns).await;
    let first_uid = first["items"][0]["metadata"]["uid"].clone();
    w.h.set_image(ns, "web", "example/app:3").await;
    let r =
        w.h.wait_rollout(ns, "web", "revision 3 paused at step 1", |r| {
            paused_on_step(r) && step(r) == Some(1) && current_hash(r).is_some_and(|h| h != v2)
        })
        .await;
    expect3(&w, smi, smi3, (20, 20, 60), "revision 3 at step 1").await;
    expect_running(&w.h, ns, &w.v1, "revision 3 at step 1").await;
    let now = baseline_replica_sets(&w.h, ns).await;
    let baseline = &now["items"][0]["metadata"];
    assert_ne!(
        baseline["uid"], first_uid,
        "the baseline of revision 2 was replaced"
    );
    let canary = kubectl(
        &w.h,
        ns,
        &[
            "get",
            "replicaset",
            &format!("web-{}", current_hash(&r).unwrap()),
        ],
    )
    .await;
    assert_eq!(
        baseline["annotations"]["rollout.sluice.dev/revision"],
        canary["metadata"]["annotations"]["rollout.sluice.dev/revision"],
        "the baseline belongs to the new canary's revision"
    );
    w.stop().await;
}
