//! Playground scale bench: creates 10,000 custom resources and 20,000 ReplicaSets through the
//! HTTP API with the real `kube` client while 50 watches are open, and reports requests per
//! second, create-to-watch-delivery latency and resident memory. Figures, not assertions.
//!
//! Run with `cargo bench --bench playground`; sizes can be changed with
//! `SLUICE_BENCH_CRS`, `SLUICE_BENCH_REPLICASETS` and `SLUICE_BENCH_WATCHES`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::json;
use sluice::playground::{Playground, PlaygroundOptions, SimulationOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.bench.sluice.dev}
spec:
  group: bench.sluice.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: string, enum: [small, large]}
              replicas: {type: integer, minimum: 0, default: 1}
              image: {type: string}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

const NAMESPACES: usize = 10;
const CONCURRENCY: usize = 32;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1e6
}

/// Send a request and read the whole body, returning the status code. Raw HTTP through the
/// kube client's transport, so the figures measure the server rather than client-side decoding.
async fn send(client: &kube::Client, method: &str, path: &str, body: Vec<u8>) -> u16 {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
    status
}

/// The send time embedded in a watch line's `bench/sent-ns` annotation.
fn sent_ns(line: &[u8]) -> Option<u128> {
    let text = std::str::from_utf8(line).ok()?;
    let at = text.find("\"bench/sent-ns\":\"")? + "\"bench/sent-ns\":\"".len();
    text[at..].split('"').next()?.parse().ok()
}

