//! The structural-schema check of `lint`: an object against the openAPIV3Schema of our
//! generated CRD, as the API server would read it: types, required fields, enums, and fields
//! the schema does not know (which the API server silently prunes). Pure.

use serde_json::Value;

/// The problems of `doc` against `schema`, one `path: problem` each. `apiVersion`, `kind`,
/// `metadata` and `status` are the API server's to check.
#[must_use]
pub fn check(schema: &Value, doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in doc.as_object().into_iter().flatten() {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
            continue;
        }
        match schema["properties"].get(key) {
            Some(inner) => walk(inner, value, key, &mut out),
            None => out.push(format!(
                "{key}: unknown field (the API server would drop it)"
            )),
        }
    }
    out
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != true {
            out.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            out.push(format!("{path}: must be an integer or a string"));
        }
        return;
    }
    let Some(kind) = schema["type"].as_str() else {
        return;
    };
    if !type_matches(kind, value) {
        out.push(format!("{path}: must be {}", article(kind)));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        out.push(format!("{path}: {value} is not one of {}", list.join(", ")));
    }
    match value {
        Value::Object(map) => object(schema, map, path, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn object(schema: &Value, map: &serde_json::Map<String, Value>, path: &str, out: &mut Vec<String>) {
    for required in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = required.as_str()
            && !map.contains_key(name)
        {
            out.push(format!("{path}.{name}: required"));
        }
    }
    let open = schema["x-kubernetes-preserve-unknown-fields"] == true;
    for (key, value) in map {
        let inner = format!("{path}.{key}");
        if let Some(property) = schema["properties"].get(key) {
            walk(property, value, &inner, out);
        } else if schema["additionalProperties"].is_object() {
            walk(&schema["additionalProperties"], value, &inner, out);
        } else if !open && schema["additionalProperties"] != true {
            out.push(format!(
                "{inner}: unknown field (the API server would drop it)"
            ));
        }
    }
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn article(kind: &str) -> String {
    match kind {
        "object" | "array" | "integer" => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout_schema() -> Value {
        let crd = crate::crd::crds()
            .into_iter()
            .find(|c| c.spec.names.kind == "Rollout")
            .expect("the Rollout CRD");
        let schema = crd.spec.versions[0].schema.clone().expect("a schema");
        serde_json::to_value(schema.open_api_v3_schema).expect("JSON")
    }

    #[test]
    fn schema_findings() {
        let schema = rollout_schema();
        let base = json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "a"},
            "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}]}}}});
        // (a change to the base object, expected problems)
        let cases: [(&str, Value, Vec<&str>); 6] = [
            ("/spec/replicas", json!(3), vec![]),
            (
                "/spec/replicas",
                json!("three"),
                vec!["spec.replicas: must be an integer"],
            ),
            (
                "/spec/strategy/canary/stepz",
                json!([]),
                vec!["spec.strategy.canary.stepz: unknown field (the API server would drop it)"],
            ),
            ("/spec/strategy/canary/maxSurge", json!("25%"), vec![]),
            (
                "/spec/workloadRef",
                json!({"name": "d", "kind": "Deployment"}),
                vec!["spec.workloadRef.apiVersion: required"],
            ),
            (
                "/spec/workloadRef",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "scaleDown": "sometimes"}),
                vec![
                    r#"spec.workloadRef.scaleDown: "sometimes" is not one of "never", "onsuccess", "progressively""#,
                ],
            ),
        ];
        for (pointer, value, expected) in cases {
            let mut doc = base.clone();
            let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
            doc.pointer_mut(parent).expect(parent)[key] = value;
            assert_eq!(check(&schema, &doc), expected, "{pointer}");
        }
    }
}
