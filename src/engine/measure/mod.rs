//! The measurement loop of an AnalysisRun, pure like `decide`: the run's spec, its status as
//! last written, the measurements the controller finished since, and `now` in; the new status,
//! the measurements due now and the exact time of the next one out. No I/O, no clock.
//!
//! Semantics follow Argo Rollouts (reference study §4.2): count / interval / initialDelay,
//! failureLimit, inconclusiveLimit, consecutiveErrorLimit (default 4),
//! consecutiveSuccessLimit, dryRun, measurementRetention (default 10), terminate, the
//! worst-phase roll-up and early termination.

mod assess;
mod cel_ext;
pub mod condition;
mod config;
pub mod judge;
mod source;
#[cfg(test)]
mod tests;

use crate::crd::{
    AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus, Measurement, Metric, MetricResult,
    RunSummary,
};
use assess::completed;
use config::{Args, Config};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

/// Measurements kept per metric when `measurementRetention` says nothing (Argo's default).
pub const DEFAULT_RETENTION: usize = 10;

/// Wait before measuring again after an error when the metric has no interval (Argo's).
pub const ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// A measurement the controller took (or is still taking) since the status was last written.
#[derive(Clone, Debug, PartialEq)]
pub struct Taken {
    /// The metric's name.
    pub metric: String,
    /// The measurement, its phase already decided (conditions evaluated, provider errors as
    /// `Error`). A `Running` measurement with `resume_at` is still in progress (a Job); a later
    /// `Taken` with the same `started_at` replaces it.
    pub measurement: Measurement,
}

/// A measurement to take now.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    /// The metric's name.
    pub metric: String,
    /// The in-progress measurement to look at again, or `None` for a new one.
    pub resume: Option<Measurement>,
    /// When it fell due (for the delay from due to recorded).
    pub due_at: Timestamp,
}

/// What the loop decided for one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeasureDecision {
    /// The run's new status (counts, metric phases, run phase, timestamps, retention applied).
    pub status: AnalysisRunStatus,
    /// Measurements to take now, at most one per metric.
    pub due: Vec<Due>,
    /// In-progress measurements (Jobs) to stop because their metric or the run ended. The
    /// status already shows them finished; stop them before writing it.
    pub stop: Vec<Due>,
    /// When the next measurement (or resume) is due, if any; `None` once the run is complete
    /// and when everything left to do is in `due` now.
    pub requeue_after: Option<Duration>,
}

/// A metric's template that cannot work, found without I/O.
#[derive(Debug, thiserror::Error)]
#[error("metric {metric:?}: {problem}")]
pub struct InvalidMetric {
    /// The metric's name.
    pub metric: String,
    /// What is wrong.
    pub problem: String,
}

impl InvalidMetric {
    /// A static label for metrics and Event reasons.
    #[must_use]
    pub fn category(&self) -> &'static str {
        "invalid_metric"
    }
}

/// Checks what can be checked of a metric before it runs: conditions compile (arguments not
/// known yet stand in as numbers), interval and initialDelay parse, `count > 1` has an
/// interval, limits are integers, and `failureLimit: -1` comes with `consecutiveSuccessLimit`.
///
/// # Errors
/// The first problem found.
pub fn validate_metric(metric: &Metric) -> Result<(), InvalidMetric> {
    let invalid = |problem: String| InvalidMetric {
        metric: metric.name.clone(),
        problem,
    };
    let config = config::resolve(metric, &Args::Unknown).map_err(invalid)?;
    if config.failure_limit.is_none() && config.consecutive_success_limit == 0 {
        return Err(invalid(
            "failureLimit -1 needs a consecutiveSuccessLimit, or the metric could never fail"
                .to_string(),
        ));
    }
    if let Some(judge) = &metric.judge {
        judge::validate(metric, judge).map_err(invalid)?;
    }
    condition::Conditions::compile(
        &metric.name,
        metric.success_condition.as_deref(),
        metric.failure_condition.as_deref(),
        &|_| None,
    )
    .map_err(|e| invalid(format!("{}: {}", e.which, e.problem)))?;
    Ok(())
}

