//! Judge metrics in the measurement loop, pure: which pods each side is, the window a
//! judgement looks at, turning the data the controller fetched per side into the judge's
//! request, and the judge's verdict into measurements and `status.judgement`. No I/O, no
//! clock: the controller fetches and passes `now`.
//!
//! All judge metrics of a run are judged together at each interval (one score), so they share
//! one schedule (`validate_run`). The verdict decides every judge metric's measurement:
//! Pass → Successful, Marginal → Inconclusive (the Rollout pauses for a person), Fail →
//! Failed (the Rollout aborts).

use super::InvalidMetric;
use crate::crd::{
    AnalysisPhase, JudgeControl, JudgeMetric, Measurement, Metric, RunJudgement, RunScope,
    ScorePoint,
};
use crate::engine::duration::parse_pause_duration;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_analysis::Judgement;
use sluice_analysis::classify::Classification;
use sluice_analysis::config::{JudgeRequest, Metric as JudgedMetric, MetricData};
use sluice_analysis::rate_ratio::Counts;
use sluice_analysis::sample::Sample;
use sluice_analysis::score::Verdict;
use sluice_analysis::spec::{JudgementSpec, Test};
use std::collections::BTreeMap;
use std::time::Duration;

/// Range-query resolution when a judge metric sets no `step`.
pub const DEFAULT_STEP: Duration = Duration::from_secs(10);

/// Scores kept in `status.judgement.history` (the latest included).
pub const HISTORY: usize = 30;

/// A side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Canary,
    Baseline,
    Stable,
}

impl Role {
    /// The value of `{{scope.role}}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::Baseline => "baseline",
            Self::Stable => "stable",
        }
    }
}

/// One side's pods: what its `{{scope.*}}` placeholders resolve to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    pub role: Role,
    pub pod_template_hash: String,
}

/// What one side of one metric gave.
#[derive(Clone, Debug, PartialEq)]
pub enum SideData {
    /// `mannWhitney`: the points of the range query's series (NaN for a missing point).
    Values(Vec<f64>),
    /// `rateRatio`: events and total at the end of the window; `None` when a query returned
    /// nothing.
    Counts {
        events: Option<f64>,
        total: Option<f64>,
    },
}

/// A judge metric's settings, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub test: Test,
    pub step: Duration,
    pub window: Option<Duration>,
}

/// The settings of a judge metric.
///
/// # Errors
/// A message naming the field when `step` or `window` do not parse, the test and
/// `totalQuery` disagree, or the provider is not Prometheus.
pub fn settings(metric: &Metric, judge: &JudgeMetric) -> Result<Settings, String> {
    let Some(prometheus) = &metric.provider.prometheus else {
        return Err("judge metrics take their data from a prometheus provider".into());
    };
    if prometheus.range_query.is_some() {
        return Err(
            "a judge metric's range comes from judge.step and judge.window; remove provider.prometheus.rangeQuery"
                .into(),
        );
    }
    let test = judge.spec.test();
    match (test, judge.total_query.is_some()) {
        (Test::RateRatio, false) => {
            return Err("judge.test rateRatio needs judge.totalQuery (the exposure)".into());
        }
        (Test::MannWhitney, true) => {
            return Err("judge.totalQuery is only used by judge.test rateRatio".into());
        }
        _ => {}
    }
    let duration = |field: &str, text: &Option<String>| -> Result<Option<Duration>, String> {
        text.as_deref()
            .map(
                |t| match parse_pause_duration(&IntOrString::String(t.to_string())) {
                    Ok(d) if !d.is_zero() => Ok(d),
                    _ => Err(format!(
                        "judge.{field} {t:?} is not a positive duration such as 10s or 5m"
                    )),
                },
            )
            .transpose()
    };
    Ok(Settings {
        test,
        step: duration("step", &judge.step)?.unwrap_or(DEFAULT_STEP),
        window: duration("window", &judge.window)?,
    })
}

