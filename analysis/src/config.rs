//! Validated judge configuration: what `input` produces from JSON and what `classify` and
//! `score` consume. Values here have passed every check, so later steps need no validation.

use std::collections::BTreeMap;

use schemars::JsonSchema;

use crate::rate_ratio::Counts;
use crate::sample::{NanStrategy, OutlierStrategy, Sample};

/// Default confidence level of the intervals (Kayenta's hard-coded 0.98).
pub const DEFAULT_CONFIDENCE: f64 = 0.98;
/// Kayenta's tolerance band: the interval must clear 0.25·|estimate|.
pub const TOLERANCE: f64 = 0.25;
/// Group used for a metric that names none.
pub const DEFAULT_GROUP: &str = "default";

/// Which way a change is bad.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Only an increase fails the metric (latency, errors).
    Increase,
    /// Only a decrease fails the metric (throughput, success rate).
    Decrease,
    /// Any change fails the metric (the default).
    #[default]
    Either,
}

impl Direction {
    pub(crate) fn flags_increase(self) -> bool {
        matches!(self, Self::Increase | Self::Either)
    }

    pub(crate) fn flags_decrease(self) -> bool {
        matches!(self, Self::Decrease | Self::Either)
    }
}

/// The effect-size measure the gates compare against.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum EffectMeasure {
    /// mean(canary)/mean(control) (for `rateRatio`: the rate ratio). The default.
    #[default]
    MeanRatio,
    /// P(canary > control) + ½·P(equal), in [0, 1]; 0.5 means no effect.
    Cles,
}

/// Practical-significance gates (kayenta-judge.md §3.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectSize {
    pub measure: EffectMeasure,
    pub allowed_increase: f64,
    pub allowed_decrease: f64,
    pub critical_increase: f64,
    pub critical_decrease: f64,
}

impl EffectSize {
    /// Kayenta's defaults: every gate at "no effect" (1.0 for a ratio, 0.5 for CLES).
    pub fn neutral(measure: EffectMeasure) -> Self {
        let v = match measure {
            EffectMeasure::MeanRatio => 1.0,
            EffectMeasure::Cles => 0.5,
        };
        Self {
            measure,
            allowed_increase: v,
            allowed_decrease: v,
            critical_increase: v,
            critical_decrease: v,
        }
    }
}

impl Default for EffectSize {
    fn default() -> Self {
        Self::neutral(EffectMeasure::MeanRatio)
    }
}

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricConfig {
    pub name: String,
    pub group: String,
    pub direction: Direction,
    /// A High/Low (or missing data) on this metric fails the whole canary.
    pub critical: bool,
    /// Missing data counts as a failing metric instead of being left out.
    pub must_have_data: bool,
    /// Reported but left out of scoring.
    pub muted: bool,
    pub nan_strategy: NanStrategy,
    pub outliers: OutlierStrategy,
    pub effect_size: EffectSize,
}

/// The data of one metric, shaped by its test.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricData {
    /// `mannWhitney`: two samples of values.
    Samples { control: Sample, experiment: Sample },
    /// `rateRatio`: event counts and exposures; `None` when a side has no data points at all.
    Counts {
        control: Option<Counts>,
        experiment: Option<Counts>,
    },
}

/// One metric to judge.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub config: MetricConfig,
    pub data: MetricData,
}

/// Score thresholds on the 0–100 scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub pass: f64,
    pub marginal: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// A complete, validated judge request.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeRequest {
    /// Confidence level of every interval, in (0, 1).
    pub confidence: f64,
    pub thresholds: Thresholds,
    /// Group weights, each ≥ 0, summing to at most 100.
    pub group_weights: BTreeMap<String, f64>,
    pub metrics: Vec<Metric>,
}
