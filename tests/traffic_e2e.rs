//! End to end: the real controller (embedded) walks a Rollout through its steps and an abort
//! on the playground, once per provider and routing shape (HTTPRoute, GRPCRoute, Istio HTTP,
//! TLS and TCP routes, Istio subset split, SMI, NGINX, Traefik, the example plugin), and the
//! routing object is read back with `kubectl` after every step: 0 % on the first deploy, 20 %
//! (verified where the provider can tell) and 50 % at the pauses, and all traffic on stable
//! after the abort. Header and mirror steps on Gateway API, Istio and NGINX; every example in
//! `examples/traffic/` run under the controller. Baselines are in `traffic_e2e_baseline.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;
mod kubectl_support;
mod traffic_common;

#[allow(dead_code)] // `main` is the example's entry point, unused here.
#[path = "../examples/plugin_router.rs"]
mod plugin_router;

mod traffic_e2e_support;

use controller_support::*;
use serde_json::{Value, json};
use sluice::crd::RolloutPhase;
use std::time::Duration;
use traffic_common::{create_object, install_routing_crds, kubectl_json};
use traffic_e2e_support::*;

/// The controller with the example plugin registered as `example/gateway` at `address`: the
/// controller's registry says where a plugin lives, a Rollout names it only.
fn controller_with_plugin(h: &Harness, address: &str) -> sluice::controller::embedded::Embedded {
    let settings = sluice::controller::Settings {
        traffic_plugins: sluice::traffic::PluginRegistry::parse(&[format!(
            "example/gateway={address}"
        )])
        .unwrap(),
        ..Default::default()
    };
    h.controller_with(sluice::controller::embedded::EmbeddedOptions {
        settings,
        ..Default::default()
    })
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
    let controller = controller_with_plugin(&h, &address);
    h.namespace(ns).await;
    let routing = "        plugins:\n          example/gateway:\n            config:\n              route: {apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: web}, spec: {parentRefs: [{name: gw}], rules: [{backendRefs: [{name: web-stable, port: 80, weight: 100}, {name: web-canary, port: 80, weight: 0}]}]}}\n";
    h.apply_yaml(ns, &rollout_yaml(routing)).await;
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
    h.wait_rollout(ns, "web", "the plugin verifies the weights", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .and_then(|c| c.weights.as_ref())
            .is_some_and(|w| w.verified == Some(true))
    })
    .await;
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

#[tokio::test]
async fn grpc_route_rollout_walks_its_steps_and_aborts() {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [
            {"name": "web-stable", "port": 80, "weight": 100}, {"name": "web-canary", "port": 80, "weight": 0}]}]},
    });
    let after = walk(
        "e2e-grpc",
        vec![route],
        "        gatewayAPI: {grpcRoute: web}\n",
        "grpcroutes",
        "web",
        gateway,
    )
    .await;
    assert_upstream("gateway-api-grpcroute.yaml", &after);
}

/// The weights of the TLS and TCP routes, which must agree.
fn istio_tls_tcp(v: &Value) -> Option<(i64, i64)> {
    let read = |route: &Value| {
        Some((
            weight_of(route, "/destination/host", "web-canary")?,
            weight_of(route, "/destination/host", "web-stable")?,
        ))
    };
    let tls = read(&v["spec"]["tls"][0]["route"])?;
    let tcp = read(&v["spec"]["tcp"][0]["route"])?;
    (tls == tcp).then_some(tls)
}

#[tokio::test]
async fn istio_tls_and_tcp_routes_walk_their_steps_and_abort() {
    let route = json!([
        {"destination": {"host": "web-stable", "port": {"number": 443}}, "weight": 100},
        {"destination": {"host": "web-canary", "port": {"number": 443}}, "weight": 0}]);
    let vs = json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web.example.com"],
            "tls": [{"match": [{"port": 443, "sniHosts": ["web.example.com"]}], "route": route}],
            "tcp": [{"match": [{"port": 5432}], "route": route}]},
    });
    let after = walk(
        "e2e-istio-tls-tcp",
        vec![vs],
        "        istio: {virtualService: {name: web, tlsRoutes: [{port: 443, sniHosts: [web.example.com]}], tcpRoutes: [{port: 5432}]}}\n",
        "virtualservices",
        "web",
        istio_tls_tcp,
    )
    .await;
    assert_upstream("istio-virtualservice.yaml", &after);
    assert_eq!(
        after["spec"]["tls"][0]["match"],
        json!([{"port": 443, "sniHosts": ["web.example.com"]}]),
        "the user's matches stay as written: {after:#}"
    );
}

fn istio_subsets(v: &Value) -> Option<(i64, i64)> {
    let route = &v["spec"]["http"][0]["route"];
    Some((
        weight_of(route, "/destination/subset", "canary")?,
        weight_of(route, "/destination/subset", "stable")?,
    ))
}

