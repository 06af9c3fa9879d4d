//! Istio router: destination weights in VirtualService HTTP, TLS and TCP routes, split by
//! host (canary and stable Services) or by DestinationRule subset (subsets carry the
//! `rollouts-pod-template-hash` label), plus header and mirror routes as managed HTTP routes
//! placed before the user's routes. Pure transformations over JSON, then thin I/O.

use super::kube_io::{self, Target};
use super::split::{self, Extra, Services, Split};
use super::{RouteContext, TrafficError, TrafficRouter};
use crate::crd::{
    IstioDestinationRule, IstioTrafficRouting, IstioVirtualService, POD_TEMPLATE_HASH_LABEL,
    SetHeaderRoute, SetMirrorRoute, StringMatch, TrafficWeights,
};
use async_trait::async_trait;
use kube::api::ApiResource;
use serde_json::{Map, Value, json};

const PROVIDER: &str = "istio";
/// Served by every Istio release that ships `v1` too; the upstream CRD serves v1alpha3,
/// v1beta1 and v1 with the same schema (v1 stored).
const API_VERSION: &str = "v1beta1";

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "networking.istio.io".into(),
        version: API_VERSION.into(),
        api_version: format!("networking.istio.io/{API_VERSION}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// How destinations name canary and stable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Destination hosts are the canary and stable Services.
    Host(Services),
    /// Destinations share a host and differ by DestinationRule subset.
    Subset {
        /// The canary subset.
        canary: String,
        /// The stable subset.
        stable: String,
    },
}

