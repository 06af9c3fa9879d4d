//! Server-side apply and `managedFields`: field sets per manager (FieldsV1), conflict detection
//! between managers, and the apply merge. Pure functions over JSON.

use super::error::{ApiError, Cause};
use super::patch::ListStrategy;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// One path element in FieldsV1 notation: `f:name`, `k:{"name":"app"}` or `v:"x"`.
pub type Path = Vec<String>;
/// A set of owned leaf fields.
pub type FieldSet = BTreeSet<Path>;
/// Resolves how a list merges, from the map-key chain above it and its field name.
pub type Lists<'a> = &'a dyn Fn(&[String], &str) -> ListStrategy;

/// Metadata fields that are never owned.
const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// The leaf fields an object sets (excluding identity and system metadata).
pub fn field_set(obj: &Value, lists: Lists) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(map) = obj {
        for (k, v) in map {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if !SYSTEM_META.contains(&mk.as_str()) {
                            walk(
                                mv,
                                &mut vec![format!("f:{k}"), format!("f:{mk}")],
                                &mut vec![k.clone(), mk.clone()],
                                lists,
                                &mut out,
                            );
                        }
                    }
                }
                continue;
            }
            walk(
                v,
                &mut vec![format!("f:{k}")],
                &mut vec![k.clone()],
                lists,
                &mut out,
            );
        }
    }
    out
}

fn key_elem(key: &str, item: &Value) -> Option<String> {
    item.get(key).map(|kv| format!("k:{}", json!({ key: kv })))
}

fn walk(v: &Value, path: &mut Path, keys: &mut Vec<String>, lists: Lists, out: &mut FieldSet) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                path.push(format!("f:{k}"));
                keys.push(k.clone());
                walk(child, path, keys, lists, out);
                keys.pop();
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let (parent, field) = keys.split_at(keys.len().saturating_sub(1));
            let field = field.first().map(String::as_str).unwrap_or_default();
            match lists(parent, field) {
                ListStrategy::Key(key) => {
                    for item in items {
                        match key_elem(&key, item) {
                            Some(elem) => {
                                path.push(elem);
                                walk(item, path, keys, lists, out);
                                path.pop();
                            }
                            None => {
                                out.insert(path.clone());
                            }
                        }
                    }
                }
                ListStrategy::Set => {
                    for item in items {
                        path.push(format!("v:{item}"));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                ListStrategy::Atomic => {
                    out.insert(path.clone());
                }
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// Render a field set as a FieldsV1 object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for (i, elem) in path.iter().enumerate() {
            let entry = node
                .entry(elem.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            if elem.starts_with("k:") && i + 1 < path.len() {
                next.entry(".".to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            node = next;
        }
    }
    Value::Object(root)
}

/// Read a FieldsV1 object back into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn go(v: &Value, path: &mut Path, out: &mut FieldSet) {
        let children: Vec<_> = v
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| *k != ".").collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, child) in children {
            path.push(k.clone());
            go(child, path, out);
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

fn step<'a>(v: &'a Value, elem: &str) -> Option<&'a Value> {
    if let Some(name) = elem.strip_prefix("f:") {
        return v.get(name);
    }
    let items = v.as_array()?;
    if let Some(k) = elem.strip_prefix("k:") {
        let want: Map<String, Value> = serde_json::from_str(k).ok()?;
        return items
            .iter()
            .find(|i| want.iter().all(|(wk, wv)| i.get(wk) == Some(wv)));
    }
    let want: Value = serde_json::from_str(elem.strip_prefix("v:")?).ok()?;
    items.iter().find(|i| **i == want)
}

/// The value at a field path.
pub fn value_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |node, elem| step(node, elem))
}

