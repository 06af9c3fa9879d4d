//! The judge's configuration as people write it: in `kubectl sluice judge` input and in the
//! `judge` / `judgement` blocks of Sluice's AnalysisTemplates and AnalysisRuns. One set of
//! types for both (they derive `JsonSchema`, so the CRD schema comes from here too), validated
//! into [`crate::config`] by [`MetricSpec::config`] and [`JudgementSpec::validate`]; every
//! error names the offending field.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{
    DEFAULT_CONFIDENCE, DEFAULT_GROUP, Direction, EffectMeasure, EffectSize, MetricConfig,
    Thresholds,
};
use crate::input::InputError;
use crate::sample::{DEFAULT_OUTLIER_FACTOR, NanStrategy, OutlierStrategy};

/// The judge's statistical test for one metric.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum Test {
    /// Mann-Whitney U with a Hodges-Lehmann interval, on two samples of values (the default).
    #[default]
    MannWhitney,
    /// Exact conditional test of two event rates (counters: events over a total).
    RateRatio,
}

/// Whether outliers are kept or removed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutlierMode {
    /// Keep every value (the default).
    #[default]
    Keep,
    /// Remove values outside the IQR fences widened by `factor`.
    Remove,
}

/// Outlier handling of one metric.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Outliers {
    /// `keep` (default) or `remove`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<OutlierMode>,
    /// The IQR fence factor for `remove`, ≥ 0. Defaults to 3 (Kayenta's default).
    #[serde(
        default,
        alias = "outlierFactor",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0))]
    pub factor: Option<f64>,
}

/// Practical-significance gates of one metric: a statistically significant change inside the
/// allowed gates still passes; one beyond a critical gate fails the whole canary.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EffectSizeSpec {
    /// `meanRatio` (default: mean(canary)/mean(control), the rate ratio for `rateRatio`) or
    /// `cles` (P(canary > control) + ½·P(equal), in [0, 1]; `mannWhitney` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<EffectMeasure>,
    /// An increase up to this effect is tolerated. Defaults to no effect (1, or 0.5 for cles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub allowed_increase: Option<f64>,
    /// A decrease down to this effect is tolerated. Defaults to no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub allowed_decrease: Option<f64>,
    /// An increase beyond this effect fails the whole canary. Defaults to no gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub critical_increase: Option<f64>,
    /// A decrease beyond this effect fails the whole canary. Defaults to no gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub critical_decrease: Option<f64>,
}

/// How one metric is judged (everything but its data and name).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    /// `mannWhitney` (default) for samples, `rateRatio` for counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Test>,
    /// Which change is bad: `increase`, `decrease` or `either` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// A failure (or, with `mustHaveData`, missing data) of this metric fails the whole
    /// judgement. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    /// Missing data counts as a failing metric instead of being left out. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_have_data: Option<bool>,
    /// Measure and report, but leave out of the score. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
    /// `remove` (default) drops NaN points; `replace` turns them into 0 (for counters that
    /// report nothing when nothing happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nan_strategy: Option<NanStrategy>,
    /// Outlier handling. Defaults to keeping every value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outliers: Option<Outliers>,
    /// Effect-size gates. Defaults to none (any significant change in the bad direction fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_size: Option<EffectSizeSpec>,
    /// The score group the metric belongs to. Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Score thresholds on the 0–100 scale.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.pass) || !has(self.marginal) || self.marginal <= self.pass",
    "message": "thresholds.marginal must not be above thresholds.pass"
}]))]
pub struct ThresholdsSpec {
    /// A score at or above this passes. Defaults to 95.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub pass: Option<f64>,
    /// A score at or above this, below `pass`, pauses for a person. Defaults to 75.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub marginal: Option<f64>,
}

/// How the judge metrics of an analysis are scored together.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JudgementSpec {
    /// Confidence level of every interval, in (0, 1). Defaults to 0.98.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self > 0.0 && self < 1.0",
        "message": "confidence must be inside (0, 1), e.g. 0.98"
    }]))]
    pub confidence: Option<f64>,
    /// Score thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsSpec>,
    /// Weights of the score groups, each ≥ 0, summing to at most 100. Groups without a weight
    /// share what is left equally.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(g, self[g] >= 0.0)",
        "message": "group weights must be ≥ 0"
    }]))]
    pub groups: BTreeMap<String, f64>,
}

