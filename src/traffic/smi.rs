//! SMI router: a TrafficSplit (`split.smi-spec.io`) owned by the Rollout, whose backends are
//! the canary, any additional destinations and the stable Service. Linkerd's linkerd-smi CRD
//! serves v1alpha1 (stored; weights are int-or-string quantities) and v1alpha2 (numbers); the
//! smi-sdk-go CRD that OSM-era meshes install serves only v1alpha4 (numbers). Weights are
//! written as integers, valid for every version.

use super::kube_io::{self, Target};
use super::split::{self, Services, Split};
use super::{RouteContext, TrafficError, TrafficRouter};
use crate::crd::{
    Rollout, SetHeaderRoute, SetMirrorRoute, SmiApiVersion, SmiTrafficRouting, TrafficWeights,
};
use async_trait::async_trait;
use kube::api::ApiResource;
use serde_json::{Value, json};

const PROVIDER: &str = "smi";

/// The API version string of a configured SMI version.
pub fn api_version(v: SmiApiVersion) -> &'static str {
    match v {
        SmiApiVersion::V1alpha1 => "v1alpha1",
        SmiApiVersion::V1alpha2 => "v1alpha2",
        SmiApiVersion::V1alpha4 => "v1alpha4",
    }
}

/// The TrafficSplit the Rollout should own, from the current one if any.
///
/// # Errors
/// When the existing TrafficSplit is not owned by this Rollout.
pub fn desired_split(
    current: Option<&Value>,
    rollout: &Rollout,
    config: &SmiTrafficRouting,
    svc: &Services,
    split: &Split,
) -> Result<Value, String> {
    let version = api_version(config.api_version.unwrap_or_default());
    let mut out = match current {
        Some(c) if !split::owned_by(c, rollout) => {
            return Err("the TrafficSplit exists but is not owned by this Rollout".to_owned());
        }
        Some(c) => c.clone(),
        None => json!({
            "apiVersion": format!("split.smi-spec.io/{version}"),
            "kind": "TrafficSplit",
            "metadata": {
                "name": split_name(rollout, config),
                "namespace": split::namespace_of(rollout),
                "ownerReferences": [split::owner_reference(rollout)],
            },
        }),
    };
    let mut backends = vec![json!({"service": svc.canary, "weight": split.canary})];
    backends.extend(
        split
            .additional
            .iter()
            .map(|e| json!({"service": e.name, "weight": e.weight})),
    );
    backends.push(json!({"service": svc.stable, "weight": split.stable}));
    let root = config
        .root_service
        .clone()
        .unwrap_or_else(|| svc.stable.clone());
    out["spec"] = json!({"service": root, "backends": backends});
    Ok(out)
}

fn split_name(rollout: &Rollout, config: &SmiTrafficRouting) -> String {
    config
        .traffic_split_name
        .clone()
        .unwrap_or_else(|| rollout.metadata.name.clone().unwrap_or_default())
}

/// The SMI router of one Rollout.
pub struct SmiRouter {
    client: kube::Client,
    config: SmiTrafficRouting,
    target: Target,
}

impl SmiRouter {
    /// A router for the Rollout's TrafficSplit.
    pub fn new(client: kube::Client, config: &SmiTrafficRouting, rollout: &Rollout) -> Self {
        let version = api_version(config.api_version.unwrap_or_default());
        let target = Target {
            provider: PROVIDER,
            kind: "TrafficSplit",
            resource: ApiResource {
                group: "split.smi-spec.io".into(),
                version: version.into(),
                api_version: format!("split.smi-spec.io/{version}"),
                kind: "TrafficSplit".into(),
                plural: "trafficsplits".into(),
            },
            namespace: split::namespace_of(rollout),
            name: split_name(rollout, config),
        };
        Self {
            client,
            config: config.clone(),
            target,
        }
    }

    fn no_routes(&self, what: &str) -> TrafficError {
        self.target.unusable(format!(
            "SMI TrafficSplit cannot express {what} routes; use gatewayAPI or istio"
        ))
    }
}

#[async_trait]
impl TrafficRouter for SmiRouter {
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
        kube_io::update(&self.client, &self.target, true, |current| {
            desired_split(current, &ctx.rollout, &self.config, &svc, &split)
                .map_err(|r| self.target.unusable(r))
        })
        .await
    }

    async fn set_header_route(
        &self,
        _ctx: &RouteContext,
        _step: &SetHeaderRoute,
    ) -> Result<(), TrafficError> {
        Err(self.no_routes("header"))
    }

    async fn set_mirror_route(
        &self,
        _ctx: &RouteContext,
        _step: &SetMirrorRoute,
    ) -> Result<(), TrafficError> {
        Err(self.no_routes("mirror"))
    }

    async fn verify_weight(
        &self,
        _ctx: &RouteContext,
        _weights: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError> {
        Ok(None)
    }

    async fn remove_managed_routes(&self, _ctx: &RouteContext) -> Result<(), TrafficError> {
        Ok(())
    }
}
