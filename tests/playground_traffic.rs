//! The playground's demo traffic read back through a real `prometheus` scraping it: request
//! shares follow the weights written into an HTTPRoute (and a change of them), each version's
//! latency histogram and error rate follow its annotations, and pods that are not ready get no
//! traffic. No Rollout: Services, pods and the HTTPRoute are created through the API, as a
//! router and the ReplicaSet controller would. One playground and one Prometheus per binary;
//! each test has a namespace of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers panic on bad input by design.

mod kubectl_support;
mod prometheus_support;
mod traffic_common;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use prometheus_support::Prometheus;
use serde_json::{Value, json};
use sluice::playground::simulation::{BEHAVIOUR_LABEL, SimulationOptions};
use sluice::playground::traffic::{
    ERROR_RATE_ANNOTATION, LATENCY_MEDIAN_ANNOTATION, SERVE_ANNOTATION, TrafficOptions,
};
use sluice::playground::{Playground, PlaygroundOptions};
use std::sync::OnceLock;

/// Requests per second per entry point: enough for tight ratios within a few seconds.
const RATE: f64 = 2000.0;
const HTTPROUTE_CRD: &str = include_str!("../examples/playground/gateway-api-crd.yaml");

struct Shared {
    base_url: String,
    prometheus: Prometheus,
}

/// The playground (on a runtime of its own, which outlives every test's) and the Prometheus
/// scraping its demo traffic.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let options = PlaygroundOptions {
                    simulation: SimulationOptions {
                        traffic: Some(TrafficOptions {
                            requests_per_second: RATE,
                            ..TrafficOptions::default()
                        }),
                        ..SimulationOptions::default()
                    },
                    ..PlaygroundOptions::default()
                };
                let playground = Playground::start(options).await.unwrap();
                let crds = Api::<CustomResourceDefinition>::all(playground.client());
                for crd in crds_to_install() {
                    crds.create(&PostParams::default(), &crd).await.unwrap();
                }
                let target = playground.demo_metrics_target().unwrap();
                tx.send((playground.base_url().to_string(), target))
                    .unwrap();
                std::future::pending::<()>().await;
            });
        });
        let (base_url, target) = rx.recv().unwrap();
        let prometheus = Prometheus::start_scraping(target.parse().unwrap());
        Shared {
            base_url,
            prometheus,
        }
    })
}

