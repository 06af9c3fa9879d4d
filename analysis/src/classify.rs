//! Per-metric classification (kayenta-judge.md §3.5) into Pass / High / Low / NoData / Error,
//! with statistics and a reason a person can act on.
//!
//! Deliberate changes from Kayenta, each listed in docs/judge.md:
//! * the interval is the exact order statistics, so no verdict depends on a root finder's
//!   1e-4 absolute tolerance (zero-heavy data get an exact 0 bound, never a ghost High);
//! * two different constant samples are classified from their exact shift c_x − c_y, with no
//!   random noise;
//! * an empty side is NoData whatever the NaN strategy (Kayenta passes it under `replace`);
//! * `Error` counts as a failing metric in scoring (see `score`), never as invisible;
//! * `rateRatio` metrics use the rate ratio's interval against 1 instead of the shift's
//!   interval against the tolerance band.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::compare::{Comparison, compare_sorted};
use crate::config::{EffectMeasure, Metric, MetricConfig, MetricData, TOLERANCE};
use crate::mann_whitney::PValueMethod;
use crate::rate_ratio::{Counts, RateRatio, rate_ratio};
use crate::sample::{Descriptive, Sample};

/// The verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Classification {
    Pass,
    High,
    Low,
    NoData,
    Error,
}

/// The judgement of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    pub name: String,
    pub group: String,
    pub muted: bool,
    pub classification: Classification,
    /// This result fails the whole canary (a critical metric that is High, Low or NoData).
    pub critical: bool,
    pub reason: Option<String>,
    pub statistics: Option<Statistics>,
    pub control: Option<SideStats>,
    pub experiment: Option<SideStats>,
    /// NoData under `mustHaveData`: scored as a failing metric (Kayenta's NodataFailMetric).
    #[serde(skip)]
    pub must_have_data: bool,
}

/// The test statistics of one metric. `null` in JSON marks a value that is undefined (NaN) or
/// unbounded (±∞).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    /// Mann-Whitney U; `null` for `rateRatio`.
    pub u: Option<f64>,
    #[serde(with = "crate::nullable")]
    #[schemars(with = "Option<f64>")]
    pub p_value: f64,
    pub p_value_method: PValueMethod,
    /// Hodges-Lehmann shift (canary − control), or the rate ratio for `rateRatio`.
    #[serde(with = "crate::nullable")]
    #[schemars(with = "Option<f64>")]
    pub estimate: f64,
    pub confidence_interval: Interval,
    /// mean(canary)/mean(control), or the rate ratio; `null` when a mean is 0.
    #[serde(with = "crate::nullable")]
    #[schemars(with = "Option<f64>")]
    pub mean_ratio: f64,
    /// P(canary > control) + ½·P(equal); `null` for `rateRatio`.
    pub cles: Option<f64>,
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interval {
    /// `null` when unbounded below.
    #[serde(with = "crate::nullable")]
    #[schemars(with = "Option<f64>")]
    pub lower: f64,
    /// `null` when unbounded above.
    #[serde(with = "crate::nullable")]
    #[schemars(with = "Option<f64>")]
    pub upper: f64,
    pub level: f64,
}

/// Per-side description: sample statistics, or counts for `rateRatio`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SideStats {
    Sample(Descriptive),
    Counts {
        events: u64,
        total: f64,
        #[serde(with = "crate::nullable")]
        rate: f64,
    },
}

/// One object schema with the fields of both shapes, none required: the Kubernetes API server
/// needs a structural schema, which an `anyOf` of differently shaped objects is not.
impl JsonSchema for SideStats {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SideStats".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut sample = <Descriptive as JsonSchema>::json_schema(generator);
        let sample = sample.ensure_object();
        sample.remove("required");
        let properties = sample
            .entry("properties")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(p) = properties.as_object_mut() {
            p.insert(
                "events".into(),
                serde_json::json!({"type": "integer", "format": "int64", "minimum": 0, "description": "rateRatio: the events counted"}),
            );
            p.insert(
                "total".into(),
                serde_json::json!({"type": "number", "format": "double", "description": "rateRatio: the exposure (requests, seconds)"}),
            );
            p.insert(
                "rate".into(),
                serde_json::json!({"type": ["number", "null"], "format": "double", "description": "rateRatio: events / total"}),
            );
        }
        schemars::Schema::from(sample.clone())
    }
}

impl SideStats {
    fn of_counts(c: &Counts) -> Self {
        Self::Counts {
            events: c.events,
            total: c.total,
            rate: c.rate(),
        }
    }
}