impl Mode {
    fn is(&self, dest: &Value, which: Which<'_>) -> bool {
        let d = dest.get("destination").unwrap_or(&Value::Null);
        match self {
            Self::Host(svc) => {
                let host = d.get("host").and_then(Value::as_str).unwrap_or("");
                let short = host.split('.').next().unwrap_or("");
                short == which.name(&svc.canary, &svc.stable)
            }
            Self::Subset { canary, stable } => {
                d.get("subset").and_then(Value::as_str) == Some(which.name(canary, stable))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Which<'a> {
    Canary,
    Stable,
    Extra(&'a str),
}

impl<'a> Which<'a> {
    fn name(self, canary: &'a str, stable: &'a str) -> &'a str {
        match self {
            Self::Canary => canary,
            Self::Stable => stable,
            Self::Extra(name) => name,
        }
    }
}

fn destinations(route: &Value) -> &[Value] {
    route
        .get("route")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn splits(route: &Value, mode: &Mode) -> bool {
    let d = destinations(route);
    d.iter().any(|x| mode.is(x, Which::Canary)) && d.iter().any(|x| mode.is(x, Which::Stable))
}

fn set_route_weights(
    route: &mut Value,
    mode: &Mode,
    split: &Split,
    what: &str,
) -> Result<(), String> {
    if !splits(route, mode) {
        return Err(format!("{what} lacks a canary or a stable destination"));
    }
    let dests = destinations(route).to_vec();
    let stable_dest = dests
        .iter()
        .find(|d| mode.is(d, Which::Stable))
        .and_then(|d| d.get("destination").cloned())
        .unwrap_or(Value::Null);
    let mut kept = Vec::with_capacity(dests.len());
    for mut d in dests {
        let weight = if mode.is(&d, Which::Canary) {
            split.canary
        } else if mode.is(&d, Which::Stable) {
            split.stable
        } else if let Some(e) = split
            .additional
            .iter()
            .find(|e| mode.is(&d, Which::Extra(&e.name)))
        {
            e.weight
        } else {
            continue;
        };
        d["weight"] = json!(weight);
        kept.push(d);
    }
    for e in &split.additional {
        if !kept.iter().any(|d| mode.is(d, Which::Extra(&e.name))) {
            kept.push(json!({"destination": extra_destination(mode, &stable_dest, e), "weight": e.weight}));
        }
    }
    route["route"] = Value::Array(kept);
    Ok(())
}

fn extra_destination(mode: &Mode, stable: &Value, e: &Extra) -> Value {
    let mut d = stable.clone();
    match mode {
        Mode::Host(_) => {
            d["host"] = json!(e.name);
            if let Some(o) = d.as_object_mut() {
                o.remove("subset");
            }
        }
        Mode::Subset { .. } => d["subset"] = json!(e.name),
    }
    d
}

fn list_mut<'a>(vs: &'a mut Value, key: &str) -> Option<&'a mut Vec<Value>> {
    vs.get_mut("spec")
        .and_then(|s| s.get_mut(key))
        .and_then(Value::as_array_mut)
}

fn list<'a>(vs: &'a Value, key: &str) -> &'a [Value] {
    vs.get("spec")
        .and_then(|s| s.get(key))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The indices of the HTTP routes that carry the split: the named ones, or the only
/// non-managed route when none are named and no TLS or TCP route is configured. A
/// VirtualService without `spec.http` has none to split, whatever `routes` names: Argo Rollouts
/// skips the HTTP routes of such a VirtualService (TLS- or TCP-only) rather than failing.
fn http_targets(
    vs: &Value,
    cfg: &IstioVirtualService,
    managed: &[String],
) -> Result<Vec<usize>, String> {
    if vs.pointer("/spec/http").is_none_or(Value::is_null) {
        return Ok(Vec::new());
    }
    let http = list(vs, "http");
    if cfg.routes.is_empty() {
        if !cfg.tls_routes.is_empty() || !cfg.tcp_routes.is_empty() {
            return Ok(Vec::new());
        }
        let user: Vec<usize> = (0..http.len())
            .filter(|i| {
                split::name_of(&http[*i]).is_none_or(|n| split::managed_index(n, managed).is_none())
            })
            .collect();
        return match user.as_slice() {
            [one] => Ok(vec![*one]),
            _ => Err(
                "spec.http has several routes; name the ones to split in virtualService.routes"
                    .to_owned(),
            ),
        };
    }
    cfg.routes
        .iter()
        .map(|name| {
            http.iter()
                .position(|r| split::name_of(r) == Some(name))
                .ok_or_else(|| format!("spec.http has no route named {name:?}"))
        })
        .collect()
}

fn port_of(m: &Value) -> Option<i64> {
    m.get("port").and_then(Value::as_i64)
}

/// Sets the weights of the configured routes (and of managed mirror routes, which copy the
/// primary route's destinations). Weights are percentages; destinations that are neither
/// canary, stable nor an additional destination are removed from split routes.
///
/// # Errors
/// When a configured route is missing or lacks the canary or stable destination.
pub fn set_weights(
    vs: &Value,
    cfg: &IstioVirtualService,
    mode: &Mode,
    split: &Split,
    managed: &[String],
) -> Result<Value, String> {
    let split = split.percent();
    let mut out = vs.clone();
    let targets = http_targets(vs, cfg, managed)?;
    if let Some(http) = list_mut(&mut out, "http") {
        for (i, route) in http.iter_mut().enumerate() {
            let is_managed =
                split::name_of(route).is_some_and(|n| split::managed_index(n, managed).is_some());
            if targets.contains(&i) {
                let what = format!("spec.http[{i}]");
                set_route_weights(route, mode, &split, &what)?;
            } else if is_managed && splits(route, mode) {
                set_route_weights(route, mode, &split, "managed route")?;
            }
        }
    }
    for t in &cfg.tls_routes {
        let mut found = false;
        for (i, route) in list_mut(&mut out, "tls").into_iter().flatten().enumerate() {
            let hit = route
                .get("match")
                .and_then(Value::as_array)
                .is_some_and(|ms| {
                    ms.iter().any(|m| {
                        (t.port.is_none() || port_of(m) == t.port)
                            && t.sni_hosts.iter().all(|h| {
                                m.get("sniHosts")
                                    .and_then(Value::as_array)
                                    .is_some_and(|s| s.iter().any(|x| x.as_str() == Some(h)))
                            })
                    })
                });
            if hit {
                found = true;
                set_route_weights(route, mode, &split, &format!("spec.tls[{i}]"))?;
            }
        }
        if !found {
            return Err(format!(
                "spec.tls has no route matching port {:?} and sniHosts {:?}",
                t.port, t.sni_hosts
            ));
        }
    }
    for t in &cfg.tcp_routes {
        let mut found = false;
        for (i, route) in list_mut(&mut out, "tcp").into_iter().flatten().enumerate() {
            let hit = t.port.is_none()
                || route
                    .get("match")
                    .and_then(Value::as_array)
                    .is_some_and(|ms| ms.iter().any(|m| port_of(m) == t.port));
            if hit {
                found = true;
                set_route_weights(route, mode, &split, &format!("spec.tcp[{i}]"))?;
            }
        }
        if !found {
            return Err(format!("spec.tcp has no route matching port {:?}", t.port));
        }
    }
    Ok(out)
}

/// The canary destination of the first split HTTP route, without weight.
fn canary_destination(
    vs: &Value,
    cfg: &IstioVirtualService,
    mode: &Mode,
    managed: &[String],
) -> Result<(Value, Value), String> {
    let targets = http_targets(vs, cfg, managed)?;
    let primary = targets
        .first()
        .and_then(|i| list(vs, "http").get(*i))
        .ok_or_else(|| "header and mirror routes need an HTTP route to split".to_owned())?;
    let canary = destinations(primary)
        .iter()
        .find(|d| mode.is(d, Which::Canary))
        .and_then(|d| d.get("destination").cloned())
        .ok_or_else(|| "the primary HTTP route lacks the canary destination".to_owned())?;
    Ok((canary, primary.clone()))
}

fn istio_string_match(m: &StringMatch, what: &str) -> Result<Value, String> {
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(v), None, None) => Ok(json!({"exact": v})),
        (None, Some(v), None) => Ok(json!({"prefix": v})),
        (None, None, Some(v)) => Ok(json!({"regex": v})),
        _ => Err(format!(
            "{what}: set exactly one of exact, prefix and regex"
        )),
    }
}

