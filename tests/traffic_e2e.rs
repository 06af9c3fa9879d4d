//! End to end: the real controller (embedded) walks a Rollout through its steps and an abort
//! on the playground, once per provider, and the routing object is read back with `kubectl`
//! after every step: 0 % on the first deploy, 20 % and 50 % at the pauses, and all traffic on
//! stable after the abort.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;
mod traffic_common;

#[allow(dead_code)] // `main` is the example's entry point, unused here.
#[path = "../examples/plugin_router.rs"]
mod plugin_router;

use controller_support::*;
use serde_json::{Value, json};
use sluice::crd::RolloutPhase;
use std::time::Duration;
use traffic_common::{create_object, install_routing_crds, kubectl_json};

/// `(canary, stable)` weights read from a routing object.
type Reader = fn(&Value) -> Option<(i64, i64)>;

fn weight_of(list: &Value, key: &str, name: &str) -> Option<i64> {
    list.as_array()?
        .iter()
        .find(|e| e.pointer(key).and_then(Value::as_str) == Some(name))
        .and_then(|e| e["weight"].as_i64())
}

/// The weights of the first rule that splits (managed header rules route to the canary only).
fn gateway(v: &Value) -> Option<(i64, i64)> {
    v["spec"]["rules"].as_array()?.iter().find_map(|rule| {
        let refs = &rule["backendRefs"];
        Some((
            weight_of(refs, "/name", "web-canary")?,
            weight_of(refs, "/name", "web-stable")?,
        ))
    })
}

fn istio(v: &Value) -> Option<(i64, i64)> {
    let route = &v["spec"]["http"][0]["route"];
    Some((
        weight_of(route, "/destination/host", "web-canary")?,
        weight_of(route, "/destination/host", "web-stable")?,
    ))
}

fn smi(v: &Value) -> Option<(i64, i64)> {
    let b = &v["spec"]["backends"];
    Some((
        weight_of(b, "/service", "web-canary")?,
        weight_of(b, "/service", "web-stable")?,
    ))
}

fn traefik(v: &Value) -> Option<(i64, i64)> {
    let s = &v["spec"]["weighted"]["services"];
    Some((
        weight_of(s, "/name", "web-canary")?,
        weight_of(s, "/name", "web-stable")?,
    ))
}

fn nginx(v: &Value) -> Option<(i64, i64)> {
    let w: i64 = v["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"]
        .as_str()?
        .parse()
        .ok()?;
    Some((w, 100 - w))
}

fn rollout_yaml(routing: &str) -> String {
    let steps = "        - setWeight: 20\n        - pause: {}\n        - setWeight: 50\n        - pause: {}\n";
    canary_yaml("web", 2, steps).replace(
        "      steps:\n",
        &format!("      trafficRouting:\n{routing}      steps:\n"),
    )
}

async fn read(
    h: &Harness,
    ns: &str,
    resource: &str,
    name: &str,
    reader: Reader,
) -> Option<(i64, i64)> {
    let v = kubectl_json(
        h.playground.kubeconfig_path(),
        &["get", resource, name, "-n", ns, "--ignore-not-found"],
    )
    .await;
    reader(&v)
}

async fn expect_weights(
    h: &Harness,
    ns: &str,
    resource: &str,
    name: &str,
    reader: Reader,
    want: (i64, i64),
    when: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = read(h, ns, resource, name, reader).await;
        if got == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{when}: {resource}/{name} has (canary, stable) {got:?}, want {want:?}; rollout status: {:#?}",
            h.rollout(ns, "web").await.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deploys, updates, walks the steps and aborts, checking the routing object at each point.
async fn walk(
    ns: &str,
    objects: Vec<Value>,
    routing: &str,
    resource: &str,
    name: &str,
    reader: Reader,
) {
    let h = Harness::start().await;
    install_routing_crds(&h.client).await;
    let controller = h.controller();
    h.namespace(ns).await;
    for mut o in objects {
        o["metadata"]["namespace"] = json!(ns);
        create_object(&h.client, o).await;
    }
    h.apply_yaml(ns, &rollout_yaml(routing)).await;
    let r = h
        .wait_rollout(ns, "web", "first revision healthy", |r| {
            phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some()
        })
        .await;
    let v1 = stable_hash(&r).unwrap();
    if let Some(w) = read(&h, ns, resource, name, reader).await {
        assert_eq!(w, (0, 100), "first deploy: all traffic on stable");
    }

    h.set_image(ns, "web", "example/app:2").await;
    h.wait_rollout(ns, "web", "pause after setWeight 20", |r| {
        paused_on_step(r) && step(r) == Some(1)
    })
    .await;
    expect_weights(&h, ns, resource, name, reader, (20, 80), "at step 1").await;

    h.patch_status(ns, "web", json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, "web", "pause after setWeight 50", |r| {
        paused_on_step(r) && step(r) == Some(3)
    })
    .await;
    expect_weights(&h, ns, resource, name, reader, (50, 50), "at step 3").await;

    h.patch_status(ns, "web", json!({"abort": true})).await;
    let r = h
        .wait_rollout(ns, "web", "aborted", |r| {
            phase(r) == Some(RolloutPhase::Degraded)
        })
        .await;
    assert_eq!(stable_hash(&r).as_deref(), Some(v1.as_str()));
    expect_weights(&h, ns, resource, name, reader, (0, 100), "after abort").await;
    controller.stop().await;
}

#[tokio::test]
async fn gateway_api_rollout_walks_its_steps_and_aborts() {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [
            {"name": "web-stable", "port": 80, "weight": 100}, {"name": "web-canary", "port": 80, "weight": 0}]}]},
    });
    walk(
        "e2e-gateway",
        vec![route],
        "        gatewayAPI: {httpRoute: web}\n",
        "httproutes",
        "web",
        gateway,
    )
    .await;
}

