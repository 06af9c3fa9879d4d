//! Taking one judgement of a run's judge metrics: for every due judge metric, its query once
//! per side (canary, and baseline or stable) with that side's `{{scope.*}}` placeholders, as a
//! range query over the window (`mannWhitney`) or instant events and total queries at its end
//! (`rateRatio`); then the judge (pure, `engine::measure::judge`) and one measurement per
//! metric. Queries go through the metric's provider, so registration, argument escaping,
//! timeouts and secret redaction are the provider's. Reads Secrets; calls providers.

use super::take::{MAX_DEADLINE, Taker};
use crate::crd::{
    AnalysisPhase, AnalysisRun, JudgeControl, Measurement, Metric, RangeQuery, RunJudgement,
};
use crate::engine::measure::Taken;
use crate::engine::measure::judge::{self, Fetched, Role, Side, SideData};
use crate::providers::{Args, MeasureRequest, Outcome, ProviderError};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::Value;
use std::collections::BTreeMap;

/// Queries sent at once for one judgement.
const QUERIES_AT_ONCE: usize = 8;

/// One judgement's results: a measurement per judged metric, and the run's new
/// `status.judgement` when the judge ran.
pub struct Judged {
    pub taken: Vec<Taken>,
    pub record: Option<RunJudgement>,
}

/// What every query of one judgement shares.
struct Query<'a> {
    taker: &'a Taker<'a>,
    run: &'a AnalysisRun,
    args: &'a Args,
    namespace: String,
    rollout: String,
}

impl Taker<'_> {
    /// Judges `metrics` (the run's judge metrics due now) together at `now`.
    pub async fn judge(&self, run: &AnalysisRun, metrics: &[Metric]) -> Judged {
        let started = Timestamp::now();
        let outcome = tokio::time::timeout(MAX_DEADLINE, self.judge_within(run, metrics))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the judge metrics' queries took more than {} s",
                    MAX_DEADLINE.as_secs()
                ))
            });
        let now = Timestamp::now();
        match outcome {
            Ok((judgement, control, window)) => {
                let taken = metrics
                    .iter()
                    .map(|m| Taken {
                        metric: m.name.clone(),
                        measurement: judge::measurement(&judgement, &m.name, started, now),
                    })
                    .collect();
                let previous = run.status.as_ref().and_then(|s| s.judgement.as_ref());
                Judged {
                    taken,
                    record: Some(judge::record(previous, judgement, control, window, now)),
                }
            }
            Err(message) => Judged {
                taken: metrics
                    .iter()
                    .map(|m| Taken {
                        metric: m.name.clone(),
                        measurement: errored(&message, started, now),
                    })
                    .collect(),
                record: None,
            },
        }
    }

    async fn judge_within(
        &self,
        run: &AnalysisRun,
        metrics: &[Metric],
    ) -> Result<
        (
            sluice_analysis::Judgement,
            JudgeControl,
            (Timestamp, Timestamp),
        ),
        String,
    > {
        let namespace = run.namespace().unwrap_or_default();
        let args = Args::resolve(self.client, &namespace, &run.spec.args)
            .await
            .map_err(|e| e.to_string())?;
        let now = Timestamp::now();
        let started = run
            .status
            .as_ref()
            .and_then(|s| s.started_at.as_ref())
            .map_or(now, |t| t.0);
        let query = Query {
            taker: self,
            run,
            args: &args,
            namespace,
            rollout: run
                .spec
                .scope
                .as_ref()
                .and_then(|s| s.rollout.clone())
                .unwrap_or_default(),
        };
        let mut plans = Vec::with_capacity(metrics.len());
        for metric in metrics {
            let Some(spec) = &metric.judge else { continue };
            let settings = judge::settings(metric, spec)
                .map_err(|e| format!("metric {}: {e}", metric.name))?;
            let sides = judge::sides(run.spec.scope.as_ref(), spec.control)
                .map_err(|e| format!("metric {}: {e}", metric.name))?;
            let window = judge::window(started, settings.window, now);
            plans.push((metric, settings, sides, window));
        }
        let control = plans
            .first()
            .map_or(JudgeControl::Stable, |(_, _, [_, c], _)| match c.role {
                Role::Baseline => JudgeControl::Baseline,
                _ => JudgeControl::Stable,
            });
        let window = plans.first().map_or((started, now), |p| p.3);
        let query = &query;
        let mut jobs: Vec<SideFuture<'_>> = Vec::with_capacity(plans.len() * 2);
        for (metric, settings, sides, window) in &plans {
            for side in sides {
                jobs.push(Box::pin(query.side_named(metric, settings, side, *window)));
            }
        }
        let results: Vec<Result<SideData, String>> = futures::stream::iter(jobs)
            .buffered(QUERIES_AT_ONCE)
            .collect()
            .await;
        let mut results = results.into_iter();
        let mut fetched = Vec::with_capacity(plans.len());
        for (metric, ..) in &plans {
            let canary = results.next().ok_or("missing canary data")??;
            let control = results.next().ok_or("missing control data")??;
            fetched.push(Fetched {
                metric,
                canary,
                control,
            });
        }
        let request = judge::request(&fetched, run.spec.judgement.as_ref())?;
        Ok((sluice_analysis::judge_owned(request), control, window))
    }
}

