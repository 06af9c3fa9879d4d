//! Validation: turns a `Rollout` (plus the objects it references, from `Observed`) into a
//! `ValidatedRollout` with every default resolved and steps as a typed enum, or into an
//! `InvalidSpec` naming the field and the problem. Later stages only take `ValidatedRollout`.

use super::duration::parse_pause_duration;
use super::hash::steps_hash;
use super::model::Observed;
use crate::crd::{
    CanaryStep, Rollout, RolloutAnalysis, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::fmt;
use std::time::Duration;

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
    pub baseline: Option<super::baseline::Baseline>,
}

/// Traffic routing as the engine needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    /// `maxTrafficWeight`, default 100.
    pub max_weight: i32,
    /// Whether any managed route is declared (so there may be routes to remove).
    pub has_managed_routes: bool,
}

/// One canary step, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `setWeight`.
    SetWeight(i32),
    /// `pause`; `None` waits for a promote.
    Pause(Option<Duration>),
    /// `setCanaryScale`.
    SetCanaryScale(CanaryScale),
    /// `analysis`.
    Analysis(RolloutAnalysis),
    /// `setHeaderRoute`.
    SetHeaderRoute(SetHeaderRoute),
    /// `setMirrorRoute`.
    SetMirrorRoute(SetMirrorRoute),
}

/// A `setCanaryScale` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryScale {
    /// This many canary pods.
    Replicas(i32),
    /// This percentage of `spec.replicas`.
    Weight(i32),
    /// Back to sizing by traffic weight.
    MatchTrafficWeight,
}

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

fn check_string_match(m: &StringMatch, field: &str) -> Result<(), InvalidSpec> {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if set == 1 {
        Ok(())
    } else {
        Err(invalid(
            field,
            "a string match sets exactly one of exact, prefix and regex",
        ))
    }
}