/// The demo's HTTPRoute CRD and Istio's own VirtualService and DestinationRule CRDs.
fn crds_to_install() -> Vec<CustomResourceDefinition> {
    let mut texts = vec![HTTPROUTE_CRD.to_string()];
    for file in ["istio-virtualservice.yaml", "istio-destinationrule.yaml"] {
        let path = traffic_common::upstream_dir().join(file);
        texts.push(
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        );
    }
    texts
        .iter()
        .flat_map(|text| {
            serde_yaml::Deserializer::from_str(text)
                .map(|doc| {
                    let value: Value = serde::Deserialize::deserialize(doc).unwrap();
                    serde_json::from_value(value).unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A client of the shared playground on this test's runtime, and a fresh namespace.
async fn client(namespace: &str) -> kube::Client {
    let mut config = kube::Config::new(shared().base_url.parse().unwrap());
    config.default_namespace = namespace.into();
    let client = kube::Client::try_from(config).unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    client
}

async fn service(client: &kube::Client, name: &str, hash: &str) {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": "web", "rollouts-pod-template-hash": hash}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    Api::<Service>::default_namespaced(client.clone())
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
}

/// A demo pod of version `hash` with extra annotations and labels.
async fn pod(client: &kube::Client, name: &str, hash: &str, annotations: Value, labels: Value) {
    let mut all_annotations = json!({SERVE_ANNOTATION: "true"});
    all_annotations
        .as_object_mut()
        .unwrap()
        .extend(annotations.as_object().unwrap().clone());
    let mut all_labels = json!({"app": "web", "rollouts-pod-template-hash": hash});
    all_labels
        .as_object_mut()
        .unwrap()
        .extend(labels.as_object().unwrap().clone());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": all_labels, "annotations": all_annotations},
        "spec": {"containers": [{"name": "web", "image": "example/web:1"}]},
    }))
    .unwrap();
    Api::<Pod>::default_namespaced(client.clone())
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

fn routes(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::default_namespaced_with(client.clone(), &ApiResource::from_gvk(&gvk))
}

fn backend_refs(weights: &[(&str, u32)]) -> Value {
    let refs: Vec<Value> = weights
        .iter()
        .map(|(name, weight)| json!({"name": name, "port": 80, "weight": weight}))
        .collect();
    json!({"spec": {"parentRefs": [{"name": "gateway"}], "rules": [{"backendRefs": refs}]}})
}

/// A PromQL answer's values by one label.
fn by_label(result: &Value, label: &str) -> Vec<(String, f64)> {
    result
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let key = s["metric"][label].as_str().unwrap_or_default().to_string();
            let value = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
            (key, value)
        })
        .collect()
}

fn value_of(result: &Value, label: &str, key: &str) -> Option<f64> {
    by_label(result, label)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Waits until version `v2`'s share of the namespace's request rate is `want` ± `tolerance`.
async fn wait_for_share(namespace: &str, want: f64, tolerance: f64) {
    let query = format!(
        r#"sum by (rollouts_pod_template_hash) (rate(demo_requests_total{{namespace="{namespace}"}}[3s])) / scalar(sum(rate(demo_requests_total{{namespace="{namespace}"}}[3s])))"#
    );
    shared()
        .prometheus
        .wait_for(&query, |r| {
            value_of(r, "rollouts_pod_template_hash", "v2")
                .is_some_and(|s| (s - want).abs() < tolerance)
        })
        .await;
}

#[tokio::test]
async fn request_shares_follow_the_weights_written_into_the_httproute() {
    let ns = "weights";
    let client = client(ns).await;
    service(&client, "web-stable", "v1").await;
    service(&client, "web-canary", "v2").await;
    for name in ["stable-a", "stable-b"] {
        pod(&client, name, "v1", json!({}), json!({})).await;
    }
    pod(&client, "canary-a", "v2", json!({}), json!({})).await;
    let mut route = DynamicObject::new(
        "web",
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "gateway.networking.k8s.io",
            "v1",
            "HTTPRoute",
        )),
    );
    route.data = backend_refs(&[("web-stable", 80), ("web-canary", 20)]);
    routes(&client)
        .create(&PostParams::default(), &route)
        .await
        .unwrap();
    wait_for_share(ns, 0.2, 0.05).await;

    // The two stable pods split stable's 80 % evenly.
    let per_pod = format!(
        r#"sum by (pod) (rate(demo_requests_total{{namespace="{ns}"}}[3s])) / scalar(sum(rate(demo_requests_total{{namespace="{ns}"}}[3s])))"#
    );
    let result = shared()
        .prometheus
        .wait_for(&per_pod, |r| by_label(r, "pod").len() == 3)
        .await;
    for name in ["stable-a", "stable-b"] {
        let share = value_of(&result, "pod", name).unwrap();
        assert!(
            (share - 0.4).abs() < 0.07,
            "{name}: {share} of the traffic, not 0.4: {result}"
        );
    }

    routes(&client)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(backend_refs(&[("web-stable", 50), ("web-canary", 50)])),
        )
        .await
        .unwrap();
    wait_for_share(ns, 0.5, 0.05).await;
    routes(&client)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(backend_refs(&[("web-stable", 100), ("web-canary", 0)])),
        )
        .await
        .unwrap();
    wait_for_share(ns, 0.0, 0.001).await;
}

#[tokio::test]
async fn each_version_serves_the_latency_its_annotation_sets() {
    let ns = "latency";
    let client = client(ns).await;
    service(&client, "fast", "v1").await;
    service(&client, "slow", "v2").await;
    pod(
        &client,
        "fast",
        "v1",
        json!({LATENCY_MEDIAN_ANNOTATION: "100"}),
        json!({}),
    )
    .await;
    pod(
        &client,
        "slow",
        "v2",
        json!({LATENCY_MEDIAN_ANNOTATION: "200"}),
        json!({}),
    )
    .await;
    let query = format!(
        r#"histogram_quantile(0.5, sum by (le, rollouts_pod_template_hash) (rate(demo_request_duration_seconds_bucket{{namespace="{ns}"}}[5s])))"#
    );
    let close = |r: &Value, hash: &str, want: f64| {
        value_of(r, "rollouts_pod_template_hash", hash)
            .is_some_and(|m| (m - want).abs() < want * 0.1)
    };
    shared()
        .prometheus
        .wait_for(&query, |r| close(r, "v1", 0.1) && close(r, "v2", 0.2))
        .await;
}

