//! Traffic routers (`TrafficRouter`), one file per provider, plus a fake for tests. The
//! controller's act step calls every router configured on a Rollout in turn; a router writes
//! only the fields Sluice owns (weights, managed routes), with field manager
//! `sluice-controller`.

use crate::crd::{Rollout, SetHeaderRoute, SetMirrorRoute, TrafficWeights};
use async_trait::async_trait;
use std::sync::Arc;

/// What every router call knows about the Rollout it acts for.
#[derive(Clone, Debug)]
pub struct RouteContext {
    /// The Rollout, as last observed (namespace, name and uid for owner references, the
    /// trafficRouting block, the canary and stable Service names).
    pub rollout: Arc<Rollout>,
    /// The pod-template hash of the canary ReplicaSet.
    pub canary_hash: Option<String>,
    /// The pod-template hash of the stable ReplicaSet.
    pub stable_hash: Option<String>,
}

/// Errors of a traffic router call.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The routing object the spec names does not exist.
    #[error("{provider}: {kind} {namespace}/{name} not found")]
    NotFound {
        /// The router.
        provider: &'static str,
        /// The routing object's kind.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The routing object exists but cannot carry the split as configured.
    #[error("{provider}: {kind} {name}: {reason}")]
    Unusable {
        /// The router.
        provider: &'static str,
        /// The routing object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// The API server refused or failed a call.
    #[error("{provider}: {verb} {kind} {name}")]
    Api {
        /// The router.
        provider: &'static str,
        /// The call.
        verb: &'static str,
        /// The routing object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// An out-of-process router failed or timed out.
    #[error("plugin {plugin}: {message}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
}

impl TrafficError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "RoutingObjectNotFound",
            Self::Unusable { .. } => "RoutingObjectInvalid",
            Self::Api { .. } => "TrafficRoutingError",
            Self::Plugin { .. } => "TrafficPluginError",
        }
    }
}

/// A mesh or ingress that carries the canary's share of traffic.
#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// The provider's name (`gatewayAPI`, `istio`, `smi`, `nginx`, `traefik`, or the plugin's).
    fn name(&self) -> &str;

    /// Sets the canary, stable and additional (such as baseline) weights.
    ///
    /// # Errors
    /// When the routing object is missing, unusable, or the API call fails.
    async fn set_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<(), TrafficError>;

    /// Adds, replaces or (with no matches) removes a header route to the canary.
    ///
    /// # Errors
    /// As `set_weight`, and when the provider has no header routes.
    async fn set_header_route(
        &self,
        ctx: &RouteContext,
        route: &SetHeaderRoute,
    ) -> Result<(), TrafficError>;

    /// Adds, replaces or (with no matches) removes a mirror route to the canary.
    ///
    /// # Errors
    /// As `set_weight`, and when the provider cannot mirror.
    async fn set_mirror_route(
        &self,
        ctx: &RouteContext,
        route: &SetMirrorRoute,
    ) -> Result<(), TrafficError>;

    /// Whether the data plane has taken up the weights; `None` when the provider cannot tell.
    ///
    /// # Errors
    /// When the routing object cannot be read.
    async fn verify_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError>;

    /// Removes every managed route; idempotent, and a no-op for a never-applied Rollout.
    ///
    /// # Errors
    /// When the API call fails.
    async fn remove_managed_routes(&self, ctx: &RouteContext) -> Result<(), TrafficError>;
}
