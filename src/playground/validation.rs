//! Structural-schema handling for custom resources: pruning of unknown fields, defaulting and
//! validation against a CRD's `openAPIV3Schema`, with field causes as the real server reports
//! them. Pure.

use super::error::Cause;
use serde_json::{Map, Value};

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

struct Ctx {
    causes: Vec<Cause>,
    /// Unknown fields removed by pruning (rejected under `fieldValidation=Strict`).
    pruned: Vec<String>,
}

/// Remove the keys `keep` rejects, recording their paths.
fn prune(map: &mut Map<String, Value>, path: &str, ctx: &mut Ctx, keep: impl Fn(&str) -> bool) {
    let gone: Vec<String> = map.keys().filter(|k| !keep(k)).cloned().collect();
    for k in gone {
        map.remove(&k);
        ctx.pruned.push(join(path, &k));
    }
}

impl Ctx {
    fn invalid(&mut self, path: &str, value: &Value, detail: String) {
        self.causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {detail}", shown(value)),
            field: path.to_string(),
        });
    }
}

/// Prune, default and validate a custom resource in place (the whole object; `metadata`,
/// `apiVersion` and `kind` are left to the server). Returns the field causes of every violation
/// and the paths of the unknown fields that were pruned.
pub fn prune_default_validate(schema: &Value, obj: &mut Value) -> (Vec<Cause>, Vec<String>) {
    let mut ctx = Ctx {
        causes: Vec::new(),
        pruned: Vec::new(),
    };
    let Value::Object(map) = obj else {
        ctx.invalid("", obj, "must be of type object".into());
        return (ctx.causes, ctx.pruned);
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    if !preserve {
        prune(map, "", &mut ctx, |k| {
            matches!(k, "apiVersion" | "kind" | "metadata")
                || props.is_some_and(|p| p.contains_key(k))
        });
    }
    if let Some(props) = props {
        for (k, sub) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            fill_default(map, k, sub);
            if let Some(v) = map.get_mut(k) {
                node(sub, v, k, &mut ctx);
            }
        }
    }
    required(schema, map, "", &mut ctx);
    (ctx.causes, ctx.pruned)
}

fn fill_default(map: &mut Map<String, Value>, k: &str, sub: &Value) {
    let nullable = flag(sub, "nullable");
    if map.get(k).is_some_and(Value::is_null) && !nullable {
        map.remove(k);
    }
    if !map.contains_key(k)
        && let Some(d) = sub.get("default")
    {
        map.insert(k.to_string(), d.clone());
    }
}

