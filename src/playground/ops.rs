//! API semantics over the store: create, get, list, update, patch, delete, status and scale
//! subresources, with metadata bookkeeping (uid, generation, managedFields), validation and
//! finalizers. Synchronous; touches only the store and the registry.

use super::apply::{self, Writer};
use super::builtin;
use super::defaults;
use super::error::ApiError;
use super::patch::{self, ListStrategy};
use super::registry::{Registry, ResourceDef, View};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Key, Store, Write};
use super::validation;
use serde_json::{Map, Value, json};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How lists of a resource merge (see `patch::ListStrategy`).
pub type ListResolver = Box<dyn Fn(&[String], &str) -> ListStrategy + Send + Sync>;

/// The request's target: a resource, and optionally a namespace, a name and a subresource.
#[derive(Debug, Clone)]
pub struct Target {
    pub def: Arc<ResourceDef>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub field_manager: String,
    pub dry_run: bool,
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields of custom resources are an error instead of
    /// being pruned silently.
    pub strict: bool,
}

/// The kind of a PATCH body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// Delete options (query or `DeleteOptions` body).
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// List options.
#[derive(Debug, Clone, Default)]
pub struct ListOpts {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// The API layer shared by the HTTP server, the garbage collector and the simulation.
pub struct Api {
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    counter: AtomicU64,
    seed: u64,
}

/// The current time as the API server writes timestamps (RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(super) fn meta(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(Value::is_object)
        && let Some(m) = v.as_object_mut()
    {
        m.insert("metadata".into(), json!({}));
    }
    // The branch above guarantees an object at `metadata` whenever `v` is an object;
    // callers only pass objects.
    match v.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable_meta(),
    }
}

#[allow(clippy::panic)]
fn unreachable_meta() -> ! {
    // Only reachable if a caller passes a non-object, which every entry point rejects first.
    panic!("metadata on a non-object")
}

pub(super) fn str_of<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Everything except metadata (and status when it is a subresource): what bumps `generation`.
pub(super) fn spec_part(def: &ResourceDef, v: &Value) -> Value {
    let mut out = v.clone();
    if let Some(m) = out.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if def.status || def.builtin {
            m.remove("status");
        }
    }
    out
}

pub(super) fn without_volatile(v: &Value) -> Value {
    let mut out = v.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    out
}

impl Api {
    pub fn new(store: Arc<Store>, registry: Arc<Registry>) -> Self {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Api {
            store,
            registry,
            counter: AtomicU64::new(0),
            seed,
        }
    }