/// One side's data, or an error naming the metric and side.
type SideFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<SideData, String>> + Send + 'a>>;

impl Query<'_> {
    /// One side of one metric, errors named and redacted.
    async fn side_named(
        &self,
        metric: &Metric,
        settings: &judge::Settings,
        side: &Side,
        window: (Timestamp, Timestamp),
    ) -> Result<SideData, String> {
        self.side(metric, settings, side, window)
            .await
            .map_err(|e| {
                self.args.redact(&format!(
                    "metric {} ({} side): {e}",
                    metric.name,
                    side.role.as_str()
                ))
            })
    }

    /// One side of one metric.
    async fn side(
        &self,
        metric: &Metric,
        settings: &judge::Settings,
        side: &Side,
        window: (Timestamp, Timestamp),
    ) -> Result<SideData, ProviderError> {
        let mut args = self.args.clone();
        for (name, value) in [
            ("podTemplateHash", side.pod_template_hash.as_str()),
            ("role", side.role.as_str()),
            ("namespace", self.namespace.as_str()),
            ("rollout", self.rollout.as_str()),
            ("window", judge::window_text(window.0, window.1).as_str()),
        ] {
            args.insert(&format!("scope.{name}"), Some(value.to_string()), false);
        }
        match settings.test {
            sluice_analysis::spec::Test::MannWhitney => {
                let length = window.1.duration_since(window.0);
                if length.as_millis() < 1000 {
                    return Ok(SideData::Values(Vec::new()));
                }
                let mut ranged = metric.clone();
                if let Some(p) = ranged.provider.prometheus.as_mut() {
                    p.range_query = Some(RangeQuery {
                        start: format!("{}ms", length.as_millis()),
                        end: None,
                        step: format!("{}ms", settings.step.as_millis().max(1)),
                    });
                }
                let value = self.measure(&ranged, &args, window.1).await?;
                Ok(SideData::Values(numbers(&value)))
            }
            sluice_analysis::spec::Test::RateRatio => {
                let events = self.measure(metric, &args, window.1).await?;
                let mut total_metric = metric.clone();
                if let (Some(p), Some(total)) = (
                    total_metric.provider.prometheus.as_mut(),
                    metric.judge.as_ref().and_then(|j| j.total_query.clone()),
                ) {
                    p.query = total;
                }
                let total = self.measure(&total_metric, &args, window.1).await?;
                Ok(SideData::Counts {
                    events: sum(&events),
                    total: sum(&total),
                })
            }
        }
    }

    async fn measure(
        &self,
        metric: &Metric,
        args: &Args,
        at: Timestamp,
    ) -> Result<Value, ProviderError> {
        let provider = self.taker.providers.for_metric(metric)?;
        let name = self.run.name_any();
        let uid = self.run.uid().unwrap_or_default();
        let req = MeasureRequest {
            namespace: &self.namespace,
            run_name: &name,
            run_uid: &uid,
            metric,
            args,
            index: 0,
            now: at,
        };
        match provider.measure(&req).await? {
            Outcome::Value { result, .. } => Ok(result),
            _ => Err(ProviderError::Response(
                "the provider gave no value (judge metrics need a prometheus query)".into(),
            )),
        }
    }
}

/// The points of a Prometheus result as numbers: a scalar is one point, a vector or matrix
/// every sample; `"NaN"`, `"+Inf"`, `"-Inf"` become NaN and ±∞ (the judge drops them).
fn numbers(value: &Value) -> Vec<f64> {
    let one = |v: &Value| match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => match s.as_str() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or(f64::NAN),
        },
        _ => f64::NAN,
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        other => vec![one(other)],
    }
}

/// The sum of a result's finite points; `None` when it has none (the query matched nothing).
fn sum(value: &Value) -> Option<f64> {
    let finite: Vec<f64> = numbers(value)
        .into_iter()
        .filter(|v| v.is_finite())
        .collect();
    (!finite.is_empty()).then(|| finite.iter().sum())
}

fn errored(message: &str, started: Timestamp, now: Timestamp) -> Measurement {
    Measurement {
        phase: AnalysisPhase::Error,
        message: Some(message.to_string()),
        started_at: Some(Time(started)),
        finished_at: Some(Time(now)),
        value: None,
        resume_at: None,
        metadata: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prometheus_results_become_points_and_sums() {
        let points = numbers(&json!([1.5, "NaN", "+Inf", 2]));
        assert_eq!(points[0], 1.5);
        assert!(points[1].is_nan());
        assert_eq!(points[2], f64::INFINITY);
        assert_eq!(points[3], 2.0);
        assert_eq!(sum(&json!([1, "NaN", 2])), Some(3.0));
        assert_eq!(sum(&json!([])), None);
        assert_eq!(sum(&json!(4)), Some(4.0));
    }
}
