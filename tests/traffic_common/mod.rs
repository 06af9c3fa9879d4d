//! Shared test support for the traffic routers: the upstream CRD schemas from the shared
//! folder beside the repository, a validator that also rejects fields the schema does not
//! know (the API server would silently prune them), and Rollout and weight fixtures.

#![allow(dead_code)]

use serde_json::{Value, json};
use sluice::crd::{Rollout, TrafficWeights, WeightDestination};
use sluice::traffic::RouteContext;
use std::path::PathBuf;
use std::sync::Arc;

/// The folder holding the upstream CRDs: `shared/` beside the repository (as CI clones it),
/// or beside the folder holding this checkout when it is a git worktree one level down.
pub fn upstream_dir() -> PathBuf {
    let beside = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/upstream/crds"
    ));
    let above = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/upstream/crds"
    ));
    if !beside.is_dir() && above.is_dir() {
        above
    } else {
        beside
    }
}

/// The `openAPIV3Schema` of `version` in the upstream CRD file `file`.
pub fn upstream_schema(file: &str, version: &str) -> Value {
    let path = upstream_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the upstream CRD {} is missing ({e}); the traffic tests need the shared folder \
             `shared/upstream/crds/` checked out beside this repository",
            path.display()
        )
    });
    let crd: Value = serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .find(|d| d.get("kind") == Some(&json!("CustomResourceDefinition")))
        .unwrap_or_else(|| panic!("{} holds no CRD", path.display()));
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == json!(version))
        .unwrap_or_else(|| panic!("{} has no version {version}", path.display()))["schema"]["openAPIV3Schema"]
        .clone()
}

use serde::Deserialize;

/// Makes a structural schema strict: an object schema with `properties` rejects other keys
/// unless it preserves unknown fields.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !preserve
            {
                map.insert("additionalProperties".into(), json!(false));
            }
            for v in map.values_mut() {
                strict(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Validates `object` against `schema` (strictly: unknown fields are errors) and panics with
/// every error and the object when it is invalid.
pub fn assert_valid_against(schema: &Value, object: &Value, what: &str) {
    let mut schema = schema.clone();
    // The API server knows these root fields of every object even when a CRD leaves them out.
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props
            .entry("apiVersion")
            .or_insert(json!({"type": "string"}));
        props.entry("kind").or_insert(json!({"type": "string"}));
        props.entry("metadata").or_insert(json!({"type": "object"}));
    }
    strict(&mut schema);
    // The API server adds `metadata` fields the CRD schema leaves open; validate the rest.
    // CRD schemas are OpenAPI v3 (close to draft 4); generated schemas name their draft.
    let mut options = jsonschema::options();
    if schema.get("$schema").is_none() {
        options = options.with_draft(jsonschema::Draft::Draft4);
    }
    let validator = options
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema for {what} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(object)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is invalid against the upstream schema:\n{}\nobject:\n{}",
        errors.join("\n"),
        serde_json::to_string_pretty(object).unwrap()
    );
}

/// Validates against the upstream CRD `file` at `version`.
pub fn assert_valid(file: &str, version: &str, object: &Value) {
    let schema = upstream_schema(file, version);
    assert_valid_against(&schema, object, &format!("{file} {version}"));
}

/// A Rollout with canary and stable Services and the given `trafficRouting` (YAML).
pub fn rollout(traffic_routing: &str) -> Rollout {
    let routing: Value = serde_yaml::from_str(traffic_routing).unwrap();
    serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": "apps", "uid": "0d6c0f0e-1111-4222-8333-944455556666"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "shop", "image": "shop:2"}]}},
            "strategy": {"canary": {
                "canaryService": "shop-canary",
                "stableService": "shop-stable",
                "trafficRouting": routing,
                "steps": [{"setWeight": 20}],
            }},
        },
    }))
    .unwrap()
}

/// A route context for `rollout` with canary hash `c4n4ry` and stable hash `s74b1e`.
pub fn ctx(rollout: Rollout) -> RouteContext {
    RouteContext {
        rollout: Arc::new(rollout),
        canary_hash: Some("c4n4ry".into()),
        stable_hash: Some("s74b1e".into()),
    }
}

