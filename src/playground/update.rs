//! Update semantics: PUT and PATCH (merge, JSON, strategic, apply) of objects and of their
//! status and scale subresources, with resourceVersion preconditions, generation bumps,
//! no-op detection and managedFields. Touches the store through `ops::Api`.

use super::apply::{self, Lists, Writer};
use super::error::ApiError;
use super::ops::{
    Api, PatchType, Target, WriteOpts, meta, now, spec_part, str_of, without_volatile,
};
use super::patch;
use super::selectors::LabelSelector;
use super::store::Write;
use serde_json::{Value, json};

impl Api {
    /// PUT: replace an object (or its status, or its scale).
    ///
    /// # Errors
    /// `NotFound`, `Conflict` on a stale resourceVersion, `Invalid`, `BadRequest`.
    pub fn update(&self, t: &Target, body: Value, opts: &WriteOpts) -> Result<Value, ApiError> {
        let name = Self::name_of(t)?.to_string();
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        if t.subresource.as_deref() == Some("scale") {
            return self.write_scale(t, opts, |_| Ok(body));
        }
        if let Some(body_name) = str_of(&body, "/metadata/name")
            && body_name != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body = Self::intake(&t.def, body);
        self.modify(t, &name, opts, move |_cur| Ok(Replacement::Full(body)))
    }

