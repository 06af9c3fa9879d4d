//! Dashboard bench: 1,000 canary Rollouts (with statuses) on a playground without a controller,
//! the real `kubectl-sluice dashboard` process over them, and headless `chromium` on its
//! overview. Prints the server's start-up to a synced first answer, its resident memory and CPU
//! time, the page's first meaningful paint (all 1,000 rows on screen), and the delay from a
//! status change (a PATCH to the API server) to the page showing it. Figures, not assertions.
//!
//! Run with `cargo bench --bench dashboard` (needs `chromium` and `chromedriver`); the number of
//! Rollouts can be changed with `SLUICE_BENCH_ROLLOUTS`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/dashboard_support/mod.rs"]
mod dashboard_support;

use dashboard_support::{Dashboard, browser};
use fantoccini::Client;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sluice::crd::Rollout;
use sluice::playground::{Playground, PlaygroundOptions};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NS: &str = "bench";
const CHANGES: usize = 30;
const PAINTS: usize = 5;

fn main() {
    let rollouts: usize = std::env::var("SLUICE_BENCH_ROLLOUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(rollouts));
}

async fn bench(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let playground = Playground::start(PlaygroundOptions {
        kubeconfig: Some(kubeconfig.clone()),
        ..PlaygroundOptions::default()
    })
    .await
    .unwrap();
    let client = playground.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in sluice::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<Rollout> = Api::namespaced(client.clone(), NS);
    let created = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move { create(&api, i).await }
        })
        .await;
    println!(
        "dashboard bench: {n} Rollouts with statuses created in {:.1} s",
        created.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let dashboard = Dashboard::start(&kubeconfig, NS, false).await;
    let ready = started.elapsed();
    let pid = dashboard.pid().unwrap();
    let http = reqwest::Client::new();
    let overview: serde_json::Value = http
        .get(format!("{}/api/overview", dashboard.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = overview["rollouts"].as_array().unwrap().len();
    assert_eq!(rows, n, "the overview lists every Rollout");
    let (cpu_start, rss_start) = (cpu_ms(pid), rss_kib(pid));
    println!(
        "server: start-up to a synced answer {:.0} ms; after sync RSS {:.1} MiB, CPU {} ms",
        ready.as_secs_f64() * 1e3,
        rss_start as f64 / 1024.0,
        cpu_start
    );

    let (c, _turn) = browser().await;
    let mut paints = Vec::new();
    for _ in 0..PAINTS {
        c.goto("about:blank").await.unwrap();
        c.goto(&dashboard.url()).await.unwrap();
        paints.push(first_paint(&c, n).await);
    }
    let fmp: Vec<f64> = paints.iter().map(|p| p.0).collect();
    let fcp: Vec<f64> = paints.iter().map(|p| p.1).collect();
    println!(
        "page: first contentful paint median {:.0} ms; first meaningful paint ({n} rows) median {:.0} ms (min {:.0}, max {:.0}) over {PAINTS} loads",
        median(&fcp),
        median(&fmp),
        fmp.iter().copied().fold(f64::INFINITY, f64::min),
        fmp.iter().copied().fold(0.0, f64::max)
    );

    let cpu_before = cpu_ms(pid);
    let mut delays = Vec::new();
    for i in 0..CHANGES {
        let name = format!("app-{:04}", (i * 33) % n);
        delays.push(change_delay(&c, &api, &name).await);
    }
    let cpu_changes = cpu_ms(pid) - cpu_before;
    delays.sort_by(f64::total_cmp);
    println!(
        "status change to page: median {:.0} ms, p90 {:.0} ms, max {:.0} ms over {CHANGES} changes (1 page open); server CPU {:.1} ms per change",
        median(&delays),
        delays[(delays.len() * 9) / 10],
        delays[delays.len() - 1],
        cpu_changes as f64 / CHANGES as f64
    );
    println!(
        "server at the end: RSS {:.1} MiB, CPU {} ms in all",
        rss_kib(pid) as f64 / 1024.0,
        cpu_ms(pid)
    );
    drop(dashboard);
    drop(playground);
}

async fn create(api: &Api<Rollout>, i: usize) {
    let name = format!("app-{i:04}");
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "example/app:2"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]}}
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &rollout).await.unwrap();
    let status = json!({"status": {
        "phase": "Progressing", "currentStepIndex": (i % 4) as i32,
        "currentPodHash": "abc123", "stableRS": "def456",
        "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}}
    }});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// Waits until all `n` rows are on screen; (the page's own first-data mark, first contentful
/// paint), both in ms since navigation.
async fn first_paint(c: &Client, n: usize) -> (f64, f64) {
    let script = r##"
const [n, done] = arguments;
const ready = () => document.querySelectorAll("#results tbody tr").length === n;
const report = () => done([
  performance.getEntriesByName("sluice-first-data")[0].startTime,
  (performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime,
]);
if (ready()) { requestAnimationFrame(report); }
else new MutationObserver((_, o) => { if (ready()) { o.disconnect(); requestAnimationFrame(report); } })
  .observe(document.body, {subtree: true, childList: true});
"##;
    let out = c.execute_async(script, vec![json!(n)]).await.unwrap();
    (out[0].as_f64().unwrap(), out[1].as_f64().unwrap())
}

/// Marks one Rollout Degraded through the API and returns the ms until its row says so.
async fn change_delay(c: &Client, api: &Api<Rollout>, name: &str) -> f64 {
    let script = r##"
const [sel, done] = arguments;
const shown = () => { const el = document.querySelector(sel); return el && el.textContent.includes("Degraded"); };
new MutationObserver((_, o) => { if (shown()) { o.disconnect(); done(Date.now()); } })
  .observe(document.getElementById("main"), {subtree: true, childList: true, characterData: true});
"##;
    let selector = format!("tr[data-rollout=\"{NS}/{name}\"] .phase");
    let watch = c.execute_async(script, vec![json!(selector)]);
    let patch = async {
        // Let the observer be installed before the change is made.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t0 = now_ms();
        let status = json!({"status": {"phase": "Degraded"}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
        t0
    };
    let (shown, t0) = tokio::join!(watch, patch);
    shown.unwrap().as_f64().unwrap() - t0
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// User plus system CPU time of `pid`, in ms (`/proc/PID/stat` fields 14 and 15, in ticks).
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(") ").unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz: u64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100);
    ticks * 1000 / hz
}

/// Resident memory of `pid` in KiB (`VmRSS` in `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
