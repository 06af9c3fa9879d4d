//! Taking one measurement: resolve the run's arguments (Secrets read now, never stored), call
//! the metric's provider under a deadline, and turn what it gave into a `Measurement` whose
//! phase the metric's conditions decided. Every message passes through `Args::redact`, so a
//! Secret's value never reaches the status, an Event or a log. Reads Secrets; calls providers.

use crate::crd::{AnalysisPhase, AnalysisRun, Measurement, Metric};
use crate::engine::measure::Taken;
use crate::engine::measure::condition::Conditions;
use crate::providers::{Args, MeasureRequest, MetricProviders, Outcome, ProviderError};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest any one measurement may take, whatever its metric asks for.
pub const MAX_DEADLINE: Duration = Duration::from_secs(120);

/// What a measurement needs from the controller.
pub struct Taker<'a> {
    /// The API client (Secrets).
    pub client: &'a kube::Client,
    /// The providers.
    pub providers: &'a MetricProviders,
}

/// How long a measurement of `metric` may take: the provider's own timeout (Prometheus 30 s,
/// web 10 s by default) and a margin for connecting, capped at `MAX_DEADLINE`.
pub fn deadline(metric: &Metric) -> Duration {
    let p = &metric.provider;
    let own = p
        .prometheus
        .as_ref()
        .map(|m| m.timeout.unwrap_or(30))
        .or_else(|| p.web.as_ref().map(|m| m.timeout_seconds.unwrap_or(10)))
        .unwrap_or(30);
    let own = Duration::from_secs(u64::try_from(own.max(1)).unwrap_or(30));
    (own + Duration::from_secs(5)).min(MAX_DEADLINE)
}

impl Taker<'_> {
    /// Takes (or, with `resume`, looks again at) one measurement of `metric` for `run`.
    /// `index` is how many measurements of the metric were taken before. Never fails: a
    /// measurement that could not be taken is one in phase `Error` with the reason.
    pub async fn take(
        &self,
        run: &AnalysisRun,
        metric: &Metric,
        index: i32,
        resume: Option<&Measurement>,
    ) -> Taken {
        let started = resume
            .and_then(|m| m.started_at.clone())
            .unwrap_or(Time(Timestamp::now()));
        let mut args = Args::default();
        let outcome = match tokio::time::timeout(
            deadline(metric),
            self.call(run, metric, index, resume, &mut args),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(ProviderError::Request(format!(
                "no answer within {} s",
                deadline(metric).as_secs()
            ))),
        };
        let now = Timestamp::now();
        let measurement = match outcome {
            Ok(outcome) => judge(metric, &args, outcome, now),
            Err(error) => errored(&args.redact(&error.to_string())),
        };
        Taken {
            metric: metric.name.clone(),
            measurement: Measurement {
                started_at: Some(started),
                finished_at: (measurement.phase != AnalysisPhase::Running).then_some(Time(now)),
                ..measurement
            },
        }
    }

    async fn call(
        &self,
        run: &AnalysisRun,
        metric: &Metric,
        index: i32,
        resume: Option<&Measurement>,
        args: &mut Args,
    ) -> Result<Outcome, ProviderError> {
        if metric.judge.is_some() {
            return Err(ProviderError::Config(format!(
                "metric {}: judge metrics are not measured by this version (only successCondition/failureCondition metrics are)",
                metric.name
            )));
        }
        let provider = self.providers.for_metric(metric)?;
        let namespace = run.namespace().unwrap_or_default();
        *args = Args::resolve(self.client, &namespace, &run.spec.args).await?;
        let run_name = run.name_any();
        let uid = run.uid().unwrap_or_default();
        let req = MeasureRequest {
            namespace: &namespace,
            run_name: &run_name,
            run_uid: &uid,
            metric,
            args,
            index,
            now: Timestamp::now(),
        };
        match resume {
            Some(m) => provider.resume(&req, m).await,
            None => provider.measure(&req).await,
        }
    }
}

fn errored(message: &str) -> Measurement {
    Measurement {
        phase: AnalysisPhase::Error,
        message: Some(message.to_string()),
        started_at: None,
        finished_at: None,
        value: None,
        resume_at: None,
        metadata: BTreeMap::new(),
    }
}

/// The measurement an outcome makes: a value judged by the metric's conditions, a phase the
/// provider decided, or one still running.
fn judge(metric: &Metric, args: &Args, outcome: Outcome, now: Timestamp) -> Measurement {
    let base = |phase, metadata: BTreeMap<String, String>| Measurement {
        phase,
        metadata: metadata
            .into_iter()
            .map(|(k, v)| (k, args.redact(&v)))
            .collect(),
        ..errored("")
    };
    match outcome {
        Outcome::Value { result, metadata } => {
            let value = Some(args.redact(&value_text(&result)));
            let conditions = Conditions::compile(
                &metric.name,
                metric.success_condition.as_deref(),
                metric.failure_condition.as_deref(),
                &|name| args.get(name).map(str::to_string),
            );
            match conditions.and_then(|c| c.evaluate(&result)) {
                Ok(phase) => Measurement {
                    value,
                    message: None,
                    ..base(phase, metadata)
                },
                Err(error) => Measurement {
                    value,
                    message: Some(args.redact(&error.to_string())),
                    ..base(AnalysisPhase::Error, metadata)
                },
            }
        }
        Outcome::Phase {
            phase,
            message,
            metadata,
        } => Measurement {
            message: message.map(|m| args.redact(&m)),
            ..base(phase, metadata)
        },
        Outcome::InProgress {
            resume_after,
            metadata,
        } => {
            let at = now
                .checked_add(jiff::SignedDuration::try_from(resume_after).unwrap_or_default())
                .unwrap_or(now);
            Measurement {
                resume_at: Some(Time(at)),
                message: None,
                ..base(AnalysisPhase::Running, metadata)
            }
        }
    }
}

/// A measured value as the status shows it: numbers plainly (`0.99`), arrays and objects as
/// compact JSON (`[0.99]`), strings without quotes.
fn value_text(result: &serde_json::Value) -> String {
    match result {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MetricProviderSpec, PrometheusMetric, WebMetric};
    use serde_json::json;

    fn metric(provider: MetricProviderSpec) -> Metric {
        Metric {
            name: "m".into(),
            provider,
            ..Metric::default()
        }
    }

    #[test]
    fn the_deadline_follows_the_providers_timeout_and_is_capped() {
        let prom = |timeout| {
            metric(MetricProviderSpec {
                prometheus: Some(PrometheusMetric {
                    timeout,
                    ..PrometheusMetric::default()
                }),
                ..MetricProviderSpec::default()
            })
        };
        assert_eq!(deadline(&prom(None)), Duration::from_secs(35));
        assert_eq!(deadline(&prom(Some(2))), Duration::from_secs(7));
        assert_eq!(deadline(&prom(Some(3600))), MAX_DEADLINE);
        let web = metric(MetricProviderSpec {
            web: Some(WebMetric::default()),
            ..MetricProviderSpec::default()
        });
        assert_eq!(deadline(&web), Duration::from_secs(15));
    }

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(value_text(&json!(0.99)), "0.99");
        assert_eq!(value_text(&json!([0.5, 1])), "[0.5,1]");
        assert_eq!(value_text(&json!("up")), "up");
    }
}