    fn random(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n ^ self.seed);
        h.finish()
    }

    fn uid(&self) -> String {
        let (a, b) = (self.random(), self.random());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48 & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    /// Five characters for `generateName`, from the alphabet the real server uses.
    pub fn suffix(&self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut r = self.random();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(r % ALPHABET.len() as u64) as usize];
                r /= ALPHABET.len() as u64;
                char::from(c)
            })
            .collect()
    }

    fn cluster_ip(&self) -> String {
        let n = self.random();
        format!("10.96.{}.{}", (n >> 8) % 256, (n % 253) + 2)
    }

    /// How lists of this resource merge.
    pub fn lists(def: &ResourceDef) -> ListResolver {
        match &def.schema {
            Some(schema) if !def.builtin => {
                let schema = schema.clone();
                Box::new(move |p: &[String], f: &str| patch::schema_list_strategy(&schema, p, f))
            }
            _ => Box::new(patch::builtin_list_strategy),
        }
    }

    /// Present a stored object at the served version.
    pub fn present(def: &ResourceDef, obj: &Value) -> Value {
        match def.view {
            View::EventsV1 => builtin::event_to_v1(obj.clone()),
            View::Native => {
                let mut out = obj.clone();
                if let Some(m) = out.as_object_mut() {
                    m.insert("apiVersion".into(), Value::String(def.api_version()));
                }
                out
            }
        }
    }

    pub(super) fn intake(def: &ResourceDef, obj: Value) -> Value {
        match def.view {
            View::EventsV1 => builtin::event_from_v1(obj),
            View::Native => obj,
        }
    }

    pub(super) fn key(t: &Target, name: &str) -> Key {
        (
            if t.def.namespaced {
                t.namespace.clone().unwrap_or_default()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    pub(super) fn not_found(t: &Target, name: &str) -> ApiError {
        ApiError::NotFound {
            resource: t.def.storage.display(),
            name: name.to_string(),
        }
    }

    pub(super) fn name_of(t: &Target) -> Result<&str, ApiError> {
        t.name
            .as_deref()
            .ok_or_else(|| ApiError::MethodNotAllowed("a resource name is required".into()))
    }

    /// GET one object (or its scale subresource).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn get(&self, t: &Target) -> Result<Value, ApiError> {
        let name = Self::name_of(t)?;
        let obj = self
            .store
            .collection(&t.def.storage)
            .get(&Self::key(t, name))
            .ok_or_else(|| Self::not_found(t, name))?;
        match t.subresource.as_deref() {
            Some("scale") => self.scale_of(t, &obj),
            _ => Ok(Self::present(&t.def, &obj)),
        }
    }

    /// LIST objects; returns the list object.
    ///
    /// # Errors
    /// `BadRequest` for a malformed continue token, `Gone` for an expired one.
    pub fn list(&self, t: &Target, opts: &ListOpts) -> Result<Value, ApiError> {
        let (items, metadata) = self.list_items(t, opts)?;
        let items: Vec<Value> = items.iter().map(|o| Self::present(&t.def, o)).collect();
        Ok(
            json!({"kind": t.def.list_kind(), "apiVersion": t.def.api_version(), "metadata": metadata, "items": items}),
        )
    }

    /// LIST, serialized straight from the stored objects (no per-item copies): the HTTP path.
    ///
    /// # Errors
    /// As `list`.
    pub fn list_json(&self, t: &Target, opts: &ListOpts) -> Result<Vec<u8>, ApiError> {
        let (items, metadata) = self.list_items(t, opts)?;
        let api_version = t.def.api_version();
        let mut out = Vec::with_capacity(64 + items.len() * 1024);
        let head =
            json!({"kind": t.def.list_kind(), "apiVersion": api_version, "metadata": metadata});
        let head = serde_json::to_vec(&head).map_err(|e| ApiError::Internal(e.to_string()))?;
        // `head` ends with `}`: reopen it to append the items.
        out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let native = t.def.view == View::Native
                && item.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str());
            let written = if native {
                serde_json::to_writer(&mut out, &**item)
            } else {
                serde_json::to_writer(&mut out, &Self::present(&t.def, item))
            };
            written.map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    fn list_items(
        &self,
        t: &Target,
        opts: &ListOpts,
    ) -> Result<(Vec<Arc<Value>>, Value), ApiError> {
        let after = match &opts.continue_token {
            Some(tok) => Some(decode_continue(tok)?),
            None => None,
        };
        let keep = |v: &Value| opts.labels.matches(v) && opts.fields.matches(v);
        let ns = if t.def.namespaced {
            t.namespace.as_deref()
        } else {
            None
        };
        let (items, rv, more) = self.store.collection(&t.def.storage).list(
            &self.store,
            ns,
            after.as_ref(),
            opts.limit,
            &keep,
        );
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if more && let Some(last) = items.last() {
            let key = (
                str_of(last, "/metadata/namespace")
                    .unwrap_or_default()
                    .to_string(),
                str_of(last, "/metadata/name")
                    .unwrap_or_default()
                    .to_string(),
            );
            metadata["continue"] = json!(encode_continue(&key));
        }
        Ok((items, metadata))
    }

    pub(super) fn writer<'a>(
        t: &'a Target,
        opts: &'a WriteOpts,
        api_version: &'a str,
        time: &'a str,
    ) -> Writer<'a> {
        Writer {
            manager: &opts.field_manager,
            api_version,
            subresource: t.subresource.as_deref().filter(|s| *s == "status"),
            time,
        }
    }

    /// POST: create an object. Returns the stored object.
    ///
    /// # Errors
    /// `AlreadyExists`, `Invalid`, `BadRequest`, `NotFound` (namespace), `Forbidden`
    /// (terminating namespace).
    pub fn create(&self, t: &Target, body: Value, opts: &WriteOpts) -> Result<Value, ApiError> {
        self.create_with(t, body, opts, None)
    }

    /// Create, with `managedFields` already computed (server-side apply of a new object) or
    /// recorded here for the writer.
    pub(super) fn create_with(
        &self,
        t: &Target,
        body: Value,
        opts: &WriteOpts,
        managed: Option<Value>,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        if let Some(kind) = str_of(&body, "/kind")
            && kind != t.def.kind
        {
            return Err(ApiError::BadRequest(format!(
                "the kind \"{kind}\" does not match the resource \"{}\" ({})",
                t.def.plural, t.def.kind
            )));
        }
        let mut obj = Self::intake(&t.def, body);
        let namespace = self.check_namespace(t, &mut obj)?;
        let name = match str_of(&obj, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match str_of(&obj, "/metadata/generateName") {
                Some(prefix) => format!("{prefix}{}", self.suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &t.def.kind,
                        &t.def.group,
                        "",
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required".into(),
                    ));
                }
            },
        };
        validate_name(&t.def, &name)?;
        let time = now();
        {
            let m = meta(&mut obj);
            m.insert("name".into(), json!(name));
            if t.def.namespaced {
                m.insert("namespace".into(), json!(namespace));
            }
            m.insert("uid".into(), json!(self.uid()));
            m.insert("creationTimestamp".into(), json!(time));
            m.remove("deletionTimestamp");
            m.remove("resourceVersion");
            m.remove("managedFields");
            if t.def.generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if let Some(m) = obj.as_object_mut() {
            let storage_version = if t.def.view == View::EventsV1 {
                "v1".to_string()
            } else {
                t.def.api_version()
            };
            m.insert("apiVersion".into(), json!(storage_version));
            m.insert("kind".into(), json!(t.def.kind));
            if t.def.status {
                m.remove("status");
            }
        }
        self.admit(&t.def, &mut obj, None, opts.strict)?;
        let api_version = t.def.api_version();
        let lists = Self::lists(&t.def);
        match managed {
            Some(m) => _ = meta(&mut obj).insert("managedFields".into(), m),
            None => apply::record_update(
                None,
                &mut obj,
                &Self::writer(t, opts, &api_version, &time),
                &*lists,
            ),
        }
        if opts.dry_run {
            return Ok(Self::present(&t.def, &obj));
        }
        let key = Self::key(t, &name);
        let resource = t.def.storage.display();
        let (stored, ()) =
            self.store
                .collection(&t.def.storage)
                .write(&self.store, &key, |cur| {
                    if cur.is_some() {
                        return Err(ApiError::AlreadyExists {
                            resource,
                            name: name.clone(),
                        });
                    }
                    Ok((Write::Put(obj), ()))
                })?;
        let stored = stored.ok_or_else(|| ApiError::Internal("create stored nothing".into()))?;
        self.after_write(&t.def, &stored);
        Ok(Self::present(&t.def, &stored))
    }

    fn check_namespace(&self, t: &Target, obj: &mut Value) -> Result<String, ApiError> {
        if !t.def.namespaced {
            meta(obj).remove("namespace");
            return Ok(String::new());
        }
        let url_ns = t
            .namespace
            .clone()
            .ok_or_else(|| ApiError::BadRequest("a namespace is required".into()))?;
        if let Some(body_ns) = str_of(obj, "/metadata/namespace")
            && !body_ns.is_empty()
            && body_ns != url_ns
        {
            return Err(ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request".into()));
        }
        let ns_store = self
            .store
            .collection(&super::registry::GroupResource::new("", "namespaces"));
        match ns_store.get(&(String::new(), url_ns.clone())) {
            None => Err(ApiError::NotFound {
                resource: "namespaces".into(),
                name: url_ns,
            }),
            Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::Forbidden(format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {url_ns} because it is being terminated",
                    t.def.storage.display(),
                    str_of(obj, "/metadata/name").unwrap_or_default()
                )))
            }
            Some(_) => Ok(url_ns),
        }
    }

    /// Defaults, pruning and validation for a new or updated object.
    pub(super) fn admit(
        &self,
        def: &ResourceDef,
        obj: &mut Value,
        old: Option<&Value>,
        strict: bool,
    ) -> Result<(), ApiError> {
        if def.builtin {
            defaults::apply(&def.kind, obj, &|| self.cluster_ip());
            if old.is_none()
                && let Some(status) = defaults::initial_status(&def.kind)
                && let Some(m) = obj.as_object_mut()
            {
                m.entry("status").or_insert(status);
            }
            defaults::validate(&def.kind, &def.group, obj, old)?;
            if def.kind == "CustomResourceDefinition" {
                super::registry::crd_defs(obj)?;
                crd_status(obj);
            }
        } else if let Some(schema) = &def.schema {
            let (causes, pruned) = validation::prune_default_validate(schema, obj);
            if strict && !pruned.is_empty() {
                let fields = pruned
                    .iter()
                    .map(|p| format!("unknown field \"{p}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ApiError::BadRequest(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {fields}",
                    def.kind, def.version, def.kind
                )));
            }
            let mut causes = causes;
            if def.cel {
                causes.extend(cel_causes(schema, obj, old));
            }
            if !causes.is_empty() {
                let name = str_of(obj, "/metadata/name")
                    .unwrap_or_default()
                    .to_string();
                return Err(ApiError::Invalid {
                    kind: def.kind.clone(),
                    group: def.group.clone(),
                    name,
                    causes,
                });
            }
        }
        Ok(())
    }

    pub(super) fn after_write(&self, def: &ResourceDef, stored: &Value) {
        if def.kind == "CustomResourceDefinition"
            && def.builtin
            && stored.pointer("/metadata/deletionTimestamp").is_none()
            && let Err(error) = self.registry.register_crd(stored)
        {
            tracing::warn!(%error, "stored CRD could not be served");
        }
    }
}

