//! Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`, with NAME and AGE for every
//! kind, a few familiar columns for built-ins and `additionalPrinterColumns` for custom
//! resources. Pure.

use super::registry::{PrinterColumn, ResourceDef};
use serde_json::{Value, json};

fn col(name: &str, type_: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

/// Human age (`5s`, `3m2s`, `4h`, `2d`), as kubectl prints it.
pub fn human_age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = jiff::Timestamp::now().duration_since(t).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Evaluate the simple JSONPath subset printer columns use: `.a.b`, `.a[0].b`,
/// `.a[?(@.type=="Ready")].status`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = obj;
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (field, index) = match part.split_once('[') {
            Some((f, rest)) => (f, Some(rest.trim_end_matches(']'))),
            None => (part, None),
        };
        if !field.is_empty() {
            node = node.get(field)?;
        }
        if let Some(idx) = index {
            if let Some(filter) = idx.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (k, v) = filter.split_once("==")?;
                let v = v.trim_matches(|c| c == '"' || c == '\'');
                node = node
                    .as_array()?
                    .iter()
                    .find(|i| i.get(k).and_then(Value::as_str) == Some(v))?;
            } else {
                node = node.get(idx.parse::<usize>().ok()?)?;
            }
        }
    }
    Some(node)
}

fn cell(v: Option<&Value>, type_: &str) -> Value {
    match v {
        // A real API server leaves a missing value null whatever the column type, and kubectl
        // prints `<none>` for it.
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if type_ == "date" => json!(human_age(Some(s))),
        Some(Value::String(s)) => json!(s),
        Some(Value::Array(a)) => json!(
            a.iter()
                .map(|x| x
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(other) => other.clone(),
    }
}

fn builtin_columns(kind: &str) -> Vec<PrinterColumn> {
    let c = |name: &str, type_: &str, path: &str| PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        json_path: path.into(),
        priority: 0,
        description: String::new(),
    };
    match kind {
        "Deployment" => vec![
            c("Ready", "string", ""),
            c("Up-to-date", "integer", ".status.updatedReplicas"),
            c("Available", "integer", ".status.availableReplicas"),
        ],
        "ReplicaSet" => vec![
            c("Desired", "integer", ".spec.replicas"),
            c("Current", "integer", ".status.replicas"),
            c("Ready", "integer", ".status.readyReplicas"),
        ],
        "Pod" => vec![
            c("Ready", "string", ""),
            c("Status", "string", ".status.phase"),
            c(
                "Restarts",
                "integer",
                ".status.containerStatuses[0].restartCount",
            ),
        ],
        "Job" => vec![c("Status", "string", ""), c("Completions", "string", "")],
        "Service" => vec![
            c("Type", "string", ".spec.type"),
            c("Cluster-IP", "string", ".spec.clusterIP"),
        ],
        "Namespace" => vec![c("Status", "string", ".status.phase")],
        "Event" => vec![
            c("Type", "string", ".type"),
            c("Reason", "string", ".reason"),
            c("Object", "string", ""),
            c("Message", "string", ".message"),
        ],
        _ => Vec::new(),
    }
}

fn special(kind: &str, name: &str, obj: &Value) -> Option<Value> {
    let n = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    match (kind, name) {
        ("Deployment", "Ready") => Some(json!(format!(
            "{}/{}",
            n("/status/readyReplicas"),
            n("/spec/replicas")
        ))),
        ("Pod", "Ready") => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let ready = statuses.map_or(0, |s| {
                s.iter()
                    .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                    .count()
            });
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            Some(json!(format!("{ready}/{total}")))
        }
        ("Job", "Status") => {
            let has = |ty: &str| {
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else {
                "Running"
            };
            Some(json!(status))
        }
        ("Job", "Completions") => {
            let want = obj
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            Some(json!(format!("{}/{want}", n("/status/succeeded"))))
        }
        ("Event", "Object") => {
            let k = obj
                .pointer("/involvedObject/kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase();
            let nm = obj
                .pointer("/involvedObject/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Some(json!(format!("{k}/{nm}")))
        }
        _ => None,
    }
}

fn columns(def: &ResourceDef) -> Vec<PrinterColumn> {
    if def.builtin {
        builtin_columns(&def.kind)
    } else {
        def.printer_columns.clone()
    }
}

fn definitions(def: &ResourceDef) -> Vec<Value> {
    let mut out = vec![col(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    )];
    let cols = columns(def);
    for c in &cols {
        out.push(col(&c.name, &c.type_, "", &c.description, c.priority));
    }
    if !cols.iter().any(|c| c.name.eq_ignore_ascii_case("age")) {
        out.push(col("Age", "date", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0));
    }
    out
}

fn row(def: &ResourceDef, obj: &Value) -> Value {
    let mut cells = vec![obj.pointer("/metadata/name").cloned().unwrap_or_default()];
    let cols = columns(def);
    for c in &cols {
        cells.push(
            special(&def.kind, &c.name, obj)
                .unwrap_or_else(|| cell(json_path(obj, &c.json_path), &c.type_)),
        );
    }
    if !cols.iter().any(|c| c.name.eq_ignore_ascii_case("age")) {
        cells.push(json!(human_age(
            obj.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
        )));
    }
    let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or_default()});
    json!({"cells": cells, "object": partial})
}

/// A Table of one object.
pub fn from_object(def: &ResourceDef, obj: &Value) -> Value {
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or_default()},
        "columnDefinitions": definitions(def),
        "rows": [row(def, obj)],
    })
}

/// A Table of a list object.
pub fn from_list(def: &ResourceDef, list: &Value) -> Value {
    let rows: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|o| row(def, o))
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": list.get("metadata").cloned().unwrap_or_default(),
        "columnDefinitions": definitions(def),
        "rows": rows,
    })
}
