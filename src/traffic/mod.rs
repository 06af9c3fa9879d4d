//! Traffic routers (`TrafficRouter`), one file per provider, plus a fake for tests. The
//! controller's act step calls every router configured on a Rollout in turn; a router writes
//! only the fields Sluice owns (weights, managed routes), with field manager
//! `sluice-controller`.
//!
//! Each provider is a pure transformation of the routing object's JSON (table-tested against
//! the upstream schemas) plus thin I/O in `kube_io`: get, transform, JSON patch of the changed
//! fields guarded by `resourceVersion`, retried on conflict; nothing is written when nothing
//! changes. RBAC the routers need: `get` and `patch` on `gateway.networking.k8s.io`
//! `httproutes` and `grpcroutes`, `networking.istio.io` `virtualservices` and
//! `destinationrules`, `traefik.io` `traefikservices`; `get`, `create` and `patch` on
//! `split.smi-spec.io` `trafficsplits` and `networking.k8s.io` `ingresses`.

pub mod fake;
pub mod gateway_api;
pub mod istio;
pub mod kube_io;
pub mod nginx;
pub mod plugin;
pub mod registry;
pub mod smi;
pub mod split;
pub mod traefik;

use crate::crd::{Rollout, SetHeaderRoute, SetMirrorRoute, TrafficWeights, WeightDestination};
use async_trait::async_trait;
pub use registry::{PluginEntry, PluginLimits, PluginRegistry, RegistryError};
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
        /// The client's error (boxed: it is large, and errors travel by value).
        #[source]
        source: Box<kube::Error>,
    },
    /// The Rollout names a plugin this controller has not registered: a spec error, and no
    /// request is made.
    #[error(
        "plugin {plugin} is not registered with this controller (registered: {registered}); \
         register it with --traffic-plugin {plugin}=URL or fix the name in trafficRouting.plugins"
    )]
    UnregisteredPlugin {
        /// The name the Rollout uses.
        plugin: String,
        /// The registered names, comma-separated, or `none`.
        registered: String,
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
            Self::UnregisteredPlugin { .. } => "InvalidSpec",
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

/// Every router the Rollout's `spec.strategy.canary.trafficRouting` configures, in a fixed
/// order (Gateway API, Istio, SMI, NGINX, Traefik, then plugins by name). Empty when the
/// Rollout has no traffic routing (a basic canary). Plugins are looked up by name in
/// `plugins`, the controller's registry; a Rollout being deleted skips unregistered plugins (no
/// request can have reached them) so its finalizer can still restore the other routers.
///
/// # Errors
/// `UnregisteredPlugin` when the Rollout names a plugin the registry lacks; `Plugin` when a
/// plugin's configuration is malformed.
pub fn routers_for(
    rollout: &Rollout,
    client: kube::Client,
    http: reqwest::Client,
    plugins: &PluginRegistry,
) -> Result<Vec<Box<dyn TrafficRouter>>, TrafficError> {
    let Some(routing) = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref())
    else {
        return Ok(Vec::new());
    };
    let namespace = split::namespace_of(rollout);
    let mut routers: Vec<Box<dyn TrafficRouter>> = Vec::new();
    if let Some(config) = &routing.gateway_api {
        routers.push(Box::new(gateway_api::GatewayApiRouter::new(
            client.clone(),
            config,
            &namespace,
        )));
    }
    if let Some(config) = &routing.istio {
        routers.push(Box::new(istio::IstioRouter::new(
            client.clone(),
            config,
            &namespace,
        )));
    }
    if let Some(config) = &routing.smi {
        routers.push(Box::new(smi::SmiRouter::new(
            client.clone(),
            config,
            rollout,
        )));
    }
    if let Some(config) = &routing.nginx {
        routers.push(Box::new(nginx::NginxRouter::new(
            client.clone(),
            config,
            rollout,
        )));
    }
    if let Some(config) = &routing.traefik {
        routers.push(Box::new(traefik::TraefikRouter::new(
            client.clone(),
            config,
            &namespace,
        )));
    }
    let deleting = rollout.metadata.deletion_timestamp.is_some();
    for (name, config) in routing.plugins.iter().flatten() {
        let Some(address) = plugins.address(name) else {
            if deleting {
                tracing::warn!(plugin = %name, "skipping an unregistered traffic plugin in clean-up");
                continue;
            }
            return Err(TrafficError::UnregisteredPlugin {
                plugin: name.clone(),
                registered: plugins.to_string(),
            });
        };
        routers.push(Box::new(plugin::PluginRouter::new(
            name,
            address,
            config,
            http.clone(),
            plugins.limits(),
        )?));
    }
    Ok(routers)
}

