//! Gateway API router: weights on the backendRefs of HTTPRoute and GRPCRoute rules
//! (`gateway.networking.k8s.io/v1`), header-match rules for `setHeaderRoute`, `RequestMirror`
//! rules for `setMirrorRoute`, and verification through the routes' parent status. The
//! transformations are pure functions over the route's JSON; `GatewayApiRouter` adds the I/O.

use super::kube_io::{self, Target};
use super::split::{self, Services, Split};
use super::{RouteContext, TrafficError, TrafficRouter};
use crate::crd::{
    GatewayApiTrafficRouting, HeaderRoutingMatch, RouteMatch, SetHeaderRoute, SetMirrorRoute,
    StringMatch, TrafficWeights,
};
use async_trait::async_trait;
use kube::api::ApiResource;
use serde_json::{Map, Value, json};

const PROVIDER: &str = "gatewayAPI";

/// The two route kinds the router writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// `HTTPRoute`.
    Http,
    /// `GRPCRoute`.
    Grpc,
}

impl RouteKind {
    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Http => "HTTPRoute",
            Self::Grpc => "GRPCRoute",
        }
    }

    fn resource(self) -> ApiResource {
        let plural = match self {
            Self::Http => "httproutes",
            Self::Grpc => "grpcroutes",
        };
        ApiResource {
            group: "gateway.networking.k8s.io".into(),
            version: "v1".into(),
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: self.kind().into(),
            plural: plural.into(),
        }
    }
}

/// Whether a backendRef points at the Service `name`.
fn is_service(backend: &Value, name: &str) -> bool {
    let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
    let kind = backend
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Service");
    group.is_empty() && kind == "Service" && split::name_of(backend) == Some(name)
}

fn backends(rule: &Value) -> &[Value] {
    rule.get("backendRefs")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A rule that splits: it references both the canary and the stable Service.
fn is_split_rule(rule: &Value, svc: &Services) -> bool {
    let refs = backends(rule);
    refs.iter().any(|b| is_service(b, &svc.canary))
        && refs.iter().any(|b| is_service(b, &svc.stable))
}

fn is_managed(rule: &Value, managed: &[String]) -> bool {
    split::name_of(rule).is_some_and(|n| split::managed_index(n, managed).is_some())
}

fn rules_mut(route: &mut Value) -> Result<&mut Vec<Value>, String> {
    route
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| "spec.rules is missing".to_owned())
}

fn rules(route: &Value) -> &[Value] {
    route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Sets the backendRef weights of every rule that references both the canary and the stable
/// Service: canary and stable get their weights, additional destinations (a baseline) get
/// theirs and are appended when missing (on the stable backendRef's port), and any other
/// backendRef of such a rule is removed, since it would take an unaccounted share.
///
/// # Errors
/// When no rule references both Services.
pub fn set_weights(route: &Value, svc: &Services, split: &Split) -> Result<Value, String> {
    let mut out = route.clone();
    let mut touched = 0;
    for rule in rules_mut(&mut out)? {
        if !is_split_rule(rule, svc) {
            continue;
        }
        touched += 1;
        let refs = backends(rule).to_vec();
        rule["backendRefs"] = Value::Array(split::reweight(refs, svc, split, is_service));
    }
    if touched == 0 {
        return Err(format!(
            "no rule in spec.rules has backendRefs to both the canary Service {:?} and the stable Service {:?}",
            svc.canary, svc.stable
        ));
    }
    Ok(out)
}

fn header_match(h: &HeaderRoutingMatch) -> Result<Value, String> {
    let (kind, value) = string_match(&h.header_value, &h.header_name)?;
    Ok(json!({"name": h.header_name, "type": kind, "value": value}))
}

/// `Exact` for exact, `RegularExpression` for prefix (`^prefix.*`) and regex.
fn string_match(m: &StringMatch, what: &str) -> Result<(&'static str, String), String> {
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(v), None, None) => Ok(("Exact", v.clone())),
        (None, Some(p), None) => Ok(("RegularExpression", split::prefix_regex(p))),
        (None, None, Some(r)) => Ok(("RegularExpression", r.clone())),
        _ => Err(format!(
            "{what}: set exactly one of exact, prefix and regex"
        )),
    }
}