#[tokio::test]
async fn istio_rollout_walks_its_steps_and_aborts() {
    let vs = json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "web-stable"}, "weight": 100}, {"destination": {"host": "web-canary"}, "weight": 0}]}]},
    });
    walk(
        "e2e-istio",
        vec![vs],
        "        istio: {virtualService: {name: web, routes: [primary]}}\n",
        "virtualservices",
        "web",
        istio,
    )
    .await;
}

#[tokio::test]
async fn smi_rollout_walks_its_steps_and_aborts() {
    walk(
        "e2e-smi",
        vec![],
        "        smi: {rootService: web-stable}\n",
        "trafficsplits.v1alpha1.split.smi-spec.io",
        "web",
        smi,
    )
    .await;
}

#[tokio::test]
async fn nginx_rollout_walks_its_steps_and_aborts() {
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-stable", "port": {"number": 80}}}}]}}]},
    });
    walk(
        "e2e-nginx",
        vec![ingress],
        "        nginx: {stableIngress: web}\n",
        "ingresses",
        "web-web-canary",
        nginx,
    )
    .await;
}

#[tokio::test]
async fn traefik_rollout_walks_its_steps_and_aborts() {
    let ts = json!({
        "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
        "metadata": {"name": "web"},
        "spec": {"weighted": {"services": [
            {"name": "web-stable", "port": 80, "weight": 100}, {"name": "web-canary", "port": 80, "weight": 0}]}},
    });
    walk(
        "e2e-traefik",
        vec![ts],
        "        traefik: {weightedTraefikServiceName: web}\n",
        "traefikservices",
        "web",
        traefik,
    )
    .await;
}

fn rule_names(v: &Value) -> Vec<String> {
    v["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn route_json(h: &Harness, ns: &str) -> Value {
    kubectl_json(
        h.playground.kubeconfig_path(),
        &["get", "httproutes", "web", "-n", ns],
    )
    .await
}

#[tokio::test]
async fn gateway_api_header_and_mirror_steps_then_promotion_and_abort_remove_managed_rules() {
    let ns = "e2e-gateway-routes";
    let h = Harness::start().await;
    install_routing_crds(&h.client).await;
    let controller = h.controller();
    h.namespace(ns).await;
    create_object(
        &h.client,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"name": "main", "backendRefs": [
                {"name": "web-stable", "port": 80, "weight": 100}, {"name": "web-canary", "port": 80, "weight": 0}]}]},
        }),
    )
    .await;
    let steps = "        - setHeaderRoute:\n            name: canary-header\n            match:\n            - headerName: x-canary\n              headerValue: {exact: \"yes\"}\n        - setWeight: 20\n        - setMirrorRoute:\n            name: canary-mirror\n            percentage: 30\n            match:\n            - path: {prefix: /api}\n        - pause: {}\n";
    let yaml = canary_yaml("web", 2, steps).replace(
        "      steps:\n",
        "      trafficRouting:\n        managedRoutes: [{name: canary-header}, {name: canary-mirror}]\n        gatewayAPI: {httpRoute: web}\n      steps:\n",
    );
    h.apply_yaml(ns, &yaml).await;
    h.wait_rollout(ns, "web", "first revision healthy", |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some()
    })
    .await;
    assert_eq!(
        rule_names(&route_json(&h, ns).await),
        ["main"],
        "no managed rules on the first deploy"
    );

    h.set_image(ns, "web", "example/app:2").await;
    let at_pause = |r: &sluice::crd::Rollout| {
        paused_on_step(r) && step(r) == Some(3) && !r.status.as_ref().unwrap().abort
    };
    h.wait_rollout(ns, "web", "pause after the mirror step", at_pause)
        .await;
    assert_managed_rules(&route_json(&h, ns).await);

    h.patch_status(ns, "web", json!({"abort": true})).await;
    h.wait_rollout(ns, "web", "aborted", |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await;
    wait_clean(&h, ns, "after the abort").await;

    h.patch_status(ns, "web", json!({"abort": false})).await;
    h.wait_rollout(ns, "web", "retry pauses again", at_pause)
        .await;
    assert_managed_rules(&route_json(&h, ns).await);

    h.patch_status(ns, "web", json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, "web", "promoted", |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r) == current_hash(r)
    })
    .await;
    wait_clean(&h, ns, "after the promotion").await;
    controller.stop().await;
}

