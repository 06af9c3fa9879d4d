//! The finalizer's clean-up when a Rollout is deleted: all traffic back to stable through every
//! router, managed routes removed, and the Services the Rollout managed handed back (the
//! managed-by annotation and the hash selector removed). Idempotent, and a no-op for parts that
//! were never applied or are already gone. Every part is tried even when another fails; what
//! failed is retried with back-off while the finalizer stays. Touches routing objects and the
//! named Services.

use super::context::Context;
use super::leader::NotLeader;
use super::observe::service_names;
use super::routing_condition::error_chain;
use crate::crd::{FIELD_MANAGER, POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::MANAGED_BY_ANNOTATION;
use crate::traffic::{RouteContext, TrafficError, TrafficRouter, restore_stable_each};
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
    /// Some parts could not be undone; every other part was. The finalizer stays and the
    /// clean-up is retried with back-off.
    #[error("clean-up incomplete, retrying: {failures}")]
    Incomplete {
        /// The first failure's category.
        category: &'static str,
        /// Every failure, `; `-separated.
        failures: String,
    },
}

impl CleanupError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotLeader(_) => "NotLeader",
            Self::Incomplete { category, .. } => category,
        }
    }
}

/// What could not be undone.
#[derive(Default)]
struct Failures {
    category: Option<&'static str>,
    messages: Vec<String>,
}

impl Failures {
    fn add(&mut self, category: &'static str, message: String) {
        tracing::warn!(error = %message, category, "clean-up step failed");
        self.category.get_or_insert(category);
        self.messages.push(message);
    }

    fn into_result(self) -> Result<(), CleanupError> {
        match self.category {
            None => Ok(()),
            Some(category) => Err(CleanupError::Incomplete {
                category,
                failures: self.messages.join("; "),
            }),
        }
    }
}

/// Send every request to stable and remove managed routes on every router, release the
/// Services: every part is tried whatever the others do. A routing object or Service that no
/// longer exists needs nothing undone.
///
/// # Errors
/// When this replica is not the leader; `Incomplete` when a router or Service write failed
/// (everything else was done).
pub async fn cleanup(
    ctx: &Context,
    rollout: &Rollout,
    routers: &[Box<dyn TrafficRouter>],
    route_ctx: &RouteContext,
) -> Result<(), CleanupError> {
    ctx.leadership.ensure()?;
    let mut failures = Failures::default();
    restore_routers(routers, route_ctx, &mut failures).await;
    release_services(ctx, rollout, &mut failures).await?;
    failures.into_result()
}

async fn restore_routers(
    routers: &[Box<dyn TrafficRouter>],
    route_ctx: &RouteContext,
    failures: &mut Failures,
) {
    for (router, error) in restore_stable_each(routers, route_ctx).await {
        if !matches!(error, TrafficError::NotFound { .. }) {
            failures.add(
                error.category(),
                format!("traffic router {router}: {}", error_chain(&error)),
            );
        }
    }
}

async fn release_services(
    ctx: &Context,
    rollout: &Rollout,
    failures: &mut Failures,
) -> Result<(), CleanupError> {
    let Some(namespace) = rollout.namespace() else {
        return Ok(());
    };
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    for name in service_names(rollout) {
        ctx.leadership.ensure()?;
        if let Err(source) = release(rollout, &services, &name).await {
            failures.add(
                "ApiError",
                format!("releasing service {name}: {}", error_chain(&source)),
            );
        }
    }
    Ok(())
}

/// Remove our annotation and hash selector from a Service we manage; nothing for a Service
/// that is gone or not ours.
async fn release(
    rollout: &Rollout,
    services: &Api<Service>,
    name: &str,
) -> Result<(), kube::Error> {
    let Some(service) = services.get_opt(name).await? else {
        return Ok(());
    };
    if service.annotations().get(MANAGED_BY_ANNOTATION) != Some(&rollout.name_any()) {
        return Ok(());
    }
    let patch = json!({
        "metadata": {"annotations": {MANAGED_BY_ANNOTATION: null}},
        "spec": {"selector": {POD_TEMPLATE_HASH_LABEL: null}},
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match services.patch(name, &params, &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}
