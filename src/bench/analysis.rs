//! `sluice bench-analysis`: the analysis bench. Starts the playground in this process, a small
//! exporter with one success-ratio series per Rollout, a real `prometheus` scraping it, and the
//! controller as a child process registered with that Prometheus; creates N canary Rollouts
//! whose update pauses with a background analysis (one Prometheus metric every `--interval`),
//! then watches the AnalysisRuns for `--seconds` and prints measurements per second, the delay
//! from a measurement being due to its result being written (p50/p99/max, as seen through a
//! watch), and the controller's CPU and resident memory. Figures, not assertions.

use super::{
    NAMESPACE, free_port, healthy, install_and_follow, playground_options, rollout_with, rss_kib,
    wait_all,
};
use crate::crd::{AnalysisRun, AnalysisTemplate, Rollout};
use crate::playground::Playground;
use crate::playground::prometheus::{PrometheusServer, find_binary};
use anyhow::Context as _;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of the analysis bench.
#[derive(Debug, clap::Args)]
pub struct AnalysisBenchArgs {
    /// Number of Rollouts, each with one running analysis.
    #[arg(long, default_value_t = 1000)]
    pub rollouts: usize,
    /// Seconds between two measurements of a run.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// Seconds to measure for once every run is running.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Give up after this many seconds per phase.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
}

fn rollout(name: &str, image: &str) -> anyhow::Result<Rollout> {
    rollout_with(
        name,
        image,
        1,
        json!({"canary": {
            "analysis": {
                "templates": [{"templateName": "bench-success"}],
                "args": [{"name": "rollout", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
            },
            "steps": [{"setWeight": 50}, {"pause": {}}]
        }}),
    )
}

fn template(interval: u64) -> anyhow::Result<AnalysisTemplate> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "bench-success", "namespace": NAMESPACE},
        "spec": {
            "args": [{"name": "rollout"}],
            "metrics": [{
                "name": "success-ratio",
                "interval": format!("{interval}s"),
                "successCondition": "result[0] >= 0.95",
                "provider": {"prometheus": {
                    "server": "bench",
                    "query": "bench_success_ratio{rollout=\"{{args.rollout}}\"}"
                }}
            }]
        }
    }))?)
}

/// Serves one `bench_success_ratio` series per Rollout; returns its `host:port`.
async fn exporter(n: usize) -> anyhow::Result<String> {
    let mut body = String::from("# TYPE bench_success_ratio gauge\n");
    for i in 0..n {
        body.push_str(&format!(
            "bench_success_ratio{{rollout=\"r{i:05}\"}} 0.99\n"
        ));
    }
    let body = Arc::new(body);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body.as_str().to_owned() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr.to_string())
}

/// Run the bench.
///
/// # Errors
/// When the playground, Prometheus or the controller cannot start, or a phase times out.
pub async fn run(args: AnalysisBenchArgs, sluice_binary: &Path) -> anyhow::Result<()> {
    let target = exporter(args.rollouts).await?;
    let prometheus =
        PrometheusServer::start(&find_binary()?, &[target], Duration::from_secs(1)).await?;
    let playground = Playground::start(playground_options()).await?;
    let result = bench(&playground, &prometheus.url(), &args, sluice_binary).await;
    playground.shutdown().await;
    prometheus.stop().await;
    result
}

/// Per run: measurements seen so far and the end of the latest.
type Seen = HashMap<String, (i32, Option<jiff::Timestamp>)>;

