//! The built-in kinds the playground serves, with the flags the real API server gives them.
//! Pure data.

use super::registry::{GroupResource, ResourceDef, ScalePaths, View};

struct B {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    status: bool,
    scale: bool,
    generation: bool,
    categories: &'static [&'static str],
}

const BUILTINS: &[B] = &[
    B {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        short: &["ns"],
        namespaced: false,
        status: true,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        short: &["po"],
        namespaced: true,
        status: true,
        scale: false,
        generation: true,
        categories: &["all"],
    },
    B {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        short: &["svc"],
        namespaced: true,
        status: true,
        scale: false,
        generation: false,
        categories: &["all"],
    },
    B {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        short: &["ep"],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        short: &["cm"],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        short: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        short: &["ev"],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        short: &["sa"],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        short: &["deploy"],
        namespaced: true,
        status: true,
        scale: true,
        generation: true,
        categories: &["all"],
    },
    B {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        short: &["rs"],
        namespaced: true,
        status: true,
        scale: true,
        generation: true,
        categories: &["all"],
    },
    B {
        group: "batch",
        version: "v1",
        kind: "Job",
        plural: "jobs",
        short: &[],
        namespaced: true,
        status: true,
        scale: false,
        generation: true,
        categories: &["all"],
    },
    B {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        short: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        short: &["ev"],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        short: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: false,
        categories: &[],
    },
    B {
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        short: &["ing"],
        namespaced: true,
        status: true,
        scale: false,
        generation: true,
        categories: &[],
    },
    B {
        group: "autoscaling",
        version: "v2",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        short: &["hpa"],
        namespaced: true,
        status: true,
        scale: false,
        generation: false,
        categories: &["all"],
    },
    B {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        short: &["crd", "crds"],
        namespaced: false,
        status: true,
        scale: false,
        generation: true,
        categories: &["api-extensions"],
    },
];

/// The built-in resource definitions.
pub fn builtin_defs() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|b| {
            let events_v1 = b.group == "events.k8s.io";
            ResourceDef {
                group: b.group.to_string(),
                version: b.version.to_string(),
                kind: b.kind.to_string(),
                plural: b.plural.to_string(),
                singular: b.kind.to_lowercase(),
                short_names: b.short.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                namespaced: b.namespaced,
                status: b.status,
                scale: b.scale.then(|| ScalePaths {
                    spec_replicas: ".spec.replicas".to_string(),
                    status_replicas: ".status.replicas".to_string(),
                    label_selector: Some(".status.selector".to_string()),
                }),
                builtin: true,
                generation: b.generation,
                schema: None,
                cel: false,
                printer_columns: Vec::new(),
                storage: if events_v1 {
                    GroupResource::new("", "events")
                } else {
                    GroupResource::new(b.group, b.plural)
                },
                view: if events_v1 {
                    View::EventsV1
                } else {
                    View::Native
                },
                crd: None,
            }
        })
        .collect()
}

/// Field renames between core `v1` Events (stored) and `events.k8s.io/v1` Events (served).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Convert a stored core Event into its `events.k8s.io/v1` form.
pub fn event_to_v1(mut obj: serde_json::Value) -> serde_json::Value {
    if let Some(map) = obj.as_object_mut() {
        for (core, v1) in EVENT_FIELDS {
            if let Some(v) = map.remove(*core) {
                map.insert(v1.to_string(), v);
            }
        }
        map.insert("apiVersion".into(), "events.k8s.io/v1".into());
    }
    obj
}

/// Convert an `events.k8s.io/v1` Event into the stored core form.
pub fn event_from_v1(mut obj: serde_json::Value) -> serde_json::Value {
    if let Some(map) = obj.as_object_mut() {
        for (core, v1) in EVENT_FIELDS {
            if let Some(v) = map.remove(*v1) {
                map.insert(core.to_string(), v);
            }
        }
        map.insert("apiVersion".into(), "v1".into());
    }
    obj
}
