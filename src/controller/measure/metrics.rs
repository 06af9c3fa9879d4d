//! Metrics of analysis: runs completed by phase, measurements by provider kind and phase,
//! provider latency, the delay from a measurement being due to its result being recorded, and
//! measurements under way. Labels are bounded: provider kinds and phases only, never a run's
//! name or an error's text. Touches nothing but its own counters.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use crate::crd::{AnalysisRun, RunJudgement};
use crate::engine::measure::judge;
use kube::ResourceExt;

/// The Rollout a run judges: its scope, else its controlling owner, else the run itself.
fn rollout_of(run: &AnalysisRun) -> String {
    run.spec
        .scope
        .as_ref()
        .and_then(|s| s.rollout.clone())
        .or_else(|| {
            run.owner_references()
                .iter()
                .find(|o| o.kind == "Rollout")
                .map(|o| o.name.clone())
        })
        .unwrap_or_else(|| run.name_any())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderPhaseLabels {
    provider: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    rollout: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassificationLabels {
    namespace: String,
    rollout: String,
    metric: String,
    classification: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    result: String,
}

/// Every classification, for the state-set gauge.
const CLASSIFICATIONS: [&str; 5] = ["Pass", "High", "Low", "NoData", "Error"];

/// The analysis metrics, registered on the controller's registry.
pub struct AnalysisMetrics {
    score: Family<RolloutLabels, Gauge<f64, AtomicU64>>,
    classification: Family<ClassificationLabels, Gauge>,
    judgements: Family<VerdictLabels, Counter>,
    /// The judge metrics last reported per Rollout, to drop their series with the Rollout.
    judged: Mutex<HashMap<(String, String), Vec<String>>>,
    runs: Family<PhaseLabels, Counter>,
    measurements: Family<ProviderPhaseLabels, Counter>,
    latency: Family<ProviderLabels, Histogram>,
    lag: Histogram,
    in_flight: Gauge,
}

impl AnalysisMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let runs = Family::<PhaseLabels, Counter>::default();
        registry.register(
            "sluice_analysis_runs_completed",
            "AnalysisRuns that reached a final phase, by phase",
            runs.clone(),
        );
        let measurements = Family::<ProviderPhaseLabels, Counter>::default();
        registry.register(
            "sluice_analysis_measurements",
            "Measurements recorded, by provider kind and phase",
            measurements.clone(),
        );
        let latency = Family::<ProviderLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "sluice_analysis_provider_duration_seconds",
            "Time a provider took for one measurement, by provider kind",
            latency.clone(),
        );
        let lag = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "sluice_analysis_measurement_lag_seconds",
            "Time from a measurement being due to its result being written to the run",
            lag.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "sluice_analysis_measurements_in_flight",
            "Measurements under way",
            in_flight.clone(),
        );
        let score = Family::<RolloutLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "sluice_canary_score",
            "The canary judge's latest score (0-100) of each Rollout's judge metrics",
            score.clone(),
        );
        let classification = Family::<ClassificationLabels, Gauge>::default();
        registry.register(
            "sluice_canary_metric_classification",
            "The latest classification of each judge metric: 1 for the current one (Pass, High, Low, NoData, Error), 0 for the others",
            classification.clone(),
        );
        let judgements = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "sluice_canary_judgements",
            "Judgements made, by result (Pass, Marginal, Fail)",
            judgements.clone(),
        );
        Self {
            score,
            classification,
            judgements,
            judged: Mutex::default(),
            runs,
            measurements,
            latency,
            lag,
            in_flight,
        }
    }

    /// A judgement of `run`'s judge metrics was recorded.
    pub fn judged(&self, run: &AnalysisRun, record: &RunJudgement) {
        let namespace = run.namespace().unwrap_or_default();
        let rollout = rollout_of(run);
        self.score
            .get_or_create(&RolloutLabels {
                namespace: namespace.clone(),
                rollout: rollout.clone(),
            })
            .set(record.latest.score);
        self.judgements
            .get_or_create(&VerdictLabels {
                result: format!("{:?}", record.latest.result),
            })
            .inc();
        let mut names = Vec::new();
        for metric in &record.latest.metrics {
            let current = judge::classification_name(metric.classification);
            for class in CLASSIFICATIONS {
                self.classification
                    .get_or_create(&ClassificationLabels {
                        namespace: namespace.clone(),
                        rollout: rollout.clone(),
                        metric: metric.name.clone(),
                        classification: class.into(),
                    })
                    .set(i64::from(class == current));
            }
            names.push(metric.name.clone());
        }
        let mut judged = self.judged.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = judged.insert((namespace.clone(), rollout.clone()), names.clone()) {
            for gone in old.iter().filter(|n| !names.contains(n)) {
                self.drop_metric(&namespace, &rollout, gone);
            }
        }
    }

    /// Drops the judge series of a deleted Rollout.
    pub fn forget_rollout(&self, namespace: &str, rollout: &str) {
        let labels = RolloutLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
        };
        self.score.remove(&labels);
        let old = self
            .judged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_string(), rollout.to_string()));
        for metric in old.unwrap_or_default() {
            self.drop_metric(namespace, rollout, &metric);
        }
    }

    fn drop_metric(&self, namespace: &str, rollout: &str, metric: &str) {
        for class in CLASSIFICATIONS {
            self.classification.remove(&ClassificationLabels {
                namespace: namespace.into(),
                rollout: rollout.into(),
                metric: metric.into(),
                classification: class.into(),
            });
        }
    }

    /// A run reached `phase`.
    pub fn run_completed(&self, phase: &str) {
        self.runs
            .get_or_create(&PhaseLabels {
                phase: phase.into(),
            })
            .inc();
    }

    /// A measurement of `provider` took `seconds` and ended in `phase`.
    pub fn measured(&self, provider: &str, phase: &str, seconds: f64) {
        self.measurements
            .get_or_create(&ProviderPhaseLabels {
                provider: provider.into(),
                phase: phase.into(),
            })
            .inc();
        self.latency
            .get_or_create(&ProviderLabels {
                provider: provider.into(),
            })
            .observe(seconds);
    }

    /// A measurement due `seconds` ago was written.
    pub fn recorded(&self, seconds: f64) {
        self.lag.observe(seconds);
    }

    /// The number of measurements under way.
    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