/// Status the real apiextensions controller writes on a CRD it accepts.
fn crd_status(crd: &mut Value) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let t = now();
    let cond = |ty: &str, reason: &str, message: &str| json!({"type": ty, "status": "True", "lastTransitionTime": t, "reason": reason, "message": message});
    if let Some(o) = crd.as_object_mut() {
        o.insert("status".into(), json!({
            "acceptedNames": names,
            "storedVersions": stored,
            "conditions": [
                cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
        }));
    }
}

/// Evaluate the schema's CEL `x-kubernetes-validations` rules (transition rules see `old`).
/// Rules kube's evaluator cannot compile or does not support are skipped with a warning: the
/// real server would evaluate them, so rejecting would be wrong and accepting is the lesser error.
/// Each schema's rules are compiled once per thread, as the real server compiles them once per
/// CRD (compiling on every write was 7 % of the playground's CPU in the scale bench).
fn cel_causes(schema: &Arc<Value>, obj: &Value, old: Option<&Value>) -> Vec<super::error::Cause> {
    use kube::core::cel::{CompiledSchema, ErrorKind, Validator, compile_schema};
    use std::collections::HashMap;
    use std::rc::Rc;
    use std::sync::Weak;
    type CompiledEntry = (Weak<Value>, Rc<CompiledSchema>);
    thread_local! {
        // Registering the Kubernetes CEL functions is costly: once per thread.
        static CEL: Validator = Validator::new();
        // By the schema's address; the `Weak` keeps that address from being reused for another
        // schema while the entry exists, and tells when the schema is gone.
        static COMPILED: std::cell::RefCell<HashMap<usize, CompiledEntry>> =
            std::cell::RefCell::new(HashMap::new());
    }
    let compiled = COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.retain(|_, (weak, _)| weak.strong_count() > 0);
        cache
            .entry(Arc::as_ptr(schema) as usize)
            .or_insert_with(|| (Arc::downgrade(schema), Rc::new(compile_schema(schema))))
            .1
            .clone()
    });
    let Err(errors) = CEL.with(|v| v.validate_compiled(&compiled, obj, old)) else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    for e in errors.into_vec() {
        match e.kind {
            ErrorKind::ValidationFailure
            | ErrorKind::InvalidResult
            | ErrorKind::EvaluationError => {
                causes.push(super::error::Cause {
                    reason: e.reason.unwrap_or_else(|| "FieldValueInvalid".to_string()),
                    message: format!("Invalid value: {}", e.message),
                    field: e.field_path,
                });
            }
            _ => {
                tracing::warn!(rule = %e.rule, field = %e.field_path, message = %e.message, "CEL rule not evaluated by the playground")
            }
        }
    }
    causes
}

fn validate_name(def: &ResourceDef, name: &str) -> Result<(), ApiError> {
    let label = def.kind == "Namespace" || def.kind == "Service";
    let ok = !name.is_empty()
        && name.len() <= if label { 63 } else { 253 }
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && !label)
        })
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok || def.kind == "Event" {
        return Ok(());
    }
    let what = if label {
        "a lowercase RFC 1123 label"
    } else {
        "a lowercase RFC 1123 subdomain"
    };
    Err(ApiError::invalid(
        &def.kind,
        &def.group,
        name,
        "metadata.name",
        "FieldValueInvalid",
        format!(
            "Invalid value: \"{name}\": {what} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ),
    ))
}

fn encode_continue(key: &Key) -> String {
    let raw = format!("{}/{}", key.0, key.1);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<Key, ApiError> {
    let bad = || ApiError::BadRequest(format!("continue key is not valid: {token}"));
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect();
    let raw = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = raw.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}
