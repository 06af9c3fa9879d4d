//! The simulated Deployment and ReplicaSet controllers: pod-template-hash ReplicaSets,
//! rolling updates within maxSurge/maxUnavailable (or Recreate), pods with owner references,
//! and the status fields controllers and `kubectl rollout status` read.

use super::{Sim, gr, key_of};
use crate::playground::store::Key;
use serde_json::{Value, json};
use std::sync::Arc;

const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
const REPLICASET_CONTROLLER: &str = "replicaset-controller";
const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

fn int(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn uid(v: &Value) -> &str {
    v.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn controlled_by(child: &Value, owner_uid: &str) -> bool {
    child
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(owner_uid)
                    && r.get("controller").and_then(Value::as_bool) == Some(true)
            })
        })
}

fn deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp").is_some()
}

fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": owner.pointer("/metadata/name"), "uid": uid(owner), "controller": true, "blockOwnerDeletion": true})
}

/// The pod-template-hash: FNV-1a of the template, spelled in the alphabet Kubernetes uses.
pub fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// `maxSurge`/`maxUnavailable`: an integer or a percentage of `desired` (surge rounds up,
/// unavailable down).
fn resolve(v: Option<&Value>, desired: i64, round_up: bool, default_pct: i64) -> i64 {
    let pct = |p: i64| {
        if round_up {
            (p * desired + 99) / 100
        } else {
            p * desired / 100
        }
    };
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim_end_matches('%').parse().map(pct).unwrap_or(0),
        _ => pct(default_pct),
    }
}

fn revision(rs: &Value) -> i64 {
    rs.pointer(&format!(
        "/metadata/annotations/{}",
        REVISION.replace('/', "~1")
    ))
    .and_then(Value::as_str)
    .and_then(|r| r.parse().ok())
    .unwrap_or(0)
}