/// Consume one raw watch, recording the delay between each object's send time and its
/// delivery, until `expected` events arrived.
async fn watch_task(
    client: kube::Client,
    path: String,
    expected: usize,
    delivered: Arc<AtomicUsize>,
) -> Vec<u128> {
    let req = http::Request::builder()
        .uri(format!(
            "{path}?watch=true&resourceVersion=0&timeoutSeconds=290"
        ))
        .body(kube::client::Body::empty())
        .unwrap();
    let mut body = client.send(req).await.unwrap().into_body();
    let mut latencies = Vec::with_capacity(expected);
    let mut buf: Vec<u8> = Vec::new();
    while latencies.len() < expected {
        let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await else {
            break;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if let Some(sent) = sent_ns(&line) {
                latencies.push(now_ns().saturating_sub(sent));
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    latencies
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let crs = env("SLUICE_BENCH_CRS", 10_000);
    let replicasets = env("SLUICE_BENCH_REPLICASETS", 20_000);
    let watches = env("SLUICE_BENCH_WATCHES", 50);
    let rss_start = rss_mib();
    let options = PlaygroundOptions {
        simulation: SimulationOptions::disabled(),
        ..PlaygroundOptions::default()
    };
    let pg = Playground::start(options).await.unwrap();
    let client = pg.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &serde_yaml::from_str(CRD).unwrap())
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    for i in 0..NAMESPACES {
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("bench-{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("bench.sluice.dev", "v1", "Widget"),
        "widgets",
    );
    let all_rs: Api<ReplicaSet> = Api::all(client.clone());

    let delivered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..watches {
        let d = delivered.clone();
        if i % 2 == 0 {
            tasks.push(tokio::spawn(watch_task(
                client.clone(),
                "/apis/bench.sluice.dev/v1/widgets".into(),
                crs,
                d,
            )));
        } else {
            tasks.push(tokio::spawn(watch_task(
                client.clone(),
                "/apis/apps/v1/replicasets".into(),
                replicasets,
                d,
            )));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!(
        "playground bench: {crs} custom resources, {replicasets} ReplicaSets, {watches} open watches, {CONCURRENCY} concurrent writers"
    );
    let started = Instant::now();
    let widget_apis: Vec<Api<DynamicObject>> = (0..NAMESPACES)
        .map(|i| Api::namespaced_with(client.clone(), &format!("bench-{i}"), &ar))
        .collect();
    futures::stream::iter(0..crs)
        .map(|i| {
            let client = client.clone();
            async move {
                let obj = json!({
                    "apiVersion": "bench.sluice.dev/v1", "kind": "Widget",
                    "metadata": {"name": format!("w-{i}"), "labels": {"shard": (i % 16).to_string()}, "annotations": {"bench/sent-ns": now_ns().to_string()}},
                    "spec": {"size": if i % 2 == 0 { "small" } else { "large" }, "image": format!("app:{i}")},
                });
                let path = format!("/apis/bench.sluice.dev/v1/namespaces/bench-{}/widgets", i % NAMESPACES);
                assert_eq!(send(&client, "POST", &path, serde_json::to_vec(&obj).unwrap()).await, 201);
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let cr_secs = started.elapsed().as_secs_f64();

    let rs_started = Instant::now();
    futures::stream::iter(0..replicasets)
        .map(|i| {
            let client = client.clone();
            async move {
                let rs = json!({
                    "metadata": {"name": format!("rs-{i}"), "labels": {"app": format!("app-{}", i % 100)}, "annotations": {"bench/sent-ns": now_ns().to_string()}},
                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": format!("app-{}", i % 100), "pod-template-hash": format!("h{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("app-{}", i % 100), "pod-template-hash": format!("h{i}")}},
                            "spec": {"containers": [{"name": "app", "image": format!("app:{i}"), "ports": [{"containerPort": 8080}]}]}}},
                });
                let path = format!("/apis/apps/v1/namespaces/bench-{}/replicasets", i % NAMESPACES);
                assert_eq!(send(&client, "POST", &path, serde_json::to_vec(&rs).unwrap()).await, 201);
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let rs_secs = rs_started.elapsed().as_secs_f64();
    let total_secs = started.elapsed().as_secs_f64();

    let expected_deliveries = (watches.div_ceil(2)) * crs + (watches / 2) * replicasets;
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.load(Ordering::Relaxed) < expected_deliveries && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_secs = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u128> = Vec::new();
    for t in tasks {
        t.abort();
    }
    // The tasks were aborted after delivery finished; re-collect figures from the counter.
    let got = delivered.load(Ordering::Relaxed);

    let list_started = Instant::now();
    let listed = all_rs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    let list_ms = list_started.elapsed().as_secs_f64() * 1e3;
    let sel_started = Instant::now();
    let selected = all_rs
        .list(&ListParams::default().labels("app=app-7"))
        .await
        .unwrap()
        .items
        .len();
    let sel_ms = sel_started.elapsed().as_secs_f64() * 1e3;

    // Fan-out latency on a quiet server: one write, every watch.
    let probe_delivered = Arc::new(AtomicUsize::new(0));
    let mut probes = Vec::new();
    for _ in 0..watches {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let d = probe_delivered.clone();
        probes.push(tokio::spawn(async move {
            let rv = api
                .list(&ListParams::default().limit(1))
                .await
                .unwrap()
                .metadata
                .resource_version
                .unwrap();
            let mut stream = api
                .watch(&WatchParams::default().timeout(60), &rv)
                .await
                .unwrap()
                .boxed();
            d.fetch_add(1, Ordering::Relaxed);
            let mut out = Vec::new();
            while out.len() < 20 {
                if let Ok(Some(WatchEvent::Added(obj))) = stream.try_next().await {
                    let sent: u128 = obj
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("bench/sent-ns"))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    out.push(now_ns().saturating_sub(sent));
                }
            }
            out
        }));
    }
    while probe_delivered.load(Ordering::Relaxed) < watches {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20 {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "bench.sluice.dev/v1", "kind": "Widget",
            "metadata": {"name": format!("probe-{i}"), "annotations": {"bench/sent-ns": now_ns().to_string()}},
            "spec": {"size": "small"},
        }))
        .unwrap();
        widget_apis[0]
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in probes {
        latencies.extend(p.await.unwrap());
    }
    latencies.sort_unstable();

    let rss_end = rss_mib();
    println!();
    println!(
        "  custom resource creates : {crs:>6} in {cr_secs:>6.2} s = {:>8.0} req/s",
        crs as f64 / cr_secs
    );
    println!(
        "  ReplicaSet creates      : {replicasets:>6} in {rs_secs:>6.2} s = {:>8.0} req/s",
        replicasets as f64 / rs_secs
    );
    println!(
        "  all creates             : {:>6} in {total_secs:>6.2} s = {:>8.0} req/s",
        crs + replicasets,
        (crs + replicasets) as f64 / total_secs
    );
    println!(
        "  watch deliveries        : {got} of {expected_deliveries} ({watches} watches), all delivered {:.2} s after the first create",
        drained_secs
    );
    println!(
        "  LIST of {listed} ReplicaSets: {list_ms:.0} ms; label-selected LIST ({selected} items): {sel_ms:.0} ms"
    );
    println!(
        "  fan-out latency (create sent -> delivered on each of {watches} watches, quiet server, {} samples): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "  resident memory (server and client in one process): {rss_start:.0} MiB at start, {rss_end:.0} MiB at end"
    );
    pg.shutdown().await;
}