    /// PATCH an object, its status or its scale.
    ///
    /// # Errors
    /// As `update`, plus `UnsupportedMediaType` for a strategic merge patch of a custom resource.
    pub fn patch(
        &self,
        t: &Target,
        kind: PatchType,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        let name = Self::name_of(t)?.to_string();
        if kind == PatchType::Strategic
            && !t.def.builtin
            && t.subresource.as_deref() != Some("scale")
        {
            return Err(ApiError::UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    .into(),
            ));
        }
        // An apply configuration is an object; anything else would reach the object-only
        // steps below (found by the `playground_request` fuzz target, docs/fuzzing.md).
        if kind == PatchType::Apply && !body.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON or YAML object".into(),
            ));
        }
        if kind == PatchType::Apply && opts.field_manager.is_empty() {
            return Err(ApiError::BadRequest(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set".into(),
            ));
        }
        if t.subresource.as_deref() == Some("scale") {
            return self.write_scale(t, opts, |scale| {
                let mut scale = scale;
                apply_patch(
                    kind,
                    &mut scale,
                    &body,
                    &Writer {
                        manager: &opts.field_manager,
                        api_version: "autoscaling/v1",
                        subresource: None,
                        time: &now(),
                    },
                    opts.force,
                    &patch::builtin_list_strategy,
                )?;
                Ok(scale)
            });
        }
        if kind == PatchType::Apply {
            let key = Self::key(t, &name);
            if self.store.collection(&t.def.storage).get(&key).is_none() {
                if str_of(&body, "/metadata/name").is_some_and(|n| n != name) {
                    return Err(ApiError::BadRequest(
                        "the name of the object does not match the name on the URL".into(),
                    ));
                }
                let time = now();
                let api_version = t.def.api_version();
                let lists = Self::lists(&t.def);
                let writer = Self::writer(t, opts, &api_version, &time);
                let mut fresh = apply::server_side_apply(
                    &json!({"metadata": {}}),
                    &body,
                    &writer,
                    opts.force,
                    &*lists,
                )?;
                meta(&mut fresh).insert("name".into(), json!(name));
                let managed = fresh.pointer("/metadata/managedFields").cloned();
                return match self.create_with(t, fresh, opts, managed) {
                    Err(ApiError::AlreadyExists { .. }) => self.patch(t, kind, body, opts),
                    other => other,
                };
            }
        }
        let def = t.def.clone();
        self.modify(t, &name, opts, move |cur| {
            let mut base = Self::present(&def, cur);
            let time = now();
            let api_version = def.api_version();
            let lists = Self::lists(&def);
            let writer = Writer {
                manager: &opts.field_manager,
                api_version: &api_version,
                subresource: t.subresource.as_deref().filter(|s| *s == "status"),
                time: &time,
            };
            apply_patch(kind, &mut base, &body, &writer, opts.force, &*lists)?;
            let base = Self::intake(&def, base);
            Ok(if kind == PatchType::Apply {
                Replacement::Applied(base)
            } else {
                Replacement::Full(base)
            })
        })
    }

    /// Shared read-modify-write of update and patch.
    fn modify(
        &self,
        t: &Target,
        name: &str,
        opts: &WriteOpts,
        make: impl FnOnce(&Value) -> Result<Replacement, ApiError>,
    ) -> Result<Value, ApiError> {
        let key = Self::key(t, name);
        let def = t.def.clone();
        let status_only = t.subresource.as_deref() == Some("status");
        let resource = def.storage.display();
        let not_found = Self::not_found(t, name);
        let (stored, (changed, dry)) = self.store.collection(&def.storage).write(&self.store, &key, |cur| {
            let cur = cur.ok_or(not_found)?;
            let replacement = make(cur)?;
            let (mut next, applied) = match replacement {
                Replacement::Full(v) => (v, false),
                Replacement::Applied(v) => (v, true),
            };
            if !next.is_object() {
                return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
            }
            if let Some(rv) = str_of(&next, "/metadata/resourceVersion").filter(|rv| !rv.is_empty())
                && Some(rv) != str_of(cur, "/metadata/resourceVersion")
            {
                return Err(ApiError::stale(&resource, name));
            }
            if let Some(uid) = str_of(&next, "/metadata/uid").filter(|u| !u.is_empty())
                && Some(uid) != str_of(cur, "/metadata/uid")
            {
                return Err(ApiError::Conflict { resource: resource.clone(), name: name.to_string(), message: "Precondition failed: UID in precondition does not match the UID of the object".into() });
            }
            if status_only {
                let mut merged = (**cur).clone();
                if let Some(m) = merged.as_object_mut() {
                    match next.get("status") {
                        Some(s) => m.insert("status".into(), s.clone()),
                        None => m.remove("status"),
                    };
                }
                if applied {
                    let mf = next.pointer("/metadata/managedFields").cloned();
                    if let Some(mf) = mf {
                        meta(&mut merged).insert("managedFields".into(), mf);
                    }
                }
                next = merged;
            } else {
                let m = meta(&mut next);
                for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name", "generation"] {
                    match cur.pointer(&format!("/metadata/{field}")) {
                        Some(v) => m.insert(field.into(), v.clone()),
                        None => m.remove(field),
                    };
                }
                if !applied {
                    match cur.pointer("/metadata/managedFields") {
                        Some(v) => m.insert("managedFields".into(), v.clone()),
                        None => m.remove("managedFields"),
                    };
                }
                if let Some(o) = next.as_object_mut() {
                    o.insert("apiVersion".into(), cur.get("apiVersion").cloned().unwrap_or_default());
                    o.insert("kind".into(), json!(def.kind));
                    if def.status {
                        match cur.get("status") {
                            Some(s) => o.insert("status".into(), s.clone()),
                            None => o.remove("status"),
                        };
                    }
                }
                if def.kind == "Service"
                    && next.pointer("/spec/clusterIP").is_none()
                    && let (Some(ip), Some(spec)) = (cur.pointer("/spec/clusterIP").cloned(), next.get_mut("spec").and_then(Value::as_object_mut))
                {
                    spec.insert("clusterIP".into(), ip);
                    if let Some(ips) = cur.pointer("/spec/clusterIPs") {
                        spec.insert("clusterIPs".into(), ips.clone());
                    }
                }
                self.admit(&def, &mut next, Some(cur), opts.strict)?;
                if def.generation && spec_part(&def, &next) != spec_part(&def, cur) {
                    let g = cur.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
                    meta(&mut next).insert("generation".into(), json!(g));
                }
            }
            if without_volatile(&next) == without_volatile(cur) {
                return Ok((Write::Keep, (false, None)));
            }
            if !applied {
                let time = now();
                let api_version = def.api_version();
                let lists = Self::lists(&def);
                let writer = Writer { manager: &opts.field_manager, api_version: &api_version, subresource: status_only.then_some("status"), time: &time };
                apply::record_update(Some(cur), &mut next, &writer, &*lists);
            }
            if opts.dry_run {
                return Ok((Write::Keep, (false, Some(next))));
            }
            let finalized = next.pointer("/metadata/deletionTimestamp").is_some()
                && next.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
            Ok((if finalized { Write::Remove } else { Write::Put(next) }, (true, None)))
        }).map_err(|e| match e {
            ApiError::Conflict { resource: r, name: n, message } if r.is_empty() && n.is_empty() => {
                ApiError::Conflict { resource: def.storage.display(), name: name.to_string(), message }
            }
            other => other,
        })?;
        if let Some(dry) = dry {
            return Ok(Self::present(&def, &dry));
        }
        let stored = stored.ok_or_else(|| ApiError::Internal("update stored nothing".into()))?;
        if changed {
            self.after_write(&def, &stored);
        }
        Ok(Self::present(&def, &stored))
    }

    pub(super) fn scale_of(&self, t: &Target, obj: &Value) -> Result<Value, ApiError> {
        let paths = t
            .def
            .scale
            .as_ref()
            .ok_or_else(|| Self::not_found(t, "scale"))?;
        let ptr = |p: &str| p.replace('.', "/");
        let spec = obj
            .pointer(&ptr(&paths.spec_replicas))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let status = obj
            .pointer(&ptr(&paths.status_replicas))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let selector = if t.def.builtin {
            obj.pointer("/spec/selector")
                .map(|s| LabelSelector::from_object(s).to_query())
        } else {
            paths
                .label_selector
                .as_ref()
                .and_then(|p| obj.pointer(&ptr(p)))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let m = obj.get("metadata").cloned().unwrap_or_default();
        let mut status_obj = json!({"replicas": status});
        if let Some(sel) = selector {
            status_obj["selector"] = json!(sel);
        }
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"),
                "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp"),
            },
            "spec": {"replicas": spec},
            "status": status_obj,
        }))
    }

    fn write_scale(
        &self,
        t: &Target,
        opts: &WriteOpts,
        make: impl FnOnce(Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let name = Self::name_of(t)?.to_string();
        let paths = t
            .def
            .scale
            .clone()
            .ok_or_else(|| Self::not_found(t, &name))?;
        let main = Target {
            subresource: None,
            ..t.clone()
        };
        let this = self;
        let stored = self.modify(&main, &name, opts, |cur| {
            let scale = this.scale_of(t, cur)?;
            let wanted = make(scale)?;
            let replicas = wanted
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    &name,
                    "spec.replicas",
                    "FieldValueInvalid",
                    format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                ));
            }
            let mut next = Self::present(&t.def, cur);
            if let Some(rv) = str_of(&wanted, "/metadata/resourceVersion") {
                meta(&mut next).insert("resourceVersion".into(), json!(rv));
            }
            set_path(&mut next, &paths.spec_replicas, json!(replicas));
            Ok(Replacement::Full(Self::intake(&t.def, next)))
        })?;
        let raw = Self::intake(&t.def, stored);
        self.scale_of(t, &raw)
    }
}