fn valid_rule_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "managed route name {name:?} is not a valid Gateway API rule name (lower-case letters, digits and '-')"
        ))
    }
}

fn without_rules_of(route: &Value, name: &str) -> Result<Value, String> {
    let mut out = route.clone();
    let only = [name.to_owned()];
    rules_mut(&mut out)?.retain(|r| !is_managed(r, &only));
    Ok(out)
}

fn reorder(mut route: Value, managed: &[String]) -> Result<Value, String> {
    let rules = std::mem::take(rules_mut(&mut route)?);
    *rules_mut(&mut route)? = split::managed_first(rules, managed);
    Ok(route)
}

/// Adds (or replaces) the header rules of a managed route: one rule per user rule that
/// splits, named `name`, `name-1`, …, matching that rule's matches plus the headers, with the
/// same filters and a single backendRef to the canary. No matches removes the rules. Managed
/// rules come first, in `managed` order.
///
/// # Errors
/// When the name is not a valid rule name, a match is malformed, or no rule splits.
pub fn set_header_route(
    route: &Value,
    svc: &Services,
    step: &SetHeaderRoute,
    managed: &[String],
) -> Result<Value, String> {
    valid_rule_name(&step.name)?;
    let mut out = without_rules_of(route, &step.name)?;
    if step.matches.is_empty() {
        return reorder(out, managed);
    }
    let headers = step
        .matches
        .iter()
        .map(header_match)
        .collect::<Result<Vec<_>, _>>()?;
    let header_names: Vec<&str> = step
        .matches
        .iter()
        .map(|m| m.header_name.as_str())
        .collect();
    let sources: Vec<Value> = rules(&out)
        .iter()
        .filter(|r| is_split_rule(r, svc) && !is_managed(r, managed))
        .cloned()
        .collect();
    if sources.is_empty() {
        return Err(format!(
            "no rule in spec.rules has backendRefs to both {:?} and {:?}",
            svc.canary, svc.stable
        ));
    }
    let mut added = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let base: Vec<Value> = match source.get("matches").and_then(Value::as_array) {
            Some(m) if !m.is_empty() => m.clone(),
            _ => vec![json!({})],
        };
        let matches: Vec<Value> = base
            .into_iter()
            .map(|mut m| {
                let mut merged: Vec<Value> = m
                    .get("headers")
                    .and_then(Value::as_array)
                    .map(|h| {
                        h.iter()
                            .filter(|x| {
                                !split::name_of(x).is_some_and(|n| header_names.contains(&n))
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                merged.extend(headers.iter().cloned());
                m["headers"] = Value::Array(merged);
                m
            })
            .collect();
        let mut canary = backends(source)
            .iter()
            .find(|b| is_service(b, &svc.canary))
            .cloned()
            .unwrap_or_else(|| json!({"name": svc.canary}));
        // Written explicitly: the API server defaults it to 1, and an implicit value would
        // make every repeated call look like a change.
        canary["weight"] = json!(1);
        let mut rule = Map::new();
        let name = if i == 0 {
            step.name.clone()
        } else {
            format!("{}-{i}", step.name)
        };
        rule.insert("name".into(), json!(name));
        rule.insert("matches".into(), Value::Array(matches));
        if let Some(f) = source.get("filters") {
            rule.insert("filters".into(), f.clone());
        }
        rule.insert("backendRefs".into(), json!([canary]));
        added.push(Value::Object(rule));
    }
    rules_mut(&mut out)?.splice(0..0, added);
    reorder(out, managed)
}

fn mirror_match(kind: RouteKind, m: &RouteMatch) -> Result<Value, String> {
    let mut out = Map::new();
    if kind == RouteKind::Grpc && (m.path.is_some() || m.method.is_some()) {
        return Err("GRPCRoute mirror routes match on headers only".to_owned());
    }
    if let Some(p) = &m.path {
        let path = match (&p.exact, &p.prefix, &p.regex) {
            (Some(v), None, None) => json!({"type": "Exact", "value": v}),
            (None, Some(v), None) => json!({"type": "PathPrefix", "value": v}),
            (None, None, Some(v)) => json!({"type": "RegularExpression", "value": v}),
            _ => return Err("path: set exactly one of exact, prefix and regex".to_owned()),
        };
        out.insert("path".into(), path);
    }
    if let Some(method) = &m.method {
        match &method.exact {
            Some(v) if method.prefix.is_none() && method.regex.is_none() => {
                out.insert("method".into(), json!(v.to_ascii_uppercase()));
            }
            _ => return Err("method: Gateway API matches methods exactly".to_owned()),
        }
    }
    if !m.headers.is_empty() {
        let headers = m
            .headers
            .iter()
            .map(|(name, v)| {
                let (t, value) = string_match(v, name)?;
                Ok(json!({"name": name, "type": t, "value": value}))
            })
            .collect::<Result<Vec<_>, String>>()?;
        out.insert("headers".into(), Value::Array(headers));
    }
    Ok(Value::Object(out))
}

/// Adds (or replaces) the mirror rule of a managed route: the first splitting user rule's
/// backendRefs and filters, the step's matches, and a `RequestMirror` filter to the canary
/// with the step's percentage. No matches removes the rule.
///
/// # Errors
/// When the name or a match cannot be expressed, or no rule splits.
pub fn set_mirror_route(
    route: &Value,
    kind: RouteKind,
    svc: &Services,
    step: &SetMirrorRoute,
    managed: &[String],
) -> Result<Value, String> {
    valid_rule_name(&step.name)?;
    let mut out = without_rules_of(route, &step.name)?;
    if step.matches.is_empty() {
        return reorder(out, managed);
    }
    let matches = step
        .matches
        .iter()
        .map(|m| mirror_match(kind, m))
        .collect::<Result<Vec<_>, _>>()?;
    let primary = rules(&out)
        .iter()
        .find(|r| is_split_rule(r, svc) && !is_managed(r, managed))
        .cloned()
        .ok_or_else(|| {
            format!(
                "no rule in spec.rules has backendRefs to both {:?} and {:?}",
                svc.canary, svc.stable
            )
        })?;
    // The canary backendRef as the server stores it (with defaulted group and kind), so a
    // repeated call computes the same rule; a mirror backendRef has no weight.
    let mut mirror_ref = json!({"name": svc.canary});
    if let Some(Value::Object(canary)) = backends(&primary)
        .iter()
        .find(|b| is_service(b, &svc.canary))
    {
        for key in ["group", "kind", "name", "namespace", "port"] {
            if let Some(v) = canary.get(key) {
                mirror_ref[key] = v.clone();
            }
        }
    }
    let mut filters: Vec<Value> = primary
        .get("filters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    filters.push(json!({
        "type": "RequestMirror",
        "requestMirror": {"backendRef": mirror_ref, "percent": step.percentage.unwrap_or(100).clamp(0, 100)},
    }));
    let rule = json!({
        "name": step.name,
        "matches": matches,
        "filters": filters,
        "backendRefs": backends(&primary),
    });
    rules_mut(&mut out)?.insert(0, rule);
    reorder(out, managed)
}

/// Removes every rule that belongs to a managed route.
///
/// # Errors
/// When the route has no `spec.rules`.
pub fn remove_managed_routes(route: &Value, managed: &[String]) -> Result<Value, String> {
    let mut out = route.clone();
    rules_mut(&mut out)?.retain(|r| !is_managed(r, managed));
    Ok(out)
}

/// Whether every parent (Gateway or Service) accepted the route at its current generation.
pub fn accepted(route: &Value) -> bool {
    let generation = route
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let parents = route
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    !parents.is_empty()
        && parents.iter().all(|p| {
            p.get("conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.get("type").and_then(Value::as_str) == Some("Accepted")
                            && c.get("status").and_then(Value::as_str) == Some("True")
                            && c.get("observedGeneration")
                                .and_then(Value::as_i64)
                                .unwrap_or(-1)
                                >= generation
                    })
                })
        })
}