async fn bench(
    playground: &crate::playground::PlaygroundHandle,
    prometheus: &str,
    args: &AnalysisBenchArgs,
    sluice_binary: &Path,
) -> anyhow::Result<()> {
    let client = playground.client();
    let limit = Duration::from_secs(args.timeout);
    let (rollouts, store, follow) = install_and_follow(playground).await?;
    Api::<AnalysisTemplate>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &template(args.interval)?)
        .await?;
    let n = args.rollouts;
    for_each_rollout(n, |name| {
        let rollouts = rollouts.clone();
        async move {
            rollouts
                .create(&PostParams::default(), &rollout(&name, "example/app:1")?)
                .await?;
            anyhow::Ok(())
        }
    })
    .await?;

    let port = free_port()?;
    let mut child = tokio::process::Command::new(sluice_binary)
        .args([
            "controller",
            "--kubeconfig",
            &playground.kubeconfig_path().display().to_string(),
            "--leader-elect=false",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--qps",
            "100000",
            "--burst",
            "100000",
            "--log",
            "warn",
            "--prometheus",
            &format!("bench={prometheus}"),
        ])
        .kill_on_drop(true)
        .spawn()
        .context("starting the controller process")?;
    let pid = child.id().context("controller pid")?;
    wait_all(&store, n, limit, |r| healthy(r, None)).await?;

    // Every Rollout to its indefinite pause, with its background analysis running.
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let lags: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let watch = tokio::spawn(follow_runs(
        Api::namespaced(client.clone(), NAMESPACE),
        args.interval,
        seen.clone(),
        lags.clone(),
    ));
    for_each_rollout(n, |name| {
        let rollouts = rollouts.clone();
        async move {
            let r = rollout(&name, "example/app:2")?;
            let patch = json!({"spec": {"template": r.spec.template}});
            rollouts
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            anyhow::Ok(())
        }
    })
    .await?;
    let started = Instant::now();
    loop {
        let running = lock(&seen).values().filter(|(c, _)| *c > 0).count();
        if running >= n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "only {running}/{n} runs measured within {}s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{n} runs measuring after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    lock(&lags).clear();
    let count = |seen: &Seen| seen.values().map(|(c, _)| i64::from(*c)).sum::<i64>();
    let (before, cpu_before, t) = (count(&lock(&seen)), cpu_seconds(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (after, cpu_after, window) = (count(&lock(&seen)), cpu_seconds(pid), t.elapsed());
    watch.abort();
    follow.abort();
    report(
        n,
        args,
        after - before,
        window,
        cpu_after - cpu_before,
        pid,
        &lock(&lags),
    );
    child.kill().await.ok();
    Ok(())
}

fn report(
    n: usize,
    args: &AnalysisBenchArgs,
    measurements: i64,
    window: Duration,
    cpu: f64,
    pid: u32,
    lags: &[Duration],
) {
    let secs = window.as_secs_f64();
    println!(
        "{measurements} measurements in {secs:.1}s: {:.1}/s (expected {:.1}/s for {n} runs every {}s)",
        measurements as f64 / secs,
        n as f64 / args.interval as f64,
        args.interval
    );
    let mut lags = lags.to_vec();
    lags.sort();
    if let Some(max) = lags.last() {
        let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "due → written ({} samples): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            lags.len(),
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
    }
    println!(
        "controller CPU: {:.1} % of one core; resident memory {:.1} MiB (peak {:.1} MiB)",
        100.0 * cpu / secs,
        rss_kib(pid, "VmRSS:") as f64 / 1024.0,
        rss_kib(pid, "VmHWM:") as f64 / 1024.0
    );
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn for_each_rollout<F, Fut>(n: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    futures::stream::iter(0..n)
        .map(|i| f(format!("r{i:05}")))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Follows every run: each new measurement's delay from due (the previous one's end plus the
/// interval, or the run's start for the first) to the moment its status arrived here.
async fn follow_runs(
    runs: Api<AnalysisRun>,
    interval: u64,
    seen: Arc<Mutex<Seen>>,
    lags: Arc<Mutex<Vec<Duration>>>,
) {
    let interval = jiff::SignedDuration::from_secs(i64::try_from(interval).unwrap_or(10));
    let mut events = std::pin::pin!(watcher(runs, watcher::Config::default()).applied_objects());
    while let Some(Ok(run)) = events.next().await {
        let now = jiff::Timestamp::now();
        let Some(status) = &run.status else { continue };
        let Some(result) = status.metric_results.first() else {
            continue;
        };
        let last_end = result
            .measurements
            .last()
            .and_then(|m| m.finished_at.as_ref())
            .map(|t| t.0);
        let mut seen = lock(&seen);
        let entry = seen.entry(run.name_any()).or_insert((0, None));
        if result.count > entry.0 {
            let due = match entry.1 {
                Some(previous) if entry.0 > 0 => previous.checked_add(interval).ok(),
                _ => status.started_at.as_ref().map(|t| t.0),
            };
            if let Some(due) = due.filter(|_| result.count == entry.0 + 1) {
                let lag = now.duration_since(due).as_secs_f64().max(0.0);
                lock(&lags).push(Duration::from_secs_f64(lag));
            }
            *entry = (result.count, last_end);
        }
    }
}

/// User and system CPU seconds of a process (from `/proc`, in the kernel's USER_HZ of 100).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
