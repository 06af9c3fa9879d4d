//! `sluice bench-faults` and the fault campaign behind it (also run small by
//! `tests/fault_campaign.rs`): Rollouts through canary steps, analysis, promotion and abort
//! (`scenario.rs`) on the playground while the controller is killed at random times and at
//! failpoints before its writes, a share of its API requests fails, its routers go down and
//! come back and watches drop (`chaos.rs`); an invariant checker fed by watches
//! (`checker.rs`) collects every violation. Every draw comes from one printed seed. The
//! controller runs in this process (`controller::embedded`), so it can be killed mid-write.
//! Figures and violations are returned, not asserted.

pub mod chaos;
pub mod checker;
pub mod scenario;
pub mod world;

use crate::playground::{Playground, PlaygroundHandle};
use crate::plugin::context::Ctx;
use chaos::{ChaosConfig, Tally};
use checker::{Checked, Shared, Violation};
use futures::StreamExt;
use scenario::{KINDS, Kind, V1};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use world::{CONTROLLER_AGENT, ControllerRecipe};

/// The campaign's namespace.
pub(crate) const NAMESPACE: &str = "campaign";

/// Options of `sluice bench-faults`.
#[derive(Debug, clap::Args)]
pub struct FaultArgs {
    /// Number of Rollouts; the scenarios are assigned in turn.
    #[arg(long, default_value_t = 140)]
    pub rollouts: usize,
    /// Seed of every random draw (default: from the clock). Printed, so a run can be repeated.
    #[arg(long, env = "SLUICE_FAULT_SEED")]
    pub seed: Option<u64>,
    /// Share of the controller's API requests that fail.
    #[arg(long, default_value_t = 0.05)]
    pub error_ratio: f64,
    /// Give up waiting for a Rollout after this many seconds (it then counts as a violation).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// One campaign's size and faults.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of Rollouts.
    pub rollouts: usize,
    /// The seed of every draw.
    pub seed: u64,
    /// Share of the controller's API requests that fail.
    pub error_ratio: f64,
    /// Kills, outages and watch drops.
    pub chaos: ChaosConfig,
    /// How long to wait for any one thing before calling it a violation.
    pub limit: Duration,
}

impl Config {
    /// The CI size: one Rollout of each scenario twice over, a kill every few seconds.
    pub fn small(seed: u64) -> Self {
        Self {
            rollouts: 2 * KINDS.len(),
            seed,
            error_ratio: 0.05,
            chaos: ChaosConfig {
                lifetime_ms: 400..1_500,
                failpoint_share: 0.7,
                failpoint_writes: 1..25,
                outage_every_ms: 1_000..3_000,
                outage_ms: 500..1_500,
                watch_drop_every_ms: 2_000..5_000,
            },
            limit: Duration::from_secs(60),
        }
    }

    /// The bench size.
    pub fn large(rollouts: usize, seed: u64) -> Self {
        Self {
            rollouts,
            chaos: ChaosConfig {
                lifetime_ms: 2_000..6_000,
                failpoint_share: 0.5,
                failpoint_writes: 1..200,
                outage_every_ms: 3_000..8_000,
                outage_ms: 1_000..3_000,
                watch_drop_every_ms: 5_000..15_000,
            },
            limit: Duration::from_secs(600),
            ..Self::small(seed)
        }
    }
}