/// From this many values in both sides together, the sides are cleaned and sorted on two
/// threads (the controller's usual hundreds of points stay on one).
const PARALLEL_LEN: usize = 20_000;

/// Classifies one metric at the given confidence level.
pub fn classify(metric: &Metric, confidence: f64) -> MetricResult {
    let cfg = &metric.config;
    match &metric.data {
        MetricData::Samples {
            control,
            experiment,
        } => classify_sides(cfg, (experiment, control), Sample::clone, confidence),
        MetricData::Counts {
            control,
            experiment,
        } => classify_counts(cfg, *experiment, *control, confidence),
    }
}

/// [`classify`] of a metric given away: its samples are cleaned and sorted in their own
/// memory instead of a copy (at 100,000 points a side, 1.6 MB less to touch).
pub fn classify_owned(metric: Metric, confidence: f64) -> MetricResult {
    let cfg = &metric.config;
    match metric.data {
        MetricData::Samples {
            control,
            experiment,
        } => classify_sides(cfg, (experiment, control), |s| s, confidence),
        MetricData::Counts {
            control,
            experiment,
        } => classify_counts(cfg, experiment, control, confidence),
    }
}

/// The samples `(experiment, control)`, each taken by `own` and cleaned and sorted once,
/// for its statistics and the comparison; large sides on two threads.
fn classify_sides<S: std::borrow::Borrow<Sample> + Send>(
    cfg: &MetricConfig,
    (experiment, control): (S, S),
    own: impl Fn(S) -> Sample + Sync,
    confidence: f64,
) -> MetricResult {
    let large =
        experiment.borrow().values().len() + control.borrow().values().len() >= PARALLEL_LEN;
    let side = |s: S| {
        own(s)
            .into_clean(cfg.nan_strategy, cfg.outliers)
            .into_sorted()
    };
    let (x, y) = crate::parallel::join_if(large, || side(experiment), || side(control));
    classify_samples(cfg, &x, &y, confidence)
}

fn classify_counts(
    cfg: &MetricConfig,
    experiment: Option<Counts>,
    control: Option<Counts>,
    confidence: f64,
) -> MetricResult {
    let mut result = blank(cfg);
    result.experiment = experiment.as_ref().map(SideStats::of_counts);
    result.control = control.as_ref().map(SideStats::of_counts);
    let (Some(x), Some(y)) = (experiment, control) else {
        let side = if control.is_none() {
            "control"
        } else {
            "experiment"
        };
        return no_data(result, cfg, side);
    };
    match rate_ratio(x, y, confidence) {
        Ok(r) => judge_rates(result, cfg, &r),
        Err(e) => error(result, &e.to_string()),
    }
}

/// `x` and `y`: the cleaned experiment and control values, ascending.
fn classify_samples(cfg: &MetricConfig, x: &[f64], y: &[f64], confidence: f64) -> MetricResult {
    let mut result = blank(cfg);
    let compared = if x.is_empty() || y.is_empty() {
        None
    } else {
        Some(compare_sorted(x, y, confidence))
    };
    let (experiment, control) = match &compared {
        Some(Ok(c)) => (c.experiment.clone(), c.control.clone()),
        _ => (Descriptive::of_sorted(x), Descriptive::of_sorted(y)),
    };
    result.experiment = Some(SideStats::Sample(experiment));
    result.control = Some(SideStats::Sample(control));
    match compared {
        None => {
            let side = if y.is_empty() {
                "control"
            } else {
                "experiment"
            };
            no_data(result, cfg, side)
        }
        Some(Ok(c)) => judge_samples(result, cfg, &c),
        Some(Err(e)) => error(result, &e.to_string()),
    }
}

fn blank(cfg: &MetricConfig) -> MetricResult {
    MetricResult {
        name: cfg.name.clone(),
        group: cfg.group.clone(),
        muted: cfg.muted,
        classification: Classification::Pass,
        critical: false,
        reason: None,
        statistics: None,
        control: None,
        experiment: None,
        must_have_data: false,
    }
}

fn no_data(mut result: MetricResult, cfg: &MetricConfig, side: &str) -> MetricResult {
    result.classification = Classification::NoData;
    result.critical = cfg.critical;
    result.must_have_data = cfg.must_have_data;
    let consequence = if cfg.must_have_data {
        "; mustHaveData makes this a failing metric"
    } else {
        ""
    };
    result.reason = Some(format!(
        "Missing data for {}: the {side} side has no values after cleaning{consequence}",
        cfg.name
    ));
    result
}

