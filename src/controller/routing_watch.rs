//! Watches on the routing objects Rollouts name (HTTPRoute, GRPCRoute, VirtualService,
//! TrafficSplit, Ingress, TraefikService), for the kinds this cluster serves, mapped back to the
//! Rollouts whose `trafficRouting` names them. Reads only.

use super::backoff::{WatchBackoff, absorb_errors};
use crate::crd::Rollout;
use futures::Stream;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

/// The routing kinds a Rollout can name, by API group.
const ROUTING_KINDS: &[(&str, &str)] = &[
    ("gateway.networking.k8s.io", "HTTPRoute"),
    ("gateway.networking.k8s.io", "GRPCRoute"),
    ("networking.istio.io", "VirtualService"),
    ("split.smi-spec.io", "TrafficSplit"),
    ("networking.k8s.io", "Ingress"),
    ("traefik.io", "TraefikService"),
];

/// The routing kinds the cluster serves, found by discovery; kinds it does not serve are
/// skipped (watching them would only fail).
pub async fn served_kinds(client: &kube::Client) -> Vec<ApiResource> {
    let mut found = Vec::new();
    for (group, kind) in ROUTING_KINDS {
        match kube::discovery::group(client, group).await {
            Ok(api_group) => {
                if let Some((resource, _)) = api_group.recommended_kind(kind) {
                    found.push(resource);
                }
            }
            Err(error) => tracing::debug!(%error, group, "routing group not served"),
        }
    }
    found
}

/// A watch stream of one routing kind.
pub fn stream(
    client: &kube::Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let stream = watcher(api, watcher::Config::default())
        .backoff(WatchBackoff::default())
        .touched_objects();
    absorb_errors(stream, resource.kind.clone())
}

/// Whether any string in `value` equals `name`.
fn mentions(value: &Value, name: &str) -> bool {
    match value {
        Value::String(s) => s == name,
        Value::Array(items) => items.iter().any(|v| mentions(v, name)),
        Value::Object(map) => map.values().any(|v| mentions(v, name)),
        _ => false,
    }
}

/// The Rollouts in the object's namespace whose `trafficRouting` block names it.
pub fn rollouts_routing_through(
    rollouts: &Store<Rollout>,
    obj: &DynamicObject,
) -> Vec<ObjectRef<Rollout>> {
    let namespace = obj.namespace();
    let name = obj.name_any();
    rollouts
        .state()
        .iter()
        .filter(|r| r.namespace() == namespace)
        .filter(|r| {
            r.spec
                .strategy
                .canary
                .as_ref()
                .and_then(|c| c.traffic_routing.as_ref())
                .and_then(|t| serde_json::to_value(t).ok())
                .is_some_and(|v| mentions(&v, &name))
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}