/// The weights that put all traffic on stable: 0 to the canary, the maximum weight to stable,
/// no additional destinations.
fn stable_weights(ctx: &RouteContext) -> TrafficWeights {
    let canary = ctx.rollout.spec.strategy.canary.as_ref();
    TrafficWeights {
        canary: WeightDestination {
            weight: 0,
            service_name: canary.and_then(|c| c.canary_service.clone()),
            pod_template_hash: ctx.canary_hash.clone(),
        },
        stable: WeightDestination {
            weight: split::max_weight(&ctx.rollout),
            service_name: canary.and_then(|c| c.stable_service.clone()),
            pod_template_hash: ctx.stable_hash.clone(),
        },
        additional: Vec::new(),
        verified: None,
    }
}

/// Puts all traffic back on stable through every router (the stable weights, and every managed
/// route removed) and returns each failure with the router's name. Every router is tried even
/// when one fails; idempotent. What the finalizer calls.
pub async fn restore_stable_each(
    routers: &[Box<dyn TrafficRouter>],
    ctx: &RouteContext,
) -> Vec<(String, TrafficError)> {
    let weights = stable_weights(ctx);
    let mut failures = Vec::new();
    for router in routers {
        let results = [
            router.set_weight(ctx, &weights).await,
            router.remove_managed_routes(ctx).await,
        ];
        for result in results {
            if let Err(error) = result {
                tracing::warn!(%error, provider = router.name(), "restoring stable traffic failed");
                failures.push((router.name().to_owned(), error));
            }
        }
    }
    failures
}

/// [`restore_stable_each`], as one result: the first router error.
///
/// # Errors
/// The first router error.
pub async fn restore_stable(
    routers: &[Box<dyn TrafficRouter>],
    ctx: &RouteContext,
) -> Result<(), TrafficError> {
    match restore_stable_each(routers, ctx).await.into_iter().next() {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{Call, FakeRouter};
    use super::*;
    use crate::crd::RolloutSpec;

    fn ctx() -> RouteContext {
        RouteContext {
            rollout: Arc::new(Rollout::new("shop", RolloutSpec::default())),
            canary_hash: Some("c".into()),
            stable_hash: Some("s".into()),
        }
    }

    #[tokio::test]
    async fn restore_stable_zeroes_every_router_even_when_one_fails() {
        let ok = FakeRouter::new("ok");
        let broken = FakeRouter::new("broken");
        broken.state().fail = Some("unreachable".into());
        let route = SetHeaderRoute {
            name: "hdr".into(),
            matches: vec![crate::crd::HeaderRoutingMatch {
                header_name: "x".into(),
                header_value: crate::crd::StringMatch {
                    exact: Some("1".into()),
                    ..Default::default()
                },
            }],
        };
        ok.set_header_route(&ctx(), &route).await.unwrap();
        assert!(!ok.all_on_stable());
        let routers: Vec<Box<dyn TrafficRouter>> =
            vec![Box::new(broken.clone()), Box::new(ok.clone())];
        let err = restore_stable(&routers, &ctx()).await.unwrap_err();
        assert_eq!(err.category(), "TrafficPluginError");
        assert!(ok.all_on_stable(), "{:?}", ok.state());
        let calls = ok.state().calls.clone();
        let Call::SetWeight(w) = &calls[1] else {
            panic!("{calls:?}")
        };
        assert_eq!((w.canary.weight, w.stable.weight), (0, 100));
        assert!(w.additional.is_empty());
        assert_eq!(calls[2], Call::RemoveManagedRoutes);
        assert_eq!(
            broken.state().calls.len(),
            2,
            "both calls tried on the failing router"
        );
    }

    #[test]
    fn routers_for_a_basic_canary_is_empty() {
        // No trafficRouting: no routers, and no client is ever used.
        let rollout = Rollout::new("shop", RolloutSpec::default());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _guard = rt.enter();
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        assert!(
            routers_for(
                &rollout,
                client,
                reqwest::Client::new(),
                &PluginRegistry::default()
            )
            .unwrap()
            .is_empty()
        );
    }
}
