//! `sluice bench`: the scale bench. Starts the playground in this process and the controller as
//! a child process (so its resident memory is its own), creates N canary Rollouts, takes each
//! through one update, and prints reconciles per second, the lag between a pause ending and the
//! next step being applied (p50/p99), API writes per completed rollout, writes per no-op
//! reconcile and the controller's resident memory. Progress is followed through one watch (a
//! reflector), not by listing every Rollout in a loop, so the bench's own reads do not compete
//! with the controller for the server. Figures, not assertions. A CLI entry point.

pub mod analysis;
pub mod faults;

use crate::crd::{Rollout, RolloutPhase};
use crate::playground::{Playground, PlaygroundOptions, SimulationOptions};
use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const NAMESPACE: &str = "default";
/// The pause every bench Rollout waits on; the lag is measured from its end.
const PAUSE: Duration = Duration::from_secs(2);

/// Options of the bench.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Number of Rollouts.
    #[arg(long, default_value_t = 1000)]
    pub rollouts: usize,
    /// Reconciles running at once in the controller.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// Give up after this many seconds per phase.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Start the controller through this program (a profiler such as `heaptrack`), which gets
    /// the controller's command line as its arguments. Memory is then read from the wrapper.
    #[arg(long)]
    pub controller_wrapper: Option<String>,
}

fn rollout(name: &str, image: &str) -> anyhow::Result<Rollout> {
    rollout_with(
        name,
        image,
        2,
        json!({"canary": {
            "maxSurge": 1, "maxUnavailable": 0,
            "steps": [
                {"setWeight": 50},
                {"pause": {"duration": format!("{}s", PAUSE.as_secs())}}
            ]
        }}),
    )
}

/// A bench Rollout in the bench namespace: `replicas` pods of `image` and `strategy`.
pub(crate) fn rollout_with(
    name: &str,
    image: &str,
    replicas: i32,
    strategy: serde_json::Value,
) -> anyhow::Result<Rollout> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": strategy
        }
    }))?)
}

/// The benches' playground: a long watch history (every Rollout's events) and pods ready
/// almost at once, so the controller, not the simulation, is what is measured.
pub(crate) fn playground_options() -> PlaygroundOptions {
    PlaygroundOptions {
        history_limit: 200_000,
        simulation: SimulationOptions {
            pod_ready_delay: Duration::from_millis(20),
            // No demo traffic: its scan of every pod each tick would count in the figures.
            traffic: None,
            ..SimulationOptions::default()
        },
        ..PlaygroundOptions::default()
    }
}

/// Run the bench.
///
/// # Errors
/// When the playground or the controller cannot start, or a phase times out.
pub async fn run(args: BenchArgs, sluice_binary: &Path) -> anyhow::Result<()> {
    let playground = Playground::start(playground_options()).await?;
    let result = bench(&playground, &args, sluice_binary).await;
    playground.shutdown().await;
    result
}

