//! Minimal OpenAPI v3 documents: enough for kubectl to see that every served resource accepts
//! the `fieldValidation` query parameter (so it relies on server-side validation instead of
//! downloading schemas). No schemas are published. Pure.

use super::registry::Registry;
use serde_json::{Map, Value, json};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn root(registry: &Registry, generation: u64) -> Value {
    let mut paths = Map::new();
    for d in registry.all() {
        let p = gv_path(&d.group, &d.version);
        let url = format!("/openapi/v3/{p}?hash={generation:016X}");
        paths.insert(p, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/{api/v1 | apis/group/version}`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let params = json!([
        param("dryRun"),
        param("fieldManager"),
        param("fieldValidation"),
        param("force")
    ]);
    let mut paths = Map::new();
    for d in defs {
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let base = if d.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(&d.group, &d.version),
                d.plural
            )
        } else {
            format!("/{}/{}", gv_path(&d.group, &d.version), d.plural)
        };
        let op = |verb: &str| json!({"operationId": format!("{verb}{}", d.kind), "parameters": params, "responses": {"200": {"description": "OK"}}, "x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk});
        paths.insert(base.clone(), json!({"post": op("post"), "get": op("list")}));
        paths.insert(format!("{base}/{{name}}"), json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (Sluice playground)", "version": "v1.34.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
