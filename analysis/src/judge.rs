//! The judge end to end: classify every metric of a validated request, then score.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::classify::{MetricResult, classify, classify_owned};
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
    scored(metrics, request)
}

/// [`judge`] of a request given away: each sample is cleaned and sorted in its own memory.
pub fn judge_owned(mut request: JudgeRequest) -> Judgement {
    let confidence = request.confidence;
    let metrics: Vec<MetricResult> = std::mem::take(&mut request.metrics)
        .into_iter()
        .map(|m| classify_owned(m, confidence))
        .collect();
    scored(metrics, &request)
}

fn scored(metrics: Vec<MetricResult>, request: &JudgeRequest) -> Judgement {
    let summary = score(&metrics, &request.group_weights, request.thresholds);
    Judgement {
        score: summary.score,
        result: summary.result,
        reason: summary.reason,
        groups: summary.groups,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Judging a request given away equals judging it borrowed: NaN removed or replaced,
    /// outliers kept or removed, a rate metric, a side with nothing left.
    #[test]
    fn judging_owned_equals_judging_borrowed() {
        let text = r#"{"metrics": [
            {"name": "a", "direction": "increase", "nanStrategy": "remove",
             "control": [1, 2, null, 3, 4, 5, 6], "experiment": [2, 3, "NaN", 4, 5, 60, 7]},
            {"name": "b", "direction": "either", "nanStrategy": "replace",
             "outliers": {"strategy": "remove", "factor": 1.5},
             "control": [1, 2, null, 3, 4, 5, 90], "experiment": [2, 3, "NaN", 4, 5, 6, 7]},
            {"name": "c", "direction": "increase", "control": [null, null], "experiment": [1]},
            {"name": "d", "direction": "increase", "test": "rateRatio",
             "control": {"events": [0, 1, 2], "total": 5000},
             "experiment": {"events": 12, "total": 5000}}
        ]}"#;
        let request = crate::input::parse(text).unwrap();
        let borrowed = judge(&request);
        let owned = judge_owned(request);
        assert_eq!(
            serde_json::to_string(&borrowed).unwrap(),
            serde_json::to_string(&owned).unwrap()
        );
        assert_eq!(borrowed.metrics.len(), 4);
    }
}