/// Remove the value at a field path (and the list item when the path names its key field).
fn remove_at(v: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    // A leaf that is the merge key of a keyed item removes the whole item.
    if let (Some(name), Some(item_elem)) = (last.strip_prefix("f:"), parent_path.last())
        && let Some(k) = item_elem.strip_prefix("k:")
        && serde_json::from_str::<Map<String, Value>>(k).is_ok_and(|m| m.contains_key(name))
    {
        remove_at(v, parent_path);
        return;
    }
    let mut node = v;
    for elem in parent_path {
        let next = if let Some(name) = elem.strip_prefix("f:") {
            node.get_mut(name)
        } else {
            let Some(items) = node.as_array_mut() else {
                return;
            };
            let idx = items
                .iter()
                .position(|i| step(&Value::Array(vec![i.clone()]), elem).is_some());
            match idx {
                Some(i) => items.get_mut(i),
                None => None,
            }
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(m) = node.as_object_mut() {
            m.remove(name);
        }
    } else if let Some(items) = node.as_array_mut() {
        items.retain(|i| step(&Value::Array(vec![i.clone()]), last).is_none());
    }
}

/// Merge an applied configuration into an object: maps recursively, keyed lists by key,
/// other lists replaced.
fn apply_merge(target: &mut Value, applied: &Value, keys: &mut Vec<String>, lists: Lists) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, av) in a {
                keys.push(k.clone());
                match t.get_mut(k) {
                    Some(tv) => apply_merge(tv, av, keys, lists),
                    None => {
                        t.insert(k.clone(), av.clone());
                    }
                }
                keys.pop();
            }
        }
        (t @ Value::Array(_), Value::Array(a)) => {
            let (parent, field) = keys.split_at(keys.len().saturating_sub(1));
            let field = field.first().cloned().unwrap_or_default();
            let Value::Array(titems) = t else { return };
            match lists(parent, &field) {
                ListStrategy::Key(key) => {
                    for item in a {
                        match titems
                            .iter_mut()
                            .find(|x| x.get(&key).is_some() && x.get(&key) == item.get(&key))
                        {
                            Some(existing) => apply_merge(existing, item, keys, lists),
                            None => titems.push(item.clone()),
                        }
                    }
                }
                ListStrategy::Set => {
                    for item in a {
                        if !titems.contains(item) {
                            titems.push(item.clone());
                        }
                    }
                }
                ListStrategy::Atomic => *titems = a.clone(),
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
pub struct Managed {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: Option<String>,
    pub time: String,
    pub fields: FieldSet,
}

/// Read `metadata.managedFields`.
pub fn read_managed(obj: &Value) -> Vec<Managed> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| Managed {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("Update")
                        .to_string(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    time: e
                        .get("time")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Write `metadata.managedFields` (entries with no fields are dropped, as the server does).
pub fn write_managed(obj: &mut Value, entries: &[Managed]) {
    let rendered: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let (Some(sub), Some(m)) = (&e.subresource, v.as_object_mut()) {
                m.insert("subresource".into(), Value::String(sub.clone()));
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if rendered.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(rendered));
        }
    }
}

/// Who is writing, for managedFields.
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub time: &'a str,
}

/// Record a non-apply write: the writer takes the leaf fields that changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, writer: &Writer, lists: Lists) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_set = field_set(new, lists);
    let changed: FieldSet = match old {
        None => new_set.clone(),
        Some(old) => {
            let old_set = field_set(old, lists);
            new_set
                .iter()
                .filter(|p| !old_set.contains(*p) || value_at(old, p) != value_at(new, p))
                .cloned()
                .collect()
        }
    };
    for e in &mut entries {
        e.fields.retain(|p| new_set.contains(p));
        if e.manager != writer.manager {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        let sub = writer.subresource.map(str::to_string);
        match entries.iter_mut().find(|e| {
            e.manager == writer.manager && e.operation == "Update" && e.subresource == sub
        }) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = writer.time.to_string();
            }
            None => entries.push(Managed {
                manager: writer.manager.to_string(),
                operation: "Update".into(),
                api_version: writer.api_version.to_string(),
                subresource: sub,
                time: writer.time.to_string(),
                fields: changed,
            }),
        }
    }
    write_managed(new, &entries);
}