/// Weights with the canary at `canary` (stable whatever is left of 100) and additional
/// destinations `(service, weight, hash)`.
pub fn weights(canary: i32, additional: &[(&str, i32)]) -> TrafficWeights {
    TrafficWeights {
        canary: WeightDestination {
            weight: canary,
            service_name: Some("shop-canary".into()),
            pod_template_hash: Some("c4n4ry".into()),
        },
        stable: WeightDestination {
            weight: 100 - canary - additional.iter().map(|a| a.1).sum::<i32>(),
            service_name: Some("shop-stable".into()),
            pod_template_hash: Some("s74b1e".into()),
        },
        additional: additional
            .iter()
            .map(|(name, w)| WeightDestination {
                weight: *w,
                service_name: Some((*name).into()),
                pod_template_hash: Some("b4s3l1".into()),
            })
            .collect(),
        verified: None,
    }
}

/// Parses inline YAML into JSON.
pub fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

/// Validates an Ingress against k8s-openapi's `networking.k8s.io/v1` Ingress schema, and checks
/// that it survives a round trip through the typed Ingress unchanged (no unknown fields).
pub fn assert_valid_ingress(object: &Value) {
    use k8s_openapi::api::networking::v1::Ingress;
    let schema = serde_json::to_value(schemars::schema_for!(Ingress)).unwrap();
    assert_valid_against(&schema, object, "networking.k8s.io/v1 Ingress");
    let typed: Ingress = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("not an Ingress ({e}):\n{object:#}"));
    assert_eq!(
        &serde_json::to_value(typed).unwrap(),
        object,
        "fields an Ingress does not have"
    );
}

/// A kube client for a server that is never reached: for calls that fail before any I/O.
pub fn offline_client() -> kube::Client {
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

/// `(backend name, weight)` of a Gateway API rule's `backendRefs` (-1 for no weight).
pub fn backend_weights(rule: &Value) -> Vec<(String, i64)> {
    rule["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["weight"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// Owned `(name, weight)` pairs, to compare with `backend_weights`.
pub fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
}

/// The routers `rollout` configures, with no plugin registered and a client that is never
/// reached.
pub fn offline_routers(rollout: &Rollout) -> Vec<Box<dyn sluice::traffic::TrafficRouter>> {
    sluice::traffic::routers_for(
        rollout,
        offline_client(),
        reqwest::Client::new(),
        &Default::default(),
    )
    .unwrap()
}

/// The example Rollouts of `examples/traffic/`, sorted by file name.
pub fn traffic_examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/traffic");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The upstream routing CRDs the routers write to, as they are installed in a cluster.
pub const ROUTING_CRDS: [&str; 6] = [
    "gateway-api-httproute.yaml",
    "gateway-api-grpcroute.yaml",
    "istio-virtualservice.yaml",
    "istio-destinationrule.yaml",
    "smi-trafficsplit-linkerd-smi.yaml",
    "traefik-traefikservice.yaml",
];

/// Installs the upstream routing CRDs through `client`.
pub async fn install_routing_crds(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for file in ROUTING_CRDS {
        let path = upstream_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}); the shared folder shared/upstream/crds must be beside the repository",
                path.display()
            )
        });
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            if v.get("kind") == Some(&json!("CustomResourceDefinition")) {
                let crd: CustomResourceDefinition = serde_json::from_value(v).unwrap();
                crds.create(&kube::api::PostParams::default(), &crd)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Runs `kubectl --kubeconfig <kubeconfig> <args>` and returns its JSON output.
pub async fn kubectl_json(kubeconfig: &std::path::Path, args: &[&str]) -> Value {
    crate::kubectl_support::Kubectl::new(kubeconfig)
        .json(args)
        .await
}

/// Creates an object of any kind from JSON (namespace from the object).
pub async fn create_object(client: &kube::Client, object: Value) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
    let api_version = object["apiVersion"].as_str().unwrap().to_owned();
    let kind = object["kind"].as_str().unwrap().to_owned();
    let namespace = object["metadata"]["namespace"].as_str().unwrap().to_owned();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let plural = match kind.as_str() {
        "Ingress" => "ingresses".to_owned(),
        k => format!("{}s", k.to_lowercase()),
    };
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, &kind), &plural);
    let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), &namespace, &ar);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .unwrap();
}
