//! The generic part of converting an Argo-shaped object: parse it as our type, write it back,
//! and name every field of the source that did not survive the round trip. Pure.

use super::report::Findings;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The reason given for a field our types do not have, unless a caller knows a better one.
pub const NO_EQUIVALENT: &str = "no equivalent field in Sluice";

/// `source` parsed as `T` and written back, with each lost field recorded in `findings`.
///
/// # Errors
/// The path and message of the first field that does not fit `T` (a wrong type or a missing
/// required field); then nothing of the object can be carried.
pub fn round_trip<T: DeserializeOwned + Serialize>(
    source: &Value,
    findings: &mut Findings,
) -> Result<Value, (String, String)> {
    let typed: T = serde_path_to_error::deserialize(source.clone())
        .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
    let back = serde_json::to_value(&typed).map_err(|e| (String::new(), e.to_string()))?;
    let mut lost = Vec::new();
    lost_fields(source, &back, "", &mut lost);
    for path in lost {
        findings.push(path, NO_EQUIVALENT);
    }
    Ok(back)
}

/// Appends the paths of the fields set in `source` but absent from `back`. Empty values (null,
/// false, "", [], {}) are defaults, not losses.
pub fn lost_fields(source: &Value, back: &Value, path: &str, lost: &mut Vec<String>) {
    match (source, back) {
        (Value::Object(source), Value::Object(back)) => {
            for (key, value) in source {
                if is_empty(value) {
                    continue;
                }
                let inner = join(path, key);
                match back.get(key) {
                    Some(kept) => lost_fields(value, kept, &inner, lost),
                    None => lost.push(inner),
                }
            }
        }
        (Value::Array(source), Value::Array(back)) => {
            for (i, (value, kept)) in source.iter().zip(back).enumerate() {
                lost_fields(value, kept, &format!("{path}[{i}]"), lost);
            }
        }
        _ => {}
    }
}

/// Whether a value is a default that carries nothing.
#[must_use]
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

/// `path.key`, or `key` at the top.
#[must_use]
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The metadata a converted object keeps: name, namespace, labels and annotations. What the
/// API server writes (uid, resourceVersion, managedFields, …) is not a user's to carry.
#[must_use]
pub fn metadata(source: &Value) -> Value {
    let mut out = Map::new();
    for key in ["name", "generateName", "namespace", "labels", "annotations"] {
        if let Some(value) = source.get(key).filter(|v| !is_empty(v)) {
            out.insert(key.to_string(), value.clone());
        }
    }
    Value::Object(out)
}

/// Removes `key` from the object at `value` and records it at `path.key` with `reason`.
pub fn drop_field(value: &mut Value, path: &str, key: &str, reason: &str, findings: &mut Findings) {
    if let Some(map) = value.as_object_mut()
        && let Some(removed) = map.remove(key)
        && !removed.is_null()
    {
        findings.push(join(path, key), reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lost_fields_name_what_the_round_trip_dropped_and_skip_defaults() {
        let cases = [
            (json!({"a": 1, "b": 2}), json!({"a": 1}), vec!["b"]),
            (
                json!({"a": {"b": {"c": 1}}}),
                json!({"a": {"b": {}}}),
                vec!["a.b.c"],
            ),
            (
                json!({"s": [{"x": 1}, {"y": 2}]}),
                json!({"s": [{"x": 1}, {}]}),
                vec!["s[1].y"],
            ),
            (
                json!({"a": false, "b": null, "c": [], "d": ""}),
                json!({}),
                vec![],
            ),
            (json!({"a": 1}), json!({"a": 1}), vec![]),
        ];
        for (source, back, expected) in cases {
            let mut lost = Vec::new();
            lost_fields(&source, &back, "", &mut lost);
            assert_eq!(lost, expected, "source {source}, back {back}");
        }
    }

    #[test]
    fn metadata_keeps_what_users_write_only() {
        let source = json!({"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "1",
            "labels": {"k": "v"}, "annotations": {}, "creationTimestamp": null});
        assert_eq!(
            metadata(&source),
            json!({"name": "a", "namespace": "n", "labels": {"k": "v"}})
        );
    }
}