/// One route the router manages.
#[derive(Clone, Debug)]
struct Route {
    kind: RouteKind,
    target: Target,
    header_routes: bool,
}

/// The Gateway API router of one Rollout.
pub struct GatewayApiRouter {
    client: kube::Client,
    routes: Vec<Route>,
}

impl GatewayApiRouter {
    /// A router for the routes named in the configuration; they live in `namespace` unless
    /// the configuration names another.
    pub fn new(client: kube::Client, config: &GatewayApiTrafficRouting, namespace: &str) -> Self {
        let ns = config
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_owned());
        let mk = |kind: RouteKind, name: &str, header_routes: bool| Route {
            kind,
            header_routes,
            target: Target {
                provider: PROVIDER,
                kind: kind.kind(),
                resource: kind.resource(),
                namespace: ns.clone(),
                name: name.to_owned(),
            },
        };
        let mut routes = Vec::new();
        for (kind, one, many) in [
            (RouteKind::Http, &config.http_route, &config.http_routes),
            (RouteKind::Grpc, &config.grpc_route, &config.grpc_routes),
        ] {
            if let Some(name) = one {
                routes.push(mk(kind, name, true));
            }
            for r in many {
                routes.push(mk(kind, &r.name, r.use_header_routes.unwrap_or(true)));
            }
        }
        Self { client, routes }
    }

    async fn each(
        &self,
        header_only: bool,
        tolerate_missing: bool,
        f: impl Fn(&Route, &Value) -> Result<Value, String>,
    ) -> Result<(), TrafficError> {
        for route in self
            .routes
            .iter()
            .filter(|r| !header_only || r.header_routes)
        {
            let result = kube_io::update(&self.client, &route.target, false, |current| {
                let current = current.ok_or_else(|| route.target.not_found())?;
                f(route, current).map_err(|reason| route.target.unusable(reason))
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
impl TrafficRouter for GatewayApiRouter {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn set_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<(), TrafficError> {
        let svc = split::services(&ctx.rollout, PROVIDER)?;
        let split = Split::new(weights, split::max_weight(&ctx.rollout));
        self.each(false, false, |_, route| set_weights(route, &svc, &split))
            .await
    }

    async fn set_header_route(
        &self,
        ctx: &RouteContext,
        step: &SetHeaderRoute,
    ) -> Result<(), TrafficError> {
        let svc = split::services(&ctx.rollout, PROVIDER)?;
        let managed = split::check_managed(&ctx.rollout, PROVIDER, &step.name)?;
        self.each(true, false, |_, route| {
            set_header_route(route, &svc, step, &managed)
        })
        .await
    }

    async fn set_mirror_route(
        &self,
        ctx: &RouteContext,
        step: &SetMirrorRoute,
    ) -> Result<(), TrafficError> {
        let svc = split::services(&ctx.rollout, PROVIDER)?;
        let managed = split::check_managed(&ctx.rollout, PROVIDER, &step.name)?;
        self.each(true, false, |r, route| {
            set_mirror_route(route, r.kind, &svc, step, &managed)
        })
        .await
    }

    async fn verify_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError> {
        let svc = split::services(&ctx.rollout, PROVIDER)?;
        let split = Split::new(weights, split::max_weight(&ctx.rollout));
        for route in &self.routes {
            let current = kube_io::get(&self.client, &route.target)
                .await?
                .ok_or_else(|| route.target.not_found())?;
            let weights_in_place = set_weights(&current, &svc, &split).is_ok_and(|d| d == current);
            if !weights_in_place || !accepted(&current) {
                return Ok(Some(false));
            }
        }
        Ok(Some(true))
    }

    async fn remove_managed_routes(&self, ctx: &RouteContext) -> Result<(), TrafficError> {
        let managed = split::managed_routes(&ctx.rollout);
        if managed.is_empty() {
            return Ok(());
        }
        self.each(false, true, |_, route| {
            remove_managed_routes(route, &managed)
        })
        .await
    }
}
