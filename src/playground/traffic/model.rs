//! One demo pod's behaviour (from its template's annotations) and its counters: requests,
//! errors and a latency histogram, kept as counts and bucket totals (never per-request
//! records), and their Prometheus text exposition. Pure apart from the random source passed in.

use rand::Rng;
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A pod serves demo traffic when its template has this annotation set to `"true"`.
pub const SERVE_ANNOTATION: &str = "demo.sluice.dev/serve";
/// The median latency in milliseconds (default 100).
pub const LATENCY_MEDIAN_ANNOTATION: &str = "demo.sluice.dev/latency-median-ms";
/// The log-normal sigma of the latency (default 0.25).
pub const LATENCY_SPREAD_ANNOTATION: &str = "demo.sluice.dev/latency-spread";
/// The fraction of requests that fail (default 0.001).
pub const ERROR_RATE_ANNOTATION: &str = "demo.sluice.dev/error-rate";

/// Upper bounds (seconds) of the latency histogram's buckets, fine around the 100–200 ms the
/// demo versions serve so that `histogram_quantile` tells them apart; `+Inf` is implicit.
pub const BUCKETS: [f64; 25] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.09, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18,
    0.19, 0.2, 0.225, 0.25, 0.3, 0.4, 0.5, 1.0, 2.5, 5.0,
];

/// A malformed behaviour annotation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("annotation {annotation}: {value:?} is not {expected}")]
pub struct AnnotationError {
    /// The annotation's key.
    pub annotation: &'static str,
    /// Its value.
    pub value: String,
    /// What it must be.
    pub expected: &'static str,
}

/// How one version serves requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    latency: LogNormal<f64>,
    error_rate: f64,
}

impl Behaviour {
    /// The behaviour the annotations describe, defaults for those absent.
    ///
    /// # Errors
    /// When a present annotation is not a number in its range.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Self, AnnotationError> {
        let median_ms = read(
            annotations,
            LATENCY_MEDIAN_ANNOTATION,
            100.0,
            "a number of milliseconds above 0",
            |v| v > 0.0,
        )?;
        let spread = read(
            annotations,
            LATENCY_SPREAD_ANNOTATION,
            0.25,
            "a log-normal sigma of 0 or more",
            |v| v >= 0.0,
        )?;
        let error_rate = read(
            annotations,
            ERROR_RATE_ANNOTATION,
            0.001,
            "a fraction from 0 to 1",
            |v| (0.0..=1.0).contains(&v),
        )?;
        let latency =
            LogNormal::new((median_ms / 1000.0).ln(), spread).map_err(|_| AnnotationError {
                annotation: LATENCY_SPREAD_ANNOTATION,
                value: spread.to_string(),
                expected: "a log-normal sigma of 0 or more",
            })?;
        Ok(Self {
            latency,
            error_rate,
        })
    }
}

fn read(
    annotations: &BTreeMap<String, String>,
    annotation: &'static str,
    default: f64,
    expected: &'static str,
    valid: impl Fn(f64) -> bool,
) -> Result<f64, AnnotationError> {
    let Some(text) = annotations.get(annotation) else {
        return Ok(default);
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && valid(*v))
        .ok_or_else(|| AnnotationError {
            annotation,
            value: text.clone(),
            expected,
        })
}

/// A pod's cumulative counters since it started serving.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counters {
    /// Requests served.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Requests per bucket (not cumulative); the last one is `+Inf`.
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Total latency in seconds.
    pub latency_sum: f64,
}

impl Counters {
    /// Serve the requests that arrive at `rate` per second during `seconds` (Poisson arrivals,
    /// binomial errors, log-normal latencies).
    pub fn serve(&mut self, behaviour: &Behaviour, rate: f64, seconds: f64, rng: &mut impl Rng) {
        let mean = rate * seconds;
        let Ok(arrivals) = Poisson::new(mean) else {
            return; // no traffic (or a rate that is not a number)
        };
        // Poisson samples are whole numbers; the cast cannot lose anything a test would see.
        let n = arrivals.sample(rng) as u64;
        self.record(behaviour, n, rng);
    }

    /// Serve exactly `n` requests.
    pub fn record(&mut self, behaviour: &Behaviour, n: u64, rng: &mut impl Rng) {
        if n == 0 {
            return;
        }
        if let Ok(errors) = Binomial::new(n, behaviour.error_rate) {
            self.errors += errors.sample(rng);
        }
        for _ in 0..n {
            let latency = behaviour.latency.sample(rng);
            self.buckets[BUCKETS.partition_point(|le| *le < latency)] += 1;
            self.latency_sum += latency;
        }
        self.requests += n;
    }
}

/// The labels of one pod's series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodLabels {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// Its `app` label, if any.
    pub app: Option<String>,
    /// Its `rollouts-pod-template-hash` label, if any.
    pub hash: Option<String>,
}

impl PodLabels {
    fn render(&self, extra: Option<(&str, &str)>) -> String {
        let mut pairs = vec![
            ("namespace", self.namespace.as_str()),
            ("pod", self.pod.as_str()),
        ];
        if let Some(app) = &self.app {
            pairs.push(("app", app));
        }
        if let Some(hash) = &self.hash {
            pairs.push(("rollouts_pod_template_hash", hash));
        }
        pairs.extend(extra);
        let inner: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        format!("{{{}}}", inner.join(","))
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text exposition (format 0.0.4) of every pod's series.
pub fn render<'a>(pods: impl IntoIterator<Item = (&'a PodLabels, &'a Counters)> + Clone) -> String {
    let mut out = String::new();
    out.push_str("# HELP demo_requests_total Requests the demo pod served.\n# TYPE demo_requests_total counter\n");
    for (labels, c) in pods.clone() {
        let _ = writeln!(
            out,
            "demo_requests_total{} {}",
            labels.render(None),
            c.requests
        );
    }
    out.push_str("# HELP demo_request_errors_total Requests the demo pod failed.\n# TYPE demo_request_errors_total counter\n");
    for (labels, c) in pods.clone() {
        let _ = writeln!(
            out,
            "demo_request_errors_total{} {}",
            labels.render(None),
            c.errors
        );
    }
    out.push_str("# HELP demo_request_duration_seconds Latency of the demo pod's requests.\n# TYPE demo_request_duration_seconds histogram\n");
    for (labels, c) in pods {
        histogram(&mut out, labels, c);
    }
    out
}

fn histogram(out: &mut String, labels: &PodLabels, c: &Counters) {
    let mut cumulative = 0;
    for (i, count) in c.buckets.iter().enumerate() {
        cumulative += count;
        let le = BUCKETS.get(i).map_or("+Inf".to_string(), f64::to_string);
        let _ = writeln!(
            out,
            "demo_request_duration_seconds_bucket{} {cumulative}",
            labels.render(Some(("le", &le)))
        );
    }
    let plain = labels.render(None);
    let _ = writeln!(
        out,
        "demo_request_duration_seconds_sum{plain} {}",
        c.latency_sum
    );
    let _ = writeln!(
        out,
        "demo_request_duration_seconds_count{plain} {}",
        c.requests
    );
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