/// What a campaign did and found.
#[derive(Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Rollouts by scenario.
    pub kinds: BTreeMap<&'static str, usize>,
    /// Controllers killed at a random time.
    pub random_kills: u64,
    /// Controllers killed at a failpoint before a write.
    pub failpoint_kills: u64,
    /// API requests the playground failed on purpose (the share and the router outages).
    pub injected_errors: u64,
    /// Router outages.
    pub outages: u64,
    /// Rollouts that ended as their scenario says while the chaos still ran.
    pub ended_under_chaos: usize,
    /// Times every watch was dropped.
    pub watch_drops: u64,
    /// What the checker checked.
    pub checked: Checked,
    /// Every invariant violation.
    pub violations: Vec<Violation>,
    /// Wall time of the whole campaign.
    pub wall: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let rollouts: usize = self.kinds.values().sum();
        writeln!(f, "seed {}", self.seed)?;
        writeln!(f, "Rollouts: {rollouts} ({})", kinds.join(", "))?;
        writeln!(
            f,
            "ended as their scenario says while the chaos ran: {}",
            self.ended_under_chaos
        )?;
        writeln!(
            f,
            "controller kills: {} ({} at random times, {} at a failpoint before a write)",
            self.random_kills + self.failpoint_kills,
            self.random_kills,
            self.failpoint_kills
        )?;
        writeln!(
            f,
            "injected API errors: {}; router outages: {}; watch drops: {}",
            self.injected_errors, self.outages, self.watch_drops
        )?;
        writeln!(
            f,
            "checked: {} Rollout statuses, {} aborted statuses' route weights, {} step Events",
            self.checked.statuses, self.checked.abort_route_checks, self.checked.step_events
        )?;
        writeln!(f, "invariant violations: {}", self.violations.len())?;
        write!(f, "wall time: {:.1} s", self.wall.as_secs_f64())
    }
}

/// Run one campaign on a playground of its own.
///
/// # Errors
/// When the playground, the analysis server or the setup cannot start. Rollouts that do not
/// behave are violations in the report, not errors.
pub async fn campaign(config: &Config) -> anyhow::Result<Report> {
    let started = Instant::now();
    let playground = Playground::start(super::playground_options()).await?;
    let result = on(&playground, config).await;
    playground.shutdown().await;
    tracing::info!("the playground is gone");
    let mut report = result?;
    report.wall = started.elapsed();
    Ok(report)
}

async fn on(playground: &PlaygroundHandle, config: &Config) -> anyhow::Result<Report> {
    let client = playground.client();
    let (web_base, web_server) = world::serve_analysis().await?;
    world::install(&client, &web_base).await?;
    let shared = Shared::default();
    let watches = shared.watch(&client, NAMESPACE);
    let recipe = ControllerRecipe::new(playground.base_url(), &web_base)?;
    let faults = playground.faults();
    faults.fail_share(CONTROLLER_AGENT, config.error_ratio, config.seed);
    let plan = plan(config.rollouts);
    let (calm_tx, calm) = tokio::sync::watch::channel(false);
    let tally = Tally::default();
    let seed = config.seed;
    let chaos = async {
        let (controller, (), ()) = tokio::join!(
            chaos::controllers(&recipe, &config.chaos, seed ^ 1, &tally, calm.clone()),
            chaos::router_outages(playground, &config.chaos, seed ^ 2, &tally, calm.clone()),
            chaos::watch_drops(playground, &config.chaos, seed ^ 3, &tally, calm.clone()),
        );
        controller
    };
    let work = async {
        let first = run_scenarios(&client, &shared, &plan, config.limit).await;
        // Calm: the share of failing requests ends, routers answer, the last controller runs on.
        faults.fail_share(CONTROLLER_AGENT, 0.0, seed);
        let _ = calm_tx.send(true);
        first
    };
    let (controller, first) = tokio::join!(chaos, work);
    tracing::info!("calm: checking how every Rollout ends");
    let injected_errors = faults.injected();
    let (result, ended_under_chaos) = match first {
        Ok((v1, ended)) => {
            settle(&shared, &plan, &v1, config.limit).await;
            (Ok(()), ended)
        }
        Err(error) => (Err(error), 0),
    };
    // Killed, not stopped: what it was doing no longer matters.
    controller.kill().await;
    tracing::info!("the last controller is gone");
    for task in watches {
        task.abort();
    }
    web_server.abort();
    result?;
    let (violations, checked) = shared.finish();
    Ok(Report {
        seed,
        kinds: kinds(&plan),
        random_kills: tally.random_kills.load(Ordering::Relaxed),
        failpoint_kills: tally.failpoint_kills.load(Ordering::Relaxed),
        injected_errors,
        outages: tally.outages.load(Ordering::Relaxed),
        ended_under_chaos,
        watch_drops: tally.watch_drops.load(Ordering::Relaxed),
        checked,
        violations,
        wall: Duration::ZERO,
    })
}