#[tokio::test]
async fn errors_come_at_the_annotated_rate() {
    let ns = "errors";
    let client = client(ns).await;
    service(&client, "good", "v1").await;
    service(&client, "bad", "v2").await;
    pod(
        &client,
        "good",
        "v1",
        json!({ERROR_RATE_ANNOTATION: "0"}),
        json!({}),
    )
    .await;
    pod(
        &client,
        "bad",
        "v2",
        json!({ERROR_RATE_ANNOTATION: "0.2"}),
        json!({}),
    )
    .await;
    let query = format!(
        r#"sum by (rollouts_pod_template_hash) (increase(demo_request_errors_total{{namespace="{ns}"}}[1h])) / sum by (rollouts_pod_template_hash) (increase(demo_requests_total{{namespace="{ns}"}}[1h]))"#
    );
    let enough = format!(
        r#"sum(demo_requests_total{{namespace="{ns}",rollouts_pod_template_hash="v2"}}) > 5000"#
    );
    shared()
        .prometheus
        .wait_for(&enough, |r| by_label(r, "x").len() == 1)
        .await;
    let result = shared()
        .prometheus
        .wait_for(&query, |r| {
            by_label(r, "rollouts_pod_template_hash").len() == 2
        })
        .await;
    assert_eq!(
        value_of(&result, "rollouts_pod_template_hash", "v1"),
        Some(0.0),
        "{result}"
    );
    let bad = value_of(&result, "rollouts_pod_template_hash", "v2").unwrap();
    assert!(
        (bad - 0.2).abs() < 0.03,
        "error ratio {bad}, not 0.2: {result}"
    );
}

#[tokio::test]
async fn pods_that_are_not_ready_get_no_traffic() {
    let ns = "readiness";
    let client = client(ns).await;
    service(&client, "web", "v1").await;
    pod(&client, "ready", "v1", json!({}), json!({})).await;
    pod(
        &client,
        "unready",
        "v1",
        json!({}),
        json!({BEHAVIOUR_LABEL: "never-ready"}),
    )
    .await;
    let query = format!(r#"sum by (pod) (demo_requests_total{{namespace="{ns}"}})"#);
    let result = shared()
        .prometheus
        .wait_for(&query, |r| {
            value_of(r, "pod", "ready").is_some_and(|n| n > 2000.0)
        })
        .await;
    assert_eq!(value_of(&result, "pod", "unready"), Some(0.0), "{result}");
}

#[tokio::test]
async fn istio_subsets_split_one_service_by_the_virtualservice_weights() {
    let ns = "istio";
    let client = client(ns).await;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    Api::<Service>::default_namespaced(client.clone())
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    for (name, hash) in [("v1-a", "v1"), ("v1-b", "v1"), ("v2-a", "v2")] {
        pod(&client, name, hash, json!({}), json!({})).await;
    }
    let subset = |name: &str| json!({"name": name, "labels": {"rollouts-pod-template-hash": name}});
    let istio = |kind: &str, name: &str, spec: Value| {
        let gvk = GroupVersionKind::gvk("networking.istio.io", "v1beta1", kind);
        let mut obj = DynamicObject::new(name, &ApiResource::from_gvk(&gvk));
        obj.data = json!({"spec": spec});
        (
            Api::<DynamicObject>::default_namespaced_with(
                client.clone(),
                &ApiResource::from_gvk(&gvk),
            ),
            obj,
        )
    };
    let (rules, rule) = istio(
        "DestinationRule",
        "web",
        json!({"host": "web", "subsets": [subset("v1"), subset("v2")]}),
    );
    rules.create(&PostParams::default(), &rule).await.unwrap();
    let (services, vs) = istio(
        "VirtualService",
        "web",
        json!({"hosts": ["web"], "http": [{"route": [
        {"destination": {"host": "web", "subset": "v1"}, "weight": 70},
        {"destination": {"host": "web.istio.svc.cluster.local", "subset": "v2"}, "weight": 30}]}]}),
    );
    services.create(&PostParams::default(), &vs).await.unwrap();
    wait_for_share(ns, 0.3, 0.05).await;
}