/// A validated [`JudgementSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub confidence: f64,
    pub thresholds: Thresholds,
    pub group_weights: BTreeMap<String, f64>,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InputError {
    InputError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl JudgementSpec {
    /// Validates the scoring configuration and fills in defaults. `at` prefixes field paths
    /// (empty for the top level).
    ///
    /// # Errors
    /// [`InputError::Invalid`] naming the first offending field.
    pub fn validate(&self, at: &str) -> Result<Scoring, InputError> {
        let field = |name: &str| join(at, name);
        let confidence = self.confidence.unwrap_or(DEFAULT_CONFIDENCE);
        if !(confidence > 0.0 && confidence < 1.0) {
            return Err(invalid(
                field("confidence"),
                format!("{confidence} is outside (0, 1); use e.g. 0.98"),
            ));
        }
        let thresholds = self.thresholds(at)?;
        for (name, weight) in &self.groups {
            if !(weight.is_finite() && *weight >= 0.0) {
                return Err(invalid(
                    field(&format!("groups.{name}")),
                    format!("weight {weight} must be a finite number ≥ 0"),
                ));
            }
        }
        let sum: f64 = self.groups.values().sum();
        if sum > 100.0 + 1e-9 {
            return Err(invalid(
                field("groups"),
                format!("weights sum to {sum}; they must sum to at most 100"),
            ));
        }
        Ok(Scoring {
            confidence,
            thresholds,
            group_weights: self.groups.clone(),
        })
    }

    fn thresholds(&self, at: &str) -> Result<Thresholds, InputError> {
        let mut t = Thresholds::default();
        if let Some(spec) = self.thresholds {
            t.pass = spec.pass.unwrap_or(t.pass);
            t.marginal = spec.marginal.unwrap_or(t.marginal);
        }
        for (name, v) in [
            ("thresholds.pass", t.pass),
            ("thresholds.marginal", t.marginal),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(join(at, name), format!("{v} is outside [0, 100]")));
            }
        }
        if t.marginal > t.pass {
            return Err(invalid(
                join(at, "thresholds.marginal"),
                format!("{} is above thresholds.pass ({})", t.marginal, t.pass),
            ));
        }
        Ok(t)
    }
}

impl MetricSpec {
    /// The test, defaulted.
    pub fn test(&self) -> Test {
        self.test.unwrap_or_default()
    }

    /// Validates the metric's configuration and fills in defaults. `at` prefixes field paths,
    /// e.g. `metrics[2]` or `spec.metrics[0].judge`.
    ///
    /// # Errors
    /// [`InputError::Invalid`] naming the first offending field.
    pub fn config(&self, name: &str, at: &str) -> Result<MetricConfig, InputError> {
        let outliers = self.outlier_strategy(at)?;
        let effect_size = effect_size(at, self.effect_size)?;
        if self.test() == Test::RateRatio {
            if effect_size.measure == EffectMeasure::Cles {
                return Err(invalid(
                    join(at, "effectSize.measure"),
                    "cles is not defined for test rateRatio; use meanRatio (the rate ratio)",
                ));
            }
            if matches!(outliers, OutlierStrategy::Remove { .. }) {
                return Err(invalid(
                    join(at, "outliers.strategy"),
                    "outlier removal does not apply to test rateRatio (counts are summed)",
                ));
            }
        }
        Ok(MetricConfig {
            name: name.to_owned(),
            group: self
                .group
                .clone()
                .unwrap_or_else(|| DEFAULT_GROUP.to_owned()),
            direction: self.direction.unwrap_or_default(),
            critical: self.critical.unwrap_or(false),
            must_have_data: self.must_have_data.unwrap_or(false),
            muted: self.muted.unwrap_or(false),
            nan_strategy: self.nan_strategy.unwrap_or_default(),
            outliers,
            effect_size,
        })
    }

    fn outlier_strategy(&self, at: &str) -> Result<OutlierStrategy, InputError> {
        let Some(o) = self.outliers else {
            return Ok(OutlierStrategy::Keep);
        };
        let factor = o.factor.unwrap_or(DEFAULT_OUTLIER_FACTOR);
        if !(factor.is_finite() && factor >= 0.0) {
            return Err(invalid(
                join(at, "outliers.factor"),
                format!("{factor} must be a finite number ≥ 0"),
            ));
        }
        Ok(match o.strategy.unwrap_or_default() {
            OutlierMode::Remove => OutlierStrategy::Remove { factor },
            OutlierMode::Keep => OutlierStrategy::Keep,
        })
    }
}

fn effect_size(at: &str, spec: Option<EffectSizeSpec>) -> Result<EffectSize, InputError> {
    let Some(spec) = spec else {
        return Ok(EffectSize::default());
    };
    let measure = spec.measure.unwrap_or_default();
    let neutral = EffectSize::neutral(measure);
    let pick = |name: &str, v: Option<f64>, default: f64| {
        let v = v.unwrap_or(default);
        let ok = v.is_finite() && v >= 0.0 && (measure == EffectMeasure::MeanRatio || v <= 1.0);
        if ok {
            Ok(v)
        } else {
            Err(invalid(
                join(at, &format!("effectSize.{name}")),
                format!(
                    "{v} is not a valid gate (a ratio ≥ 0 for meanRatio, a probability in [0, 1] for cles)"
                ),
            ))
        }
    };
    Ok(EffectSize {
        measure,
        allowed_increase: pick(
            "allowedIncrease",
            spec.allowed_increase,
            neutral.allowed_increase,
        )?,
        allowed_decrease: pick(
            "allowedDecrease",
            spec.allowed_decrease,
            neutral.allowed_decrease,
        )?,
        critical_increase: pick(
            "criticalIncrease",
            spec.critical_increase,
            neutral.critical_increase,
        )?,
        critical_decrease: pick(
            "criticalDecrease",
            spec.critical_decrease,
            neutral.critical_decrease,
        )?,
    })
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}