fn check_analysis(
    observed: &Observed,
    a: &RolloutAnalysis,
    field: &str,
) -> Result<(), InvalidSpec> {
    if a.templates.is_empty() {
        return Err(invalid(
            format!("{field}.templates"),
            "at least one template is required",
        ));
    }
    for (i, t) in a.templates.iter().enumerate() {
        let kind = if t.cluster_scope {
            "ClusterAnalysisTemplate"
        } else {
            "AnalysisTemplate"
        };
        let key = (t.cluster_scope, t.template_name.clone());
        match observed.analysis_templates.get(&key) {
            Some(None) => {
                return Err(invalid(
                    format!("{field}.templates[{i}].templateName"),
                    format!("{kind} {:?} not found", t.template_name),
                ));
            }
            Some(Some(problems)) if !problems.is_empty() => {
                return Err(invalid(
                    format!("{field}.templates[{i}].templateName"),
                    format!(
                        "{kind} {:?} is invalid: {}",
                        t.template_name,
                        problems.join("; ")
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_service(
    observed: &Observed,
    rollout: &str,
    name: &str,
    field: &str,
) -> Result<(), InvalidSpec> {
    match observed.services.get(name) {
        Some(Some(service)) => match &service.managed_by {
            Some(owner) if owner != rollout => Err(invalid(
                field,
                format!("Service {name:?} is managed by Rollout {owner:?}"),
            )),
            Some(_) | None => Ok(()),
        },
        Some(None) | None => Err(invalid(field, format!("Service {name:?} not found"))),
    }
}

fn step_kind(
    observed: &Observed,
    step: &CanaryStep,
    field: &str,
    max_weight: i32,
) -> Result<Step, InvalidSpec> {
    let set = [
        step.set_weight.is_some(),
        step.pause.is_some(),
        step.set_canary_scale.is_some(),
        step.analysis.is_some(),
        step.set_header_route.is_some(),
        step.set_mirror_route.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if set != 1 {
        return Err(invalid(
            field,
            format!(
                "sets {set} of setWeight, pause, setCanaryScale, analysis, setHeaderRoute, setMirrorRoute; exactly one is required"
            ),
        ));
    }
    if let Some(w) = step.set_weight {
        if w < 0 {
            return Err(invalid(
                format!("{field}.setWeight"),
                format!("{w} is negative"),
            ));
        }
        if w > max_weight {
            return Err(invalid(
                format!("{field}.setWeight"),
                format!("{w} exceeds maxTrafficWeight {max_weight}"),
            ));
        }
        return Ok(Step::SetWeight(w));
    }
    if let Some(p) = &step.pause {
        let duration = match &p.duration {
            Some(d) => Some(
                parse_pause_duration(d)
                    .map_err(|e| invalid(format!("{field}.pause.duration"), e))?,
            ),
            None => None,
        };
        return Ok(Step::Pause(duration));
    }
    if let Some(s) = &step.set_canary_scale {
        let f = format!("{field}.setCanaryScale");
        let set = [
            s.replicas.is_some(),
            s.weight.is_some(),
            s.match_traffic_weight,
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if set != 1 {
            return Err(invalid(
                f,
                "sets exactly one of replicas, weight and matchTrafficWeight",
            ));
        }
        if let Some(r) = s.replicas {
            return if r >= 0 {
                Ok(Step::SetCanaryScale(CanaryScale::Replicas(r)))
            } else {
                Err(invalid(format!("{f}.replicas"), "must not be negative"))
            };
        }
        if let Some(w) = s.weight {
            return if (0..=100).contains(&w) {
                Ok(Step::SetCanaryScale(CanaryScale::Weight(w)))
            } else {
                Err(invalid(format!("{f}.weight"), "must be between 0 and 100"))
            };
        }
        return Ok(Step::SetCanaryScale(CanaryScale::MatchTrafficWeight));
    }
    if let Some(a) = &step.analysis {
        check_analysis(observed, a, &format!("{field}.analysis"))?;
        return Ok(Step::Analysis(a.clone()));
    }
    if let Some(h) = &step.set_header_route {
        for (j, m) in h.matches.iter().enumerate() {
            check_string_match(
                &m.header_value,
                &format!("{field}.setHeaderRoute.match[{j}].headerValue"),
            )?;
        }
        return Ok(Step::SetHeaderRoute(h.clone()));
    }
    if let Some(m) = &step.set_mirror_route {
        if let Some(p) = m.percentage
            && !(0..=100).contains(&p)
        {
            return Err(invalid(
                format!("{field}.setMirrorRoute.percentage"),
                format!("{p} is not between 0 and 100"),
            ));
        }
        for (j, rm) in m.matches.iter().enumerate() {
            let base = format!("{field}.setMirrorRoute.match[{j}]");
            if let Some(x) = &rm.method {
                check_string_match(x, &format!("{base}.method"))?;
            }
            if let Some(x) = &rm.path {
                check_string_match(x, &format!("{base}.path"))?;
            }
            for (name, x) in &rm.headers {
                check_string_match(x, &format!("{base}.headers[{name}]"))?;
            }
        }
        return Ok(Step::SetMirrorRoute(m.clone()));
    }
    Err(invalid(field, "empty step"))
}

/// Every router on the Rollout must be able to carry a `setHeaderRoute` or `setMirrorRoute`
/// step, since the controller applies the step through each of them: as Argo Rollouts does,
/// an unsupported step is a spec error up front rather than a failure in the middle of an
/// update. SMI and Traefik have neither; NGINX routes by header (`canary-by-header`) but
/// cannot mirror. Plugins are trusted to say so themselves at run time.
fn check_route_support(
    routing: &crate::crd::TrafficRouting,
    kind: &str,
    field: &str,
) -> Result<(), InvalidSpec> {
    let (unsupported, supported): (&[(&str, bool)], &str) = match kind {
        "setHeaderRoute" => (
            &[
                ("smi", routing.smi.is_some()),
                ("traefik", routing.traefik.is_some()),
            ],
            "gatewayAPI, istio, nginx and plugins",
        ),
        "setMirrorRoute" => (
            &[
                ("smi", routing.smi.is_some()),
                ("nginx", routing.nginx.is_some()),
                ("traefik", routing.traefik.is_some()),
            ],
            "gatewayAPI, istio and plugins",
        ),
        _ => (&[], ""),
    };
    match unsupported.iter().find(|(_, configured)| *configured) {
        Some((router, _)) => Err(invalid(
            format!("{field}.{kind}"),
            format!(
                "the {router} router cannot apply {kind} (supported by {supported}); remove the step or route with another provider"
            ),
        )),
        None => Ok(()),
    }
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
    let (template, workload_scale_down) = match (&spec.template, &spec.workload_ref) {
        (Some(t), None) => (t.clone(), None),
        (None, Some(w)) => {
            if w.kind != "Deployment" {
                return Err(invalid(
                    "spec.workloadRef.kind",
                    format!("{:?} is not supported; use Deployment", w.kind),
                ));
            }
            match &observed.workload {
                Some(workload) => (
                    workload.template.clone(),
                    Some(w.scale_down.unwrap_or_default()),
                ),
                None => {
                    return Err(invalid(
                        "spec.workloadRef.name",
                        format!("Deployment {:?} not found", w.name),
                    ));
                }
            }
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "spec.template",
                "exactly one of spec.template and spec.workloadRef must be set",
            ));
        }
    };
    let selector = match &spec.selector {
        Some(s) => s,
        None => return Err(invalid("spec.selector", "is required")),
    };
    let match_labels = selector.match_labels.clone().unwrap_or_default();
    if match_labels.is_empty()
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        return Err(invalid(
            "spec.selector",
            "an empty selector would select every pod",
        ));
    }
    let template_labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    for (k, v) in &match_labels {
        if template_labels.get(k) != Some(v) {
            return Err(invalid(
                "spec.selector.matchLabels",
                format!("{k}={v} does not match the template's labels"),
            ));
        }
    }
    let selector_string = match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let revision_history_limit = spec
        .revision_history_limit
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT);
    let strategy = match (&spec.strategy.canary, &spec.strategy.blue_green) {
        (Some(c), None) => {
            let f = "spec.strategy.canary";
            let max_weight = c
                .traffic_routing
                .as_ref()
                .and_then(|t| t.max_traffic_weight)
                .unwrap_or(100);
            if max_weight < 1 {
                return Err(invalid(
                    format!("{f}.trafficRouting.maxTrafficWeight"),
                    format!("{max_weight} must be at least 1"),
                ));
            }
            let traffic = match &c.traffic_routing {
                Some(t) => {
                    let any = t.gateway_api.is_some()
                        || t.istio.is_some()
                        || t.smi.is_some()
                        || t.nginx.is_some()
                        || t.traefik.is_some()
                        || t.plugins.as_ref().is_some_and(|p| !p.is_empty());
                    if !any {
                        return Err(invalid(
                            format!("{f}.trafficRouting"),
                            "configures no router (gatewayAPI, istio, smi, nginx, traefik or plugins)",
                        ));
                    }
                    let named = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
                    let (Some(canary_svc), Some(stable_svc)) =
                        (named(&c.canary_service), named(&c.stable_service))
                    else {
                        return Err(invalid(
                            format!("{f}.canaryService"),
                            "trafficRouting requires both canaryService and stableService",
                        ));
                    };
                    if canary_svc == stable_svc {
                        return Err(invalid(
                            format!("{f}.stableService"),
                            "must differ from canaryService",
                        ));
                    }
                    Some(Traffic {
                        max_weight,
                        has_managed_routes: !t.managed_routes.is_empty(),
                    })
                }
                None => None,
            };
            let managed: Vec<&str> = c
                .traffic_routing
                .as_ref()
                .map(|t| t.managed_routes.iter().map(|r| r.name.as_str()).collect())
                .unwrap_or_default();
            let mut steps = Vec::with_capacity(c.steps.len());
            for (i, raw) in c.steps.iter().enumerate() {
                let field = format!("{f}.steps[{i}]");
                let step = step_kind(observed, raw, &field, max_weight)?;
                let (needs_traffic, route) = match &step {
                    Step::SetWeight(_) | Step::Pause(_) | Step::Analysis(_) => (None, None),
                    Step::SetCanaryScale(_) => (Some("setCanaryScale"), None),
                    Step::SetHeaderRoute(h) => (Some("setHeaderRoute"), Some(h.name.as_str())),
                    Step::SetMirrorRoute(m) => (Some("setMirrorRoute"), Some(m.name.as_str())),
                };
                if let Some(kind) = needs_traffic
                    && traffic.is_none()
                {
                    return Err(invalid(
                        format!("{field}.{kind}"),
                        "requires spec.strategy.canary.trafficRouting",
                    ));
                }
                if let (Some(kind), Some(routing)) = (needs_traffic, &c.traffic_routing) {
                    check_route_support(routing, kind, &field)?;
                }
                if let Some(route) = route
                    && !managed.contains(&route)
                {
                    return Err(invalid(
                        format!("{field}.{}.name", needs_traffic.unwrap_or_default()),
                        format!("route {route:?} is not listed in trafficRouting.managedRoutes"),
                    ));
                }
                steps.push(step);
            }
            if c.dynamic_stable_scale && traffic.is_none() {
                return Err(invalid(
                    format!("{f}.dynamicStableScale"),
                    "requires trafficRouting",
                ));
            }
            if c.scale_down_delay_seconds.is_some() && traffic.is_none() {
                return Err(invalid(
                    format!("{f}.scaleDownDelaySeconds"),
                    "requires trafficRouting",
                ));
            }
            if c.dynamic_stable_scale && c.scale_down_delay_seconds.is_some() {
                return Err(invalid(
                    format!("{f}.scaleDownDelaySeconds"),
                    "cannot be combined with dynamicStableScale",
                ));
            }
            if let Some(limit) = c.scale_down_delay_revision_limit
                && limit > revision_history_limit
            {
                return Err(invalid(
                    format!("{f}.scaleDownDelayRevisionLimit"),
                    format!("{limit} exceeds revisionHistoryLimit {revision_history_limit}"),
                ));
            }
            let default = IntOrString::String(DEFAULT_SURGE_UNAVAILABLE.to_string());
            let max_surge = resolve_int_or_percent(
                c.max_surge.as_ref().unwrap_or(&default),
                replicas,
                true,
                &format!("{f}.maxSurge"),
            )?;
            let mut max_unavailable = resolve_int_or_percent(
                c.max_unavailable.as_ref().unwrap_or(&default),
                replicas,
                false,
                &format!("{f}.maxUnavailable"),
            )?;
            let surge_is_zero = matches!(&c.max_surge, Some(IntOrString::Int(0)))
                || matches!(&c.max_surge, Some(IntOrString::String(s)) if s.trim() == "0%");
            let unavailable_is_zero = matches!(&c.max_unavailable, Some(IntOrString::Int(0)))
                || matches!(&c.max_unavailable, Some(IntOrString::String(s)) if s.trim() == "0%");
            if surge_is_zero && unavailable_is_zero {
                return Err(invalid(
                    format!("{f}.maxUnavailable"),
                    "maxSurge and maxUnavailable cannot both be 0",
                ));
            }
            // As Deployments do: when both round to 0, allow one unavailable pod so the
            // update can move at all.
            if max_surge == 0 && max_unavailable == 0 {
                max_unavailable = 1;
            }
            if let Some(bg) = &c.analysis {
                check_analysis(observed, &bg.analysis, &format!("{f}.analysis"))?;
            }
            for (svc, field) in [
                (&c.canary_service, format!("{f}.canaryService")),
                (&c.stable_service, format!("{f}.stableService")),
            ] {
                if let Some(svc) = svc.as_deref().filter(|s| !s.is_empty()) {
                    check_service(observed, &name, svc, &field)?;
                }
            }
            let baseline = super::baseline::validate(c, |svc, field| {
                check_service(observed, &name, svc, field)
            })?;
            let has_traffic = traffic.is_some();
            Strategy::Canary(Canary {
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
                scale_down_delay_seconds: if has_traffic {
                    c.scale_down_delay_seconds
                        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
                } else {
                    0
                },
                scale_down_delay_revision_limit: c.scale_down_delay_revision_limit,
                abort_scale_down_delay_seconds: if has_traffic {
                    c.abort_scale_down_delay_seconds
                        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
                } else {
                    0
                },
                dynamic_stable_scale: c.dynamic_stable_scale,
                min_pods_per_replica_set: c.min_pods_per_replica_set.unwrap_or(0),
                progress_threshold: c.replica_progress_threshold.clone(),
                baseline,
            })
        }
        (None, Some(b)) => {
            let f = "spec.strategy.blueGreen";
            if b.active_service.is_empty() {
                return Err(invalid(format!("{f}.activeService"), "is required"));
            }
            if b.preview_service.as_deref() == Some(b.active_service.as_str()) {
                return Err(invalid(
                    format!("{f}.previewService"),
                    "must differ from activeService",
                ));
            }
            check_service(
                observed,
                &name,
                &b.active_service,
                &format!("{f}.activeService"),
            )?;
            if let Some(p) = b.preview_service.as_deref().filter(|s| !s.is_empty()) {
                check_service(observed, &name, p, &format!("{f}.previewService"))?;
            }
            if let Some(limit) = b.scale_down_delay_revision_limit
                && limit > revision_history_limit
            {
                return Err(invalid(
                    format!("{f}.scaleDownDelayRevisionLimit"),
                    format!("{limit} exceeds revisionHistoryLimit {revision_history_limit}"),
                ));
            }
            if let Some(a) = &b.pre_promotion_analysis {
                check_analysis(observed, a, &format!("{f}.prePromotionAnalysis"))?;
            }
            if let Some(a) = &b.post_promotion_analysis {
                check_analysis(observed, a, &format!("{f}.postPromotionAnalysis"))?;
            }
            let default = IntOrString::String(DEFAULT_SURGE_UNAVAILABLE.to_string());
            let max_unavailable = resolve_int_or_percent(
                b.max_unavailable.as_ref().unwrap_or(&default),
                replicas,
                false,
                &format!("{f}.maxUnavailable"),
            )?;
            Strategy::BlueGreen(BlueGreen {
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
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "spec.strategy",
                "exactly one of canary and blueGreen must be set",
            ));
        }
    };
    Ok(ValidatedRollout {
        name,
        generation: rollout.metadata.generation,
        replicas,
        template,
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
        revision_history_limit,
        paused: spec.paused,
        progress_deadline_seconds: spec
            .progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS),
        progress_deadline_abort: spec.progress_deadline_abort,
        restart_at: spec.restart_at.as_ref().map(|t| t.0),
        rollback_window: spec.rollback_window.as_ref().map(|w| w.revisions),
        selector: selector_string,
        workload_scale_down,
        strategy,
    })
}
