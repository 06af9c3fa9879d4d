//! Tests of the measurement loop and of conditions: builders here, table tests per rule of
//! Argo's §4.2 (`step_tests`), conditions (`condition_tests`) and invariants (`props`).

mod condition_tests;
mod judge_tests;
mod props;
mod step_tests;

use super::*;
use crate::crd::{
    AnalysisPhase, Argument, ArgumentSource, DryRun, Measurement, MeasurementRetention, Metric,
    MetricProviderSpec, SecretKeyRef,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The run's start in every test; `at(s)` is `s` seconds later.
pub(super) fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

pub(super) fn metric(name: &str) -> Metric {
    Metric {
        name: name.to_string(),
        provider: MetricProviderSpec::default(),
        ..Metric::default()
    }
}

pub(super) fn int(n: i32) -> Option<IntOrString> {
    Some(IntOrString::Int(n))
}

pub(super) fn text(s: &str) -> Option<IntOrString> {
    Some(IntOrString::String(s.to_string()))
}

/// A metric measured `count` times, `interval` seconds apart.
pub(super) fn every(name: &str, count: i32, interval: u32) -> Metric {
    Metric {
        count: int(count),
        interval: Some(format!("{interval}s")),
        ..metric(name)
    }
}

pub(super) fn run(metrics: Vec<Metric>) -> AnalysisRunSpec {
    AnalysisRunSpec {
        metrics,
        ..AnalysisRunSpec::default()
    }
}

pub(super) fn literal(name: &str, value: &str) -> Argument {
    Argument {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

pub(super) fn secret(name: &str) -> Argument {
    Argument {
        name: name.to_string(),
        value: None,
        value_from: Some(ArgumentSource {
            secret_key_ref: Some(SecretKeyRef {
                name: "s".to_string(),
                key: "k".to_string(),
            }),
        }),
    }
}

pub(super) fn dry(name: &str) -> DryRun {
    DryRun {
        metric_name: name.to_string(),
    }
}

pub(super) fn keep(name: &str, limit: i32) -> MeasurementRetention {
    MeasurementRetention {
        metric_name: name.to_string(),
        limit,
    }
}

/// A finished measurement started and finished at `secs`.
pub(super) fn measured(phase: AnalysisPhase, secs: i64) -> Measurement {
    Measurement {
        phase,
        message: None,
        started_at: Some(Time(at(secs))),
        finished_at: Some(Time(at(secs))),
        value: None,
        resume_at: None,
        metadata: BTreeMap::new(),
    }
}

pub(super) fn taken(metric: &str, phase: AnalysisPhase, secs: i64) -> Taken {
    Taken {
        metric: metric.to_string(),
        measurement: measured(phase, secs),
    }
}

/// Runs `spec` from its start: at each wake-up the controller takes every due measurement with
/// the next phase of `outcomes` (per metric; `Running` starts a Job that ends Successful when
/// resumed), until the run completes or `limit` steps
/// pass. Returns every decision in order.
pub(super) fn drive(
    spec: &AnalysisRunSpec,
    outcomes: &dyn Fn(&str, usize) -> AnalysisPhase,
    limit: usize,
) -> Vec<MeasureDecision> {
    drive_timed(spec, outcomes, limit)
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

/// As `drive`, with the time of each decision.
pub(super) fn drive_timed(
    spec: &AnalysisRunSpec,
    outcomes: &dyn Fn(&str, usize) -> AnalysisPhase,
    limit: usize,
) -> Vec<(Timestamp, MeasureDecision)> {
    let mut now = at(0);
    let mut decisions = vec![(now, step(spec, None, &[], now))];
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..limit {
        let (_, last) = decisions.last().unwrap();
        if last.status.phase.is_some_and(assess::completed) {
            break;
        }
        let taken: Vec<Taken> = last
            .due
            .iter()
            .map(|d| {
                if let Some(in_progress) = &d.resume {
                    // A Job looked at again has finished.
                    return Taken {
                        metric: d.metric.clone(),
                        measurement: Measurement {
                            phase: AnalysisPhase::Successful,
                            finished_at: Some(Time(now)),
                            resume_at: None,
                            ..in_progress.clone()
                        },
                    };
                }
                let n = seen.entry(d.metric.clone()).or_default();
                *n += 1;
                let phase = outcomes(&d.metric, *n - 1);
                // A `Running` outcome is a Job still going: look again in 5 s.
                let running = phase == AnalysisPhase::Running;
                Taken {
                    metric: d.metric.clone(),
                    measurement: Measurement {
                        started_at: Some(Time(now)),
                        finished_at: (!running).then_some(Time(now)),
                        resume_at: running
                            .then(|| Time(now.checked_add(SignedDuration::from_secs(5)).unwrap())),
                        ..measured(phase, 0)
                    },
                }
            })
            .collect();
        if taken.is_empty() {
            match last.requeue_after {
                Some(wait) => {
                    now = now
                        .checked_add(SignedDuration::try_from(wait).unwrap())
                        .unwrap()
                }
                None => break,
            }
        }
        let next = step(spec, Some(&last.status), &taken, now);
        decisions.push((now, next));
    }
    decisions
}

pub(super) fn result<'a>(d: &'a MeasureDecision, name: &str) -> &'a MetricResult {
    d.status
        .metric_results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result for {name} in {:#?}", d.status))
}

pub(super) fn due_names(d: &MeasureDecision) -> Vec<&str> {
    d.due.iter().map(|d| d.metric.as_str()).collect()
}
