//! Controller metrics on a prometheus-client `Registry`: reconcile duration and count by result,
//! per-Rollout phase, step and desired/actual canary weight, API requests by verb and code (fed
//! by the client layer in `client_metrics.rs`), reconciles in flight and the work queue's depth
//! (Rollouts triggered and not yet reconciled). Touches nothing but its own counters.

use super::client_metrics::{RequestCountLayer, RequestLabels};
use super::leader::Leadership;
use crate::crd::{Rollout, RolloutPhase};
use kube::ResourceExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    rollout: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    rollout: String,
    phase: String,
}

const PHASES: [RolloutPhase; 4] = [
    RolloutPhase::Healthy,
    RolloutPhase::Progressing,
    RolloutPhase::Paused,
    RolloutPhase::Degraded,
];

fn phase_name(phase: RolloutPhase) -> &'static str {
    match phase {
        RolloutPhase::Healthy => "Healthy",
        RolloutPhase::Progressing => "Progressing",
        RolloutPhase::Paused => "Paused",
        RolloutPhase::Degraded => "Degraded",
    }
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    reconcile_duration: Family<ResultLabels, Histogram>,
    reconciles: Family<ResultLabels, Counter>,
    phase: Family<PhaseLabels, Gauge>,
    step: Family<RolloutLabels, Gauge>,
    desired_weight: Family<RolloutLabels, Gauge>,
    actual_weight: Family<RolloutLabels, Gauge>,
    api_requests: Family<RequestLabels, Counter>,
    in_flight: Gauge,
    queue_depth: Gauge,
    leader: Gauge,
    /// The flag `sluice_leader` reports, read when the metrics are encoded.
    leadership: OnceLock<Leadership>,
    /// (namespace, name) of the Rollouts triggered and not yet reconciled since.
    queued: Mutex<HashSet<(String, String)>>,
    /// Writes (every verb but get, list and watch) of the clients `request_layer` wraps: the
    /// controller's work, Events included, Lease renewals not.
    writes: Arc<AtomicU64>,
    finished: AtomicU64,
    /// Metrics of AnalysisRuns and their measurements.
    pub analysis: super::measure::metrics::AnalysisMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_duration = Family::<ResultLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "sluice_reconcile_duration_seconds",
            "Time spent in one reconcile, by result",
            reconcile_duration.clone(),
        );
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "sluice_reconciles",
            "Reconciles finished, by result (ok or an error category)",
            reconciles.clone(),
        );
        let phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "sluice_rollout_phase",
            "1 for the phase a Rollout is in, 0 for the others",
            phase.clone(),
        );
        let step = Family::<RolloutLabels, Gauge>::default();
        registry.register(
            "sluice_rollout_step_index",
            "Current canary step index of a Rollout",
            step.clone(),
        );
        let desired_weight = Family::<RolloutLabels, Gauge>::default();
        registry.register(
            "sluice_rollout_canary_weight_desired_percent",
            "Canary weight the current step asks for",
            desired_weight.clone(),
        );
        let actual_weight = Family::<RolloutLabels, Gauge>::default();
        registry.register(
            "sluice_rollout_canary_weight_actual_percent",
            "Canary weight last applied",
            actual_weight.clone(),
        );
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "sluice_api_requests",
            "Every request of the controller's Kubernetes client (watches, lists, Lease renewals and Events included), by verb and HTTP code; a watch counts once, when its response starts",
            api_requests.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "sluice_reconciles_in_flight",
            "Reconciles running now (the work queue's busy part)",
            in_flight.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "sluice_work_queue_depth",
            "Rollouts a watch event triggered (their own change, or one of their ReplicaSets, AnalysisRuns, Services, workloads or routes) that have not started a reconcile since; each Rollout counts once however often it was triggered. Timed requeues are not counted until due, and are not in this figure",
            queue_depth.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "sluice_leader",
            "1 while this replica may write (it holds the leader Lease, or leader election is off), 0 while it stands by",
            leader.clone(),
        );
        let analysis = super::measure::metrics::AnalysisMetrics::register(&mut registry);
        Self {
            registry,
            reconcile_duration,
            reconciles,
            phase,
            step,
            desired_weight,
            actual_weight,
            api_requests,
            in_flight,
            queue_depth,
            leader,
            leadership: OnceLock::new(),
            queued: Mutex::new(HashSet::new()),
            writes: Arc::new(AtomicU64::new(0)),
            finished: AtomicU64::new(0),
            analysis,
        }
    }

    /// The text exposition format.
    ///
    /// # Errors
    /// Only when writing into the string fails, which it does not.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        if let Some(leadership) = self.leadership.get() {
            self.leader.set(i64::from(leadership.is_leader()));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Report this flag as `sluice_leader` (the first flag given is kept: one per controller).
    pub fn track_leadership(&self, leadership: &Leadership) {
        let _ = self.leadership.set(leadership.clone());
    }

    /// Record one finished reconcile.
    pub fn reconciled(&self, result: &'static str, seconds: f64) {
        let labels = ResultLabels {
            result: result.into(),
        };
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(seconds);
        self.reconciles.get_or_create(&labels).inc();
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Reconciles finished so far, whatever their result.
    pub fn reconciles(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// A reconcile started; the guard marks it finished when dropped.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// The layer for the leader election's client: its requests are counted in
    /// `sluice_api_requests_total`, but Lease renewals are not the controller's work, so they
    /// stay out of `writes()`.
    pub fn election_layer(&self) -> RequestCountLayer {
        RequestCountLayer::new(self.api_requests.clone(), Arc::new(AtomicU64::new(0)))
    }

    /// The tower layer that counts every request of a client into `sluice_api_requests_total`.
    pub fn request_layer(&self) -> RequestCountLayer {
        RequestCountLayer::new(self.api_requests.clone(), self.writes.clone())
    }

    /// A watch event asked for a reconcile of this Rollout.
    pub fn triggered(&self, namespace: &str, name: &str) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        queued.insert((namespace.to_string(), name.to_string()));
        self.queue_depth.set(gauge_value(queued.len()));
    }

    /// A reconcile of this Rollout started: whatever triggered it is served.
    pub fn dequeued(&self, namespace: &str, name: &str) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        queued.remove(&(namespace.to_string(), name.to_string()));
        self.queue_depth.set(gauge_value(queued.len()));
    }

    /// The current `sluice_work_queue_depth`.
    pub fn queue_depth(&self) -> i64 {
        self.queue_depth.get()
    }

    /// Writes (create, patch, update, delete) of the controller's client so far, counted in the
    /// client layer: reconciles, measurements, routing objects and Events; Lease renewals not.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Update the per-Rollout gauges from a Rollout's status.
    pub fn observe_rollout(&self, rollout: &Rollout, desired_weight: Option<i32>) {
        let namespace = rollout.namespace().unwrap_or_default();
        let name = rollout.name_any();
        let labels = RolloutLabels {
            namespace: namespace.clone(),
            rollout: name.clone(),
        };
        let status = rollout.status.clone().unwrap_or_default();
        for phase in PHASES {
            let value = i64::from(status.phase == Some(phase));
            self.phase
                .get_or_create(&PhaseLabels {
                    namespace: namespace.clone(),
                    rollout: name.clone(),
                    phase: phase_name(phase).into(),
                })
                .set(value);
        }
        self.step
            .get_or_create(&labels)
            .set(i64::from(status.current_step_index.unwrap_or(0)));
        if let Some(weight) = desired_weight {
            self.desired_weight
                .get_or_create(&labels)
                .set(i64::from(weight));
        }
        let actual = status
            .canary
            .as_ref()
            .and_then(|c| c.weights.as_ref())
            .map_or(0, |w| w.canary.weight);
        self.actual_weight
            .get_or_create(&labels)
            .set(i64::from(actual));
    }

    /// Drop the per-Rollout series of a deleted Rollout.
    pub fn forget_rollout(&self, namespace: &str, name: &str) {
        self.analysis.forget_rollout(namespace, name);
        let labels = RolloutLabels {
            namespace: namespace.into(),
            rollout: name.into(),
        };
        for phase in PHASES {
            self.phase.remove(&PhaseLabels {
                namespace: namespace.into(),
                rollout: name.into(),
                phase: phase_name(phase).into(),
            });
        }
        self.dequeued(namespace, name);
        self.step.remove(&labels);
        self.desired_weight.remove(&labels);
        self.actual_weight.remove(&labels);
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Marks a reconcile as running while alive.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_line(metrics: &Metrics) -> String {
        let text = metrics.encode().unwrap();
        text.lines()
            .find(|l| l.starts_with("sluice_leader "))
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn the_leader_gauge_follows_the_flag_it_tracks() {
        let metrics = Metrics::new();
        metrics.track_leadership(&Leadership::follower());
        assert_eq!(leader_line(&metrics), "sluice_leader 0");
        let metrics = Metrics::new();
        metrics.track_leadership(&Leadership::always());
        assert_eq!(leader_line(&metrics), "sluice_leader 1");
    }
}