/// Advances one AnalysisRun: folds `taken` into the status, rolls metric and run phases up,
/// and says what to measure now and when to come back.
pub fn step(
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    taken: &[Taken],
    now: Timestamp,
) -> MeasureDecision {
    let mut status = status.cloned().unwrap_or_default();
    if status.phase.is_some_and(completed) {
        return MeasureDecision {
            status,
            ..MeasureDecision::default()
        };
    }
    if !matches!(status.phase, Some(AnalysisPhase::Running)) {
        status.phase = Some(AnalysisPhase::Running);
    }
    let started = status.started_at.get_or_insert(Time(now)).0;
    let mut results = order_results(spec, std::mem::take(&mut status.metric_results));
    for t in taken {
        if let Some(r) = results.iter_mut().find(|r| r.name == t.metric)
            && !completed(r.phase)
        {
            assess::fold(r, t.measurement.clone());
        }
    }
    let configs: Vec<Result<Config, String>> = spec
        .metrics
        .iter()
        .map(|m| config::resolve(m, &Args::Run(&spec.args)))
        .collect();
    for (r, config) in results.iter_mut().zip(&configs) {
        settle(r, config);
    }
    let mut stop = Vec::new();
    if let Some(why) = termination(spec, &results) {
        for r in results.iter_mut().filter(|r| !completed(r.phase)) {
            r.phase = AnalysisPhase::Successful;
            r.message = Some(format!("metric {:?} stopped early: {why}", r.name));
        }
    }
    for r in &mut results {
        stop_in_progress(r, now, &mut stop);
    }
    let (due, requeue_after) = schedule(&results, &configs, started, now);
    for r in &mut results {
        let keep = retention(spec, &r.name);
        if r.measurements.len() > keep {
            r.measurements.drain(..r.measurements.len() - keep);
        }
    }
    status.metric_results = results;
    roll_up(spec, &mut status, now);
    let requeue_after = if status.phase.is_some_and(completed) {
        None
    } else {
        requeue_after
    };
    MeasureDecision {
        status,
        due,
        stop,
        requeue_after,
    }
}

/// The results in spec order, each marked dry-run or not; new metrics start Pending and
/// results of metrics no longer in the spec are dropped.
fn order_results(spec: &AnalysisRunSpec, mut old: Vec<MetricResult>) -> Vec<MetricResult> {
    spec.metrics
        .iter()
        .map(|m| {
            let dry_run = is_dry_run(spec, &m.name);
            let mut r = old
                .iter()
                .position(|r| r.name == m.name)
                .map(|i| old.swap_remove(i))
                .unwrap_or_else(|| assess::pending(&m.name, dry_run));
            r.dry_run = dry_run;
            r
        })
        .collect()
}

fn is_dry_run(spec: &AnalysisRunSpec, metric: &str) -> bool {
    spec.dry_run
        .iter()
        .any(|d| d.metric_name == "*" || d.metric_name == metric)
}

/// Measurements kept for a metric: the last matching `measurementRetention` entry wins.
fn retention(spec: &AnalysisRunSpec, metric: &str) -> usize {
    spec.measurement_retention
        .iter()
        .rev()
        .find(|r| r.metric_name == "*" || r.metric_name == metric)
        .map_or(DEFAULT_RETENTION, |r| {
            usize::try_from(r.limit).unwrap_or(1).max(1)
        })
}

/// Sets an unfinished metric's phase: final when a rule decides it (or its configuration is
/// broken: Error), else Pending before its first measurement and Running after.
fn settle(r: &mut MetricResult, config: &Result<Config, String>) {
    if completed(r.phase) {
        return;
    }
    let verdict = match config {
        Err(problem) => Some((
            AnalysisPhase::Error,
            format!("metric {:?}: {problem}", r.name),
        )),
        Ok(config) => assess::assess(r, config),
    };
    match verdict {
        Some((phase, message)) => {
            r.phase = phase;
            r.message = Some(message);
        }
        None if r.measurements.is_empty() && r.count == 0 && r.error == 0 => {
            r.phase = AnalysisPhase::Pending;
        }
        None => r.phase = AnalysisPhase::Running,
    }
}

/// Why the run stops before its metrics finish: `spec.terminate`, or a metric that is not
/// dry-run ending Failed, Error or Inconclusive.
fn termination(spec: &AnalysisRunSpec, results: &[MetricResult]) -> Option<String> {
    let failed = results
        .iter()
        .filter(|r| !r.dry_run)
        // `max_by_key` keeps the last of equals; reversed, that is the first in spec order.
        .rev()
        .max_by_key(|r| badness(r.phase))
        .filter(|r| badness(r.phase) > badness(AnalysisPhase::Pending));
    match failed {
        Some(r) => Some(
            r.message
                .clone()
                .unwrap_or_else(|| format!("metric {:?} assessed {:?}", r.name, r.phase)),
        ),
        None if spec.terminate => Some("run terminated".to_string()),
        None => None,
    }
}