/// Checks a judge metric before it runs.
///
/// # Errors
/// The first problem found.
pub fn validate(metric: &Metric, judge: &JudgeMetric) -> Result<(), String> {
    settings(metric, judge)?;
    judge
        .spec
        .config(&metric.name, "judge")
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Checks what the judge metrics of one analysis need together: one schedule (they are
/// judged together) and a valid `judgement`.
///
/// # Errors
/// The first problem found, naming the metric.
pub fn validate_run(
    metrics: &[Metric],
    judgement: Option<&JudgementSpec>,
) -> Result<(), InvalidMetric> {
    let judged: Vec<&Metric> = metrics.iter().filter(|m| m.judge.is_some()).collect();
    let Some(first) = judged.first() else {
        return Ok(());
    };
    let schedule = |m: &Metric| (m.interval.clone(), m.count.clone(), m.initial_delay.clone());
    if let Some(other) = judged.iter().find(|m| schedule(m) != schedule(first)) {
        return Err(InvalidMetric {
            metric: other.name.clone(),
            problem: format!(
                "judge metrics are judged together, so they share interval, count and initialDelay; {:?} has a different schedule from {:?}",
                other.name, first.name
            ),
        });
    }
    if let Some(spec) = judgement {
        spec.validate("judgement").map_err(|e| InvalidMetric {
            metric: first.name.clone(),
            problem: e.to_string(),
        })?;
    }
    Ok(())
}

/// The two sides a run's judge metric compares: canary, and the control it asks for (the
/// baseline by default when the rollout runs one).
///
/// # Errors
/// When the run has no scope, or the control's pods are unknown.
pub fn sides(scope: Option<&RunScope>, control: Option<JudgeControl>) -> Result<[Side; 2], String> {
    let scope = scope.ok_or(
        "the run has no spec.scope (judge metrics run in analyses a Rollout creates, which name the canary, stable and baseline pods)",
    )?;
    let canary = scope
        .canary_pod_template_hash
        .clone()
        .ok_or("spec.scope.canaryPodTemplateHash is not set")?;
    let control = control.unwrap_or(if scope.baseline_pod_template_hash.is_some() {
        JudgeControl::Baseline
    } else {
        JudgeControl::Stable
    });
    let control = match control {
        JudgeControl::Baseline => Side {
            role: Role::Baseline,
            pod_template_hash: scope.baseline_pod_template_hash.clone().ok_or(
                "judge.control is baseline but the Rollout runs no baseline (spec.strategy.canary.baseline)",
            )?,
        },
        JudgeControl::Stable => Side {
            role: Role::Stable,
            pod_template_hash: scope
                .stable_pod_template_hash
                .clone()
                .ok_or("spec.scope.stablePodTemplateHash is not set")?,
        },
    };
    Ok([
        Side {
            role: Role::Canary,
            pod_template_hash: canary,
        },
        control,
    ])
}

/// The window a judgement at `now` looks at: from the run's start (or `window` before now,
/// whichever is later) to now.
pub fn window(
    started: Timestamp,
    window: Option<Duration>,
    now: Timestamp,
) -> (Timestamp, Timestamp) {
    let back = window
        .and_then(|w| SignedDuration::try_from(w).ok())
        .and_then(|w| now.checked_sub(w).ok())
        .unwrap_or(started);
    (back.max(started).min(now), now)
}

/// The window's length as a Prometheus duration, for `{{scope.window}}` (at least 1s).
pub fn window_text(start: Timestamp, end: Timestamp) -> String {
    let seconds = end.duration_since(start).as_secs().max(1);
    format!("{seconds}s")
}

/// One judge metric with the data of both sides.
pub struct Fetched<'a> {
    pub metric: &'a Metric,
    pub canary: SideData,
    pub control: SideData,
}

/// The judge's request for the fetched metrics.
///
/// # Errors
/// A configuration the templates' validation should have refused, naming the metric.
pub fn request(
    fetched: &[Fetched<'_>],
    judgement: Option<&JudgementSpec>,
) -> Result<JudgeRequest, String> {
    let scoring = judgement
        .cloned()
        .unwrap_or_default()
        .validate("judgement")
        .map_err(|e| e.to_string())?;
    let metrics = fetched
        .iter()
        .map(|f| {
            let judge = f.metric.judge.as_ref().ok_or("not a judge metric")?;
            let at = format!("metric {}: judge", f.metric.name);
            let config = judge
                .spec
                .config(&f.metric.name, &at)
                .map_err(|e| e.to_string())?;
            let data = match judge.spec.test() {
                Test::MannWhitney => MetricData::Samples {
                    control: sample(&f.control).map_err(|e| format!("{at}: control: {e}"))?,
                    experiment: sample(&f.canary).map_err(|e| format!("{at}: canary: {e}"))?,
                },
                Test::RateRatio => MetricData::Counts {
                    control: counts(&f.control),
                    experiment: counts(&f.canary),
                },
            };
            Ok(JudgedMetric { config, data })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(JudgeRequest {
        confidence: scoring.confidence,
        thresholds: scoring.thresholds,
        group_weights: scoring.group_weights,
        metrics,
    })
}

/// A side's points as a sample. Prometheus writes ±Inf where a quantile falls in the +Inf
/// bucket or a ratio divides by zero; the judge cannot rank those, so they count as missing.
fn sample(data: &SideData) -> Result<Sample, sluice_analysis::sample::SampleError> {
    let values = match data {
        SideData::Values(v) => v
            .iter()
            .map(|x| {
                if x.is_finite() && x.abs() <= sluice_analysis::sample::MAX_MAGNITUDE {
                    *x
                } else {
                    f64::NAN
                }
            })
            .collect(),
        SideData::Counts { .. } => Vec::new(),
    };
    Sample::new(values)
}

/// Events and total as the rate-ratio test's counts: events rounded to whole numbers (PromQL's
/// `increase` extrapolates), nothing when either is missing, the total is 0 or not finite.
fn counts(data: &SideData) -> Option<Counts> {
    let SideData::Counts { events, total } = data else {
        return None;
    };
    let (events, total) = ((*events)?, (*total)?);
    if !(events.is_finite() && total.is_finite() && total > 0.0) {
        return None;
    }
    let events = events.max(0.0).round().min(total.max(0.0).ceil());
    Some(Counts {
        events: events as u64,
        total,
    })
}

/// The phase a verdict gives every judge metric's measurement.
pub fn phase(verdict: Verdict) -> AnalysisPhase {
    match verdict {
        Verdict::Pass => AnalysisPhase::Successful,
        Verdict::Marginal => AnalysisPhase::Inconclusive,
        Verdict::Fail => AnalysisPhase::Failed,
    }
}

/// The measurement each judged metric records: its classification as the value, the score and
/// verdict (and the metric's own reason) as the message.
pub fn measurement(
    judgement: &Judgement,
    metric: &str,
    started: Timestamp,
    now: Timestamp,
) -> Measurement {
    let result = judgement.metrics.iter().find(|m| m.name == metric);
    let class = result.map_or("NoData", |r| classification_name(r.classification));
    let mut message = format!("canary score {} ({:?})", judgement.score, judgement.result);
    if let Some(reason) = result.and_then(|r| r.reason.as_deref()) {
        message.push_str(&format!("; {metric}: {reason}"));
    }
    let mut metadata = BTreeMap::from([("score".to_string(), judgement.score.to_string())]);
    if let Some(stats) = result.and_then(|r| r.statistics) {
        metadata.insert("pValue".into(), stats.p_value.to_string());
        metadata.insert("estimate".into(), stats.estimate.to_string());
    }
    Measurement {
        phase: phase(judgement.result),
        message: Some(message),
        started_at: Some(Time(started)),
        finished_at: Some(Time(now)),
        value: Some(class.to_string()),
        resume_at: None,
        metadata,
    }
}

/// A classification's name as the status and metrics show it.
pub fn classification_name(c: Classification) -> &'static str {
    match c {
        Classification::Pass => "Pass",
        Classification::High => "High",
        Classification::Low => "Low",
        Classification::NoData => "NoData",
        Classification::Error => "Error",
    }
}

/// The run's `status.judgement` after a new judgement: the latest in full, the history of
/// scores bounded to [`HISTORY`].
pub fn record(
    previous: Option<&RunJudgement>,
    judgement: Judgement,
    control: JudgeControl,
    window: (Timestamp, Timestamp),
    now: Timestamp,
) -> RunJudgement {
    let mut history = previous.map(|p| p.history.clone()).unwrap_or_default();
    history.push(ScorePoint {
        judged_at: Time(now),
        score: judgement.score,
        result: judgement.result,
    });
    let excess = history.len().saturating_sub(HISTORY);
    history.drain(..excess);
    RunJudgement {
        latest: judgement,
        judged_at: Time(now),
        control,
        window: vec![Time(window.0), Time(window.1)],
        history,
    }
}

/// The metrics that failed a judgement, for its Event: every unmuted metric not classified
/// Pass, with its classification.
pub fn failing(judgement: &Judgement) -> Vec<String> {
    judgement
        .metrics
        .iter()
        .filter(|m| !m.muted && m.classification != Classification::Pass)
        .map(|m| format!("{} ({})", m.name, classification_name(m.classification)))
        .collect()
}

/// The one-line summary of a judgement (Events, messages).
pub fn summary(judgement: &Judgement) -> String {
    let failing = failing(judgement);
    let mut text = format!("canary score {} ({:?})", judgement.score, judgement.result);
    if !failing.is_empty() {
        text.push_str(&format!("; not passing: {}", failing.join(", ")));
    }
    if let Some(reason) = &judgement.reason {
        text.push_str(&format!("; {reason}"));
    }
    text
}

/// A run that a judgement failed or left inconclusive says why in its message (which the
/// Rollout's abort or pause shows): the score and the metrics that did not pass.
pub fn explain(status: &mut crate::crd::AnalysisRunStatus) {
    if !matches!(
        status.phase,
        Some(AnalysisPhase::Failed | AnalysisPhase::Inconclusive)
    ) {
        return;
    }
    let Some(record) = &status.judgement else {
        return;
    };
    if record.latest.result == Verdict::Pass {
        return;
    }
    let why = summary(&record.latest);
    match &mut status.message {
        Some(message) if message.contains("canary score") => {}
        Some(message) => *message = format!("{message}: {why}"),
        None => status.message = Some(why),
    }
}
