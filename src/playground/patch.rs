//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
//! patch with the list merge keys of the built-in kinds. Pure functions over JSON.

use super::error::ApiError;
use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch replaces the whole list.
    Atomic,
    /// Items are matched by this key and merged.
    Key(String),
    /// A list of scalars merged as a set (e.g. `finalizers`).
    Set,
}

/// The list strategy of a custom resource field, from the schema's `x-kubernetes-list-type`
/// and `x-kubernetes-list-map-keys` (first key); lists are atomic otherwise.
pub fn schema_list_strategy(schema: &Value, path: &[String], field: &str) -> ListStrategy {
    let mut node = schema;
    for key in path
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(field))
    {
        while node.get("type").and_then(Value::as_str) == Some("array") {
            match node.get("items") {
                Some(items) => node = items,
                None => return ListStrategy::Atomic,
            }
        }
        match node.pointer(&format!("/properties/{key}")) {
            Some(next) => node = next,
            None => return ListStrategy::Atomic,
        }
    }
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => node
            .pointer("/x-kubernetes-list-map-keys/0")
            .and_then(Value::as_str)
            .map(|k| ListStrategy::Key(k.to_string()))
            .unwrap_or(ListStrategy::Atomic),
        Some("set") => ListStrategy::Set,
        _ => ListStrategy::Atomic,
    }
}

/// The list merge strategy of a built-in field, from the `patchMergeKey`/`patchStrategy`
/// tags of the Kubernetes API types. `path` is the chain of map keys above the list.
pub fn builtin_list_strategy(path: &[String], field: &str) -> ListStrategy {
    let under_container = path
        .iter()
        .any(|p| p == "containers" || p == "initContainers" || p == "ephemeralContainers");
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => ListStrategy::Key("name".into()),
        "volumeMounts" => ListStrategy::Key("mountPath".into()),
        "volumeDevices" => ListStrategy::Key("devicePath".into()),
        "ports" if under_container => ListStrategy::Key("containerPort".into()),
        "ports" if path.last().map(String::as_str) == Some("spec") => {
            ListStrategy::Key("port".into())
        }
        "conditions" => ListStrategy::Key("type".into()),
        "ownerReferences" => ListStrategy::Key("uid".into()),
        "hostAliases" => ListStrategy::Key("ip".into()),
        "topologySpreadConstraints" => ListStrategy::Key("topologyKey".into()),
        "finalizers" if path.last().map(String::as_str) == Some("metadata") => ListStrategy::Set,
        _ => ListStrategy::Atomic,
    }
}

/// Apply a JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Apply a JSON patch.
///
/// # Errors
/// `BadRequest` when the patch is malformed; `Invalid`-like failures (a failed `test`, a
/// missing path) are reported as the real server does, with `422`.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        ApiError::BadRequest(format!(
            "the server rejected our request due to an error in our request: {e}"
        ))
    })?;
    json_patch::patch(target, &ops).map_err(|e| {
        ApiError::Unprocessable(format!(
            "the server rejected our request due to an error in our request: {e}"
        ))
    })
}

/// Apply a strategic merge patch to a built-in object.
///
/// # Errors
/// `BadRequest` on unknown `$patch` directives.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let mut path = Vec::new();
    merge_value(target, patch, &mut path)
}

fn merge_value(target: &mut Value, patch: &Value, path: &mut Vec<String>) -> Result<(), ApiError> {
    let Value::Object(pmap) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match pmap.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = pmap.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some(other) => return Err(ApiError::BadRequest(format!("unknown patch type: {other}"))),
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(tmap) = target else {
        return Ok(());
    };
    if let Some(Value::Array(retain)) = pmap.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        tmap.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, pv) in pmap {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (tmap.get_mut(field), pv) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if pv.is_null() {
            tmap.remove(k);
            continue;
        }
        match pv {
            Value::Object(_) => {
                path.push(k.clone());
                let slot = tmap.entry(k.clone()).or_insert(Value::Null);
                merge_value(slot, pv, path)?;
                path.pop();
            }
            Value::Array(items) => {
                let strategy = builtin_list_strategy(path, k);
                path.push(k.clone());
                let slot = tmap.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                merge_list(slot, items, strategy, path)?;
                path.pop();
            }
            _ => {
                tmap.insert(k.clone(), pv.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(
    target: &mut Value,
    items: &[Value],
    strategy: ListStrategy,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if strategy == ListStrategy::Atomic || replace || !target.is_array() {
        let kept = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        *target = Value::Array(kept);
        return Ok(());
    }
    let Value::Array(list) = target else {
        return Ok(());
    };
    match strategy {
        ListStrategy::Atomic => {}
        ListStrategy::Set => {
            for item in items {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
        ListStrategy::Key(key) => {
            for item in items {
                let Some(kv) = item.get(key.as_str()) else {
                    list.push(item.clone());
                    continue;
                };
                let pos = list.iter().position(|x| x.get(key.as_str()) == Some(kv));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        list.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => merge_value(&mut list[i], item, path)?,
                    (None, false) => {
                        let mut fresh = Value::Object(Map::new());
                        merge_value(&mut fresh, item, path)?;
                        list.push(fresh);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_env_by_name() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}], "args": ["x"]},
            {"name": "side", "image": "s:1"}
        ]}}}});
        let p = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:2", "env": [{"name": "B", "value": "2"}], "args": ["y"]},
            {"name": "side", "$patch": "delete"}
        ]}}}});
        strategic_merge(&mut d, &p).unwrap();
        assert_eq!(
            d,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["y"]}
            ]}}}})
        );
    }

    #[test]
    fn strategic_merge_uses_container_port_and_service_port_keys() {
        let mut svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}]}});
        strategic_merge(
            &mut svc,
            &json!({"spec": {"ports": [{"port": 443, "name": "https"}]}}),
        )
        .unwrap();
        assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 2);
        let mut pod =
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}});
        strategic_merge(&mut pod, &json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "web"}]}]}})).unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "name": "web"}])
        );
    }

    #[test]
    fn strategic_merge_retain_keys_and_null_delete() {
        let mut d = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "paused": true}});
        strategic_merge(&mut d, &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}, "paused": null}})).unwrap();
        assert_eq!(d, json!({"spec": {"strategy": {"type": "Recreate"}}}));
    }
}