pub(super) enum Replacement {
    Full(Value),
    Applied(Value),
}

fn apply_patch(
    kind: PatchType,
    base: &mut Value,
    body: &Value,
    writer: &Writer,
    force: bool,
    lists: Lists,
) -> Result<(), ApiError> {
    match kind {
        PatchType::Merge => patch::merge_patch(base, body),
        PatchType::Json => patch::json_patch(base, body)?,
        PatchType::Strategic => patch::strategic_merge(base, body)?,
        PatchType::Apply => *base = apply::server_side_apply(base, body, writer, force, lists)?,
    }
    Ok(())
}

fn set_path(v: &mut Value, dotted: &str, value: Value) {
    let keys: Vec<&str> = dotted.trim_start_matches('.').split('.').collect();
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut node = v;
    for k in parents {
        let Some(m) = node.as_object_mut() else {
            return;
        };
        node = m.entry(k.to_string()).or_insert_with(|| json!({}));
    }
    if let Some(m) = node.as_object_mut() {
        m.insert(last.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playground::registry::Registry;
    use crate::playground::store::Store;
    use std::sync::Arc;

    /// Found by the `playground_request` fuzz target (docs/fuzzing.md): a server-side apply
    /// whose body is not an object, to an object that does not exist yet, panicked in the
    /// server ("metadata on a non-object") instead of answering 400.
    #[test]
    fn apply_of_a_body_that_is_not_an_object_is_a_bad_request() {
        let (store, _removals) = Store::new(100);
        let registry = Arc::new(Registry::with_builtins());
        // Namespaces are cluster-scoped, so none has to exist first.
        let def = registry.get("", "v1", "namespaces").expect("namespaces");
        let api = Api::new(store, registry);
        let opts = WriteOpts {
            field_manager: "fuzz".into(),
            ..WriteOpts::default()
        };
        for name in ["absent", "present"] {
            let target = Target {
                def: def.clone(),
                namespace: None,
                name: Some(name.into()),
                subresource: None,
            };
            if name == "present" {
                let body = json!({"metadata": {"name": name, "labels": {"a": "b"}}});
                api.patch(&target, PatchType::Apply, body, &opts)
                    .expect("apply of an object");
            }
            for body in [json!([1]), json!("text"), json!(null), json!(3)] {
                let got = api.patch(&target, PatchType::Apply, body.clone(), &opts);
                assert!(
                    matches!(&got, Err(ApiError::BadRequest(m)) if m.contains("must be a JSON or YAML object")),
                    "apply of {body} to the {name} object: {got:?}"
                );
            }
        }
    }
}