fn upsert_http(vs: &Value, name: &str, route: Option<Value>, managed: &[String]) -> Value {
    let mut out = vs.clone();
    let mut http: Vec<Value> = list(vs, "http")
        .iter()
        .filter(|r| split::name_of(r) != Some(name))
        .cloned()
        .collect();
    if let Some(route) = route {
        http.insert(0, route);
    }
    out["spec"]["http"] = Value::Array(split::managed_first(http, managed));
    out
}

/// Adds (or replaces, or with no matches removes) the header route `name`: all headers must
/// match, and matching requests go to the canary destination only.
///
/// # Errors
/// When a match is malformed or no HTTP route splits.
pub fn set_header_route(
    vs: &Value,
    cfg: &IstioVirtualService,
    mode: &Mode,
    step: &SetHeaderRoute,
    managed: &[String],
) -> Result<Value, String> {
    if step.matches.is_empty() {
        return Ok(upsert_http(vs, &step.name, None, managed));
    }
    let (canary, _) = canary_destination(vs, cfg, mode, managed)?;
    let mut headers = Map::new();
    for m in &step.matches {
        headers.insert(
            m.header_name.clone(),
            istio_string_match(&m.header_value, &m.header_name)?,
        );
    }
    let route = json!({
        "name": step.name,
        "match": [{"headers": headers}],
        "route": [{"destination": canary, "weight": 100}],
    });
    Ok(upsert_http(vs, &step.name, Some(route), managed))
}

/// Adds (or replaces, or with no matches removes) the mirror route `name`: matching requests
/// keep the primary route's destinations and weights and are mirrored to the canary.
///
/// # Errors
/// When a match is malformed or no HTTP route splits.
pub fn set_mirror_route(
    vs: &Value,
    cfg: &IstioVirtualService,
    mode: &Mode,
    step: &SetMirrorRoute,
    managed: &[String],
) -> Result<Value, String> {
    if step.matches.is_empty() {
        return Ok(upsert_http(vs, &step.name, None, managed));
    }
    let (canary, primary) = canary_destination(vs, cfg, mode, managed)?;
    let mut matches = Vec::new();
    for m in &step.matches {
        let mut out = Map::new();
        if let Some(method) = &m.method {
            out.insert("method".into(), istio_string_match(method, "method")?);
        }
        if let Some(path) = &m.path {
            out.insert("uri".into(), istio_string_match(path, "path")?);
        }
        if !m.headers.is_empty() {
            let mut headers = Map::new();
            for (name, v) in &m.headers {
                headers.insert(name.clone(), istio_string_match(v, name)?);
            }
            out.insert("headers".into(), Value::Object(headers));
        }
        matches.push(Value::Object(out));
    }
    let route = json!({
        "name": step.name,
        "match": matches,
        "route": destinations(&primary),
        "mirror": canary,
        "mirrorPercentage": {"value": f64::from(step.percentage.unwrap_or(100).clamp(0, 100))},
    });
    Ok(upsert_http(vs, &step.name, Some(route), managed))
}

