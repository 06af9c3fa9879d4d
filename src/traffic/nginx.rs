//! NGINX Ingress router: a canary Ingress `<rollout>-<stableIngress>-canary` generated from
//! each stable Ingress (owned by the Rollout, rules rewritten from the stable to the canary
//! Service) carrying `<prefix>/canary`, `canary-weight`, `canary-weight-total` and, for a
//! header route, `canary-by-header*` annotations. The user's Ingress is never written.

use super::kube_io::{self, Target};
use super::split::{self, Services, Split};
use super::{RouteContext, TrafficError, TrafficRouter};
use crate::crd::{NginxTrafficRouting, Rollout, SetHeaderRoute, SetMirrorRoute, TrafficWeights};
use async_trait::async_trait;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ApiResource;
use serde_json::{Map, Value, json};

const PROVIDER: &str = "nginx";
/// The default annotation prefix of ingress-nginx.
pub const DEFAULT_PREFIX: &str = "nginx.ingress.kubernetes.io";
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const HEADER_KEYS: [&str; 3] = [
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
];

/// The canary Ingress's name, cut to the 253 characters a name may have.
pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
    let mut name = format!("{rollout}-{stable_ingress}-canary");
    name.truncate(253);
    name
}

/// What a call changes on the canary Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The canary weight; `None` keeps the current one (0 for a new Ingress).
    pub weight: Option<i32>,
    /// The header annotations (without prefix); `None` keeps the current ones.
    pub header: Option<Vec<(&'static str, String)>>,
}

/// The header annotations of a header route, without prefix. Empty removes the route.
///
/// # Errors
/// NGINX matches one header; more is an error, as is a malformed match.
pub fn header_annotations(step: &SetHeaderRoute) -> Result<Vec<(&'static str, String)>, String> {
    match step.matches.as_slice() {
        [] => Ok(Vec::new()),
        [m] => {
            let v = &m.header_value;
            let value = match (&v.exact, &v.prefix, &v.regex) {
                (Some(x), None, None) => ("canary-by-header-value", x.clone()),
                (None, Some(p), None) => ("canary-by-header-pattern", split::prefix_regex(p)),
                (None, None, Some(r)) => ("canary-by-header-pattern", r.clone()),
                _ => {
                    return Err(format!(
                        "{}: set exactly one of exact, prefix and regex",
                        m.header_name
                    ));
                }
            };
            Ok(vec![("canary-by-header", m.header_name.clone()), value])
        }
        _ => Err("NGINX Ingress matches a single header per canary Ingress".to_owned()),
    }
}

/// The canary Ingress for `stable`, from the current canary Ingress if any.
///
/// # Errors
/// When the canary Ingress belongs to someone else or no stable rule uses the stable Service.
pub fn desired_canary(
    stable: &Value,
    current: Option<&Value>,
    rollout: &Rollout,
    config: &NginxTrafficRouting,
    svc: &Services,
    max: i32,
    want: &Desired,
) -> Result<Value, String> {
    if let Some(c) = current
        && !split::owned_by(c, rollout)
    {
        return Err("the canary Ingress exists but is not owned by this Rollout".to_owned());
    }
    let prefix = config
        .annotation_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    let key = |k: &str| format!("{prefix}/{k}");
    let current_ann = current
        .and_then(|c| c.pointer("/metadata/annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let current_weight = current_ann
        .get(&key("canary-weight"))
        .and_then(Value::as_str)
        .and_then(|w| w.parse::<i32>().ok())
        .unwrap_or(0);
    // Foreign annotations stay; ours are rebuilt.
    let mut ann: Map<String, Value> = current_ann
        .iter()
        .filter(|(k, _)| !k.starts_with(&key("canary")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(class) = stable.pointer(&format!(
        "/metadata/annotations/{}",
        INGRESS_CLASS_ANNOTATION.replace('/', "~1")
    )) {
        ann.insert(INGRESS_CLASS_ANNOTATION.into(), class.clone());
    }
    for (k, v) in &config.additional_ingress_annotations {
        let k = if k.starts_with(&format!("{prefix}/")) {
            k.clone()
        } else {
            key(k)
        };
        ann.insert(k, json!(v));
    }
    for (k, v) in &config.canary_ingress_annotations {
        ann.insert(k.clone(), json!(v));
    }
    ann.insert(key("canary"), json!("true"));
    ann.insert(
        key("canary-weight"),
        json!(
            want.weight
                .unwrap_or(current_weight)
                .clamp(0, max)
                .to_string()
        ),
    );
    if max != 100 {
        ann.insert(key("canary-weight-total"), json!(max.to_string()));
    }
    let header: Vec<(String, Value)> = match &want.header {
        Some(h) => h.iter().map(|(k, v)| (key(k), json!(v))).collect(),
        None => HEADER_KEYS
            .iter()
            .filter_map(|k| current_ann.get(&key(k)).map(|v| (key(k), v.clone())))
            .collect(),
    };
    ann.extend(header);

    let mut spec = Map::new();
    if let Some(class) = stable.pointer("/spec/ingressClassName") {
        spec.insert("ingressClassName".into(), class.clone());
    }
    if let Some(tls) = stable.pointer("/spec/tls") {
        spec.insert("tls".into(), tls.clone());
    }
    let mut rules = Vec::new();
    for rule in stable
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let paths: Vec<Value> = rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| {
                p.pointer("/backend/service/name").and_then(Value::as_str)
                    == Some(svc.stable.as_str())
            })
            .map(|p| {
                let mut p = p.clone();
                p["backend"]["service"]["name"] = json!(svc.canary);
                p
            })
            .collect();
        if !paths.is_empty() {
            let mut r = rule.clone();
            r["http"]["paths"] = Value::Array(paths);
            rules.push(r);
        }
    }
    if rules.is_empty() {
        return Err(format!(
            "no rule of the stable Ingress routes to the stable Service {:?}",
            svc.stable
        ));
    }
    spec.insert("rules".into(), Value::Array(rules));

    let stable_name =
        split::name_of(stable.get("metadata").unwrap_or(&Value::Null)).unwrap_or_default();
    let mut out = current.cloned().unwrap_or_else(|| {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": canary_ingress_name(rollout.metadata.name.as_deref().unwrap_or_default(), stable_name),
                "namespace": split::namespace_of(rollout),
                "ownerReferences": [split::owner_reference(rollout)],
            },
        })
    });
    out["metadata"]["annotations"] = Value::Object(ann);
    out["spec"] = Value::Object(spec);
    Ok(out)
}

