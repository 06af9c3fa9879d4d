//! Turning a Prometheus answer into the `result` conditions judge, and a `rangeQuery` into a
//! window of time. Pure.

use crate::crd::RangeQuery;
use crate::providers::{Args, ProviderError};
use prometheus_http_query::response::Data;
use serde_json::Value;
use std::time::Duration;

/// A range query's window: absolute start and end, and the resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Window {
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    pub step: Duration,
}

impl Window {
    /// The window `range` describes, its durations counted back from `now` (`start: 10m` is
    /// ten minutes before now; no `end` is now).
    pub fn before(
        now: jiff::Timestamp,
        range: &RangeQuery,
        args: &Args,
    ) -> Result<Self, ProviderError> {
        let duration = |field: &str, text: &str| -> Result<Duration, ProviderError> {
            let text = args.substitute_plain(text)?;
            parse_duration(&text).ok_or_else(|| {
                ProviderError::Config(format!(
                    "rangeQuery.{field} {text:?} is not a duration such as 30s, 10m, 1h30m"
                ))
            })
        };
        let back = duration("start", &range.start)?;
        let forward = range
            .end
            .as_deref()
            .map(|end| duration("end", end))
            .transpose()?;
        let step = duration("step", &range.step)?;
        if step.is_zero() {
            return Err(ProviderError::Config(
                "rangeQuery.step must be more than 0".into(),
            ));
        }
        let before = |d: Duration| {
            jiff::SignedDuration::try_from(d)
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .ok_or_else(|| {
                    ProviderError::Config(format!("rangeQuery: {d:?} before now is out of range"))
                })
        };
        let (start, end) = (before(back)?, before(forward.unwrap_or_default())?);
        if start >= end {
            return Err(ProviderError::Config(format!(
                "rangeQuery: start ({}) must be further back than end ({})",
                range.start,
                range.end.as_deref().unwrap_or("now")
            )));
        }
        Ok(Self { start, end, step })
    }

    /// The window as measurement metadata.
    pub fn metadata(&self) -> [(String, String); 3] {
        [
            ("rangeStart".into(), self.start.to_string()),
            ("rangeEnd".into(), self.end.to_string()),
            ("rangeStep".into(), format!("{}s", self.step.as_secs_f64())),
        ]
    }
}

/// A Prometheus duration (`90s`, `5m`, `1h30m`, `500ms`, `1d`, `1w`, `1y`) or a plain number
/// of seconds (`30`, `1.5`).
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let count: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(Duration::from_millis(count.checked_mul(unit_ms)?))?;
    }
    Some(total)
}

/// The `result` of an answer: a number for a scalar, one number per series for a vector, every
/// sample flattened for a matrix.
pub(super) fn result_value(data: &Data) -> Value {
    match data {
        Data::Scalar(sample) => number(sample.value()),
        Data::Vector(series) => series.iter().map(|s| number(s.sample().value())).collect(),
        Data::Matrix(series) => series
            .iter()
            .flat_map(|s| s.samples().iter().map(|sample| number(sample.value())))
            .collect(),
    }
}

/// A sample's value as JSON; NaN and ±Inf, which JSON has no number for, as Prometheus spells
/// them.
fn number(value: f64) -> Value {
    match serde_json::Number::from_f64(value) {
        Some(n) => Value::Number(n),
        None if value.is_nan() => Value::String("NaN".into()),
        None if value > 0.0 => Value::String("+Inf".into()),
        None => Value::String("-Inf".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_like_prometheus() {
        let table = [
            ("30s", Some(30_000)),
            ("10m", Some(600_000)),
            ("1h30m", Some(5_400_000)),
            ("500ms", Some(500)),
            ("1d", Some(86_400_000)),
            ("2w", Some(14 * 86_400_000)),
            ("15", Some(15_000)),
            ("1.5", Some(1_500)),
            ("", None),
            ("10", Some(10_000)),
            ("10x", None),
            ("m", None),
            ("-5m", None),
            ("5m ago", None),
        ];
        for (text, want) in table {
            let got = parse_duration(text).map(|d| d.as_millis());
            let want: Option<u128> = want;
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn a_window_counts_back_from_now() {
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let mut args = Args::default();
        args.insert("back", Some("10m".into()), false);
        let range = RangeQuery {
            start: "{{args.back}}".into(),
            end: Some("1m".into()),
            step: "30s".into(),
        };
        let window = Window::before(now, &range, &args).unwrap();
        assert_eq!(window.start.to_string(), "2026-01-01T11:50:00Z");
        assert_eq!(window.end.to_string(), "2026-01-01T11:59:00Z");
        assert_eq!(window.step, Duration::from_secs(30));

        let backwards = RangeQuery {
            start: "1m".into(),
            end: Some("10m".into()),
            step: "30s".into(),
        };
        let err = Window::before(now, &backwards, &args).unwrap_err();
        assert!(err.to_string().contains("further back"), "{err}");
        let no_step = RangeQuery {
            start: "10m".into(),
            end: None,
            step: "0s".into(),
        };
        assert!(Window::before(now, &no_step, &args).is_err());
    }

    #[test]
    fn results_become_numbers_and_non_finite_values_strings() {
        let data: Data = serde_json::from_value(json!({
            "resultType": "vector",
            "result": [
                {"metric": {"a": "1"}, "value": [1.0, "0.5"]},
                {"metric": {"a": "2"}, "value": [1.0, "NaN"]},
                {"metric": {"a": "3"}, "value": [1.0, "+Inf"]},
                {"metric": {"a": "4"}, "value": [1.0, "-Inf"]},
            ]
        }))
        .unwrap();
        assert_eq!(result_value(&data), json!([0.5, "NaN", "+Inf", "-Inf"]));
        let matrix: Data = serde_json::from_value(json!({
            "resultType": "matrix",
            "result": [
                {"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]},
                {"metric": {}, "values": [[1.0, "3"]]},
            ]
        }))
        .unwrap();
        assert_eq!(result_value(&matrix), json!([1.0, 2.0, 3.0]));
        let empty: Data =
            serde_json::from_value(json!({"resultType": "vector", "result": []})).unwrap();
        assert_eq!(result_value(&empty), json!([]));
    }
}
