//! Validation kube-apiserver applies to the fields of built-in objects that controllers and
//! kubectl users most often get wrong: label keys and values, and in pod specs (Pods and the
//! templates of Deployments, ReplicaSets and Jobs) container names and images, ports and
//! resource quantities (requests, limits, `emptyDir.sizeLimit`). An unparseable quantity fails
//! decoding, a 400 as on a real server; everything else is a 422 cause naming the field. Pure.

use super::error::{ApiError, Cause};
use crate::engine::validate::syntax;
use serde_json::Value;
use std::collections::BTreeSet;

fn cause(reason: &str, field: String, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field,
    }
}

fn invalid(field: String, value: &Value, detail: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    cause(
        "FieldValueInvalid",
        field,
        format!("Invalid value: {shown}: {detail}"),
    )
}

fn labels(obj: &Value, pointer: &str, field: &str, causes: &mut Vec<Cause>) {
    let Some(labels) = obj.pointer(pointer).and_then(Value::as_object) else {
        return;
    };
    for (k, v) in labels {
        if let Err(e) = syntax::qualified_name(k) {
            causes.push(invalid(field.into(), &Value::String(k.clone()), &e));
        }
        if let Err(e) = syntax::label_value(v.as_str().unwrap_or_default()) {
            causes.push(invalid(field.into(), v, &e));
        }
    }
}

fn quantities<'a>(spec: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            for which in ["limits", "requests"] {
                for (name, q) in c["resources"][which].as_object().into_iter().flatten() {
                    out.push((format!("{path}.{list}[{i}].resources.{which}[{name}]"), q));
                }
            }
        }
    }
    for (i, v) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        if let Some(q) = v.pointer("/emptyDir/sizeLimit") {
            out.push((format!("{path}.volumes[{i}].emptyDir.sizeLimit"), q));
        }
    }
    out
}

/// Negative quantities as causes; an unparseable one as the decoding error.
fn quantity_causes(
    kind: &str,
    spec: &Value,
    path: &str,
    causes: &mut Vec<Cause>,
) -> Result<(), ApiError> {
    for (field, q) in quantities(spec, path) {
        // A JSON number is a quantity too (`cpu: 1`).
        let text = q.as_str().map_or_else(|| q.to_string(), str::to_owned);
        match syntax::quantity(&text) {
            Ok(false) => {}
            Ok(true) => causes.push(invalid(field, q, "must be greater than or equal to 0")),
            Err(e) => {
                return Err(ApiError::BadRequest(format!(
                    "{kind} in version \"v1\" cannot be handled as a {kind}: {e}"
                )));
            }
        }
    }
    Ok(())
}

fn port_causes(c: &Value, field: &str, causes: &mut Vec<Cause>) {
    for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
        let pf = format!("{field}.ports[{j}]");
        for (key, required) in [("containerPort", true), ("hostPort", false)] {
            match p.get(key) {
                None if required => causes.push(cause(
                    "FieldValueRequired",
                    format!("{pf}.{key}"),
                    "Required value".into(),
                )),
                Some(v) if !v.as_i64().is_some_and(|n| (1..=65535).contains(&n)) => {
                    causes.push(invalid(
                        format!("{pf}.{key}"),
                        v,
                        "must be between 1 and 65535, inclusive",
                    ))
                }
                _ => {}
            }
        }
        if let Some(name) = p.get("name")
            && let Err(e) = syntax::port_name(name.as_str().unwrap_or_default())
        {
            causes.push(invalid(format!("{pf}.name"), name, &e));
        }
    }
}

fn container_causes(c: &Value, field: &str, names: &mut BTreeSet<String>, causes: &mut Vec<Cause>) {
    let name = c["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            format!("{field}.name"),
            "Required value".into(),
        ));
    } else if let Err(e) = syntax::dns1123_label(name) {
        causes.push(invalid(format!("{field}.name"), &c["name"], &e));
    } else if !names.insert(name.to_owned()) {
        causes.push(cause(
            "FieldValueDuplicate",
            format!("{field}.name"),
            format!("Duplicate value: {name:?}"),
        ));
    }
    if c["image"].as_str().is_none_or(str::is_empty) {
        causes.push(cause(
            "FieldValueRequired",
            format!("{field}.image"),
            "Required value".into(),
        ));
    }
    port_causes(c, field, causes);
}

fn pod_spec_causes(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let mut names = BTreeSet::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            container_causes(c, &format!("{path}.{list}[{i}]"), &mut names, causes);
        }
    }
}

/// Where a kind keeps its pod spec and the pod labels: `(spec pointer, labels pointer, path)`.
fn pod_spec_of(kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match kind {
        "Pod" => Some(("/spec", "/metadata/labels", "spec")),
        "Deployment" | "ReplicaSet" | "Job" => Some((
            "/spec/template/spec",
            "/spec/template/metadata/labels",
            "spec.template.spec",
        )),
        _ => None,
    }
}

/// The field causes of `obj` (metadata labels of every kind, pod specs where there are any).
///
/// # Errors
/// `BadRequest` when a quantity does not parse, as decoding fails on a real server.
pub fn causes(kind: &str, obj: &Value) -> Result<Vec<Cause>, ApiError> {
    let mut causes = Vec::new();
    labels(obj, "/metadata/labels", "metadata.labels", &mut causes);
    let Some((spec_at, labels_at, path)) = pod_spec_of(kind) else {
        return Ok(causes);
    };
    if labels_at != "/metadata/labels" {
        labels(obj, labels_at, "spec.template.metadata.labels", &mut causes);
    }
    if let Some(spec) = obj.pointer(spec_at) {
        quantity_causes(kind, spec, path, &mut causes)?;
        pod_spec_causes(spec, path, &mut causes);
    }
    Ok(causes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({"metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [container]}}}})
    }

    #[test]
    fn fields_are_named_as_kube_apiserver_names_them() {
        let c = |v: Value| causes("Deployment", &deployment(v)).unwrap();
        assert!(c(json!({"name": "web", "image": "nginx", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}})).is_empty());
        let got = c(
            json!({"name": "Web", "ports": [{"containerPort": 0, "name": "HTTP"}],
                           "resources": {"requests": {"cpu": "-1"}}}),
        );
        let fields: Vec<_> = got
            .iter()
            .map(|c| (c.reason.as_str(), c.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "FieldValueInvalid",
                    "spec.template.spec.containers[0].resources.requests[cpu]"
                ),
                ("FieldValueInvalid", "spec.template.spec.containers[0].name"),
                (
                    "FieldValueRequired",
                    "spec.template.spec.containers[0].image"
                ),
                (
                    "FieldValueInvalid",
                    "spec.template.spec.containers[0].ports[0].containerPort"
                ),
                (
                    "FieldValueInvalid",
                    "spec.template.spec.containers[0].ports[0].name"
                ),
            ],
            "{got:#?}"
        );
        assert_eq!(
            got[0].message,
            "Invalid value: \"-1\": must be greater than or equal to 0"
        );
        assert_eq!(
            got[3].message,
            "Invalid value: 0: must be between 1 and 65535, inclusive"
        );
    }

    #[test]
    fn an_unparseable_quantity_fails_decoding() {
        let err = causes(
            "ReplicaSet",
            &deployment(json!({"name": "web", "image": "nginx", "resources": {"limits": {"memory": "invalid"}}})),
        )
        .unwrap_err();
        assert_eq!(err.code(), 400);
        assert_eq!(
            err.to_string(),
            "ReplicaSet in version \"v1\" cannot be handled as a ReplicaSet: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }
}