/// Reconcile one Deployment.
pub fn deployment(sim: &Sim, key: &Key) {
    let deployments = gr("apps", "deployments");
    let replicasets = gr("apps", "replicasets");
    let Some(d) = sim.get(&deployments, key) else {
        return;
    };
    if deleting(&d) {
        return;
    }
    let desired = int(&d, "/spec/replicas");
    let template = d.pointer("/spec/template").cloned().unwrap_or_default();
    let hash = template_hash(&template);
    let mut owned: Vec<Arc<Value>> = sim
        .list(&replicasets, &key.0)
        .into_iter()
        .filter(|rs| controlled_by(rs, uid(&d)) && !deleting(rs))
        .collect();
    owned.sort_by_key(|rs| revision(rs));
    let new_name = format!("{}-{hash}", key.1);
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let new_rs = match owned
        .iter()
        .find(|rs| rs.pointer("/metadata/name").and_then(Value::as_str) == Some(new_name.as_str()))
    {
        Some(rs) => Some(rs.clone()),
        None if !paused => {
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"][HASH_LABEL] = json!(hash);
            let mut selector = d
                .pointer("/spec/selector")
                .cloned()
                .unwrap_or_else(|| json!({}));
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            labels[HASH_LABEL] = json!(hash);
            let next_revision = owned.iter().map(|rs| revision(rs)).max().unwrap_or(0) + 1;
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": new_name, "namespace": key.0, "labels": labels,
                    "annotations": {REVISION: next_revision.to_string(), "deployment.kubernetes.io/desired-replicas": desired.to_string()},
                    "ownerReferences": [owner_ref(&d, "apps/v1", "Deployment")]},
                "spec": {"replicas": 0, "selector": selector, "template": rs_template},
            });
            sim.create(&replicasets, &key.0, rs, DEPLOYMENT_CONTROLLER)
                .map(Arc::new)
        }
        None => None,
    };
    let olds: Vec<&Arc<Value>> = owned
        .iter()
        .filter(|rs| {
            rs.pointer("/metadata/name").and_then(Value::as_str) != Some(new_name.as_str())
        })
        .collect();
    let scale = |rs: &Value, to: i64| {
        let from = int(rs, "/spec/replicas");
        if from == to {
            return;
        }
        sim.merge(
            &replicasets,
            &key_of(rs),
            None,
            json!({"spec": {"replicas": to}}),
            DEPLOYMENT_CONTROLLER,
        );
        let verb = if to > from { "up" } else { "down" };
        let name = rs
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        sim.event(
            &d,
            "ScalingReplicaSet",
            format!("Scaled {verb} replica set {name} from {from} to {to}"),
            DEPLOYMENT_CONTROLLER,
        );
    };
    // Act only on ReplicaSets whose controller has caught up with their last scale, so stale
    // availability never licenses a second scale-down.
    let settled = owned.iter().chain(new_rs.iter()).all(|rs| {
        rs.pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            >= rs.pointer("/metadata/generation").and_then(Value::as_i64)
    });
    if let (Some(new), false, true) = (&new_rs, paused, settled) {
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        if recreate {
            let old_running: i64 = olds.iter().map(|rs| int(rs, "/status/replicas")).sum();
            for rs in &olds {
                scale(rs, 0);
            }
            if old_running == 0 {
                scale(new, desired);
            }
        } else {
            rolling(&d, new, &olds, desired, &scale);
        }
    }
    // Status from the ReplicaSets as they are now.
    let owned: Vec<Arc<Value>> = sim
        .list(&replicasets, &key.0)
        .into_iter()
        .filter(|rs| controlled_by(rs, uid(&d)))
        .collect();
    let sum = |p: &str| owned.iter().map(|rs| int(rs, p)).sum::<i64>();
    let updated = new_rs
        .as_ref()
        .and_then(|n| owned.iter().find(|rs| uid(rs) == uid(n)))
        .map_or(0, |rs| int(rs, "/status/replicas"));
    let (replicas, ready, available) = (
        sum("/status/replicas"),
        sum("/status/readyReplicas"),
        sum("/status/availableReplicas"),
    );
    let unavailable_budget = resolve(
        d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        desired,
        false,
        25,
    );
    let complete = updated == desired && replicas == desired && available == desired;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let old_conds = d
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let cond = |ty: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        let previous = old_conds
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .cloned();
        let since = match &previous {
            Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
            _ => json!(now),
        };
        let same = previous
            .as_ref()
            .is_some_and(|p| p["status"] == status && p["reason"] == reason);
        let updated_at = if same {
            previous
                .as_ref()
                .map(|p| p["lastUpdateTime"].clone())
                .unwrap_or(json!(now))
        } else {
            json!(now)
        };
        json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": since, "lastUpdateTime": updated_at})
    };
    let new_name_shown = new_rs
        .as_ref()
        .and_then(|n| n.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let progressing = if complete {
        cond(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name_shown}\" has successfully progressed."),
        )
    } else {
        cond(
            "Progressing",
            true,
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name_shown}\" is progressing."),
        )
    };
    let available_ok = available >= desired - unavailable_budget;
    let available_cond = cond(
        "Available",
        available_ok,
        if available_ok {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        },
        if available_ok {
            "Deployment has minimum availability.".into()
        } else {
            "Deployment does not have minimum availability.".into()
        },
    );
    let mut status = json!({
        "observedGeneration": d.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available,
        "conditions": [available_cond, progressing],
    });
    if replicas - available > 0 {
        status["unavailableReplicas"] = json!(replicas - available);
    }
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| k == "observedGeneration" || k == "conditions" || v.as_i64() != Some(0));
    }
    sim.set_status(&deployments, &d, status, DEPLOYMENT_CONTROLLER);
}

/// Available replicas of a ReplicaSet, never more than it is asked to run.
fn available_of(rs: &Value) -> i64 {
    int(rs, "/status/availableReplicas").min(int(rs, "/spec/replicas"))
}

