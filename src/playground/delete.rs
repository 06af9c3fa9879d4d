//! Deletion semantics: preconditions, propagation policies (Background, Foreground, Orphan),
//! finalizers and `deletionTimestamp`, namespace termination, delete-collection. Touches the
//! store through `ops::Api`; cascading itself is the garbage collector's (`gc`).

use super::error::ApiError;
use super::ops::{Api, DeleteOpts, ListOpts, Target, meta, now, str_of};
use super::store::Write;
use serde_json::{Value, json};

impl Api {
    /// DELETE one object. Returns the object while finalizers hold it, a success `Status` once
    /// it is gone.
    ///
    /// # Errors
    /// `NotFound`, `Conflict` on failed preconditions.
    pub fn delete(&self, t: &Target, opts: &DeleteOpts) -> Result<Value, ApiError> {
        let name = Self::name_of(t)?.to_string();
        let key = Self::key(t, &name);
        let def = t.def.clone();
        let collection = self.store.collection(&def.storage);
        let current = collection
            .get(&key)
            .ok_or_else(|| Self::not_found(t, &name))?;
        let uid = str_of(&current, "/metadata/uid")
            .unwrap_or_default()
            .to_string();
        let has_orphan_finalizer = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == "orphan"));
        let policy = opts.propagation.clone().unwrap_or_else(|| {
            if has_orphan_finalizer {
                "Orphan".into()
            } else {
                "Background".into()
            }
        });
        if !matches!(policy.as_str(), "Background" | "Foreground" | "Orphan") {
            return Err(ApiError::BadRequest(format!(
                "propagationPolicy {policy} is not supported"
            )));
        }
        if policy == "Orphan" && !opts.dry_run {
            self.orphan_dependents(&uid);
        }
        let resource = def.storage.display();
        let not_found = Self::not_found(t, &name);
        let (obj, removed) = collection.write(&self.store, &key, |cur| {
            let cur = cur.ok_or(not_found)?;
            if let Some(u) = &opts.precondition_uid
                && Some(u.as_str()) != str_of(cur, "/metadata/uid")
            {
                return Err(ApiError::Conflict { resource: resource.clone(), name: name.clone(), message: "Precondition failed: UID in precondition does not match the UID of the object".into() });
            }
            if let Some(rv) = &opts.precondition_rv
                && Some(rv.as_str()) != str_of(cur, "/metadata/resourceVersion")
            {
                return Err(ApiError::Conflict { resource: resource.clone(), name: name.clone(), message: "Precondition failed: ResourceVersion in precondition does not match the ResourceVersion of the object".into() });
            }
            if opts.dry_run {
                return Ok((Write::Keep, false));
            }
            let mut next = (**cur).clone();
            let mut finalizers: Vec<Value> = cur.pointer("/metadata/finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
            if policy == "Foreground" && !finalizers.iter().any(|f| f == "foregroundDeletion") {
                finalizers.push(json!("foregroundDeletion"));
            }
            let terminating_ns = def.kind == "Namespace" && def.builtin;
            if finalizers.is_empty() && !terminating_ns {
                return Ok((Write::Remove, true));
            }
            if cur.pointer("/metadata/deletionTimestamp").is_some() && finalizers.len() == cur.pointer("/metadata/finalizers").and_then(Value::as_array).map_or(0, Vec::len) {
                return Ok((Write::Keep, false));
            }
            let m = meta(&mut next);
            m.entry("deletionTimestamp").or_insert(json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), Value::Array(finalizers));
            }
            if terminating_ns && let Some(o) = next.as_object_mut() {
                o.insert("status".into(), json!({"phase": "Terminating"}));
            }
            Ok((Write::Put(next), false))
        })?;
        let obj = obj.ok_or_else(|| ApiError::Internal("delete saw nothing".into()))?;
        if removed {
            Ok(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": def.group, "kind": def.plural, "uid": uid},
            }))
        } else {
            Ok(Self::present(&def, &obj))
        }
    }

    /// Remove the owner reference to `uid` from every dependent.
    pub fn orphan_dependents(&self, uid: &str) {
        for (resource, key) in self.store.dependents(uid) {
            let collection = self.store.collection(&resource);
            let _ = collection.write(&self.store, &key, |cur| {
                let Some(cur) = cur else {
                    return Ok((Write::Keep, ()));
                };
                let mut next = (**cur).clone();
                if let Some(refs) = next
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                Ok((Write::Put(next), ()))
            });
        }
    }

    /// DELETE a collection: every object matching the selectors. Returns the list of objects.
    ///
    /// # Errors
    /// As `delete`.
    pub fn delete_collection(
        &self,
        t: &Target,
        list: &ListOpts,
        opts: &DeleteOpts,
    ) -> Result<Value, ApiError> {
        let listed = self.list(t, list)?;
        let mut deleted = Vec::new();
        for item in listed
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = str_of(item, "/metadata/name")
                .unwrap_or_default()
                .to_string();
            let target = Target {
                name: Some(name),
                ..t.clone()
            };
            match self.delete(&target, opts) {
                Ok(_) | Err(ApiError::NotFound { .. }) => deleted.push(item.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok(
            json!({"kind": t.def.list_kind(), "apiVersion": t.def.api_version(), "metadata": {}, "items": deleted}),
        )
    }
}