/// The pod-template hash label of a DestinationRule subset.
fn subset_hash(dr: &Value, subset: &str) -> Option<String> {
    dr["spec"]["subsets"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == json!(subset))?["labels"]["rollouts-pod-template-hash"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn istio_subset_split_walks_its_steps_and_aborts_with_hash_labelled_subsets() {
    let dr = json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
        "metadata": {"name": "web"},
        "spec": {"host": "web-stable", "subsets": [
            {"name": "canary", "labels": {"app": "web"}}, {"name": "stable", "labels": {"app": "web"}}]},
    });
    let vs = json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "web-stable", "subset": "stable"}, "weight": 100},
            {"destination": {"host": "web-stable", "subset": "canary"}, "weight": 0}]}]},
    });
    let routing = "        istio:\n          virtualService: {name: web, routes: [primary]}\n          destinationRule: {name: web, canarySubsetName: canary, stableSubsetName: stable}\n";
    let w = Walk::start("e2e-istio-subset", vec![dr, vs], routing, WEIGHT_STEPS).await;
    w.update().await;
    let r = w.paused_at(1).await;
    let v2 = current_hash(&r).unwrap();
    assert_ne!(v2, w.v1);
    w.expect(
        "virtualservices",
        "web",
        istio_subsets,
        (20, 80),
        "at step 1",
    )
    .await;
    w.verified(Some(true), "at step 1").await;
    let dr = w.get("destinationrules", "web").await;
    assert_eq!(subset_hash(&dr, "canary"), Some(v2.clone()), "{dr:#}");
    assert_eq!(subset_hash(&dr, "stable"), Some(w.v1.clone()), "{dr:#}");
    assert_eq!(
        dr["spec"]["subsets"][0]["labels"]["app"],
        json!("web"),
        "the user's labels stay: {dr:#}"
    );
    assert_upstream("istio-destinationrule.yaml", &dr);

    w.resume().await;
    w.paused_at(3).await;
    w.expect(
        "virtualservices",
        "web",
        istio_subsets,
        (50, 50),
        "at step 3",
    )
    .await;
    w.abort().await;
    let vs = w
        .expect(
            "virtualservices",
            "web",
            istio_subsets,
            (0, 100),
            "after abort",
        )
        .await;
    assert_upstream("istio-virtualservice.yaml", &vs);
    let dr = w.get("destinationrules", "web").await;
    assert_eq!(subset_hash(&dr, "stable"), Some(w.v1.clone()), "{dr:#}");
    w.stop().await;
}

fn http_route_names(vs: &Value) -> Vec<String> {
    vs["spec"]["http"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn istio_header_and_mirror_steps_come_before_user_routes_and_go_on_abort() {
    let vs = json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "web-stable"}, "weight": 100}, {"destination": {"host": "web-canary"}, "weight": 0}]}]},
    });
    let routing = "        managedRoutes: [{name: canary-header}, {name: canary-mirror}]\n        istio: {virtualService: {name: web, routes: [primary]}}\n";
    let steps = "        - setHeaderRoute:\n            name: canary-header\n            match:\n            - headerName: x-canary\n              headerValue: {exact: \"yes\"}\n        - setWeight: 20\n        - setMirrorRoute:\n            name: canary-mirror\n            percentage: 30\n            match:\n            - path: {prefix: /api}\n        - pause: {}\n";
    let w = Walk::start("e2e-istio-routes", vec![vs], routing, steps).await;
    assert_eq!(
        http_route_names(&w.get("virtualservices", "web").await),
        ["primary"],
        "no managed routes on the first deploy"
    );
    w.update().await;
    w.paused_at(3).await;
    let vs = w
        .expect(
            "virtualservices",
            "web",
            istio_primary,
            (20, 80),
            "at the pause",
        )
        .await;
    assert_eq!(
        http_route_names(&vs),
        ["canary-header", "canary-mirror", "primary"],
        "managed routes first, in managedRoutes order: {vs:#}"
    );
    let header = &vs["spec"]["http"][0];
    assert_eq!(
        header["match"][0]["headers"]["x-canary"],
        json!({"exact": "yes"}),
        "{vs:#}"
    );
    assert_eq!(
        header["route"],
        json!([{"destination": {"host": "web-canary"}, "weight": 100}])
    );
    let mirror = &vs["spec"]["http"][1];
    assert_eq!(
        mirror["match"][0]["uri"],
        json!({"prefix": "/api"}),
        "{vs:#}"
    );
    assert_eq!(mirror["mirror"]["host"], json!("web-canary"), "{vs:#}");
    assert_eq!(mirror["mirrorPercentage"]["value"].as_f64(), Some(30.0));
    assert_upstream("istio-virtualservice.yaml", &vs);

    w.abort().await;
    let vs = w
        .expect(
            "virtualservices",
            "web",
            istio_clean,
            (0, 100),
            "after abort",
        )
        .await;
    assert_upstream("istio-virtualservice.yaml", &vs);
    w.stop().await;
}