/// Server-side apply of `applied` by `writer` onto `current` (empty for a new object).
/// Returns the merged object with managedFields updated.
///
/// # Errors
/// `Conflict` listing each field another manager owns with a different value, unless `force`.
pub fn server_side_apply(
    current: &Value,
    applied: &Value,
    writer: &Writer,
    force: bool,
    lists: Lists,
) -> Result<Value, ApiError> {
    let mut entries = read_managed(current);
    let new_set = field_set(applied, lists);
    let mut conflicts = Vec::new();
    for e in entries.iter_mut().filter(|e| e.manager != writer.manager) {
        let clashing: Vec<Path> = e
            .fields
            .intersection(&new_set)
            .filter(|p| value_at(current, p) != value_at(applied, p))
            .cloned()
            .collect();
        for p in clashing {
            if force {
                e.fields.remove(&p);
            } else {
                conflicts.push((e.manager.clone(), e.api_version.clone(), p));
            }
        }
    }
    if !conflicts.is_empty() {
        let dotted = |p: &Path| {
            p.iter()
                .map(|e| {
                    e.strip_prefix("f:")
                        .map(|f| format!(".{f}"))
                        .unwrap_or_else(|| format!("[{}]", &e[2..]))
                })
                .collect::<String>()
        };
        let causes: Vec<Cause> = conflicts
            .iter()
            .map(|(m, _, p)| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with \"{m}\""),
                field: dotted(p),
            })
            .collect();
        let list = conflicts
            .iter()
            .map(|(m, v, p)| format!("- {m} ({v}): {}", dotted(p)))
            .collect::<Vec<_>>()
            .join("\n");
        let _ = causes;
        return Err(ApiError::Conflict {
            resource: String::new(),
            name: String::new(),
            message: format!("Apply failed with {} conflict(s):\n{list}", conflicts.len()),
        });
    }
    let sub = writer.subresource.map(str::to_string);
    let previous: FieldSet = entries
        .iter()
        .find(|e| e.manager == writer.manager && e.operation == "Apply" && e.subresource == sub)
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .filter(|e| e.manager != writer.manager)
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut merged = current.clone();
    for gone in previous.difference(&new_set) {
        if !others.contains(gone) {
            remove_at(&mut merged, gone);
        }
    }
    apply_merge(&mut merged, applied, &mut Vec::new(), lists);
    entries.retain(|e| {
        !(e.manager == writer.manager && e.operation == "Apply" && e.subresource == sub)
    });
    for e in entries.iter_mut().filter(|e| e.manager == writer.manager) {
        e.fields.retain(|p| !new_set.contains(p));
    }
    entries.push(Managed {
        manager: writer.manager.to_string(),
        operation: "Apply".into(),
        api_version: writer.api_version.to_string(),
        subresource: sub,
        time: writer.time.to_string(),
        fields: new_set,
    });
    write_managed(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playground::patch::builtin_list_strategy;

    fn w(m: &str) -> Writer<'_> {
        Writer {
            manager: m,
            api_version: "apps/v1",
            subresource: None,
            time: "t",
        }
    }

    #[test]
    fn apply_removes_fields_the_manager_dropped_and_keeps_others() {
        let lists: Lists = &builtin_list_strategy;
        let a1 = json!({"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2}});
        let obj = server_side_apply(
            &json!({"metadata": {"name": "x"}}),
            &a1,
            &w("one"),
            false,
            lists,
        )
        .unwrap();
        let a2 = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 2}});
        let obj = server_side_apply(&obj, &a2, &w("one"), false, lists).unwrap();
        assert_eq!(obj["metadata"]["labels"], json!({"a": "1"}));
        let conflict = server_side_apply(
            &obj,
            &json!({"spec": {"replicas": 3}}),
            &w("two"),
            false,
            lists,
        )
        .unwrap_err();
        assert_eq!(conflict.code(), 409);
        let forced = server_side_apply(
            &obj,
            &json!({"spec": {"replicas": 3}}),
            &w("two"),
            true,
            lists,
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let managers: Vec<_> = read_managed(&forced)
            .into_iter()
            .map(|m| (m.manager, m.fields.len()))
            .collect();
        assert_eq!(
            managers,
            vec![("one".to_string(), 1), ("two".to_string(), 1)]
        );
    }
}
