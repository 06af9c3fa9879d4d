//! The blue/green strategy: distinct active and preview Services the Rollout may manage, limits
//! within the revision history, analysis references, assembled into a `BlueGreen`.

use super::{
    DEFAULT_SCALE_DOWN_DELAY_SECONDS, DEFAULT_SURGE_UNAVAILABLE, Input, InvalidSpec, invalid,
    resolve_int_or_percent,
};
use crate::crd::{BlueGreenStrategy, RolloutAnalysis};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A validated blue/green strategy.
#[derive(Clone, Debug, PartialEq)]
pub struct BlueGreen {
    /// `activeService`.
    pub active_service: String,
    /// `previewService`.
    pub preview_service: Option<String>,
    /// `previewReplicaCount`.
    pub preview_replica_count: Option<i32>,
    /// `autoPromotionEnabled`, default true.
    pub auto_promotion_enabled: bool,
    /// `autoPromotionSeconds`, 0 when unset.
    pub auto_promotion_seconds: i32,
    /// `scaleDownDelaySeconds`, default 30.
    pub scale_down_delay_seconds: i32,
    /// `scaleDownDelayRevisionLimit`.
    pub scale_down_delay_revision_limit: Option<i32>,
    /// `abortScaleDownDelaySeconds`, default 30; 0 keeps the preview up.
    pub abort_scale_down_delay_seconds: i32,
    /// `prePromotionAnalysis`.
    pub pre_promotion: Option<RolloutAnalysis>,
    /// `postPromotionAnalysis`.
    pub post_promotion: Option<RolloutAnalysis>,
    /// maxUnavailable resolved against `replicas`.
    pub max_unavailable: i32,
}

const F: &str = "spec.strategy.blueGreen";

fn check_services(input: &Input<'_>, b: &BlueGreenStrategy) -> Result<(), InvalidSpec> {
    if b.active_service.is_empty() {
        return Err(invalid(format!("{F}.activeService"), "is required"));
    }
    if b.preview_service.as_deref() == Some(b.active_service.as_str()) {
        return Err(invalid(
            format!("{F}.previewService"),
            "must differ from activeService",
        ));
    }
    let check = |svc: &str, field: &str| {
        super::tenancy::check_service(input.observed, input.name, svc, &format!("{F}.{field}"))
    };
    check(&b.active_service, "activeService")?;
    match b.preview_service.as_deref().filter(|s| !s.is_empty()) {
        Some(p) => check(p, "previewService"),
        None => Ok(()),
    }
}

fn check_analysis(input: &Input<'_>, b: &BlueGreenStrategy) -> Result<(), InvalidSpec> {
    for (a, field) in [
        (&b.pre_promotion_analysis, "prePromotionAnalysis"),
        (&b.post_promotion_analysis, "postPromotionAnalysis"),
    ] {
        if let Some(a) = a {
            super::analysis::check(input.observed, a, &format!("{F}.{field}"))?;
        }
    }
    Ok(())
}

/// Validates the blue/green strategy.
///
/// # Errors
/// The first problem found.
pub(super) fn validate(input: &Input<'_>, b: &BlueGreenStrategy) -> Result<BlueGreen, InvalidSpec> {
    check_services(input, b)?;
    if let Some(limit) = b.scale_down_delay_revision_limit
        && limit > input.revision_history_limit
    {
        return Err(invalid(
            format!("{F}.scaleDownDelayRevisionLimit"),
            format!(
                "{limit} exceeds revisionHistoryLimit {}",
                input.revision_history_limit
            ),
        ));
    }
    check_analysis(input, b)?;
    let default = IntOrString::String(DEFAULT_SURGE_UNAVAILABLE.to_string());
    let max_unavailable = resolve_int_or_percent(
        b.max_unavailable.as_ref().unwrap_or(&default),
        input.replicas,
        false,
        &format!("{F}.maxUnavailable"),
    )?;
    Ok(BlueGreen {
        active_service: b.active_service.clone(),
        preview_service: b.preview_service.clone().filter(|s| !s.is_empty()),
        preview_replica_count: b.preview_replica_count,
        auto_promotion_enabled: b.auto_promotion_enabled.unwrap_or(true),
        auto_promotion_seconds: b.auto_promotion_seconds.unwrap_or(0),
        scale_down_delay_seconds: b
            .scale_down_delay_seconds
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
        scale_down_delay_revision_limit: b.scale_down_delay_revision_limit,
        abort_scale_down_delay_seconds: b
            .abort_scale_down_delay_seconds
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
        pre_promotion: b.pre_promotion_analysis.clone(),
        post_promotion: b.post_promotion_analysis.clone(),
        max_unavailable,
    })
}
