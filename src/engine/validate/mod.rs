//! Validation: turns a `Rollout` (plus the objects it references, from `Observed`) into a
//! `ValidatedRollout` with every default resolved and steps as a typed enum, or into an
//! `InvalidSpec` naming the field and the problem. Later stages only take `ValidatedRollout`.
//! Pure; one submodule per concern: the pod template (`pod_template`), canary steps (`steps`),
//! traffic routing (`traffic`), analysis references (`analysis`), what the Rollout may claim
//! in its namespace (`tenancy`), the two strategies (`canary`, `bluegreen`), and the API's
//! lexical rules for quantities, names and labels (`syntax`, shared with the playground).

mod analysis;
mod bluegreen;
mod canary;
mod pod_template;
mod steps;
pub mod syntax;
mod tenancy;
mod traffic;

pub use bluegreen::BlueGreen;
pub use canary::{Canary, Traffic};
pub use steps::{CanaryScale, Step};
pub use tenancy::{Claim, claims};

use super::model::Observed;
use crate::crd::Rollout;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::fmt;

/// Argo's defaults (reference §1.8).
pub const DEFAULT_REPLICAS: i32 = 1;
/// Old ReplicaSets kept for rollback.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Seconds without progress before `ProgressDeadlineExceeded`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Scale-down and abort scale-down delays.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// The default of maxSurge and maxUnavailable.
pub const DEFAULT_SURGE_UNAVAILABLE: &str = "25%";

/// A spec the engine refuses, with the field path and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSpec {
    /// JSON path of the offending field, e.g. `spec.strategy.canary.steps[2].setWeight`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A Rollout whose spec passed validation, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedRollout {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.replicas`, defaulted.
    pub replicas: i32,
    /// The pod template (from `spec.template` or the referenced Deployment).
    pub template: PodTemplateSpec,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// `spec.revisionHistoryLimit`, defaulted.
    pub revision_history_limit: i32,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.progressDeadlineSeconds`, defaulted.
    pub progress_deadline_seconds: i32,
    /// `spec.progressDeadlineAbort`.
    pub progress_deadline_abort: bool,
    /// `spec.restartAt`.
    pub restart_at: Option<Timestamp>,
    /// `spec.rollbackWindow.revisions`.
    pub rollback_window: Option<i32>,
    /// `spec.selector` in its string form, for `status.selector`.
    pub selector: String,
    /// `workloadRef.scaleDown`, when a workloadRef is used.
    pub workload_scale_down: Option<crate::crd::WorkloadScaleDown>,
    /// The strategy.
    pub strategy: Strategy,
}

/// The validated strategy.
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    /// Canary.
    Canary(Canary),
    /// Blue/green.
    BlueGreen(BlueGreen),
}

/// Resolves an int-or-percent against `total`, rounding up or down as Kubernetes does.
///
/// # Errors
/// A string that is not `N%` or a negative value.
pub fn resolve_int_or_percent(
    value: &IntOrString,
    total: i32,
    round_up: bool,
    field: &str,
) -> Result<i32, InvalidSpec> {
    match value {
        IntOrString::Int(n) if *n >= 0 => Ok(*n),
        IntOrString::Int(n) => Err(invalid(field, format!("{n} is negative"))),
        IntOrString::String(text) => {
            let percent: i64 = text
                .strip_suffix('%')
                .and_then(|p| p.trim().parse().ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| {
                    invalid(
                        field,
                        format!("{text:?} is neither a number nor a percentage"),
                    )
                })?;
            let scaled = i64::from(total) * percent;
            let value = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(value).map_err(|_| invalid(field, format!("{text:?} is too large")))
        }
    }
}

/// What every strategy check gets: what the controller observed and the resolved values the
/// strategies depend on.
struct Input<'a> {
    observed: &'a Observed,
    name: &'a str,
    replicas: i32,
    revision_history_limit: i32,
}

/// Validates a Rollout against itself and the objects it references.
///
/// # Errors
/// The first problem found, as an `InvalidSpec` naming the field.
pub fn validate(rollout: &Rollout, observed: &Observed) -> Result<ValidatedRollout, InvalidSpec> {
    let spec = &rollout.spec;
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(DEFAULT_REPLICAS);
    if replicas < 0 {
        return Err(invalid("spec.replicas", format!("{replicas} is negative")));
    }
    let (template, workload_scale_down) = pod_template::source(rollout, observed)?;
    let selector = pod_template::selector(rollout, &template)?;
    pod_template::check(rollout)?;
    tenancy::check(rollout, observed)?;
    let input = Input {
        observed,
        name: &name,
        replicas,
        revision_history_limit: spec
            .revision_history_limit
            .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT),
    };
    let strategy = match (&spec.strategy.canary, &spec.strategy.blue_green) {
        (Some(c), None) => Strategy::Canary(canary::validate(&input, c)?),
        (None, Some(b)) => Strategy::BlueGreen(bluegreen::validate(&input, b)?),
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "spec.strategy",
                "exactly one of canary and blueGreen must be set",
            ));
        }
    };
    Ok(ValidatedRollout {
        generation: rollout.metadata.generation,
        replicas,
        template,
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
        revision_history_limit: input.revision_history_limit,
        paused: spec.paused,
        progress_deadline_seconds: spec
            .progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS),
        progress_deadline_abort: spec.progress_deadline_abort,
        restart_at: spec.restart_at.as_ref().map(|t| t.0),
        rollback_window: spec.rollback_window.as_ref().map(|w| w.revisions),
        selector,
        workload_scale_down,
        strategy,
        name,
    })
}
