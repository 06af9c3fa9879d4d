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

/// The analysis metrics, registered on the controller's registry.
pub struct AnalysisMetrics {
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
        Self {
            runs,
            measurements,
            latency,
            lag,
            in_flight,
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