/// One rolling-update step: scale the new ReplicaSet up within maxSurge, then old ones down
/// within maxUnavailable (unhealthy replicas first), as the Kubernetes deployment controller does.
fn rolling(
    d: &Value,
    new: &Value,
    olds: &[&Arc<Value>],
    desired: i64,
    scale: &dyn Fn(&Value, i64),
) {
    let mut surge = resolve(
        d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        desired,
        true,
        25,
    );
    let mut unavailable = resolve(
        d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        desired,
        false,
        25,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    surge = surge.max(0);
    let new_spec = int(new, "/spec/replicas");
    let old_spec: i64 = olds.iter().map(|rs| int(rs, "/spec/replicas")).sum();
    if old_spec == 0 {
        scale(new, desired);
        return;
    }
    // Scale up.
    let total = new_spec + old_spec;
    let room = desired + surge - total;
    let mut new_target = new_spec;
    if new_spec < desired && room > 0 {
        new_target = (new_spec + room).min(desired);
        scale(new, new_target);
    } else if new_spec > desired {
        new_target = desired;
        scale(new, desired);
    }
    // Scale down.
    let min_available = desired - unavailable;
    let all_pods: i64 = int(new, "/status/replicas")
        + olds
            .iter()
            .map(|rs| int(rs, "/status/replicas"))
            .sum::<i64>();
    let new_unavailable = new_target - available_of(new);
    let mut budget = all_pods - min_available - new_unavailable.max(0);
    let mut remaining: Vec<i64> = olds.iter().map(|rs| int(rs, "/spec/replicas")).collect();
    for (i, rs) in olds.iter().enumerate() {
        if budget <= 0 {
            break;
        }
        let unhealthy = remaining[i] - available_of(rs);
        if unhealthy > 0 {
            let cut = unhealthy.min(budget);
            remaining[i] -= cut;
            budget -= cut;
        }
    }
    let available: i64 = available_of(new) + olds.iter().map(|rs| available_of(rs)).sum::<i64>();
    let mut down = (available - min_available).max(0);
    for r in remaining.iter_mut() {
        let cut = (*r).min(down);
        *r -= cut;
        down -= cut;
    }
    for (rs, target) in olds.iter().zip(remaining) {
        scale(rs, target);
    }
}

/// Reconcile one ReplicaSet: create or delete pods to match `spec.replicas`, then status.
pub fn replicaset(sim: &Sim, key: &Key) {
    let replicasets = gr("apps", "replicasets");
    let pods_gr = gr("", "pods");
    let Some(rs) = sim.get(&replicasets, key) else {
        return;
    };
    if deleting(&rs) {
        return;
    }
    let desired = int(&rs, "/spec/replicas");
    let pods: Vec<Arc<Value>> = sim
        .api
        .store
        .dependents(uid(&rs))
        .into_iter()
        .filter(|(r, _)| *r == pods_gr)
        .filter_map(|(_, k)| sim.get(&pods_gr, &k))
        .filter(|p| controlled_by(p, uid(&rs)))
        .collect();
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !deleting(p)).collect();
    let is_ready = |p: &Value| {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    };
    let count = active.len() as i64;
    if count < desired {
        let template = rs.pointer("/spec/template").cloned().unwrap_or_default();
        for _ in count..desired {
            let name = format!("{}-{}", key.1, sim.api.suffix());
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": key.0, "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                    "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                    "ownerReferences": [owner_ref(&rs, "apps/v1", "ReplicaSet")]},
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            });
            if sim
                .create(&pods_gr, &key.0, pod, REPLICASET_CONTROLLER)
                .is_some()
            {
                sim.event(
                    &rs,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                    REPLICASET_CONTROLLER,
                );
            }
        }
    } else if count > desired {
        let mut victims = active.clone();
        // Not-ready pods go first, then the newest.
        victims.sort_by_key(|p| {
            (
                is_ready(p),
                std::cmp::Reverse(
                    p.pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        });
        for p in victims.into_iter().take((count - desired) as usize) {
            let pk = key_of(p);
            sim.delete(&pods_gr, &pk);
            sim.event(
                &rs,
                "SuccessfulDelete",
                format!("Deleted pod: {}", pk.1),
                REPLICASET_CONTROLLER,
            );
        }
    }
    let pods: Vec<Arc<Value>> = sim
        .api
        .store
        .dependents(uid(&rs))
        .into_iter()
        .filter(|(r, _)| *r == pods_gr)
        .filter_map(|(_, k)| sim.get(&pods_gr, &k))
        .filter(|p| !deleting(p))
        .collect();
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let mut status = json!({
        "replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready, "availableReplicas": ready,
        "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
    });
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| k == "observedGeneration" || k == "replicas" || v.as_i64() != Some(0));
    }
    sim.set_status(&replicasets, &rs, status, REPLICASET_CONTROLLER);
}