/// The weights of the user's route named `primary`.
fn istio_primary(v: &Value) -> Option<(i64, i64)> {
    let route = &v["spec"]["http"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == json!("primary"))?["route"];
    Some((
        weight_of(route, "/destination/host", "web-canary")?,
        weight_of(route, "/destination/host", "web-stable")?,
    ))
}

/// As `istio_primary`, once every managed route is gone.
fn istio_clean(v: &Value) -> Option<(i64, i64)> {
    (http_route_names(v) == ["primary"]).then(|| istio_primary(v))?
}

fn canary_weight(r: &sluice::crd::Rollout) -> Option<i32> {
    Some(
        r.status
            .as_ref()?
            .canary
            .as_ref()?
            .weights
            .as_ref()?
            .canary
            .weight,
    )
}

/// Each file of `examples/traffic/` is a working Rollout: `kubectl apply` creates it on the
/// playground, the controller (with the example plugin registered for `plugin.yaml`) brings the
/// first revision up, walks a new revision to its first weighted pause (20 %) through the
/// example's router, and an abort puts the weight back to 0. Every provider has an example.
#[tokio::test]
async fn every_traffic_example_works_under_the_controller() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, plugin_router::app()).await.unwrap() });
    let h = Harness::start().await;
    install_routing_crds(&h.client).await;
    let controller = controller_with_plugin(&h, &address);
    let files = traffic_common::traffic_examples();
    let mut providers = std::collections::BTreeSet::new();
    for (i, file) in files.iter().enumerate() {
        let ns: &'static str = Box::leak(format!("example-{i}").into_boxed_str());
        let what = file.file_name().unwrap().to_string_lossy().into_owned();
        h.namespace(ns).await;
        kubectl_json(
            h.playground.kubeconfig_path(),
            &["apply", "-n", ns, "-f", file.to_str().unwrap()],
        )
        .await;
        let r = h
            .wait_rollout(
                ns,
                "shop",
                &format!("{what}: first revision healthy"),
                |r| phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some(),
            )
            .await;
        let routing = r
            .spec
            .strategy
            .canary
            .as_ref()
            .unwrap()
            .traffic_routing
            .clone();
        let routing = serde_json::to_value(routing.unwrap()).unwrap();
        for p in ["gatewayAPI", "istio", "smi", "nginx", "traefik", "plugins"] {
            if routing.get(p).is_some() {
                providers.insert(p);
            }
        }
        h.set_image(ns, "shop", "ghcr.io/example/shop:2.0.0").await;
        h.wait_rollout(ns, "shop", &format!("{what}: paused at 20 %"), |r| {
            paused_on_step(r) && canary_weight(r) == Some(20)
        })
        .await;
        h.patch_status(ns, "shop", json!({"abort": true})).await;
        h.wait_rollout(ns, "shop", &format!("{what}: aborted to 0 %"), |r| {
            phase(r) == Some(RolloutPhase::Degraded) && canary_weight(r) == Some(0)
        })
        .await;
    }
    assert_eq!(
        providers.into_iter().collect::<Vec<_>>(),
        ["gatewayAPI", "istio", "nginx", "plugins", "smi", "traefik"],
        "one example per provider in {files:?}"
    );
    controller.stop().await;
}

/// The canary Ingress's weight, once its header annotations are `want` (`None`: absent).
fn nginx_with_header(v: &Value, want: Option<(&str, &str)>) -> Option<(i64, i64)> {
    let a = &v["metadata"]["annotations"];
    let got = a["nginx.ingress.kubernetes.io/canary-by-header"]
        .as_str()
        .zip(a["nginx.ingress.kubernetes.io/canary-by-header-value"].as_str());
    (got == want).then(|| nginx(v))?
}

#[tokio::test]
async fn nginx_header_step_sets_canary_by_header_and_abort_removes_it() {
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-stable", "port": {"number": 80}}}}]}}]},
    });
    let routing =
        "        managedRoutes: [{name: canary-header}]\n        nginx: {stableIngress: web}\n";
    let steps = "        - setHeaderRoute:\n            name: canary-header\n            match:\n            - headerName: x-canary\n              headerValue: {exact: \"yes\"}\n        - setWeight: 20\n        - pause: {}\n";
    let w = Walk::start("e2e-nginx-header", vec![ingress], routing, steps).await;
    w.update().await;
    w.paused_at(2).await;
    let with_header: Reader = |v| nginx_with_header(v, Some(("x-canary", "yes")));
    w.expect(
        "ingresses",
        "web-web-canary",
        with_header,
        (20, 80),
        "at the pause",
    )
    .await;
    w.abort().await;
    let without: Reader = |v| nginx_with_header(v, None);
    let after = w
        .expect(
            "ingresses",
            "web-web-canary",
            without,
            (0, 100),
            "after abort",
        )
        .await;
    traffic_common::assert_valid_ingress(&after);
    let stable = w.get("ingresses", "web").await;
    assert!(
        !stable.to_string().contains("canary"),
        "the stable Ingress is never touched: {stable:#}"
    );
    w.stop().await;
}