fn required(schema: &Value, map: &Map<String, Value>, path: &str, ctx: &mut Ctx) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(r) {
            ctx.causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: join(path, r),
            });
        }
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn node(schema: &Value, v: &mut Value, path: &str, ctx: &mut Ctx) {
    if v.is_null() {
        if !flag(schema, "nullable") {
            ctx.invalid(
                path,
                v,
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("object")
                ),
            );
        }
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    let actual = type_name(v);
    if int_or_string {
        if actual != "integer" && actual != "string" {
            ctx.invalid(
                path,
                v,
                format!("{path} in body must be of type integer or string: \"{actual}\""),
            );
            return;
        }
    } else if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let ok = want == actual || (want == "number" && actual == "integer");
        if !ok {
            ctx.invalid(
                path,
                v,
                format!("{path} in body must be of type {want}: \"{actual}\""),
            );
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let supported = options.iter().map(shown).collect::<Vec<_>>().join(", ");
        ctx.causes.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {supported}",
                shown(v)
            ),
            field: path.to_string(),
        });
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            let excl_min = flag(schema, "exclusiveMinimum");
            let excl_max = flag(schema, "exclusiveMaximum");
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl_min && x == min))
            {
                let v = v.clone();
                ctx.invalid(
                    path,
                    &v,
                    format!("{path} in body should be greater than or equal to {min}"),
                );
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl_max && x == max))
            {
                let v = v.clone();
                ctx.invalid(
                    path,
                    &v,
                    format!("{path} in body should be less than or equal to {max}"),
                );
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                let v = v.clone();
                ctx.invalid(
                    path,
                    &v,
                    format!("{path} in body should be at least {min} chars long"),
                );
            } else if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                let v = v.clone();
                ctx.invalid(
                    path,
                    &v,
                    format!("{path} in body may not be longer than {max}"),
                );
            } else if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && regex::Regex::new(p).is_ok_and(|re| !re.is_match(s))
            {
                let v = v.clone();
                ctx.invalid(path, &v, format!("{path} in body should match '{p}'"));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                ctx.causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {n}: {path} in body should have at least {min} items"
                    ),
                    field: path.to_string(),
                });
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                ctx.causes.push(Cause {
                    reason: "TooMany".into(),
                    message: format!("Too many: {n}: must have at most {max} items"),
                    field: path.to_string(),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    node(item_schema, item, &format!("{path}[{i}]"), ctx);
                }
            }
        }
        Value::Object(map) => object(schema, map, path, ctx),
        _ => {}
    }
    for branch in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut copy = v.clone();
        node(branch, &mut copy, path, ctx);
    }
    let count_ok = |key: &str| -> Option<usize> {
        let branches = schema.get(key).and_then(Value::as_array)?;
        Some(
            branches
                .iter()
                .filter(|b| {
                    let mut sub = Ctx {
                        causes: Vec::new(),
                        pruned: Vec::new(),
                    };
                    let mut copy = v.clone();
                    node(b, &mut copy, path, &mut sub);
                    sub.causes.is_empty()
                })
                .count(),
        )
    };
    if count_ok("anyOf") == Some(0) {
        let v = v.clone();
        ctx.invalid(
            path,
            &v,
            format!("{path} in body must match at least one schema (anyOf)"),
        );
    }
    if count_ok("oneOf").is_some_and(|n| n != 1) {
        let v = v.clone();
        ctx.invalid(
            path,
            &v,
            format!("{path} in body must validate one and only one schema (oneOf)"),
        );
    }
}

fn object(schema: &Value, map: &mut Map<String, Value>, path: &str, ctx: &mut Ctx) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    if let Some(extra) = additional {
        for (k, v) in map.iter_mut() {
            node(extra, v, &join(path, k), ctx);
        }
    } else {
        if props.is_some() && !preserve {
            prune(map, path, ctx, |k| props.is_some_and(|p| p.contains_key(k)));
        }
        if props.is_none() && !preserve && !flag(schema, "x-kubernetes-embedded-resource") {
            prune(map, path, ctx, |_| false);
        }
    }
    if let Some(props) = props {
        for (k, sub) in props {
            fill_default(map, k, sub);
            if let Some(v) = map.get_mut(k) {
                node(sub, v, &join(path, k), ctx);
            }
        }
    }
    required(schema, map, path, ctx);
    let n = map.len() as u64;
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && n < min
    {
        ctx.causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("{path} in body should have at least {min} properties"),
            field: path.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "minLength": 1},
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
            "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
            "port": {"x-kubernetes-int-or-string": true},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}}})
    }

    #[test]
    fn defaults_prunes_and_accepts_a_valid_object() {
        let mut obj = json!({"spec": {"image": "x", "port": "http", "unknown": 1, "extra": {"any": {"thing": 1}}}, "junk": true});
        let (causes, pruned) = prune_default_validate(&schema(), &mut obj);
        assert!(causes.is_empty(), "{causes:?}");
        assert_eq!(pruned, vec!["junk", "spec.unknown"]);
        assert_eq!(
            obj,
            json!({"spec": {"image": "x", "port": "http", "replicas": 1, "mode": "fast", "extra": {"any": {"thing": 1}}}})
        );
    }

    #[test]
    fn reports_each_violation_with_its_field() {
        let mut obj = json!({"spec": {"replicas": 11, "mode": "warp", "port": true}});
        let fields: Vec<_> = prune_default_validate(&schema(), &mut obj)
            .0
            .into_iter()
            .map(|c| (c.field, c.reason))
            .collect();
        assert_eq!(
            fields,
            vec![
                (
                    "spec.mode".to_string(),
                    "FieldValueNotSupported".to_string()
                ),
                ("spec.port".to_string(), "FieldValueInvalid".to_string()),
                ("spec.replicas".to_string(), "FieldValueInvalid".to_string()),
                ("spec.image".to_string(), "FieldValueRequired".to_string()),
            ]
        );
    }
}