fn assert_managed_rules(route: &Value) {
    assert_eq!(
        rule_names(route),
        ["canary-header", "canary-mirror", "main"],
        "{route:#}"
    );
    assert_eq!(
        route["spec"]["rules"][0]["matches"][0]["headers"][0]["value"],
        json!("yes")
    );
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"][0]["name"],
        json!("web-canary")
    );
    assert_eq!(
        route["spec"]["rules"][1]["filters"][0]["requestMirror"]["percent"],
        json!(30)
    );
    assert_eq!(gateway(route), Some((20, 80)), "{route:#}");
}

/// Waits until the managed rules are gone and the canary gets nothing.
async fn wait_clean(h: &Harness, ns: &str, when: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let route = route_json(h, ns).await;
        if rule_names(&route) == ["main"] && gateway(&route).is_some_and(|(c, _)| c == 0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{when}: managed rules must be gone and the canary at 0: {route:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The example plugin's HTTPRoute for the Rollout, as it serves it.
async fn plugin_route(address: &str, ns: &str) -> Option<Value> {
    let resp = reqwest::get(format!("{address}/v1/routes/{ns}/web"))
        .await
        .unwrap();
    if resp.status().is_success() {
        Some(resp.json().await.unwrap())
    } else {
        None
    }
}

async fn expect_plugin_weights(h: &Harness, address: &str, ns: &str, want: (i64, i64), when: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = plugin_route(address, ns).await.as_ref().and_then(gateway);
        if got == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{when}: the plugin's route has (canary, stable) {got:?}, want {want:?}; rollout status: {:#?}",
            h.rollout(ns, "web").await.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn example_plugin_rollout_walks_its_steps_and_aborts() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, plugin_router::app()).await.unwrap() });

    let ns = "e2e-plugin";
    let h = Harness::start().await;
    // The controller's registry says where the plugin lives; the Rollout names it only.
    let settings = sluice::controller::Settings {
        traffic_plugins: sluice::traffic::PluginRegistry::parse(&[format!(
            "example/gateway={address}"
        )])
        .unwrap(),
        ..Default::default()
    };
    let controller = h.controller_with(sluice::controller::embedded::EmbeddedOptions {
        settings,
        ..Default::default()
    });
    h.namespace(ns).await;
    let routing = format!(
        "        plugins:\n          example/gateway:\n            config:\n              route: {{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {{name: web}}, spec: {{parentRefs: [{{name: gw}}], rules: [{{backendRefs: [{{name: web-stable, port: 80, weight: 100}}, {{name: web-canary, port: 80, weight: 0}}]}}]}}}}\n"
    );
    h.apply_yaml(ns, &rollout_yaml(&routing)).await;
    h.wait_rollout(ns, "web", "first revision healthy", |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some()
    })
    .await;
    if let Some(route) = plugin_route(&address, ns).await {
        assert_eq!(
            gateway(&route),
            Some((0, 100)),
            "first deploy: all traffic on stable"
        );
    }

    h.set_image(ns, "web", "example/app:2").await;
    h.wait_rollout(ns, "web", "pause after setWeight 20", |r| {
        paused_on_step(r) && step(r) == Some(1)
    })
    .await;
    expect_plugin_weights(&h, &address, ns, (20, 80), "at step 1").await;
    h.patch_status(ns, "web", json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, "web", "pause after setWeight 50", |r| {
        paused_on_step(r) && step(r) == Some(3)
    })
    .await;
    expect_plugin_weights(&h, &address, ns, (50, 50), "at step 3").await;
    h.patch_status(ns, "web", json!({"abort": true})).await;
    h.wait_rollout(ns, "web", "aborted", |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await;
    expect_plugin_weights(&h, &address, ns, (0, 100), "after abort").await;
    let route = plugin_route(&address, ns).await.unwrap();
    traffic_common::assert_valid("gateway-api-httproute.yaml", "v1", &route);
    controller.stop().await;
}