/// Removes every managed HTTP route.
pub fn remove_managed_routes(vs: &Value, managed: &[String]) -> Value {
    let mut out = vs.clone();
    if let Some(http) = list_mut(&mut out, "http") {
        http.retain(|r| {
            split::name_of(r).is_none_or(|n| split::managed_index(n, managed).is_none())
        });
    }
    out
}

/// Points the canary and stable subsets (and additional ones) at their pod-template hashes.
///
/// # Errors
/// When the canary or stable subset is missing.
pub fn set_subset_hashes(
    dr: &Value,
    cfg: &IstioDestinationRule,
    canary: Option<&str>,
    stable: Option<&str>,
    extras: &[Extra],
) -> Result<Value, String> {
    let mut out = dr.clone();
    let subsets = out
        .pointer_mut("/spec/subsets")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| "spec.subsets is missing".to_owned())?;
    let mut wanted: Vec<(&str, Option<&str>, bool)> = vec![
        (cfg.canary_subset_name.as_str(), canary, true),
        (cfg.stable_subset_name.as_str(), stable, true),
    ];
    wanted.extend(
        extras
            .iter()
            .map(|e| (e.name.as_str(), e.hash.as_deref(), false)),
    );
    for (name, hash, required) in wanted {
        let Some(hash) = hash else {
            continue;
        };
        match subsets.iter_mut().find(|s| split::name_of(s) == Some(name)) {
            Some(s) => s["labels"][POD_TEMPLATE_HASH_LABEL] = json!(hash),
            None if required => return Err(format!("spec.subsets has no subset named {name:?}")),
            None => subsets.push(json!({"name": name, "labels": {POD_TEMPLATE_HASH_LABEL: hash}})),
        }
    }
    Ok(out)
}

/// Whether Istio reports the VirtualService as distributed to its proxies: `Some(true)` when
/// a `Reconciled=True` condition covers the current generation, `Some(false)` when the status
/// is older or not reconciled, `None` when there is no status (Istio writes it only with
/// `PILOT_ENABLE_STATUS`).
pub fn reconciled(vs: &Value) -> Option<bool> {
    let conditions = vs.pointer("/status/conditions").and_then(Value::as_array)?;
    let generation = vs
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let observed = vs.pointer("/status/observedGeneration").and_then(|g| {
        // Istio writes it as an integer or, in some versions, a string.
        g.as_i64()
            .or_else(|| g.as_str().and_then(|s| s.parse().ok()))
    });
    let ok = conditions.iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Reconciled")
            && c.get("status").and_then(Value::as_str) == Some("True")
    });
    Some(ok && observed.is_some_and(|o| o >= generation))
}

/// The Istio router of one Rollout.
pub struct IstioRouter {
    client: kube::Client,
    virtual_services: Vec<(IstioVirtualService, Target)>,
    destination_rule: Option<(IstioDestinationRule, Target)>,
}

fn target(kind: &'static str, plural: &str, name: &str, namespace: &str) -> Target {
    let (ns, name) = name.split_once('/').unwrap_or((namespace, name));
    Target {
        provider: PROVIDER,
        kind,
        resource: resource(kind, plural),
        namespace: ns.to_owned(),
        name: name.to_owned(),
    }
}

impl IstioRouter {
    /// A router for the configured VirtualServices (`name` or `namespace/name`) and
    /// DestinationRule.
    pub fn new(client: kube::Client, config: &IstioTrafficRouting, namespace: &str) -> Self {
        let virtual_services = config
            .virtual_service
            .iter()
            .chain(&config.virtual_services)
            .map(|vs| {
                (
                    vs.clone(),
                    target("VirtualService", "virtualservices", &vs.name, namespace),
                )
            })
            .collect();
        let destination_rule = config.destination_rule.as_ref().map(|dr| {
            (
                dr.clone(),
                target("DestinationRule", "destinationrules", &dr.name, namespace),
            )
        });
        Self {
            client,
            virtual_services,
            destination_rule,
        }
    }