async fn bench(
    playground: &crate::playground::PlaygroundHandle,
    args: &BenchArgs,
    sluice_binary: &Path,
) -> anyhow::Result<()> {
    let limit = Duration::from_secs(args.timeout);
    let (rollouts, store, follow) = install_and_follow(playground).await?;
    let n = args.rollouts;
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let rollouts = rollouts.clone();
            async move {
                let r = rollout(&format!("r{i:05}"), "example/app:1")?;
                rollouts.create(&PostParams::default(), &r).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    println!(
        "created {n} Rollouts in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let port = free_port()?;
    let mut command = match &args.controller_wrapper {
        Some(wrapper) => {
            let mut command = tokio::process::Command::new(wrapper);
            command.arg(sluice_binary);
            command
        }
        None => tokio::process::Command::new(sluice_binary),
    };
    let mut child = command
        .args([
            "controller",
            "--kubeconfig",
            &playground.kubeconfig_path().display().to_string(),
            "--leader-elect=false",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--concurrency",
            &args.concurrency.to_string(),
            "--qps",
            "100000",
            "--burst",
            "100000",
            "--log",
            "warn",
        ])
        .kill_on_drop(true)
        .spawn()
        .context("starting the controller process")?;
    let pid = child.id().context("controller pid")?;
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let http = reqwest::Client::new();

    // Phase 1: every Rollout to Healthy on its first revision.
    let t = Instant::now();
    wait_all(&store, n, limit, |r| healthy(r, None)).await?;
    let first = t.elapsed();
    let m1 = scrape(&http, &metrics_url).await?;
    println!(
        "first revision: {n} Rollouts Healthy in {:.1}s; {} reconciles ({:.0}/s), {} writes ({:.1} per Rollout)",
        first.as_secs_f64(),
        m1.reconciles,
        m1.reconciles as f64 / first.as_secs_f64(),
        m1.writes,
        m1.writes as f64 / n as f64
    );

    // Phase 2: no-op reconciles. Touch an annotation on every Rollout; nothing else changes.
    let before = scrape(&http, &metrics_url).await?;
    touch_all(&rollouts, n).await?;
    let deadline = Instant::now() + limit;
    let after = loop {
        let m = scrape(&http, &metrics_url).await?;
        if m.reconciles >= before.reconciles + n as u64 || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let noop_reconciles = after.reconciles - before.reconciles;
    println!(
        "no-op: {noop_reconciles} reconciles made {} writes ({:.3} per reconcile)",
        after.writes - before.writes,
        (after.writes - before.writes) as f64 / noop_reconciles.max(1) as f64
    );

    // Phase 3: one canary update each, measuring the lag after the pause.
    let lags: Arc<Mutex<HashMap<String, Duration>>> = Arc::default();
    let watch = tokio::spawn(record_lags(rollouts.clone(), lags.clone()));
    let before = scrape(&http, &metrics_url).await?;
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let rollouts = rollouts.clone();
            async move {
                let name = format!("r{i:05}");
                let r = rollout(&name, "example/app:2")?;
                let patch = json!({"spec": {"template": r.spec.template}});
                rollouts
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    wait_all(&store, n, limit, |r| healthy(r, Some("example/app:2"))).await?;
    let update = t.elapsed();
    let after = scrape(&http, &metrics_url).await?;
    watch.abort();
    let reconciles = after.reconciles - before.reconciles;
    println!(
        "update: {n} canaries promoted in {:.1}s; {reconciles} reconciles ({:.0}/s); {:.1} writes per completed rollout",
        update.as_secs_f64(),
        reconciles as f64 / update.as_secs_f64(),
        (after.writes - before.writes) as f64 / n as f64
    );
    let mut lags: Vec<Duration> = lags
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .copied()
        .collect();
    lags.sort();
    if lags.is_empty() {
        println!("lag: no pause end observed");
    } else {
        let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "lag from pause end to next step applied ({} samples): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            lags.len(),
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            lags[lags.len() - 1].as_secs_f64() * 1000.0
        );
    }
    println!(
        "controller resident memory: {:.1} MiB (peak {:.1} MiB)",
        rss_kib(pid, "VmRSS:") as f64 / 1024.0,
        rss_kib(pid, "VmHWM:") as f64 / 1024.0
    );
    println!(
        "load average (1/5/15 min) at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    follow.abort();
    child.kill().await.ok();
    Ok(())
}

/// Installs the CRDs and follows the bench namespace's Rollouts through one watch: their Api,
/// the store the watch fills, and the task to abort when done.
pub(crate) async fn install_and_follow(
    playground: &crate::playground::PlaygroundHandle,
) -> anyhow::Result<(Api<Rollout>, Store<Rollout>, tokio::task::JoinHandle<()>)> {
    let client = playground.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::crd::crds() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    let rollouts: Api<Rollout> = Api::namespaced(client, NAMESPACE);
    let (store, writer) = reflector::store();
    let follow = tokio::spawn(
        reflector::reflector(
            writer,
            watcher(rollouts.clone(), watcher::Config::default()),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    Ok((rollouts, store, follow))
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub(crate) fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) fn healthy(r: &Rollout, image: Option<&str>) -> bool {
    let image_ok = image.is_none_or(|image| {
        r.spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.as_deref())
            == Some(image)
    });
    image_ok
        && r.status.as_ref().is_some_and(|s| {
            s.phase == Some(RolloutPhase::Healthy)
                && s.stable_rs.is_some()
                && s.stable_rs == s.current_pod_hash
                && s.observed_generation == r.metadata.generation
        })
}

pub(crate) async fn wait_all(
    store: &Store<Rollout>,
    n: usize,
    limit: Duration,
    done: impl Fn(&Rollout) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let state = store.state();
        let count = state.iter().filter(|r| done(r)).count();
        if count >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            let stuck = state.iter().find(|r| !done(r));
            bail!(
                "only {count}/{n} Rollouts got there in {}s; for example {}: {}",
                limit.as_secs(),
                stuck.map(|r| r.name_any()).unwrap_or_default(),
                serde_json::to_string(&stuck.and_then(|r| r.status.as_ref())).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn touch_all(rollouts: &Api<Rollout>, n: usize) -> anyhow::Result<()> {
    futures::stream::iter(0..n)
        .map(|i| {
            let rollouts = rollouts.clone();
            async move {
                let patch = json!({"metadata": {"annotations": {"bench/touched": "1"}}});
                rollouts
                    .patch(
                        &format!("r{i:05}"),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// Watch Rollouts; for each, remember its pause start and, when the step index moves past the
/// pause (the end of the steps: promotion), record how long after the pause's end that was
/// seen.
async fn record_lags(rollouts: Api<Rollout>, lags: Arc<Mutex<HashMap<String, Duration>>>) {
    let mut starts: HashMap<String, jiff::Timestamp> = HashMap::new();
    let stream = watcher(rollouts, watcher::Config::default());
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let Ok(watcher::Event::Apply(r) | watcher::Event::InitApply(r)) = event else {
            continue;
        };
        let Some(status) = r.status.as_ref() else {
            continue;
        };
        let name = r.name_any();
        if let Some(pause) = status.pause_conditions.first() {
            starts.insert(name.clone(), pause.start_time.0);
        }
        if status.current_step_index.unwrap_or(0) >= 2
            && let Some(start) = starts.remove(&name)
        {
            let due = start + jiff::SignedDuration::try_from(PAUSE).unwrap_or_default();
            let late = jiff::Timestamp::now().duration_since(due);
            let late = Duration::try_from(late).unwrap_or_default();
            lags.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name)
                .or_insert(late);
        }
    }
}

struct Scrape {
    reconciles: u64,
    writes: u64,
}

async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<Scrape> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        match http.get(url).send().await {
            Ok(response) => break response.text().await?,
            Err(error) if Instant::now() > deadline => return Err(error.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let mut scrape = Scrape {
        reconciles: 0,
        writes: 0,
    };
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if series.starts_with("sluice_reconciles_total") {
            scrape.reconciles += value as u64;
        } else if series.starts_with("sluice_api_requests_total")
            && !series.contains("verb=\"get\"")
            && !series.contains("verb=\"list\"")
            && !series.contains("verb=\"watch\"")
        {
            scrape.writes += value as u64;
        }
    }
    Ok(scrape)
}
