//! Running the controller inside another program (the playground demo, the end-to-end tests,
//! the scale bench): spawn it on the current tokio runtime with the real engine, optionally
//! with leader election, and stop it gracefully or kill it mid-flight. Touches what the
//! controller touches.

use super::context::{RoutersFn, Settings};
use super::failpoint::Failpoint;
use super::leader::{Leadership, LeaseSettings, run_election};
use super::metrics::Metrics;
use super::run::{Wiring, run};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A controller running as tasks of the current runtime.
pub struct Embedded {
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Its leadership flag.
    pub leadership: Leadership,
    /// Set once its caches synced.
    pub ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Options of an embedded controller.
#[derive(Clone, Debug, Default)]
pub struct EmbeddedOptions {
    /// Controller settings.
    pub settings: Settings,
    /// Elect a leader on this Lease; `None` is always the leader.
    pub lease: Option<LeaseSettings>,
    /// The router factory; `None` uses `traffic::routers_for`.
    pub routers: Option<RoutersFn>,
    /// The metric providers; `None` measures with none (every measurement is an Error that
    /// says so).
    pub providers: Option<crate::providers::MetricProviders>,
    /// A failpoint on the controller's writes (fault campaigns); `None` has none.
    pub failpoint: Option<Failpoint>,
}

impl Embedded {
    /// Spawn a controller using `client`.
    pub fn spawn(client: kube::Client, options: EmbeddedOptions) -> Self {
        let metrics = Arc::new(Metrics::new());
        // Every request of this controller, watches and the election included, is counted in
        // its metrics; the election's writes are not the controller's work (`writes()`).
        let election = metrics.election_layer().wrap(client.clone());
        // The failpoint stops the controller's writes, not the election's; it sits under the
        // counting layer, so a stopped write is counted as sent.
        let client = match &options.failpoint {
            Some(failpoint) => failpoint.wrap(client),
            None => client,
        };
        let client = metrics.request_layer().wrap(client);
        let ready = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let leadership = match options.lease {
            Some(lease) => {
                let leadership = Leadership::follower();
                tasks.push(tokio::spawn(run_election(
                    election,
                    lease,
                    leadership.clone(),
                    stopped.clone(),
                )));
                leadership
            }
            None => Leadership::always(),
        };
        let wiring = Wiring {
            client,
            // No redirects, as the controller's own client (cli.rs).
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            decide: crate::engine::decide,
            routers: options.routers.unwrap_or(crate::traffic::routers_for),
            metrics: metrics.clone(),
            leadership: leadership.clone(),
            settings: options.settings,
            ready: ready.clone(),
            providers: options.providers.unwrap_or_default(),
        };
        let mut shutdown = stopped;
        tasks.push(tokio::spawn(run(wiring, async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })));
        Self {
            metrics,
            leadership,
            ready,
            stop,
            tasks,
        }
    }

    /// Stop gracefully: finish running reconciles, release the Lease.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Stop at once, as a crash would: abort every task wherever it is.
    pub async fn kill(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
