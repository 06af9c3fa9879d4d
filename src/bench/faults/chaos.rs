//! The fault campaign's chaos, until it is told to calm down: the controller killed at random
//! times and at failpoints before its writes (each kill followed by a new controller, as a
//! restarted pod), the HTTPRoutes cut off from the controller for a while (a router down, then
//! back), and every open watch dropped now and then. A share of the controller's requests
//! failing is set on the playground by the campaign itself. Every draw comes from one seeded
//! generator per loop.

use super::world::{CONTROLLER_AGENT, ControllerRecipe};
use crate::controller::embedded::Embedded;
use crate::controller::failpoint::Failpoint;
use crate::playground::PlaygroundHandle;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How hard the chaos hits.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// A controller lives this long (milliseconds, drawn) unless a failpoint stops it first.
    pub lifetime_ms: Range<u64>,
    /// The share of controllers armed with a failpoint.
    pub failpoint_share: f64,
    /// An armed failpoint stops one of this many first writes (drawn).
    pub failpoint_writes: Range<u64>,
    /// Time between router outages (milliseconds, drawn).
    pub outage_every_ms: Range<u64>,
    /// How long an outage lasts (milliseconds, drawn).
    pub outage_ms: Range<u64>,
    /// Time between dropping every open watch (milliseconds, drawn).
    pub watch_drop_every_ms: Range<u64>,
}

/// What the chaos did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Controllers killed at a random time.
    pub random_kills: AtomicU64,
    /// Controllers killed at a failpoint, before a write.
    pub failpoint_kills: AtomicU64,
    /// Router outages.
    pub outages: AtomicU64,
    /// Times every watch was dropped.
    pub watch_drops: AtomicU64,
}

impl Tally {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn draw(rng: &mut StdRng, range: &Range<u64>) -> Duration {
    let ms = if range.is_empty() {
        range.start
    } else {
        rng.random_range(range.clone())
    };
    Duration::from_millis(ms)
}

/// Sleep `wait`, or less when calm comes first; whether calm came.
async fn sleep_or_calm(wait: Duration, calm: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = calm.wait_for(|c| *c) => false,
    };
    !slept || *calm.borrow()
}

/// Run controllers, killing each at a random time or at its failpoint and starting the next,
/// until calm; then hand over a fresh controller with no failpoint, which keeps running.
pub async fn controllers(
    recipe: &ControllerRecipe,
    config: &ChaosConfig,
    seed: u64,
    tally: &Tally,
    mut calm: watch::Receiver<bool>,
) -> Embedded {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let armed = rng.random_bool(config.failpoint_share.clamp(0.0, 1.0));
        let at = if armed && !config.failpoint_writes.is_empty() {
            rng.random_range(config.failpoint_writes.clone())
        } else {
            0
        };
        let failpoint = Failpoint::at_write(at);
        let controller = Embedded::spawn(recipe.client.clone(), recipe.options(failpoint.clone()));
        let lifetime = draw(&mut rng, &config.lifetime_ms);
        let calmed = tokio::select! {
            calmed = sleep_or_calm(lifetime, &mut calm) => {
                if !calmed {
                    Tally::bump(&tally.random_kills);
                }
                calmed
            }
            () = failpoint.hit() => {
                Tally::bump(&tally.failpoint_kills);
                false
            }
        };
        // A controller stopped at its failpoint never finishes that reconcile: kill, not stop.
        controller.kill().await;
        if calmed {
            return Embedded::spawn(
                recipe.client.clone(),
                recipe.options(Failpoint::at_write(0)),
            );
        }
    }
}

/// Cut the HTTPRoutes off from the controller now and then, until calm (when they are healed).
pub async fn router_outages(
    playground: &PlaygroundHandle,
    config: &ChaosConfig,
    seed: u64,
    tally: &Tally,
    mut calm: watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let faults = playground.faults();
    loop {
        if sleep_or_calm(draw(&mut rng, &config.outage_every_ms), &mut calm).await {
            return;
        }
        faults.cut_resource(CONTROLLER_AGENT, "httproutes", 503);
        Tally::bump(&tally.outages);
        let calmed = sleep_or_calm(draw(&mut rng, &config.outage_ms), &mut calm).await;
        faults.heal_resource(CONTROLLER_AGENT, "httproutes");
        if calmed {
            return;
        }
    }
}

/// Drop every open watch now and then, until calm.
pub async fn watch_drops(
    playground: &PlaygroundHandle,
    config: &ChaosConfig,
    seed: u64,
    tally: &Tally,
    mut calm: watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !sleep_or_calm(draw(&mut rng, &config.watch_drop_every_ms), &mut calm).await {
        playground.drop_watches();
        Tally::bump(&tally.watch_drops);
    }
}
