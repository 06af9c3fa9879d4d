//! Metric providers (`MetricProvider`), one file per backend, plus a fake for tests.
//!
//! A provider takes one measurement of one metric: it substitutes the run's arguments into its
//! own fields (`args.rs`, escaping by context so a value never changes a query's or URL's
//! structure), contacts only endpoints an administrator registered (`registry.rs`), and returns
//! a value for the conditions to judge, a phase it decided itself (a Job), or "still running".
//! Providers do I/O; deciding what to measure and when is `engine::measure`'s.

pub mod args;
pub mod fake;
pub mod job;
pub mod prometheus;
pub mod registry;
pub mod web;

pub use args::{ArgError, Args};
pub use registry::{MetricEndpoints, RegistryError};

use crate::crd::{AnalysisPhase, Measurement, Metric, MetricProviderSpec};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Everything a provider needs for one measurement.
pub struct MeasureRequest<'a> {
    /// The run's namespace.
    pub namespace: &'a str,
    /// The run's name.
    pub run_name: &'a str,
    /// The run's uid (Job names and owner references).
    pub run_uid: &'a str,
    /// The metric as the run holds it, `{{args.NAME}}` not yet substituted.
    pub metric: &'a Metric,
    /// The run's arguments, secrets resolved; never logged or written anywhere.
    pub args: &'a Args,
    /// How many measurements of this metric were taken before this one.
    pub index: i32,
    /// Now, for range-query windows.
    pub now: jiff::Timestamp,
}

/// What one measurement gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A value for the conditions to judge (`result`): a number for a Prometheus scalar, an
    /// array of numbers for a vector or matrix, any JSON for a web metric.
    Value {
        /// The value.
        result: serde_json::Value,
        /// Facts worth keeping with the measurement (the resolved query, with secrets shown
        /// as `<redacted>`).
        metadata: BTreeMap<String, String>,
    },
    /// The provider decided the phase itself (a Job: Complete → Successful, Failed → Failed).
    Phase {
        /// The phase.
        phase: AnalysisPhase,
        /// Why.
        message: Option<String>,
        /// Facts worth keeping (the Job's name).
        metadata: BTreeMap<String, String>,
    },
    /// Still in progress: look again (`MetricProvider::resume`) after this long.
    InProgress {
        /// When to look again.
        resume_after: Duration,
        /// Facts the resume needs (the Job's name).
        metadata: BTreeMap<String, String>,
    },
}

/// A measurement that could not be taken. Its `Display` never contains an argument's value
/// that came from a Secret.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The endpoint is not registered with the controller; no request was sent.
    #[error("{0}")]
    NotRegistered(String),
    /// An argument could not be substituted safely, or is missing.
    #[error(transparent)]
    Argument(#[from] ArgError),
    /// The metric's configuration is unusable (a bad JSONPath, an unknown method).
    #[error("{0}")]
    Config(String),
    /// The request failed or timed out.
    #[error("{0}")]
    Request(String),
    /// The response could not be read as the provider expects.
    #[error("{0}")]
    Response(String),
    /// A Kubernetes API call failed (the Job provider).
    #[error("{verb} {kind} {name}: {source}")]
    Api {
        /// The call.
        verb: &'static str,
        /// The object's kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl ProviderError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotRegistered(_) => "MetricEndpointNotRegistered",
            Self::Argument(_) => "MetricArgumentError",
            Self::Config(_) => "MetricConfigError",
            Self::Request(_) => "MetricRequestError",
            Self::Response(_) => "MetricResponseError",
            Self::Api { .. } => "ApiError",
        }
    }
}

/// One backend that takes measurements.
#[async_trait::async_trait]
pub trait MetricProvider: Send + Sync {
    /// The provider's name as in the metric (`prometheus`, `web`, `job`), a metric label.
    fn kind(&self) -> &'static str;

    /// Takes one measurement.
    ///
    /// # Errors
    /// When the measurement cannot be taken: the measurement is `Error`.
    async fn measure(&self, req: &MeasureRequest<'_>) -> Result<Outcome, ProviderError>;

    /// Looks again at a measurement that was `InProgress`.
    ///
    /// # Errors
    /// When it cannot be looked at: the measurement is `Error`.
    async fn resume(
        &self,
        req: &MeasureRequest<'_>,
        measurement: &Measurement,
    ) -> Result<Outcome, ProviderError> {
        let _ = (req, measurement);
        Err(ProviderError::Config(format!(
            "the {} provider has no measurements in progress",
            self.kind()
        )))
    }

    /// Stops a measurement in progress (the run was terminated).
    ///
    /// # Errors
    /// When it cannot be stopped.
    async fn terminate(
        &self,
        req: &MeasureRequest<'_>,
        measurement: &Measurement,
    ) -> Result<(), ProviderError> {
        let _ = (req, measurement);
        Ok(())
    }
}

/// The provider kind a metric uses: `prometheus`, `web`, `job` or `plugin` (`unset` when the
/// metric names none, which the schema refuses).
pub fn kind_of(spec: &MetricProviderSpec) -> &'static str {
    if spec.prometheus.is_some() {
        "prometheus"
    } else if spec.web.is_some() {
        "web"
    } else if spec.job.is_some() {
        "job"
    } else if spec.plugin.is_some() {
        "plugin"
    } else {
        "unset"
    }
}

/// The providers the controller measures with, by kind. Built once in `main` (or by a test,
/// with fakes) and shared by every measurement.
#[derive(Clone, Default)]
pub struct MetricProviders {
    by_kind: BTreeMap<&'static str, Arc<dyn MetricProvider>>,
}

impl std::fmt::Debug for MetricProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kind.keys()).finish()
    }
}

impl MetricProviders {
    /// The built-in providers: Prometheus and web metrics reach only the endpoints in
    /// `endpoints` (with `clients`' TLS settings), Job metrics run Jobs through `client`.
    pub fn standard(
        client: kube::Client,
        endpoints: Arc<MetricEndpoints>,
        clients: registry::EndpointClients,
    ) -> Self {
        Self::default()
            .with(Arc::new(prometheus::PrometheusProvider::new(
                endpoints.clone(),
                clients.clone(),
            )))
            .with(Arc::new(web::WebProvider::new(endpoints, clients)))
            .with(Arc::new(job::JobProvider::new(client)))
    }

    /// This set with `provider` serving its kind (replacing one of the same kind).
    #[must_use]
    pub fn with(mut self, provider: Arc<dyn MetricProvider>) -> Self {
        self.by_kind.insert(provider.kind(), provider);
        self
    }

    /// The provider for `metric`.
    ///
    /// # Errors
    /// When no provider of the metric's kind is available (metric plugins are not supported).
    pub fn for_metric(&self, metric: &Metric) -> Result<Arc<dyn MetricProvider>, ProviderError> {
        let kind = kind_of(&metric.provider);
        self.by_kind.get(kind).cloned().ok_or_else(|| {
            ProviderError::Config(format!(
                "metric {}: no {kind} provider is available in this controller (available: {})",
                metric.name,
                self.by_kind.keys().copied().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}
