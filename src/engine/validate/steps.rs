//! Canary steps: each step sets exactly one action, with values in range, and steps that need
//! traffic routing (or a managed route, or a router able to carry them) get it.

use super::{InvalidSpec, invalid};
use crate::crd::{
    CanaryStep, CanaryStrategy, RolloutAnalysis, SetCanaryScale, SetHeaderRoute, SetMirrorRoute,
    StringMatch, TrafficRouting,
};
use crate::engine::duration::parse_pause_duration;
use crate::engine::model::Observed;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;

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

fn count_set(flags: &[bool]) -> usize {
    flags.iter().filter(|x| **x).count()
}

fn check_string_match(m: &StringMatch, field: &str) -> Result<(), InvalidSpec> {
    if count_set(&[m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]) == 1 {
        Ok(())
    } else {
        Err(invalid(
            field,
            "a string match sets exactly one of exact, prefix and regex",
        ))
    }
}

fn set_weight(w: i32, field: &str, max_weight: i32) -> Result<Step, InvalidSpec> {
    let f = format!("{field}.setWeight");
    if w < 0 {
        return Err(invalid(f, format!("{w} is negative")));
    }
    if w > max_weight {
        return Err(invalid(
            f,
            format!("{w} exceeds maxTrafficWeight {max_weight}"),
        ));
    }
    Ok(Step::SetWeight(w))
}

fn pause(duration: Option<&IntOrString>, field: &str) -> Result<Step, InvalidSpec> {
    let duration = duration
        .map(|d| parse_pause_duration(d).map_err(|e| invalid(format!("{field}.pause.duration"), e)))
        .transpose()?;
    Ok(Step::Pause(duration))
}

fn canary_scale(s: &SetCanaryScale, field: &str) -> Result<Step, InvalidSpec> {
    let f = format!("{field}.setCanaryScale");
    if count_set(&[
        s.replicas.is_some(),
        s.weight.is_some(),
        s.match_traffic_weight,
    ]) != 1
    {
        return Err(invalid(
            f,
            "sets exactly one of replicas, weight and matchTrafficWeight",
        ));
    }
    let scale = match (s.replicas, s.weight) {
        (Some(r), _) if r < 0 => {
            return Err(invalid(format!("{f}.replicas"), "must not be negative"));
        }
        (Some(r), _) => CanaryScale::Replicas(r),
        (None, Some(w)) if !(0..=100).contains(&w) => {
            return Err(invalid(format!("{f}.weight"), "must be between 0 and 100"));
        }
        (None, Some(w)) => CanaryScale::Weight(w),
        (None, None) => CanaryScale::MatchTrafficWeight,
    };
    Ok(Step::SetCanaryScale(scale))
}

fn header_route(h: &SetHeaderRoute, field: &str) -> Result<Step, InvalidSpec> {
    for (j, m) in h.matches.iter().enumerate() {
        check_string_match(
            &m.header_value,
            &format!("{field}.setHeaderRoute.match[{j}].headerValue"),
        )?;
    }
    Ok(Step::SetHeaderRoute(h.clone()))
}

fn mirror_route(m: &SetMirrorRoute, field: &str) -> Result<Step, InvalidSpec> {
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
    Ok(Step::SetMirrorRoute(m.clone()))
}

fn step_kind(
    observed: &Observed,
    step: &CanaryStep,
    field: &str,
    max_weight: i32,
) -> Result<Step, InvalidSpec> {
    let set = count_set(&[
        step.set_weight.is_some(),
        step.pause.is_some(),
        step.set_canary_scale.is_some(),
        step.analysis.is_some(),
        step.set_header_route.is_some(),
        step.set_mirror_route.is_some(),
    ]);
    if set != 1 {
        return Err(invalid(
            field,
            format!(
                "sets {set} of setWeight, pause, setCanaryScale, analysis, setHeaderRoute, setMirrorRoute; exactly one is required"
            ),
        ));
    }
    if let Some(w) = step.set_weight {
        return set_weight(w, field, max_weight);
    }
    if let Some(p) = &step.pause {
        return pause(p.duration.as_ref(), field);
    }
    if let Some(s) = &step.set_canary_scale {
        return canary_scale(s, field);
    }
    if let Some(a) = &step.analysis {
        super::analysis::check(observed, a, &format!("{field}.analysis"))?;
        return Ok(Step::Analysis(a.clone()));
    }
    if let Some(h) = &step.set_header_route {
        return header_route(h, field);
    }
    match &step.set_mirror_route {
        Some(m) => mirror_route(m, field),
        None => Err(invalid(field, "empty step")),
    }
}

/// Every router on the Rollout must be able to carry a `setHeaderRoute` or `setMirrorRoute`
/// step, since the controller applies the step through each of them: as Argo Rollouts does,
/// an unsupported step is a spec error up front rather than a failure in the middle of an
/// update. SMI and Traefik have neither; NGINX routes by header (`canary-by-header`) but
/// cannot mirror. Plugins are trusted to say so themselves at run time.
fn check_route_support(
    routing: &TrafficRouting,
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

/// What a step needs beyond itself: traffic routing (naming the step kind) and a managed route.
fn needs(step: &Step) -> (Option<&'static str>, Option<&str>) {
    match step {
        Step::SetWeight(_) | Step::Pause(_) | Step::Analysis(_) => (None, None),
        Step::SetCanaryScale(_) => (Some("setCanaryScale"), None),
        Step::SetHeaderRoute(h) => (Some("setHeaderRoute"), Some(h.name.as_str())),
        Step::SetMirrorRoute(m) => (Some("setMirrorRoute"), Some(m.name.as_str())),
    }
}

fn check_needs(c: &CanaryStrategy, step: &Step, field: &str) -> Result<(), InvalidSpec> {
    let (Some(kind), route) = needs(step) else {
        return Ok(());
    };
    let Some(routing) = &c.traffic_routing else {
        return Err(invalid(
            format!("{field}.{kind}"),
            "requires spec.strategy.canary.trafficRouting",
        ));
    };
    check_route_support(routing, kind, field)?;
    match route {
        Some(route) if !routing.managed_routes.iter().any(|r| r.name == route) => Err(invalid(
            format!("{field}.{kind}.name"),
            format!("route {route:?} is not listed in trafficRouting.managedRoutes"),
        )),
        _ => Ok(()),
    }
}

/// Types every step of a canary strategy (`f` is the strategy's path).
pub(super) fn validate(
    observed: &Observed,
    c: &CanaryStrategy,
    f: &str,
    max_weight: i32,
) -> Result<Vec<Step>, InvalidSpec> {
    c.steps
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let field = format!("{f}.steps[{i}]");
            let step = step_kind(observed, raw, &field, max_weight)?;
            check_needs(c, &step, &field)?;
            Ok(step)
        })
        .collect()
}