fn error(mut result: MetricResult, message: &str) -> MetricResult {
    result.classification = Classification::Error;
    result.reason = Some(format!(
        "Metric classification failed for {}: {message}",
        result.name
    ));
    result
}

fn judge_samples(mut result: MetricResult, cfg: &MetricConfig, c: &Comparison) -> MetricResult {
    let shift = c.shift;
    result.statistics = Some(Statistics {
        u: Some(c.u),
        p_value: c.p_value,
        p_value_method: c.p_value_method,
        estimate: shift.estimate,
        confidence_interval: Interval {
            lower: shift.lower,
            upper: shift.upper,
            level: shift.level,
        },
        mean_ratio: c.mean_ratio,
        cles: Some(c.cles),
    });
    if c.identical {
        result.reason = Some("The canary and baseline data are identical".to_owned());
        return result;
    }
    if c.single_value {
        return result;
    }
    let effect = match cfg.effect_size.measure {
        EffectMeasure::MeanRatio => c.mean_ratio,
        EffectMeasure::Cles => c.cles,
    };
    let band = TOLERANCE * shift.estimate.abs();
    let high = shift.lower > band;
    let low = shift.upper < -band;
    let detail = format!(
        "shift {}, {}% interval [{}, {}], tolerance band ±{}, p = {}",
        num(shift.estimate),
        num(shift.level * 100.0),
        num(shift.lower),
        num(shift.upper),
        num(band),
        num(c.p_value)
    );
    decide(result, cfg, high, low, effect, &detail)
}

fn judge_rates(mut result: MetricResult, cfg: &MetricConfig, r: &RateRatio) -> MetricResult {
    result.statistics = Some(Statistics {
        u: None,
        p_value: r.p_value,
        p_value_method: PValueMethod::ExactConditionalBinomial,
        estimate: r.estimate,
        confidence_interval: Interval {
            lower: r.lower,
            upper: r.upper,
            level: r.level,
        },
        mean_ratio: r.estimate,
        cles: None,
    });
    let detail = format!(
        "rate ratio {}, {}% interval [{}, {}], p = {}",
        num(r.estimate),
        num(r.level * 100.0),
        num(r.lower),
        num(r.upper),
        num(r.p_value)
    );
    decide(
        result,
        cfg,
        r.lower > 1.0,
        r.upper < 1.0,
        r.estimate,
        &detail,
    )
}

/// §3.5: direction, then the allowed effect-size gate (skipped when the effect is NaN), then
/// the critical gate.
fn decide(
    mut result: MetricResult,
    cfg: &MetricConfig,
    significant_increase: bool,
    significant_decrease: bool,
    effect: f64,
    detail: &str,
) -> MetricResult {
    let gates = cfg.effect_size;
    let is_high = cfg.direction.flags_increase()
        && significant_increase
        && (effect.is_nan() || effect >= gates.allowed_increase);
    let is_low = cfg.direction.flags_decrease()
        && significant_decrease
        && (effect.is_nan() || effect <= gates.allowed_decrease);
    let (label, critical) = if is_high {
        (
            "High",
            cfg.critical && (effect.is_nan() || effect >= gates.critical_increase),
        )
    } else if is_low {
        (
            "Low",
            cfg.critical && (effect.is_nan() || effect <= gates.critical_decrease),
        )
    } else {
        return result;
    };
    result.classification = if is_high {
        Classification::High
    } else {
        Classification::Low
    };
    result.critical = critical;
    result.reason = Some(if critical {
        format!(
            "The metric {} was classified as {label} (Critical): {detail}",
            cfg.name
        )
    } else {
        format!("{} was classified as {label}: {detail}", cfg.name)
    });
    result
}

/// A number for reasons: up to six significant digits, no exponent for everyday magnitudes.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_owned()
        } else if v > 0.0 {
            "∞".to_owned()
        } else {
            "−∞".to_owned()
        };
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let magnitude = v.abs().log10().floor();
    if (-4.0..9.0).contains(&magnitude) {
        // Between 0 and 9 decimals; the float-to-int cast cannot overflow here.
        let decimals = (5.0 - magnitude).max(0.0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    } else {
        format!("{v:.5e}")
    }
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_in_reasons_are_short() {
        assert_eq!(num(2.8 - 2.0 * f64::EPSILON), "2.8");
        assert_eq!(num(98.0), "98");
        assert_eq!(num(0.000_914_390_7), "0.000914391");
        assert_eq!(num(5.178e-9), "5.17800e-9");
        assert_eq!(num(f64::INFINITY), "∞");
    }
}
