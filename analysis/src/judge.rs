//! The judge end to end: classify every metric of a validated request, then score.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::classify::{MetricResult, classify};
use crate::config::JudgeRequest;
use crate::score::{GroupScore, Verdict, score};

/// The judge's output (`kubectl sluice judge -o json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// 0–100, rounded half-up to two decimals.
    pub score: f64,
    pub result: Verdict,
    /// Why the score is what it is, when that is not just the sum of the groups.
    pub reason: Option<String>,
    pub groups: Vec<GroupScore>,
    pub metrics: Vec<MetricResult>,
}

/// Judges a validated request.
pub fn judge(request: &JudgeRequest) -> Judgement {
    let metrics: Vec<MetricResult> = request
        .metrics
        .iter()
        .map(|m| classify(m, request.confidence))
        .collect();
    let summary = score(&metrics, &request.group_weights, request.thresholds);
    Judgement {
        score: summary.score,
        result: summary.result,
        reason: summary.reason,
        groups: summary.groups,
        metrics,
    }
}
