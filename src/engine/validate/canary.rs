//! The canary strategy: traffic routing, steps, surge and unavailability, delays, analysis and
//! the Services it names, assembled into a `Canary`.

use super::steps::Step;
use super::{
    DEFAULT_SCALE_DOWN_DELAY_SECONDS, DEFAULT_SURGE_UNAVAILABLE, Input, InvalidSpec, invalid,
    resolve_int_or_percent,
};
use crate::crd::{CanaryStrategy, RolloutAnalysis};
use crate::engine::hash::steps_hash;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A validated canary strategy.
#[derive(Clone, Debug, PartialEq)]
pub struct Canary {
    /// `canaryService`.
    pub canary_service: Option<String>,
    /// `stableService`.
    pub stable_service: Option<String>,
    /// The steps.
    pub steps: Vec<Step>,
    /// `status.currentStepHash` for these steps.
    pub steps_hash: String,
    /// Traffic routing, when configured.
    pub traffic: Option<Traffic>,
    /// maxSurge resolved against `replicas` (rounded up).
    pub max_surge: i32,
    /// maxUnavailable resolved against `replicas` (rounded down).
    pub max_unavailable: i32,
    /// Background analysis and its starting step.
    pub background: Option<(RolloutAnalysis, i32)>,
    /// Delay before the old stable is scaled down (0 without traffic routing).
    pub scale_down_delay_seconds: i32,
    /// Old ReplicaSets kept up during their delay.
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Delay before the canary is scaled down after an abort; 0 keeps it (traffic routing).
    pub abort_scale_down_delay_seconds: i32,
    /// `dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// `minPodsPerReplicaSet`, 0 when unset.
    pub min_pods_per_replica_set: i32,
    /// `replicaProgressThreshold`.
    pub progress_threshold: Option<crate::crd::ReplicaProgressThreshold>,
    /// `baseline`, when configured.
    pub baseline: Option<crate::engine::baseline::Baseline>,
}

/// Traffic routing as the engine needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    /// `maxTrafficWeight`, default 100.
    pub max_weight: i32,
    /// Whether any managed route is declared (so there may be routes to remove).
    pub has_managed_routes: bool,
}

const F: &str = "spec.strategy.canary";

fn check_delays(
    c: &CanaryStrategy,
    has_traffic: bool,
    revision_history_limit: i32,
) -> Result<(), InvalidSpec> {
    if c.dynamic_stable_scale && !has_traffic {
        return Err(invalid(
            format!("{F}.dynamicStableScale"),
            "requires trafficRouting",
        ));
    }
    if c.scale_down_delay_seconds.is_some() && !has_traffic {
        return Err(invalid(
            format!("{F}.scaleDownDelaySeconds"),
            "requires trafficRouting",
        ));
    }
    if c.dynamic_stable_scale && c.scale_down_delay_seconds.is_some() {
        return Err(invalid(
            format!("{F}.scaleDownDelaySeconds"),
            "cannot be combined with dynamicStableScale",
        ));
    }
    match c.scale_down_delay_revision_limit {
        Some(limit) if limit > revision_history_limit => Err(invalid(
            format!("{F}.scaleDownDelayRevisionLimit"),
            format!("{limit} exceeds revisionHistoryLimit {revision_history_limit}"),
        )),
        _ => Ok(()),
    }
}

fn is_zero(value: Option<&IntOrString>) -> bool {
    match value {
        Some(IntOrString::Int(0)) => true,
        Some(IntOrString::String(s)) => s.trim() == "0%",
        _ => false,
    }
}

/// maxSurge and maxUnavailable resolved against `replicas`.
fn surge_unavailable(c: &CanaryStrategy, replicas: i32) -> Result<(i32, i32), InvalidSpec> {
    let default = IntOrString::String(DEFAULT_SURGE_UNAVAILABLE.to_string());
    let max_surge = resolve_int_or_percent(
        c.max_surge.as_ref().unwrap_or(&default),
        replicas,
        true,
        &format!("{F}.maxSurge"),
    )?;
    let max_unavailable = resolve_int_or_percent(
        c.max_unavailable.as_ref().unwrap_or(&default),
        replicas,
        false,
        &format!("{F}.maxUnavailable"),
    )?;
    if is_zero(c.max_surge.as_ref()) && is_zero(c.max_unavailable.as_ref()) {
        return Err(invalid(
            format!("{F}.maxUnavailable"),
            "maxSurge and maxUnavailable cannot both be 0",
        ));
    }
    // As Deployments do: when both round to 0, allow one unavailable pod so the update can
    // move at all.
    if max_surge == 0 && max_unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((max_surge, max_unavailable))
}

fn check_services(input: &Input<'_>, c: &CanaryStrategy) -> Result<(), InvalidSpec> {
    for (svc, field) in [
        (&c.canary_service, format!("{F}.canaryService")),
        (&c.stable_service, format!("{F}.stableService")),
    ] {
        if let Some(svc) = svc.as_deref().filter(|s| !s.is_empty()) {
            super::tenancy::check_service(input.observed, input.name, svc, &field)?;
        }
    }
    Ok(())
}

fn delay(has_traffic: bool, value: Option<i32>) -> i32 {
    if has_traffic {
        value.unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    } else {
        0
    }
}

/// Validates the canary strategy.
///
/// # Errors
/// The first problem found.
pub(super) fn validate(input: &Input<'_>, c: &CanaryStrategy) -> Result<Canary, InvalidSpec> {
    let max_weight = super::traffic::max_weight(c, F)?;
    let traffic = super::traffic::validate(c, F, max_weight)?;
    let steps = super::steps::validate(input.observed, c, F, max_weight)?;
    let has_traffic = traffic.is_some();
    check_delays(c, has_traffic, input.revision_history_limit)?;
    let (max_surge, max_unavailable) = surge_unavailable(c, input.replicas)?;
    if let Some(bg) = &c.analysis {
        super::analysis::check(input.observed, &bg.analysis, &format!("{F}.analysis"))?;
    }
    check_services(input, c)?;
    let baseline = crate::engine::baseline::validate(c, |svc, field| {
        super::tenancy::check_service(input.observed, input.name, svc, field)
    })?;
    Ok(Canary {
        canary_service: c.canary_service.clone().filter(|s| !s.is_empty()),
        stable_service: c.stable_service.clone().filter(|s| !s.is_empty()),
        steps,
        steps_hash: steps_hash(&c.steps),
        traffic,
        max_surge,
        max_unavailable,
        background: c
            .analysis
            .as_ref()
            .map(|b| (b.analysis.clone(), b.starting_step.unwrap_or(0))),
        scale_down_delay_seconds: delay(has_traffic, c.scale_down_delay_seconds),
        scale_down_delay_revision_limit: c.scale_down_delay_revision_limit,
        abort_scale_down_delay_seconds: delay(has_traffic, c.abort_scale_down_delay_seconds),
        dynamic_stable_scale: c.dynamic_stable_scale,
        min_pods_per_replica_set: c.min_pods_per_replica_set.unwrap_or(0),
        progress_threshold: c.replica_progress_threshold.clone(),
        baseline,
    })
}
