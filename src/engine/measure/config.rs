//! A metric's schedule and limits, resolved from its spec and the run's literal arguments:
//! effective count, interval, initial delay and the four limits with Argo's defaults. Pure;
//! reads only the spec types.

use crate::crd::{Argument, Metric};
use crate::engine::duration::parse_pause_duration;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;

/// Consecutive errors tolerated when `consecutiveErrorLimit` is unset (Argo's default).
pub(super) const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;

/// A metric's resolved configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Config {
    /// Measurements to take; `None` measures until the run is terminated.
    pub count: Option<i32>,
    /// Time between measurements.
    pub interval: Option<Duration>,
    /// Time from the run's start to the first measurement.
    pub initial_delay: Duration,
    /// Failed measurements tolerated; `None` for no limit (`-1`).
    pub failure_limit: Option<i32>,
    pub inconclusive_limit: i32,
    pub consecutive_error_limit: i32,
    /// Consecutive successes that end the metric Successful; 0 when disabled.
    pub consecutive_success_limit: i32,
}

/// How an argument placeholder resolves.
pub(super) enum Args<'a> {
    /// The run's arguments: a placeholder must name one with a literal value.
    Run(&'a [Argument]),
    /// A template checked before a Rollout supplies values: any placeholder stands in as 1.
    Unknown,
}

/// Resolves a metric's schedule and limits.
///
/// # Errors
/// A message naming the field when a value does not parse, an argument is missing or not a
/// literal, a limit is negative, or `count > 1` comes without an interval.
pub(super) fn resolve(metric: &Metric, args: &Args<'_>) -> Result<Config, String> {
    let interval = metric
        .interval
        .as_deref()
        .map(|text| duration("interval", text, args))
        .transpose()?;
    let initial_delay = metric
        .initial_delay
        .as_deref()
        .map(|text| duration("initialDelay", text, args))
        .transpose()?
        .unwrap_or(Duration::ZERO);
    // A judgement compares the data gathered since the run started (or its window): the
    // first one comes an interval after the initial delay, never at an empty window.
    let initial_delay = match (&metric.judge, interval) {
        (Some(_), Some(interval)) => initial_delay + interval,
        (Some(_), None) => {
            return Err(
                "a judge metric needs an interval: each judgement looks at the data of the time before it"
                    .to_string(),
            );
        }
        (None, _) => initial_delay,
    };
    let count = int_field("count", metric.count.as_ref(), args)?.filter(|c| *c != 0);
    if let Some(c) = count {
        if c < 0 {
            return Err(format!("count ({c}) must not be negative"));
        }
        if c > 1 && interval.is_none() {
            return Err(format!("count ({c}) > 1 needs an interval"));
        }
    }
    let count = match (count, interval) {
        (Some(c), _) => Some(c),
        (None, Some(_)) => None,
        (None, None) => Some(1),
    };
    let failure_limit = match int_field("failureLimit", metric.failure_limit.as_ref(), args)? {
        Some(-1) => None,
        other => Some(non_negative("failureLimit", other.unwrap_or(0))?),
    };
    Ok(Config {
        count,
        interval,
        initial_delay,
        failure_limit,
        inconclusive_limit: limit(
            "inconclusiveLimit",
            metric.inconclusive_limit.as_ref(),
            0,
            args,
        )?,
        consecutive_error_limit: limit(
            "consecutiveErrorLimit",
            metric.consecutive_error_limit.as_ref(),
            DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            args,
        )?,
        consecutive_success_limit: limit(
            "consecutiveSuccessLimit",
            metric.consecutive_success_limit.as_ref(),
            0,
            args,
        )?,
    })
}

fn limit(
    field: &str,
    value: Option<&IntOrString>,
    default: i32,
    args: &Args<'_>,
) -> Result<i32, String> {
    non_negative(field, int_field(field, value, args)?.unwrap_or(default))
}

fn non_negative(field: &str, value: i32) -> Result<i32, String> {
    if value < 0 {
        Err(format!("{field} ({value}) must not be negative"))
    } else {
        Ok(value)
    }
}

fn int_field(
    field: &str,
    value: Option<&IntOrString>,
    args: &Args<'_>,
) -> Result<Option<i32>, String> {
    let text = match value {
        None => return Ok(None),
        Some(IntOrString::Int(n)) => return Ok(Some(*n)),
        Some(IntOrString::String(text)) => text,
    };
    let text = substitute(field, text, args)?;
    text.trim()
        .parse::<i32>()
        .map(Some)
        .map_err(|_| format!("{field}: {text:?} is not an integer"))
}

fn duration(field: &str, text: &str, args: &Args<'_>) -> Result<Duration, String> {
    let text = substitute(field, text, args)?;
    parse_pause_duration(&IntOrString::String(text.clone()))
        .map_err(|problem| format!("{field}: {problem}"))
}

/// The field's text with a whole-value `{{args.NAME}}` (or `{{ args.NAME }}`) replaced.
fn substitute(field: &str, text: &str, args: &Args<'_>) -> Result<String, String> {
    let Some(name) = placeholder(text) else {
        return Ok(text.to_string());
    };
    let args = match args {
        Args::Unknown => return Ok("1".to_string()),
        Args::Run(args) => args,
    };
    let arg = args
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| format!("{field}: argument {name} is not defined"))?;
    match (&arg.value, &arg.value_from) {
        (Some(value), None) => Ok(value.clone()),
        (_, Some(_)) => Err(format!("{field}: argument {name} must be a literal")),
        (None, None) => Err(format!("{field}: argument {name} has no value")),
    }
}

fn placeholder(text: &str) -> Option<&str> {
    text.trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim()
        .strip_prefix("args.")
        .map(str::trim)
}
