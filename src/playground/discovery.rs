//! Discovery documents: `/version`, legacy discovery (`/api`, `/api/v1`, `/apis`,
//! `/apis/{group}`, `/apis/{group}/{version}`) and aggregated discovery
//! (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`), built from the registry. Pure.

use super::registry::{Registry, ResourceDef};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The Kubernetes version the playground reports.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "34", "gitVersion": "v1.34.0-sluice-playground",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "none", "compiler": "rustc", "platform": "linux/amd64",
    })
}

/// Kubernetes version priority: GA before beta before alpha, higher numbers first.
fn priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (level, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (level, major, minor)
}

/// Groups (core first, then by name) with their versions, preferred first.
fn groups(registry: &Registry) -> Vec<(String, Vec<String>)> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in registry.all() {
        let versions = map.entry(d.group.clone()).or_default();
        if !versions.contains(&d.version) {
            versions.push(d.version.clone());
        }
    }
    map.into_iter()
        .map(|(g, mut vs)| {
            vs.sort_by_key(|v| std::cmp::Reverse(priority(v)));
            (g, vs)
        })
        .collect()
}

fn gv(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `/api`.
pub fn api_versions(server: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": gv(group, v), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or_default()})
}

/// `/apis`.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = groups(registry)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn api_group_doc(registry: &Registry, group: &str) -> Option<Value> {
    groups(registry)
        .into_iter()
        .find(|(g, _)| g == group)
        .map(|(g, vs)| {
            let mut doc = api_group(&g, &vs);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        })
}

fn defs_of(registry: &Registry, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
    registry
        .all()
        .into_iter()
        .filter(|d| d.group == group && d.version == version)
        .collect()
}

/// `/api/v1` and `/apis/{group}/{version}`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs = defs_of(registry, group, version);
    if defs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for d in defs {
        let scope = d.namespaced;
        resources.push(json!({
            "name": d.plural, "singularName": d.singular, "namespaced": scope, "kind": d.kind,
            "verbs": d.verbs(), "shortNames": d.short_names, "categories": d.categories, "storageVersionHash": "",
        }));
        if d.status {
            resources.push(json!({"name": format!("{}/status", d.plural), "singularName": "", "namespaced": scope, "kind": d.kind, "verbs": ["get", "patch", "update"]}));
        }
        if d.scale.is_some() {
            resources.push(json!({"name": format!("{}/scale", d.plural), "singularName": "", "namespaced": scope, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        if super::eviction::served(&d.group, &d.plural) {
            resources.push(json!({"name": format!("{}/{}", d.plural, super::eviction::SUBRESOURCE), "singularName": "", "namespaced": scope, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv(group, version), "resources": resources}),
    )
}

/// Aggregated discovery for `/api` (`core` = true) or `/apis`, in `apidiscovery.k8s.io/{v}`.
pub fn aggregated(registry: &Registry, core: bool, discovery_version: &str) -> Value {
    let mut items = Vec::new();
    for (group, versions) in groups(registry) {
        if group.is_empty() != core {
            continue;
        }
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = defs_of(registry, &group, v)
                    .iter()
                    .map(|d| {
                        let kind = json!({"group": d.group, "version": d.version, "kind": d.kind});
                        let mut subs = Vec::new();
                        if d.status {
                            subs.push(json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}));
                        }
                        if d.scale.is_some() {
                            subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                        }
                        if super::eviction::served(&d.group, &d.plural) {
                            subs.push(json!({"subresource": super::eviction::SUBRESOURCE, "responseKind": {"group": "policy", "version": "v1", "kind": "Eviction"}, "verbs": ["create"]}));
                        }
                        let mut r = json!({
                            "resource": d.plural, "responseKind": kind,
                            "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": d.singular, "verbs": d.verbs(),
                        });
                        if !d.short_names.is_empty() {
                            r["shortNames"] = json!(d.short_names);
                        }
                        if !d.categories.is_empty() {
                            r["categories"] = json!(d.categories);
                        }
                        if !subs.is_empty() {
                            r["subresources"] = json!(subs);
                        }
                        r
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let metadata = if group.is_empty() {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": group, "creationTimestamp": null})
        };
        items.push(json!({"metadata": metadata, "versions": versions}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{discovery_version}"), "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_orders_like_kubernetes() {
        let mut vs = vec!["v1alpha1", "v2beta1", "v1", "v1beta2", "v2"];
        vs.sort_by_key(|v| std::cmp::Reverse(priority(v)));
        assert_eq!(vs, vec!["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
