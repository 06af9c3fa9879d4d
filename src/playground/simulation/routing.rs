//! Simulated routing controllers: the acceptance status a Gateway API implementation writes on
//! HTTPRoute/GRPCRoute parents, Istio's `Reconciled` condition on VirtualServices, and an
//! ingress controller's load-balancer address on Ingresses. SMI TrafficSplit has no status.

use super::Sim;
use crate::playground::registry::GroupResource;
use crate::playground::store::Key;
use serde_json::{Value, json};

/// The controller name written into Gateway API route status.
pub const GATEWAY_CONTROLLER: &str = "playground.sluice.dev/gateway-controller";

/// Whether the resource is a routing object the simulation accepts.
pub fn is_route(r: &GroupResource) -> bool {
    matches!(
        (r.group.as_str(), r.resource.as_str()),
        ("gateway.networking.k8s.io", "httproutes" | "grpcroutes")
            | ("networking.istio.io", "virtualservices")
            | ("networking.k8s.io", "ingresses")
    )
}

fn keep_time(old: Option<&Value>, ty: &str, status: &str, now: &str) -> Value {
    old.and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == status))
        .map(|c| c["lastTransitionTime"].clone())
        .unwrap_or_else(|| json!(now))
}

/// Write the acceptance status of one routing object.
pub fn accept(sim: &Sim, resource: &GroupResource, key: &Key) {
    let Some(obj) = sim.get(resource, key) else {
        return;
    };
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let generation = obj
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let status = match resource.resource.as_str() {
        "httproutes" | "grpcroutes" => {
            let old_parents = obj
                .pointer("/status/parents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let parents: Vec<Value> = obj
                .pointer("/spec/parentRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|parent| {
                    let mut parent_ref = parent.clone();
                    if parent_ref.get("group").is_none() {
                        parent_ref["group"] = json!("gateway.networking.k8s.io");
                    }
                    if parent_ref.get("kind").is_none() {
                        parent_ref["kind"] = json!("Gateway");
                    }
                    let old = old_parents.iter().find(|p| p["parentRef"] == parent_ref).and_then(|p| p.get("conditions"));
                    let cond = |ty: &str, reason: &str, message: &str| {
                        json!({"type": ty, "status": "True", "reason": reason, "message": message, "observedGeneration": generation, "lastTransitionTime": keep_time(old, ty, "True", &now)})
                    };
                    json!({"parentRef": parent_ref, "controllerName": GATEWAY_CONTROLLER,
                        "conditions": [cond("Accepted", "Accepted", "Route is accepted"), cond("ResolvedRefs", "ResolvedRefs", "Resolved all the Object references for the Route")]})
                })
                .collect();
            json!({"parents": parents})
        }
        "virtualservices" => json!({
            "observedGeneration": generation,
            "conditions": [{"type": "Reconciled", "status": "True", "lastProbeTime": now, "lastTransitionTime": keep_time(obj.pointer("/status/conditions"), "Reconciled", "True", &now)}],
        }),
        "ingresses" => json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}),
        _ => return,
    };
    // lastProbeTime moves on every write: a VirtualService is rewritten only per generation.
    if resource.resource == "virtualservices"
        && obj.pointer("/status/observedGeneration") == Some(&generation)
    {
        return;
    }
    sim.set_status(resource, &obj, status, "playground-route-controller");
}
