//! Traefik router: the weights of `spec.weighted.services[]` in a TraefikService
//! (`traefik.io/v1alpha1`). The user creates the TraefikService with entries for the canary and
//! stable Services; additional destinations are appended on the stable entry's port.

use super::kube_io::{self, Target};
use super::split::{self, Services, Split};
use super::{RouteContext, TrafficError, TrafficRouter};
use crate::crd::{SetHeaderRoute, SetMirrorRoute, TraefikTrafficRouting, TrafficWeights};
use async_trait::async_trait;
use kube::api::ApiResource;
use serde_json::Value;

const PROVIDER: &str = "traefik";

fn is_service(entry: &Value, name: &str) -> bool {
    let kind = entry
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Service");
    kind == "Service" && split::name_of(entry) == Some(name)
}

/// Sets the weighted services' weights; entries that are neither canary, stable nor an
/// additional destination are removed, since they would take an unaccounted share.
///
/// # Errors
/// When `spec.weighted.services` lacks the canary or the stable entry.
pub fn set_weights(ts: &Value, svc: &Services, split: &Split) -> Result<Value, String> {
    let mut out = ts.clone();
    let services = out
        .pointer_mut("/spec/weighted/services")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| "spec.weighted.services is missing".to_owned())?;
    for name in [&svc.canary, &svc.stable] {
        if !services.iter().any(|e| is_service(e, name)) {
            return Err(format!(
                "spec.weighted.services has no entry for Service {name:?}"
            ));
        }
    }
    *services = split::reweight(std::mem::take(services), svc, split, is_service);
    Ok(out)
}

/// The Traefik router of one Rollout.
pub struct TraefikRouter {
    client: kube::Client,
    target: Target,
}

impl TraefikRouter {
    /// A router for the configured TraefikService in `namespace`.
    pub fn new(client: kube::Client, config: &TraefikTrafficRouting, namespace: &str) -> Self {
        let target = Target {
            provider: PROVIDER,
            kind: "TraefikService",
            resource: ApiResource {
                group: "traefik.io".into(),
                version: "v1alpha1".into(),
                api_version: "traefik.io/v1alpha1".into(),
                kind: "TraefikService".into(),
                plural: "traefikservices".into(),
            },
            namespace: namespace.to_owned(),
            name: config.weighted_traefik_service_name.clone(),
        };
        Self { client, target }
    }

    fn no_routes(&self, what: &str) -> TrafficError {
        self.target.unusable(format!(
            "a weighted TraefikService cannot express {what} routes; use gatewayAPI"
        ))
    }
}

#[async_trait]
impl TrafficRouter for TraefikRouter {
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
        kube_io::update(&self.client, &self.target, false, |current| {
            let current = current.ok_or_else(|| self.target.not_found())?;
            set_weights(current, &svc, &split).map_err(|r| self.target.unusable(r))
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