/// Argo's order of phases from best to worst.
fn badness(phase: AnalysisPhase) -> u8 {
    match phase {
        AnalysisPhase::Successful => 0,
        AnalysisPhase::Running => 1,
        AnalysisPhase::Pending => 2,
        AnalysisPhase::Inconclusive => 3,
        AnalysisPhase::Error => 4,
        AnalysisPhase::Failed => 5,
    }
}

/// A finished metric's in-progress measurement is to be stopped; the status shows it ended
/// (uncounted) so the run never lists a measurement as running after it completed.
fn stop_in_progress(r: &mut MetricResult, now: Timestamp, stop: &mut Vec<Due>) {
    if !completed(r.phase) {
        return;
    }
    for m in r
        .measurements
        .iter_mut()
        .filter(|m| m.phase == AnalysisPhase::Running)
    {
        stop.push(Due {
            metric: r.name.clone(),
            resume: Some(m.clone()),
            due_at: now,
        });
        m.phase = AnalysisPhase::Successful;
        m.message = Some("stopped: the metric or the run ended".to_string());
        m.finished_at = Some(Time(now));
        m.resume_at = None;
    }
}

/// The measurements due now and the time until the earliest later one.
fn schedule(
    results: &[MetricResult],
    configs: &[Result<Config, String>],
    started: Timestamp,
    now: Timestamp,
) -> (Vec<Due>, Option<Duration>) {
    let mut due = Vec::new();
    let mut next: Option<Timestamp> = None;
    for (r, config) in results.iter().zip(configs) {
        let (Ok(config), false) = (config, completed(r.phase)) else {
            continue;
        };
        let (at, resume) = next_measurement(r, config, started, now);
        if at <= now {
            due.push(Due {
                metric: r.name.clone(),
                resume,
                due_at: at,
            });
        } else {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    let wait = next.and_then(|at| Duration::try_from(now.duration_until(at)).ok());
    (due, wait)
}

/// When the metric's next measurement (or the resume of its in-progress one) is due.
fn next_measurement(
    r: &MetricResult,
    config: &Config,
    started: Timestamp,
    now: Timestamp,
) -> (Timestamp, Option<Measurement>) {
    let Some(last) = r.measurements.last() else {
        let first = if r.count == 0 && r.error == 0 {
            after(started, config.initial_delay)
        } else {
            now
        };
        return (first, None);
    };
    if last.phase == AnalysisPhase::Running {
        let at = last.resume_at.as_ref().map_or(now, |t| t.0);
        return (at, Some(last.clone()));
    }
    let gap = match (last.phase, config.interval) {
        (AnalysisPhase::Error, None) => ERROR_RETRY_INTERVAL,
        (_, interval) => interval.unwrap_or(Duration::ZERO),
    };
    let base = last
        .finished_at
        .as_ref()
        .or(last.started_at.as_ref())
        .map_or(now, |t| t.0);
    (after(base, gap), None)
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The run's phase, message, completion time and summaries from its metrics.
fn roll_up(spec: &AnalysisRunSpec, status: &mut AnalysisRunStatus, now: Timestamp) {
    let results = &status.metric_results;
    status.run_summary = Some(summary(results.iter().filter(|r| !r.dry_run)));
    status.dry_run_summary = results
        .iter()
        .any(|r| r.dry_run)
        .then(|| summary(results.iter().filter(|r| r.dry_run)));
    if !results.iter().all(|r| completed(r.phase)) {
        status.phase = Some(AnalysisPhase::Running);
        status.message = None;
        return;
    }
    let worst = results
        .iter()
        .filter(|r| !r.dry_run)
        // `max_by_key` keeps the last of equals; reversed, that is the first in spec order.
        .rev()
        .max_by_key(|r| badness(r.phase));
    let phase = worst.map_or(AnalysisPhase::Successful, |r| r.phase);
    status.message = match (phase, worst) {
        (AnalysisPhase::Successful, _) if spec.terminate => Some("run terminated".to_string()),
        (AnalysisPhase::Successful, _) | (_, None) => None,
        (_, Some(r)) => r.message.clone(),
    };
    status.phase = Some(phase);
    status.completed_at.get_or_insert(Time(now));
}

fn summary<'a>(results: impl Iterator<Item = &'a MetricResult>) -> RunSummary {
    let mut s = RunSummary::default();
    for r in results {
        s.count += 1;
        match r.phase {
            AnalysisPhase::Successful => s.successful += 1,
            AnalysisPhase::Failed => s.failed += 1,
            AnalysisPhase::Inconclusive => s.inconclusive += 1,
            AnalysisPhase::Error => s.error += 1,
            AnalysisPhase::Pending | AnalysisPhase::Running => {}
        }
    }
    s
}
