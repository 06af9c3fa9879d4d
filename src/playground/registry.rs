//! The resource registry: which group/version/resources the server serves, built-in and from
//! CustomResourceDefinitions. Pure data behind one lock; touches nothing else.

use super::error::ApiError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Where objects of a resource are stored, independent of the version they are served at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    /// `deployments.apps`, or `pods` for the core group, as error messages print it.
    pub fn display(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// How a served version presents stored objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Stored as served.
    Native,
    /// `events.k8s.io/v1` Events over the core `v1` Event storage.
    EventsV1,
}

/// JSON paths (dotted, leading dot) of a scale subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// A CRD `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub priority: i64,
    pub description: String,
}

/// One served group/version/resource.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Built-in kinds accept strategic merge patches; custom resources do not.
    pub builtin: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    /// The CRD's `openAPIV3Schema` for this version.
    pub schema: Option<Arc<Value>>,
    pub printer_columns: Vec<PrinterColumn>,
    pub storage: GroupResource,
    pub view: View,
    /// Name of the CRD that declared it (custom resources only).
    pub crd: Option<String>,
}

impl ResourceDef {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The verbs advertised in discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// Which ids a registry key is made of: (group, version, plural).
type DefKey = (String, String, String);

/// The set of served resources.
#[derive(Debug, Default)]
pub struct Registry {
    defs: RwLock<BTreeMap<DefKey, Arc<ResourceDef>>>,
}

impl Registry {
    /// A registry holding the built-in kinds.
    pub fn with_builtins() -> Self {
        let registry = Registry::default();
        for def in super::builtin::builtin_defs() {
            registry.insert(def);
        }
        registry
    }

    fn insert(&self, def: ResourceDef) {
        let key = (def.group.clone(), def.version.clone(), def.plural.clone());
        let mut defs = self.defs.write().unwrap_or_else(|e| e.into_inner());
        defs.insert(key, Arc::new(def));
    }

    /// The definition served at `group/version/plural`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        let defs = self.defs.read().unwrap_or_else(|e| e.into_inner());
        defs.get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Whether any version of `group` is served.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        let defs = self.defs.read().unwrap_or_else(|e| e.into_inner());
        defs.keys().any(|(g, v, _)| g == group && v == version)
    }

    /// Every served definition, ordered by group, version, plural.
    pub fn all(&self) -> Vec<Arc<ResourceDef>> {
        let defs = self.defs.read().unwrap_or_else(|e| e.into_inner());
        defs.values().cloned().collect()
    }

    /// Any served definition of a stored resource (used by the garbage collector and the
    /// simulation to address objects without a version at hand).
    pub fn any_for_storage(&self, storage: &GroupResource) -> Option<Arc<ResourceDef>> {
        let defs = self.defs.read().unwrap_or_else(|e| e.into_inner());
        defs.values()
            .find(|d| &d.storage == storage && d.view == View::Native)
            .cloned()
    }

    /// The definition serving `kind` in `group` (any version).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let defs = self.defs.read().unwrap_or_else(|e| e.into_inner());
        defs.values()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
            .cloned()
    }

    /// Serve (or re-serve) every served version of a CustomResourceDefinition.
    ///
    /// # Errors
    /// `Invalid` when the CRD lacks the fields the server needs.
    pub fn register_crd(&self, crd: &Value) -> Result<(), ApiError> {
        let defs = crd_defs(crd)?;
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.unregister_crd(&name);
        for def in defs {
            self.insert(def);
        }
        Ok(())
    }

    /// Stop serving the versions a CRD declared.
    pub fn unregister_crd(&self, name: &str) {
        let mut defs = self.defs.write().unwrap_or_else(|e| e.into_inner());
        defs.retain(|_, d| d.crd.as_deref() != Some(name));
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The resource definitions a CRD object declares.
///
/// # Errors
/// `Invalid` with field causes when required CRD fields are missing.
pub fn crd_defs(crd: &Value) -> Result<Vec<ResourceDef>, ApiError> {
    let name = str_at(crd, "/metadata/name").unwrap_or_default();
    let invalid = |field: &str, message: &str| {
        ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            name,
            field,
            "FieldValueRequired",
            message.to_string(),
        )
    };
    let group =
        str_at(crd, "/spec/group").ok_or_else(|| invalid("spec.group", "Required value"))?;
    let plural = str_at(crd, "/spec/names/plural")
        .ok_or_else(|| invalid("spec.names.plural", "Required value"))?;
    let kind = str_at(crd, "/spec/names/kind")
        .ok_or_else(|| invalid("spec.names.kind", "Required value"))?;
    if name != format!("{plural}.{group}") {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            name,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let singular = str_at(crd, "/spec/names/singular")
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = str_at(crd, "/spec/scope") != Some("Cluster");
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("spec.versions", "Required value"))?;
    let mut out = Vec::new();
    for version in versions {
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let vname = str_at(version, "/name")
            .ok_or_else(|| invalid("spec.versions.name", "Required value"))?;
        let scale = version.pointer("/subresources/scale").map(|s| ScalePaths {
            spec_replicas: str_at(s, "/specReplicasPath")
                .unwrap_or(".spec.replicas")
                .to_string(),
            status_replicas: str_at(s, "/statusReplicasPath")
                .unwrap_or(".status.replicas")
                .to_string(),
            label_selector: str_at(s, "/labelSelectorPath").map(str::to_string),
        });
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: str_at(c, "/name").unwrap_or_default().to_string(),
                        type_: str_at(c, "/type").unwrap_or("string").to_string(),
                        json_path: str_at(c, "/jsonPath").unwrap_or_default().to_string(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        description: str_at(c, "/description").unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(ResourceDef {
            group: group.to_string(),
            version: vname.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: singular.clone(),
            short_names: strings_at(crd, "/spec/names/shortNames"),
            categories: strings_at(crd, "/spec/names/categories"),
            namespaced,
            status: version.pointer("/subresources/status").is_some(),
            scale,
            builtin: false,
            generation: true,
            schema: version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .map(Arc::new),
            printer_columns,
            storage: GroupResource::new(group, plural),
            view: View::Native,
            crd: Some(name.to_string()),
        });
    }
    Ok(out)
}