fn ingress_resource() -> ApiResource {
    ApiResource::erase::<Ingress>(&())
}

/// The NGINX router of one Rollout.
pub struct NginxRouter {
    client: kube::Client,
    config: NginxTrafficRouting,
    /// `(stable Ingress, canary Ingress)` pairs.
    pairs: Vec<(Target, Target)>,
}

impl NginxRouter {
    /// A router for every configured stable Ingress.
    pub fn new(client: kube::Client, config: &NginxTrafficRouting, rollout: &Rollout) -> Self {
        let namespace = split::namespace_of(rollout);
        let rollout_name = rollout.metadata.name.clone().unwrap_or_default();
        let mk = |name: String| Target {
            provider: PROVIDER,
            kind: "Ingress",
            resource: ingress_resource(),
            namespace: namespace.clone(),
            name,
        };
        let pairs = config
            .stable_ingress
            .iter()
            .chain(&config.stable_ingresses)
            .map(|s| (mk(s.clone()), mk(canary_ingress_name(&rollout_name, s))))
            .collect();
        Self {
            client,
            config: config.clone(),
            pairs,
        }
    }

    async fn apply(
        &self,
        ctx: &RouteContext,
        want: &Desired,
        create: bool,
    ) -> Result<(), TrafficError> {
        let svc = split::services(&ctx.rollout, PROVIDER)?;
        let max = split::max_weight(&ctx.rollout);
        for (stable_t, canary_t) in &self.pairs {
            // Without `create` (removing routes) a missing canary or stable Ingress means there
            // is nothing to remove.
            if !create && kube_io::get(&self.client, canary_t).await?.is_none() {
                continue;
            }
            let stable = match kube_io::get(&self.client, stable_t).await? {
                Some(stable) => stable,
                None if create => return Err(stable_t.not_found()),
                None => continue,
            };
            kube_io::update(&self.client, canary_t, create, |current| {
                desired_canary(
                    &stable,
                    current,
                    &ctx.rollout,
                    &self.config,
                    &svc,
                    max,
                    want,
                )
                .map_err(|r| canary_t.unusable(r))
            })
            .await?;
        }
        Ok(())
    }

    fn first_target(&self) -> String {
        self.pairs
            .first()
            .map(|(s, _)| s.name.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl TrafficRouter for NginxRouter {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn set_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<(), TrafficError> {
        if !weights.additional.is_empty() {
            return Err(TrafficError::Unusable {
                provider: PROVIDER,
                kind: "Ingress",
                name: self.first_target(),
                reason: "NGINX Ingress cannot split to a third destination (baseline); use gatewayAPI, istio, smi or traefik".to_owned(),
            });
        }
        let split = Split::new(weights, split::max_weight(&ctx.rollout));
        self.apply(
            ctx,
            &Desired {
                weight: Some(split.canary),
                header: None,
            },
            true,
        )
        .await
    }

    async fn set_header_route(
        &self,
        ctx: &RouteContext,
        step: &SetHeaderRoute,
    ) -> Result<(), TrafficError> {
        split::check_managed(&ctx.rollout, PROVIDER, &step.name)?;
        let header = header_annotations(step).map_err(|reason| TrafficError::Unusable {
            provider: PROVIDER,
            kind: "Ingress",
            name: self.first_target(),
            reason,
        })?;
        self.apply(
            ctx,
            &Desired {
                weight: None,
                header: Some(header),
            },
            true,
        )
        .await
    }

    async fn set_mirror_route(
        &self,
        _ctx: &RouteContext,
        _step: &SetMirrorRoute,
    ) -> Result<(), TrafficError> {
        Err(TrafficError::Unusable {
            provider: PROVIDER,
            kind: "Ingress",
            name: self.first_target(),
            reason: "NGINX Ingress cannot mirror traffic; use gatewayAPI or istio".to_owned(),
        })
    }

    async fn verify_weight(
        &self,
        _ctx: &RouteContext,
        _weights: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError> {
        Ok(None)
    }

    async fn remove_managed_routes(&self, ctx: &RouteContext) -> Result<(), TrafficError> {
        self.apply(
            ctx,
            &Desired {
                weight: None,
                header: Some(Vec::new()),
            },
            false,
        )
        .await
    }
}