/// The Rollouts: `n` names, the scenarios assigned in turn.
fn plan(n: usize) -> Vec<(String, Kind)> {
    (0..n)
        .map(|i| KINDS[i % KINDS.len()])
        .enumerate()
        .map(|(i, kind)| (scenario::name(i, kind), kind))
        .collect()
}

fn kinds(plan: &[(String, Kind)]) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for (_, kind) in plan {
        *kinds.entry(kind.label()).or_default() += 1;
    }
    kinds
}

/// Create every Rollout, take each through its scenario once its first revision is Healthy,
/// and wait (under the chaos) until each ended as its scenario says. Returns each Rollout's
/// first revision and how many ended under the chaos; a scenario that cannot run is reported
/// as a violation.
///
/// # Errors
/// When the objects cannot be created.
async fn run_scenarios(
    client: &kube::Client,
    shared: &Shared,
    plan: &[(String, Kind)],
    limit: Duration,
) -> anyhow::Result<(HashMap<String, String>, usize)> {
    futures::stream::iter(plan)
        .map(|(name, kind)| scenario::create(client, name, *kind))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    tracing::info!(rollouts = plan.len(), "created");
    let ctx = Ctx {
        client: client.clone(),
        namespace: NAMESPACE.into(),
        all_namespaces: false,
        output: None,
        color: false,
    };
    let ctx = &ctx;
    let firsts = futures::future::join_all(plan.iter().map(|(name, kind)| async move {
        let result = async {
            let first = shared
                .wait(name, limit, |r| super::healthy(r, Some(V1)))
                .await?;
            let v1 = first.status.and_then(|s| s.stable_rs).unwrap_or_default();
            tracing::debug!(%name, "first revision healthy");
            scenario::drive(shared, ctx, name, *kind, &v1, limit).await?;
            tracing::debug!(%name, "driven");
            // Under the chaos still; how it ended is checked once it calmed down.
            let ended = shared.wait_end(name, &kind.end(), &v1, limit).await;
            tracing::debug!(%name, ?ended, "under chaos");
            anyhow::Ok((v1, ended.is_ok()))
        }
        .await;
        match result {
            Ok(v1) => Some((name.clone(), v1)),
            Err(error) => {
                shared.report(name, format!("the scenario could not run: {error:#}"));
                None
            }
        }
    }))
    .await;
    let firsts: Vec<(String, (String, bool))> = firsts.into_iter().flatten().collect();
    let ended = firsts.iter().filter(|(_, (_, ended))| *ended).count();
    let v1 = firsts
        .into_iter()
        .map(|(name, (v1, _))| (name, v1))
        .collect();
    Ok((v1, ended))
}

/// After the chaos: wait (bounded) for every Rollout to end as its scenario says, and record
/// each that does not.
async fn settle(
    shared: &Shared,
    plan: &[(String, Kind)],
    v1: &HashMap<String, String>,
    limit: Duration,
) {
    futures::future::join_all(plan.iter().filter_map(|(name, kind)| {
        let v1 = v1.get(name)?;
        Some(async move {
            let _ = shared.wait_end(name, &kind.end(), v1, limit).await;
            shared.check_end(name, &kind.end(), v1);
        })
    }))
    .await;
}

/// `sluice bench-faults`: a large campaign; prints its figures and its violations.
///
/// # Errors
/// When the campaign cannot start.
pub async fn run(args: FaultArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    println!("fault campaign: {} Rollouts, seed {seed}", args.rollouts);
    let mut config = Config::large(args.rollouts, seed);
    config.error_ratio = args.error_ratio;
    config.limit = Duration::from_secs(args.timeout);
    let report = campaign(&config).await?;
    for violation in &report.violations {
        println!("violation: {violation}");
    }
    println!("{report}");
    Ok(())
}
