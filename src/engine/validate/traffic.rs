//! Traffic routing: at least one router, `maxTrafficWeight` in range, and the canary and stable
//! Services the routers split between. As in Argo Rollouts, an Istio subset-level split (a
//! DestinationRule) needs neither Service: its destinations differ by subset.

use super::canary::Traffic;
use super::{InvalidSpec, invalid};
use crate::crd::{CanaryStrategy, TrafficRouting};

/// `maxTrafficWeight`, default 100.
///
/// # Errors
/// A value below 1.
pub(super) fn max_weight(c: &CanaryStrategy, f: &str) -> Result<i32, InvalidSpec> {
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
    Ok(max_weight)
}

/// The routers configured that split between the canary and stable Services by name.
fn service_routers(t: &TrafficRouting) -> Vec<&'static str> {
    [
        ("gatewayAPI", t.gateway_api.is_some()),
        (
            "istio",
            t.istio
                .as_ref()
                .is_some_and(|i| i.destination_rule.is_none()),
        ),
        ("smi", t.smi.is_some()),
        ("nginx", t.nginx.is_some()),
        ("traefik", t.traefik.is_some()),
        ("plugins", t.plugins.as_ref().is_some_and(|p| !p.is_empty())),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

fn named(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn check_services(c: &CanaryStrategy, t: &TrafficRouting, f: &str) -> Result<(), InvalidSpec> {
    match (named(&c.canary_service), named(&c.stable_service)) {
        (Some(canary), Some(stable)) if canary == stable => Err(invalid(
            format!("{f}.stableService"),
            "must differ from canaryService",
        )),
        (Some(_), Some(_)) => Ok(()),
        _ => match service_routers(t).first() {
            None => Ok(()),
            Some(router) => Err(invalid(
                format!("{f}.canaryService"),
                format!(
                    "trafficRouting requires both canaryService and stableService (the {router} router splits between them; only an Istio DestinationRule split needs neither)"
                ),
            )),
        },
    }
}

/// Validates `trafficRouting` when set.
///
/// # Errors
/// No router configured, or Services missing or equal where the routers need them.
pub(super) fn validate(
    c: &CanaryStrategy,
    f: &str,
    max_weight: i32,
) -> Result<Option<Traffic>, InvalidSpec> {
    let Some(t) = &c.traffic_routing else {
        return Ok(None);
    };
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
    check_services(c, t, f)?;
    Ok(Some(Traffic {
        max_weight,
        has_managed_routes: !t.managed_routes.is_empty(),
    }))
}
