//! The judge's JSON input (`kubectl sluice judge -f`), parsed and validated into a
//! [`JudgeRequest`]. Every error names the offending field as a path such as
//! `metrics[2].experiment[5]`; unknown fields are errors, so a mistyped key is never silently
//! ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::config::{Direction, JudgeRequest, Metric, MetricData};
use crate::rate_ratio::Counts;
use crate::sample::{NanStrategy, Sample};
use crate::spec::{EffectSizeSpec, JudgementSpec, MetricSpec, Outliers, Test, ThresholdsSpec};

/// Why the input was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum InputError {
    /// The JSON is malformed or has the wrong shape at `field`.
    #[error("{field}: {message}")]
    Shape { field: String, message: String },
    /// A value is well-formed but not acceptable.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl InputError {
    /// The path of the offending field, e.g. `metrics[0].direction`.
    pub fn field(&self) -> &str {
        match self {
            Self::Shape { field, .. } | Self::Invalid { field, .. } => field,
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InputError {
    InputError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRequest<'a> {
    confidence: Option<f64>,
    thresholds: Option<ThresholdsSpec>,
    groups: Option<BTreeMap<String, f64>>,
    #[serde(borrow)]
    metrics: Vec<RawMetric<'a>>,
}

/// One metric of the input: the shared [`MetricSpec`] fields, listed here because serde cannot
/// combine `flatten` with `deny_unknown_fields`. The sides stay unparsed text (checked to be
/// valid JSON) until the test says whether they are samples or counts: a sample is then read
/// straight into doubles, without a `Value` per point.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMetric<'a> {
    name: String,
    group: Option<String>,
    #[serde(borrow)]
    control: &'a RawValue,
    #[serde(borrow)]
    experiment: &'a RawValue,
    direction: Option<Direction>,
    critical: Option<bool>,
    must_have_data: Option<bool>,
    muted: Option<bool>,
    nan_strategy: Option<NanStrategy>,
    outliers: Option<Outliers>,
    effect_size: Option<EffectSizeSpec>,
    test: Option<Test>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounts {
    events: Value,
    total: Value,
}

/// One sample value: a number, or `null` / `"NaN"` for a missing point. `"+Inf"`, `"-Inf"`,
/// `"Infinity"` and `"-Infinity"` parse (Prometheus writes them) so that validation can
/// reject them with the metric and side named.
struct SampleValue(f64);

impl<'de> Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SampleValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, null or \"NaN\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SampleValue, E> {
                Ok(SampleValue(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SampleValue, E> {
                Ok(SampleValue(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SampleValue, E> {
                Ok(SampleValue(v as f64))
            }
            fn visit_unit<E: de::Error>(self) -> Result<SampleValue, E> {
                Ok(SampleValue(f64::NAN))
            }
            fn visit_none<E: de::Error>(self) -> Result<SampleValue, E> {
                Ok(SampleValue(f64::NAN))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SampleValue, E> {
                match v {
                    "NaN" | "nan" => Ok(SampleValue(f64::NAN)),
                    "+Inf" | "Inf" | "Infinity" | "+Infinity" => Ok(SampleValue(f64::INFINITY)),
                    "-Inf" | "-Infinity" => Ok(SampleValue(f64::NEG_INFINITY)),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Parses and validates a judge request.
///
/// # Errors
/// [`InputError`] naming the first offending field.
pub fn parse(text: &str) -> Result<JudgeRequest, InputError> {
    // The usual input first: the sample arrays cut out and read once (`json_skeleton`). On
    // any error the whole text is parsed again the general way, whose messages (with line
    // and column) are the ones users see.
    if let Some(skeleton) = crate::json_skeleton::cut(text).filter(|s| s.cuts.any())
        && let Some(Ok(request)) = parse_skeleton(text, skeleton)
    {
        return Ok(request);
    }
    parse_whole(text)
}

/// [`parse`] the general way: serde_json validates the whole text, then the sides are read.
fn parse_whole(text: &str) -> Result<JudgeRequest, InputError> {
    let raw = deserialize(text)?;
    let sides = read_sides(&raw.metrics);
    validate(raw, sides)
}

fn deserialize(text: &str) -> Result<RawRequest<'_>, InputError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| InputError::Shape {
        field: display_path(&e.path().to_string()),
        message: e.inner().to_string(),
    })
}

/// [`parse`] of the skeleton; `None` when its cuts do not match what serde_json saw.
fn parse_skeleton(
    text: &str,
    skeleton: crate::json_skeleton::Skeleton,
) -> Option<Result<JudgeRequest, InputError>> {
    let crate::json_skeleton::Skeleton {
        text: skeleton,
        mut cuts,
    } = skeleton;
    let raw = deserialize(&skeleton).ok()?;
    let mut sides = Vec::with_capacity(raw.metrics.len());
    for m in &raw.metrics {
        let control = cut_side(&mut cuts, &skeleton, text, m.control)?;
        let experiment = cut_side(&mut cuts, &skeleton, text, m.experiment)?;
        sides.push([control, experiment]);
    }
    Some(validate(raw, sides))
}

fn display_path(path: &str) -> String {
    if path == "." || path.is_empty() {
        "input".to_owned()
    } else {
        path.to_owned()
    }
}

/// The side whose skeleton text is `raw`: a cut array with its original text and values, or
/// the text as it stands, read by [`Side::read`].
fn cut_side<'t>(
    cuts: &mut crate::json_skeleton::Cuts,
    skeleton: &'t str,
    text: &'t str,
    raw: &'t RawValue,
) -> Option<Side<'t>> {
    use crate::json_skeleton::Side as Cut;
    Some(match cuts.side(skeleton, text, raw.get())? {
        Cut::Cut(text, values) => Side {
            text,
            read: Some(values),
        },
        Cut::Kept => Side::read(raw.get()),
    })
}

/// One metric side: its JSON text and its values when [`crate::json_samples`] could read
/// them.
struct Side<'t> {
    text: &'t str,
    read: Option<Vec<f64>>,
}

impl<'t> Side<'t> {
    fn read(text: &'t str) -> Self {
        Self {
            text,
            read: crate::json_samples::sample_array(text),
        }
    }
}

/// `sides`: each metric's `[control, experiment]`.
fn validate<'t>(
    raw: RawRequest<'t>,
    sides: Vec<[Side<'t>; 2]>,
) -> Result<JudgeRequest, InputError> {
    let scoring = JudgementSpec {
        confidence: raw.confidence,
        thresholds: raw.thresholds,
        groups: raw.groups.unwrap_or_default(),
    }
    .validate("")?;
    if raw.metrics.is_empty() {
        return Err(invalid("metrics", "at least one metric is required"));
    }
    let mut names = BTreeSet::new();
    let mut metrics = Vec::with_capacity(raw.metrics.len());
    // One entry of `sides` per metric, by construction.
    for (i, (m, sides)) in raw.metrics.into_iter().zip(sides).enumerate() {
        let at = format!("metrics[{i}]");
        if m.name.trim().is_empty() {
            return Err(invalid(format!("{at}.name"), "must not be empty"));
        }
        if !names.insert(m.name.clone()) {
            return Err(invalid(
                format!("{at}.name"),
                format!("metric {:?} appears more than once", m.name),
            ));
        }
        metrics.push(metric(&at, m, sides)?);
    }
    Ok(JudgeRequest {
        confidence: scoring.confidence,
        thresholds: scoring.thresholds,
        group_weights: scoring.group_weights,
        metrics,
    })
}

/// Sides of all metrics together at least this long (in bytes of JSON) are read on two
/// threads; below it a thread costs more than it saves.
const PARALLEL_BYTES: usize = 256 * 1024;

/// Each metric's `[control, experiment]` with the values [`crate::json_samples::sample_array`]
/// reads (`None` where that reader declines). The reader cannot fail, so reading every side
/// before validating changes no error; large inputs are split between two threads by size.
fn read_sides<'t>(metrics: &[RawMetric<'t>]) -> Vec<[Side<'t>; 2]> {
    let texts: Vec<&str> = metrics
        .iter()
        .flat_map(|m| [m.control.get(), m.experiment.get()])
        .collect();
    let values = crate::parallel::map_split(
        &texts,
        |text| text.len(),
        PARALLEL_BYTES,
        |text| crate::json_samples::sample_array(text),
    );
    let mut values = values.into_iter();
    metrics
        .iter()
        .map(|m| {
            [m.control.get(), m.experiment.get()].map(|text| Side {
                text,
                read: values.next().flatten(),
            })
        })
        .collect()
}

fn metric(at: &str, m: RawMetric<'_>, sides: [Side<'_>; 2]) -> Result<Metric, InputError> {
    let [control, experiment] = sides;
    let spec = MetricSpec {
        test: m.test,
        direction: m.direction,
        critical: m.critical,
        must_have_data: m.must_have_data,
        muted: m.muted,
        nan_strategy: m.nan_strategy,
        outliers: m.outliers,
        effect_size: m.effect_size,
        group: m.group,
    };
    let config = spec.config(&m.name, at)?;
    let data = match spec.test() {
        Test::MannWhitney => MetricData::Samples {
            control: sample(at, "control", &m.name, control)?,
            experiment: sample(at, "experiment", &m.name, experiment)?,
        },
        Test::RateRatio => MetricData::Counts {
            control: counts(&format!("{at}.control"), control.text)?,
            experiment: counts(&format!("{at}.experiment"), experiment.text)?,
        },
    };
    Ok(Metric { config, data })
}

fn sample(at: &str, side: &str, name: &str, text: Side<'_>) -> Result<Sample, InputError> {
    let field = format!("{at}.{side}");
    let values = match text.read {
        Some(values) => values,
        None => general_sample(&field, side, name, value(&field, text.text)?)?,
    };
    Sample::new(values).map_err(|e| {
        let index = match &e {
            crate::sample::SampleError::Infinite { index, .. }
            | crate::sample::SampleError::OutOfRange { index, .. } => format!("[{index}]"),
            crate::sample::SampleError::TooLong { .. } => String::new(),
        };
        invalid(
            format!("{field}{index}"),
            format!("{e} (metric {name:?}, {side} side)"),
        )
    })
}

/// Any JSON value as a sample: the path for what [`crate::json_samples`] does not recognise,
/// and where the error message naming the field comes from.
fn general_sample(
    field: &str,
    side: &str,
    name: &str,
    value: Value,
) -> Result<Vec<f64>, InputError> {
    let values: Vec<SampleValue> =
        serde_path_to_error::deserialize(value).map_err(|e| InputError::Shape {
            field: join_path(field, &e.path().to_string()),
            message: format!(
                "{} (metric {name:?}, {side} side; expected an array of numbers)",
                e.inner()
            ),
        })?;
    Ok(values.into_iter().map(|v| v.0).collect())
}

/// The side's text as a `Value`. It is valid JSON, so this fails only on a number beyond the
/// range of a double.
fn value(field: &str, text: &str) -> Result<Value, InputError> {
    serde_json::from_str(text).map_err(|e| InputError::Shape {
        field: field.to_owned(),
        message: e.to_string(),
    })
}

fn join_path(prefix: &str, inner: &str) -> String {
    if inner == "." || inner.is_empty() {
        prefix.to_owned()
    } else if inner.starts_with('[') {
        format!("{prefix}{inner}")
    } else {
        format!("{prefix}.{inner}")
    }
}

/// `{"events": n | [n...], "total": t | [t...]}`; lists are summed, NaN/null entries skipped.
/// `None` when a side has no data point at all (or a zero total with no events).
fn counts(field: &str, text: &str) -> Result<Option<Counts>, InputError> {
    let raw: RawCounts =
        serde_path_to_error::deserialize(value(field, text)?).map_err(|e| InputError::Shape {
            field: join_path(field, &e.path().to_string()),
            message: format!(
                "{} (test rateRatio expects {{\"events\": ..., \"total\": ...}})",
                e.inner()
            ),
        })?;
    let events = summed(&format!("{field}.events"), raw.events, true)?;
    let total = summed(&format!("{field}.total"), raw.total, false)?;
    let (Some(events), Some(total)) = (events, total) else {
        return Ok(None);
    };
    if total == 0.0 {
        if events == 0.0 {
            return Ok(None);
        }
        return Err(invalid(
            format!("{field}.total"),
            format!(
                "is 0 but there are {events} events; the total is the exposure (requests, seconds)"
            ),
        ));
    }
    // `events` is a sum of non-negative integers below 2^53, so the cast is exact.
    Ok(Some(Counts {
        events: events as u64,
        total,
    }))
}

fn summed(field: &str, value: Value, integral: bool) -> Result<Option<f64>, InputError> {
    let is_list = value.is_array();
    let values: Vec<SampleValue> = match value {
        Value::Array(_) => {
            serde_path_to_error::deserialize(value).map_err(|e| InputError::Shape {
                field: join_path(field, &e.path().to_string()),
                message: e.inner().to_string(),
            })?
        }
        other => vec![
            serde_path_to_error::deserialize(other).map_err(|e| InputError::Shape {
                field: field.to_owned(),
                message: e.inner().to_string(),
            })?,
        ],
    };
    let mut sum = 0.0;
    let mut seen = false;
    for (i, SampleValue(v)) in values.into_iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let ok = v.is_finite() && v >= 0.0 && (!integral || v.fract() == 0.0);
        if !ok {
            let what = if integral {
                "a whole number ≥ 0"
            } else {
                "a finite number ≥ 0"
            };
            let at = if is_list {
                format!("{field}[{i}]")
            } else {
                field.to_owned()
            };
            return Err(invalid(at, format!("{v} is not {what}")));
        }
        sum += v;
        seen = true;
    }
    if integral && sum >= 9_007_199_254_740_992.0 {
        return Err(invalid(field, "the event count exceeds 2^53"));
    }
    Ok(seen.then_some(sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The skeleton path gives what the general path gives, value for value and error for
    /// error (`Debug` text, so NaN compares equal), on inputs around its cuts: words, escaped
    /// keys, duplicate fields, arrays where counts belong, invalid JSON before, inside and
    /// after a cut array, and validation errors.
    #[test]
    fn the_skeleton_parse_equals_the_whole_parse() {
        let cases = [
            r#"{"metrics": [{"name": "a", "control": [1, 2.5, null, "NaN"], "experiment": [3e2, -0, 7]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, "+Inf"]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, 4]}, {"name": "b", "test": "rateRatio", "control": [1, 2], "experiment": {"events": 1, "total": 10}}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, 4], "control": [5]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, 4]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, 4]}], "oops": }"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, 4]},]}"#,
            r#"{"metrics": [{"name": "", "control": [1, 2], "experiment": [3, 4]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2 , 01], "experiment": [3, 4]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, [2]], "experiment": [3, 4]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1e400], "experiment": [3, 4]}]}"#,
            r#"{"metrics": [{"name": "a", "control": "[1, 2]", "experiment": [3, 4]}]}"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, 4]}]} x"#,
            r#"{"metrics": [{"name": "a", "control": [1, 2], "experiment": [3, 4]}"#,
            r#"{"groups": {"control": [1]}, "metrics": [{"name": "a", "control": [1], "experiment": [2]}]}"#,
            r#"{"metrics": [{"name": "a\"]", "control": [1, 2], "experiment": [3, 4]}]}"#,
            "  {\"metrics\":[{\"name\":\"a\",\"control\":[1,2],\"experiment\":[3,4]}]}  \n",
        ];
        for text in cases {
            let fast = format!("{:?}", parse(text));
            let whole = format!("{:?}", parse_whole(text));
            assert_eq!(fast, whole, "{text}");
        }
        // The first case does take the skeleton path.
        let skeleton = crate::json_skeleton::cut(cases[0]).unwrap();
        assert!(matches!(parse_skeleton(cases[0], skeleton), Some(Ok(_))));
    }

    /// Sides large enough to be read on two threads give every value as `str::parse` reads
    /// it, each on its own side.
    #[test]
    fn large_sides_read_on_two_threads_keep_every_value_in_place() {
        let side = |seed: u64| -> Vec<String> {
            (0..30_000u64)
                .map(|i| format!("{}", (i * seed % 100_003) as f64 / 7.0 + 80.0))
                .collect()
        };
        let (control, experiment) = (side(31), side(57));
        let text = format!(
            r#"{{"metrics": [{{"name": "a", "control": [{}], "experiment": [{}, null]}}]}}"#,
            control.join(", "),
            experiment.join(",\n")
        );
        assert!(text.len() >= PARALLEL_BYTES, "{} bytes", text.len());
        let request = parse(&text).unwrap();
        let MetricData::Samples {
            control: got_control,
            experiment: got_experiment,
        } = &request.metrics[0].data
        else {
            panic!("not a sample metric: {:?}", request.metrics[0].data);
        };
        let want = |texts: &[String]| -> Vec<f64> {
            texts.iter().map(|t| t.parse::<f64>().unwrap()).collect()
        };
        assert_eq!(got_control.values(), &want(&control)[..]);
        let got = got_experiment.values();
        assert_eq!(&got[..got.len() - 1], &want(&experiment)[..]);
        assert!(got[got.len() - 1].is_nan(), "null is a missing point");
    }
}
