//! The `canary.trafficRouting` block: which routers carry the canary's traffic weight. One
//! field per provider; several may be set at once and each is updated in turn.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Routers that carry the canary's traffic weight.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.gatewayAPI) || has(self.istio) || has(self.smi) || has(self.nginx) || has(self.traefik) || has(self.plugins)").message("trafficRouting needs at least one of gatewayAPI, istio, smi, nginx, traefik, plugins"))]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    /// Routes the controller owns (header and mirror routes), highest precedence first. They
    /// are placed before the user's routes and removed at the end of an update or on abort.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<ManagedRoute>,
    /// The total weight that stands for all traffic. Defaults to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_traffic_weight: Option<i32>,
    /// Gateway API HTTPRoutes and GRPCRoutes.
    #[serde(
        default,
        rename = "gatewayAPI",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_api: Option<GatewayApiTrafficRouting>,
    /// Istio VirtualServices, with an optional DestinationRule for subset-level split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTrafficRouting>,
    /// An SMI TrafficSplit (Linkerd, OSM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smi: Option<SmiTrafficRouting>,
    /// NGINX Ingress canary annotations on a generated canary Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxTrafficRouting>,
    /// A Traefik weighted TraefikService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikTrafficRouting>,
    /// Out-of-process routers, by the name the controller registers each under
    /// (`--traffic-plugin NAME=URL`; an unregistered name is a spec error). Each value may set
    /// `timeoutSeconds`, `retries` and the plugin's own `config`; never an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_form_object")]
    pub plugins: Option<BTreeMap<String, serde_json::Value>>,
}

/// A route owned by the controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRoute {
    /// The route's name.
    pub name: String,
}

/// Gateway API routes whose backendRef weights carry the split.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiTrafficRouting {
    /// One HTTPRoute by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<String>,
    /// Several HTTPRoutes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_routes: Vec<GatewayRouteRef>,
    /// One GRPCRoute by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_route: Option<String>,
    /// Several GRPCRoutes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grpc_routes: Vec<GatewayRouteRef>,
    /// Namespace of the routes; the Rollout's own when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A Gateway API route by name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRouteRef {
    /// The route's name.
    pub name: String,
    /// Add header-route rules to this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_header_routes: Option<bool>,
}

/// Istio VirtualServices and an optional DestinationRule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IstioTrafficRouting {
    /// One VirtualService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<IstioVirtualService>,
    /// Several VirtualServices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_services: Vec<IstioVirtualService>,
    /// DestinationRule whose subsets carry the pod-template hash (subset-level split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<IstioDestinationRule>,
}

/// A VirtualService and the routes in it that carry the split.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IstioVirtualService {
    /// The VirtualService's name, or `namespace/name`.
    pub name: String,
    /// Names of the HTTP routes to split; may be empty when there is one unnamed route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// TLS routes to split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_routes: Vec<IstioTlsRoute>,
    /// TCP routes to split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_routes: Vec<IstioTcpRoute>,
}

/// A TLS route selected by port and SNI hosts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IstioTlsRoute {
    /// The route's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// The route's SNI hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<String>,
}

/// A TCP route selected by port.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IstioTcpRoute {
    /// The route's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// A DestinationRule with canary and stable subsets.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IstioDestinationRule {
    /// The DestinationRule's name.
    pub name: String,
    /// The subset that selects canary pods.
    pub canary_subset_name: String,
    /// The subset that selects stable pods.
    pub stable_subset_name: String,
}

/// An SMI TrafficSplit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    /// The Service clients call; the stable Service when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// The TrafficSplit's name; the Rollout's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_split_name: Option<String>,
    /// The `split.smi-spec.io` version to write: `v1alpha1` (default; stored by Linkerd's
    /// linkerd-smi), `v1alpha2` (also served by linkerd-smi) or `v1alpha4` (the smi-sdk-go CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<SmiApiVersion>,
}

/// A served version of `split.smi-spec.io` TrafficSplit.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum SmiApiVersion {
    /// Linkerd's stored version; weights are quantities.
    #[default]
    #[serde(rename = "v1alpha1")]
    V1alpha1,
    /// Served by linkerd-smi; weights are numbers.
    #[serde(rename = "v1alpha2")]
    V1alpha2,
    /// The only version the smi-sdk-go CRD serves; weights are numbers.
    #[serde(rename = "v1alpha4")]
    V1alpha4,
}

/// NGINX Ingress: a canary Ingress generated from the stable one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    /// The Ingress that routes to the stable Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_ingress: Option<String>,
    /// Several stable Ingresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stable_ingresses: Vec<String>,
    /// Annotation prefix. Defaults to `nginx.ingress.kubernetes.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// Extra canary annotations, prefixed with `annotationPrefix` when they lack it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_ingress_annotations: BTreeMap<String, String>,
    /// Annotations copied verbatim onto the canary Ingress.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub canary_ingress_annotations: BTreeMap<String, String>,
}

/// Traefik: a weighted TraefikService.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TraefikTrafficRouting {
    /// The TraefikService whose `weighted.services` carry the split.
    pub weighted_traefik_service_name: String,
}