    fn mode(&self, ctx: &RouteContext) -> Result<Mode, TrafficError> {
        Ok(match &self.destination_rule {
            Some((dr, _)) => Mode::Subset {
                canary: dr.canary_subset_name.clone(),
                stable: dr.stable_subset_name.clone(),
            },
            None => Mode::Host(split::services(&ctx.rollout, PROVIDER)?),
        })
    }

    async fn each_vs(
        &self,
        tolerate_missing: bool,
        f: impl Fn(&IstioVirtualService, &Value) -> Result<Value, String>,
    ) -> Result<(), TrafficError> {
        for (cfg, t) in &self.virtual_services {
            let result = kube_io::update(&self.client, t, false, |current| {
                let current = current.ok_or_else(|| t.not_found())?;
                f(cfg, current).map_err(|reason| t.unusable(reason))
            })
            .await;
            match result {
                Err(TrafficError::NotFound { .. }) if tolerate_missing => {}
                other => other?,
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TrafficRouter for IstioRouter {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn set_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<(), TrafficError> {
        let mode = self.mode(ctx)?;
        let split = Split::new(weights, split::max_weight(&ctx.rollout));
        let managed = split::managed_routes(&ctx.rollout);
        if let Some((cfg, t)) = &self.destination_rule {
            let canary = weights
                .canary
                .pod_template_hash
                .as_deref()
                .or(ctx.canary_hash.as_deref());
            let stable = weights
                .stable
                .pod_template_hash
                .as_deref()
                .or(ctx.stable_hash.as_deref());
            kube_io::update(&self.client, t, false, |current| {
                let current = current.ok_or_else(|| t.not_found())?;
                set_subset_hashes(current, cfg, canary, stable, &split.additional)
                    .map_err(|r| t.unusable(r))
            })
            .await?;
        }
        self.each_vs(false, |cfg, vs| {
            set_weights(vs, cfg, &mode, &split, &managed)
        })
        .await
    }

    async fn set_header_route(
        &self,
        ctx: &RouteContext,
        step: &SetHeaderRoute,
    ) -> Result<(), TrafficError> {
        let mode = self.mode(ctx)?;
        let managed = split::check_managed(&ctx.rollout, PROVIDER, &step.name)?;
        self.each_vs(false, |cfg, vs| {
            set_header_route(vs, cfg, &mode, step, &managed)
        })
        .await
    }

    async fn set_mirror_route(
        &self,
        ctx: &RouteContext,
        step: &SetMirrorRoute,
    ) -> Result<(), TrafficError> {
        let mode = self.mode(ctx)?;
        let managed = split::check_managed(&ctx.rollout, PROVIDER, &step.name)?;
        self.each_vs(false, |cfg, vs| {
            set_mirror_route(vs, cfg, &mode, step, &managed)
        })
        .await
    }

    async fn verify_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError> {
        let mode = self.mode(ctx)?;
        let split = Split::new(weights, split::max_weight(&ctx.rollout));
        let managed = split::managed_routes(&ctx.rollout);
        let mut answer = Some(true);
        for (cfg, t) in &self.virtual_services {
            let vs = kube_io::get(&self.client, t)
                .await?
                .ok_or_else(|| t.not_found())?;
            let in_place = set_weights(&vs, cfg, &mode, &split, &managed).is_ok_and(|d| d == vs);
            match (in_place, reconciled(&vs)) {
                (false, _) | (true, Some(false)) => return Ok(Some(false)),
                (true, None) => answer = None,
                (true, Some(true)) => {}
            }
        }
        Ok(answer)
    }

    async fn remove_managed_routes(&self, ctx: &RouteContext) -> Result<(), TrafficError> {
        let managed = split::managed_routes(&ctx.rollout);
        if managed.is_empty() {
            return Ok(());
        }
        self.each_vs(true, |_, vs| Ok(remove_managed_routes(vs, &managed)))
            .await
    }
}
