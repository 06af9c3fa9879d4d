//! The install's RBAC covers what the controller really does: every request the controller
//! makes while it walks a traffic-routed canary to promotion, restarts its pods, switches a
//! blue/green Rollout and cleans up on deletion is recorded (method and path, watches
//! included) and must be allowed by a rule of `deploy/rbac.yaml`. The playground does not
//! enforce RBAC, so without this test a missing verb would only show on a real cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use http::Request;
use serde_json::json;
use sluice::controller::embedded::{Embedded, EmbeddedOptions};
use sluice::crd::RolloutPhase;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (API group, resource or resource/subresource, verb) as RBAC names them.
type Access = (String, String, String);

/// What RBAC calls the request `method path?query`; `None` for discovery (`/api`, `/apis`,
/// `/apis/GROUP/VERSION`), which the default `system:discovery` role allows everyone.
fn access(method: &str, path: &str, query: &str) -> Option<Access> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let (group, rest) = match parts.first() {
        Some(&"api") if parts.len() > 2 => (String::new(), &parts[2..]),
        Some(&"apis") if parts.len() > 3 => (parts[1].to_string(), &parts[3..]),
        Some(&"api" | &"apis") => return None,
        _ => panic!("unexpected path {path}"),
    };
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (resource, named) = match rest {
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub] => (format!("{resource}/{sub}"), true),
        _ => panic!("unexpected path {path}"),
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match (method, named) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => panic!("unexpected method {method} {path}"),
    };
    Some((group, resource, verb.to_string()))
}

/// The rules of every ClusterRole and Role in `deploy/rbac.yaml`.
fn granted() -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let strings = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut rules = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        if value["kind"] == "ClusterRole" || value["kind"] == "Role" {
            for rule in value["rules"].as_sequence().unwrap() {
                rules.push((
                    strings(&rule["apiGroups"]),
                    strings(&rule["resources"]),
                    strings(&rule["verbs"]),
                ));
            }
        }
    }
    rules
}

/// The playground's client, wrapped so every request is recorded first.
fn recording(client: kube::Client) -> (kube::Client, Arc<Mutex<BTreeSet<Access>>>) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let record = seen.clone();
    let namespace = client.default_namespace().to_string();
    let send = tower::service_fn(move |request: Request<kube::client::Body>| {
        let uri = request.uri();
        if let Some(entry) = access(
            request.method().as_str(),
            uri.path(),
            uri.query().unwrap_or_default(),
        ) {
            record.lock().unwrap().insert(entry);
        }
        let client = client.clone();
        async move { client.send(request).await }
    });
    (kube::Client::new(send, namespace), seen)
}

async fn traffic_routed_canary(h: &Harness, ns: &str) {
    h.install_httproute_crd().await;
    h.create_shop_route(ns).await;
    let yaml = gateway_canary_yaml(3, "        - setWeight: 30\n        - pause: {}\n");
    h.apply_yaml(ns, &yaml).await;
    let v1 = h.first_revision_healthy(ns, "shop").await;
    h.set_image(ns, "shop", "example/app:2").await;
    h.wait_rollout(ns, "shop", "paused at 30 %", |r| {
        paused_on_step(r) && current_hash(r).is_some_and(|c| c != v1)
    })
    .await;
    h.patch_status(ns, "shop", json!({"pauseConditions": null}))
        .await;
    let r = h
        .wait_rollout(ns, "shop", "promoted", |r| {
            phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some_and(|s| s != v1)
        })
        .await;
    let v2 = stable_hash(&r).unwrap();

    // A restart evicts every pod.
    let at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 1).unwrap();
    h.patch_spec(ns, "shop", json!({"spec": {"restartAt": at.to_string()}}))
        .await;
    h.wait_rollout_for(
        ns,
        "shop",
        "restart recorded",
        Duration::from_secs(60),
        |r| {
            r.status
                .as_ref()
                .and_then(|s| s.restarted_at.as_ref())
                .is_some_and(|t| t.0 == at)
        },
    )
    .await;
    assert!(healthy_at(&h.rollout(ns, "shop").await, &v2));

    h.delete_rollout(ns, "shop").await;
}

async fn blue_green(h: &Harness, ns: &str) {
    h.apply_yaml(ns, &bluegreen_yaml("api", 2, "")).await;
    let v1 = h.first_revision_healthy(ns, "api").await;
    h.set_image(ns, "api", "example/app:2").await;
    // Auto-promotion (the default) switches the active Service once the new stack is up.
    h.wait_rollout(ns, "api", "switched", |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some_and(|s| s != v1)
    })
    .await;
}

#[tokio::test]
async fn every_request_of_the_controller_is_allowed_by_the_install_rbac() {
    let h = Harness::start().await;
    let (client, seen) = recording(h.client.clone());
    let options = EmbeddedOptions {
        lease: Some(sluice::controller::LeaseSettings::new(
            "sluice-controller".into(),
            "default".into(),
            "rbac-test".into(),
        )),
        ..EmbeddedOptions::default()
    };
    let controller = Embedded::spawn(client, options);
    h.namespace("rbac-canary").await;
    h.namespace("rbac-bluegreen").await;
    traffic_routed_canary(&h, "rbac-canary").await;
    blue_green(&h, "rbac-bluegreen").await;
    controller.stop().await;

    let seen = seen.lock().unwrap().clone();
    let rules = granted();
    let allowed = |(group, resource, verb): &Access| {
        rules.iter().any(|(groups, resources, verbs)| {
            groups.contains(group) && resources.contains(resource) && verbs.contains(verb)
        })
    };
    let missing: Vec<&Access> = seen.iter().filter(|a| !allowed(a)).collect();
    assert!(
        missing.is_empty(),
        "deploy/rbac.yaml does not allow (group, resource, verb) {missing:?}; all requests: {seen:?}"
    );
    // The scenarios reached what the rules are for.
    for expected in [
        ("", "pods/eviction", "create"),
        ("gateway.networking.k8s.io", "httproutes", "patch"),
        ("apps", "replicasets", "create"),
        ("sluice.dev", "rollouts/status", "patch"),
        ("coordination.k8s.io", "leases", "create"),
    ] {
        let expected = (
            expected.0.to_string(),
            expected.1.to_string(),
            expected.2.to_string(),
        );
        assert!(
            seen.contains(&expected),
            "{expected:?} not exercised: {seen:?}"
        );
    }
}
