//! The finalizer's clean-up when a Rollout is deleted: all traffic back to stable through every
//! router, managed routes removed, and the Services the Rollout managed handed back (the
//! managed-by annotation and the hash selector removed). Idempotent, and a no-op for parts that
//! were never applied or are already gone. Touches routing objects and the named Services.

use super::context::Context;
use super::leader::NotLeader;
use super::observe::service_names;
use crate::crd::{
    FIELD_MANAGER, POD_TEMPLATE_HASH_LABEL, Rollout, TrafficWeights, WeightDestination,
};
use crate::engine::MANAGED_BY_ANNOTATION;
use crate::traffic::{RouteContext, TrafficError, TrafficRouter};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The finalizer Sluice puts on every Rollout it manages.
pub const FINALIZER: &str = "sluice.dev/cleanup";

/// Errors of the clean-up.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// This replica lost the leader Lease.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// A router failed for another reason than a missing routing object.
    #[error("restoring traffic to stable")]
    Traffic(#[source] Box<TrafficError>),
    /// A Service could not be handed back.
    #[error("releasing service {name}")]
    Api {
        /// The Service.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl CleanupError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotLeader(_) => "NotLeader",
            Self::Traffic(error) => error.category(),
            Self::Api { .. } => "ApiError",
        }
    }
}

fn tolerate_missing(result: Result<(), TrafficError>) -> Result<(), CleanupError> {
    match result {
        Ok(()) | Err(TrafficError::NotFound { .. }) => Ok(()),
        Err(error) => Err(CleanupError::Traffic(Box::new(error))),
    }
}

/// Send every request to stable, remove managed routes, release the Services.
///
/// # Errors
/// When this replica is not the leader, or a router or Service write fails.
pub async fn cleanup(
    ctx: &Context,
    rollout: &Rollout,
    routers: &[Box<dyn TrafficRouter>],
    route_ctx: &RouteContext,
) -> Result<(), CleanupError> {
    ctx.leadership.ensure()?;
    let canary = rollout.spec.strategy.canary.as_ref();
    let stable_hash = rollout.status.as_ref().and_then(|s| s.stable_rs.clone());
    let weights = TrafficWeights {
        canary: WeightDestination {
            weight: 0,
            service_name: canary.and_then(|c| c.canary_service.clone()),
            pod_template_hash: route_ctx.canary_hash.clone(),
        },
        stable: WeightDestination {
            weight: 100,
            service_name: canary.and_then(|c| c.stable_service.clone()),
            pod_template_hash: stable_hash,
        },
        additional: Vec::new(),
        verified: None,
    };
    for router in routers {
        tolerate_missing(router.set_weight(route_ctx, &weights).await)?;
        tolerate_missing(router.remove_managed_routes(route_ctx).await)?;
    }

    let Some(namespace) = rollout.namespace() else {
        return Ok(());
    };
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    for name in service_names(rollout) {
        ctx.leadership.ensure()?;
        let result = services.get_opt(&name).await;
        ctx.metrics.api_request("get", &result);
        let service = match result {
            Ok(Some(service)) => service,
            Ok(None) => continue,
            Err(source) => return Err(CleanupError::Api { name, source }),
        };
        if service.annotations().get(MANAGED_BY_ANNOTATION) != Some(&rollout.name_any()) {
            continue;
        }
        let patch = json!({
            "metadata": {"annotations": {MANAGED_BY_ANNOTATION: null}},
            "spec": {"selector": {POD_TEMPLATE_HASH_LABEL: null}},
        });
        let result = services.patch(&name, &params, &Patch::Merge(patch)).await;
        ctx.metrics.api_request("patch", &result);
        match result {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => return Err(CleanupError::Api { name, source }),
        }
    }
    Ok(())
}
