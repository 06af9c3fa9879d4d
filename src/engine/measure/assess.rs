//! One metric's bookkeeping: folding a measurement into its counts, and Argo's rules for when
//! the metric is done and in which phase. Pure; reads and writes only `MetricResult`.

use super::config::Config;
use crate::crd::{AnalysisPhase, Measurement, MetricResult};
use std::collections::BTreeMap;

/// A fresh result for metric `name`, not measured yet.
pub(super) fn pending(name: &str, dry_run: bool) -> MetricResult {
    MetricResult {
        name: name.to_string(),
        phase: AnalysisPhase::Pending,
        message: None,
        measurements: Vec::new(),
        count: 0,
        successful: 0,
        failed: 0,
        inconclusive: 0,
        error: 0,
        consecutive_error: 0,
        consecutive_success: 0,
        dry_run,
        metadata: BTreeMap::new(),
    }
}

/// Whether a metric or run phase is final.
pub(super) fn completed(phase: AnalysisPhase) -> bool {
    match phase {
        AnalysisPhase::Successful
        | AnalysisPhase::Failed
        | AnalysisPhase::Error
        | AnalysisPhase::Inconclusive => true,
        AnalysisPhase::Pending | AnalysisPhase::Running => false,
    }
}

/// Folds one measurement in. An in-progress one (`Running`) is kept without counting; a later
/// one with the same `started_at` replaces it. A final measurement already folded (same start
/// and content) is not counted twice, so a controller may hand the same one in again.
pub(super) fn fold(result: &mut MetricResult, measurement: Measurement) {
    let same_start = |m: &Measurement| {
        measurement.started_at.is_some() && m.started_at == measurement.started_at
    };
    if let Some(pos) = result.measurements.iter().rposition(same_start) {
        let existing = &result.measurements[pos];
        if existing.phase != AnalysisPhase::Running {
            return;
        }
        result.measurements.remove(pos);
    }
    result.metadata = measurement.metadata.clone();
    count(result, measurement.phase);
    result.measurements.push(measurement);
}

/// Argo's counters: errors are counted apart and do not use up `count` (an error is retried);
/// a non-error resets the error streak, a non-success the success streak.
fn count(result: &mut MetricResult, phase: AnalysisPhase) {
    match phase {
        AnalysisPhase::Pending | AnalysisPhase::Running => return,
        AnalysisPhase::Successful => {
            result.successful += 1;
            result.consecutive_success += 1;
        }
        AnalysisPhase::Failed => result.failed += 1,
        AnalysisPhase::Inconclusive => result.inconclusive += 1,
        AnalysisPhase::Error => {
            result.error += 1;
            result.consecutive_error += 1;
            result.consecutive_success = 0;
            return;
        }
    }
    if phase != AnalysisPhase::Successful {
        result.consecutive_success = 0;
    }
    result.consecutive_error = 0;
    result.count += 1;
}

/// The metric's final phase and why, once one of Argo's rules decides it, in Argo's order.
pub(super) fn assess(result: &MetricResult, config: &Config) -> Option<(AnalysisPhase, String)> {
    let name = &result.name;
    let verdict = |phase: AnalysisPhase, why: String| {
        Some((
            phase,
            format!("metric {name:?} assessed {phase:?} due to {why}"),
        ))
    };
    if let Some(limit) = config.failure_limit
        && result.failed > limit
    {
        return verdict(
            AnalysisPhase::Failed,
            format!("failed ({}) > failureLimit ({limit})", result.failed),
        );
    }
    if result.inconclusive > config.inconclusive_limit {
        return verdict(
            AnalysisPhase::Inconclusive,
            format!(
                "inconclusive ({}) > inconclusiveLimit ({})",
                result.inconclusive, config.inconclusive_limit
            ),
        );
    }
    if result.consecutive_error > config.consecutive_error_limit {
        let last = last_error(result)
            .map(|m| format!(": {m:?}"))
            .unwrap_or_default();
        return verdict(
            AnalysisPhase::Error,
            format!(
                "consecutiveErrors ({}) > consecutiveErrorLimit ({}){last}",
                result.consecutive_error, config.consecutive_error_limit
            ),
        );
    }
    let success_limit = config.consecutive_success_limit;
    if success_limit > 0 && result.consecutive_success >= success_limit {
        return verdict(
            AnalysisPhase::Successful,
            format!(
                "consecutiveSuccess ({}) >= consecutiveSuccessLimit ({success_limit})",
                result.consecutive_success
            ),
        );
    }
    let count = config.count?;
    if result.count < count {
        return None;
    }
    Some(match (config.failure_limit.is_some(), success_limit > 0) {
        (true, true) => verdict(
            AnalysisPhase::Inconclusive,
            format!(
                "count ({count}) reached with neither failureLimit ({}) nor \
                 consecutiveSuccessLimit ({success_limit}) met",
                config.failure_limit.unwrap_or_default()
            ),
        )?,
        (false, true) => verdict(
            AnalysisPhase::Failed,
            format!(
                "consecutiveSuccess ({}) < consecutiveSuccessLimit ({success_limit}) after \
                 count ({count})",
                result.consecutive_success
            ),
        )?,
        (_, false) => (
            AnalysisPhase::Successful,
            format!("metric {name:?} assessed Successful"),
        ),
    })
}

fn last_error(result: &MetricResult) -> Option<&str> {
    result
        .measurements
        .iter()
        .rev()
        .find(|m| m.phase == AnalysisPhase::Error)
        .and_then(|m| m.message.as_deref())
}
