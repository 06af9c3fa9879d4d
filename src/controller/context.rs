//! The shared state every reconcile receives: the API client, the HTTP client, the reflector
//! stores observe reads from, the decision and router functions, metrics, the Event recorder
//! and the leadership flag that gates every write. Builds nothing from the environment.

use super::cache::CachedReplicaSet;
use super::index::Index;
use super::leader::Leadership;
use super::metrics::Metrics;
use crate::crd::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use crate::engine::{Decision, Observed};
use crate::traffic::{PluginRegistry, TrafficError, TrafficRouter};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The engine's entry point: `decide(&Rollout, &Observed, now) -> Decision`. A function pointer so
/// tests can drive act and status with scripted decisions.
pub type DecideFn = fn(&Rollout, &Observed, jiff::Timestamp) -> Decision;

/// Builds the traffic routers a Rollout configures; plugins are looked up in the registry.
pub type RoutersFn = fn(
    &Rollout,
    kube::Client,
    reqwest::Client,
    &PluginRegistry,
) -> Result<Vec<Box<dyn TrafficRouter>>, TrafficError>;

/// A router factory for Rollouts without traffic routing (and until routers are wired in).
///
/// # Errors
/// Never.
// The signature is the traffic module's `routers_for`, error type included.
#[allow(clippy::result_large_err)]
pub fn no_routers(
    _rollout: &Rollout,
    _client: kube::Client,
    _http: reqwest::Client,
    _plugins: &PluginRegistry,
) -> Result<Vec<Box<dyn TrafficRouter>>, TrafficError> {
    Ok(Vec::new())
}

/// Read-only caches of the children a Rollout owns or names.
#[derive(Clone)]
pub struct Stores {
    /// Rollouts (the controller's own store).
    pub rollouts: Store<Rollout>,
    /// ReplicaSets carrying the pod-template hash label, compacted (`cache.rs`).
    pub replica_sets: Store<CachedReplicaSet>,
    /// Services.
    pub services: Store<Service>,
    /// AnalysisRuns.
    pub analysis_runs: Store<AnalysisRun>,
    /// Deployments (targets of `workloadRef`).
    pub deployments: Store<Deployment>,
    /// ReplicaSets by the uid of their controller owner.
    pub replica_sets_by_owner: Index<CachedReplicaSet>,
    /// AnalysisRuns by the uid of their controller owner.
    pub analysis_runs_by_owner: Index<AnalysisRun>,
    /// AnalysisTemplates.
    pub analysis_templates: Store<AnalysisTemplate>,
    /// ClusterAnalysisTemplates.
    pub cluster_analysis_templates: Store<ClusterAnalysisTemplate>,
    /// Set once both template caches have synced.
    pub templates_synced: Arc<AtomicBool>,
    /// Rollouts by the objects they claim, and the cross-namespace routing policy.
    pub claims: super::index::Claims,
}

impl Stores {
    /// Whether every cache a decision is observed from has synced. Before that an empty
    /// ReplicaSet cache reads as "the stable ReplicaSet is gone", on which the engine promotes
    /// the canary. A check, not a wait: those caches are fed by streams the controller itself
    /// polls, and reconciles waiting on them could hold every slot while nothing polls them.
    pub fn synced(&self) -> bool {
        use futures::FutureExt;
        let ready = |ready: Option<Result<(), _>>| matches!(ready, Some(Ok(())));
        ready(self.replica_sets.wait_until_ready().now_or_never())
            && ready(self.services.wait_until_ready().now_or_never())
            && ready(self.analysis_runs.wait_until_ready().now_or_never())
            && ready(self.deployments.wait_until_ready().now_or_never())
    }
}

/// Settings of the controller that are not clients (from the CLI flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch only this namespace.
    pub namespace: Option<String>,
    /// Reconcile only objects labelled with this instance id.
    pub instance_id: Option<String>,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// The requeue for a reconcile that waits on nothing in particular.
    pub safety_requeue: Duration,
    /// First back-off after a transient error.
    pub backoff_base: Duration,
    /// Longest back-off after repeated transient errors.
    pub backoff_max: Duration,
    /// The name this replica reports Events and holds the Lease under.
    pub identity: String,
    /// The traffic router plugins Rollouts may name (`--traffic-plugin NAME=URL`).
    pub traffic_plugins: PluginRegistry,
    /// Measurements of AnalysisRuns taken at once, over all runs.
    pub measurements_at_once: usize,
    /// Rollouts may name routing objects in other namespaces.
    pub allow_cross_namespace_routing: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespace: None,
            instance_id: None,
            concurrency: 8,
            safety_requeue: Duration::from_secs(300),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(60),
            identity: "sluice-controller".into(),
            traffic_plugins: PluginRegistry::default(),
            measurements_at_once: 64,
            allow_cross_namespace_routing: false,
        }
    }
}

/// Everything a reconcile needs.
pub struct Context {
    /// The one API client.
    pub client: kube::Client,
    /// The one HTTP client (traffic plugins, metric providers).
    pub http: reqwest::Client,
    /// The decision engine.
    pub decide: DecideFn,
    /// The traffic router factory.
    pub routers: RoutersFn,
    /// Reflector stores.
    pub stores: Stores,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Recently published Events, folded into series when repeated.
    pub events: super::events::EventCache,
    /// Whether this replica may write.
    pub leadership: Leadership,
    /// Settings.
    pub settings: Settings,
    /// Per-Rollout bookkeeping: consecutive failures (for back-off) and the resourceVersion of
    /// the last status write (a guard against deciding on a stale cache).
    pub(crate) memory: Mutex<HashMap<(String, String), RolloutMemory>>,
}

/// What the controller remembers of one Rollout between reconciles. Only an optimisation: it is
/// lost on restart and every decision still comes from the object and the cluster.
#[derive(Clone, Debug, Default)]
pub(crate) struct RolloutMemory {
    pub failures: u32,
    /// Consecutive reconciles in which a traffic router failed (their own back-off).
    pub router_failures: u32,
    pub last_written_version: Option<u64>,
}

impl Context {
    /// Assemble a context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        http: reqwest::Client,
        decide: DecideFn,
        routers: RoutersFn,
        stores: Stores,
        metrics: Arc<Metrics>,
        leadership: Leadership,
        settings: Settings,
    ) -> Self {
        Self {
            events: super::events::EventCache::default(),
            client,
            http,
            decide,
            routers,
            stores,
            metrics,
            leadership,
            settings,
            memory: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn remember<T>(
        &self,
        key: (String, String),
        f: impl FnOnce(&mut RolloutMemory) -> T,
    ) -> T {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        f(memory.entry(key).or_default())
    }

    pub(crate) fn forget(&self, key: &(String, String)) {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
