//! The compact ReplicaSet the controller caches instead of the typed `ReplicaSet`: the metadata
//! the reflector, the owner index and the controller's triggers need, the labels, annotations
//! and counts observe reads, and a digest of the pod template in place of the template.
//! Deserialised straight from the watch JSON, so a full ReplicaSet never lives in the cache
//! (at 10,000 Rollouts the typed cache held two ReplicaSets of ~7 KB each per Rollout).
//! Pure data: touches nothing.

use crate::crd::POD_TEMPLATE_HASH_LABEL;
use crate::engine::baseline::{BASELINE_ROLE, ROLE_LABEL};
use crate::engine::hash::TemplateDigest;
use crate::engine::{REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION};
use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A ReplicaSet as the controller caches it. Its `metadata` keeps only name, namespace, uid,
/// resourceVersion (the watcher resumes from it), owner references and the creation and
/// deletion timestamps; no labels or annotations (the ones observe reads are fields here).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "Wire")]
pub struct CachedReplicaSet {
    /// The trimmed metadata.
    pub metadata: ObjectMeta,
    /// Its `rollouts-pod-template-hash` label.
    pub pod_template_hash: Option<String>,
    /// Its revision annotation, when it parses.
    pub revision: Option<i64>,
    /// Its scale-down deadline annotation, when it parses.
    pub scale_down_deadline: Option<Timestamp>,
    /// `spec.replicas`.
    pub desired_replicas: Option<i32>,
    /// `status.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: Option<i32>,
    /// `status.availableReplicas`.
    pub available_replicas: Option<i32>,
    /// The digest of `spec.template` (of an empty template when it has none).
    pub template: TemplateDigest,
    /// It carries `rollout.sluice.dev/role: baseline`: a canary's baseline.
    pub baseline: bool,
}

impl Resource for CachedReplicaSet {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        ReplicaSet::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        ReplicaSet::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        ReplicaSet::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        ReplicaSet::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The parts of a ReplicaSet's JSON that are read; serde skips the rest (managedFields, the
/// selector, conditions) without building it.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    metadata: WireMeta,
    #[serde(default)]
    spec: Option<WireSpec>,
    #[serde(default)]
    status: Option<WireStatus>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct WireSpec {
    replicas: Option<i32>,
    // Typed, so the digest is over exactly what the typed ReplicaSet would hold.
    template: Option<PodTemplateSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus {
    #[serde(default)]
    replicas: i32,
    ready_replicas: Option<i32>,
    available_replicas: Option<i32>,
}

impl From<Wire> for CachedReplicaSet {
    fn from(wire: Wire) -> Self {
        let Wire {
            metadata: meta,
            spec,
            status,
        } = wire;
        let mut labels = meta.labels.unwrap_or_default();
        let annotations = meta.annotations.unwrap_or_default();
        let (desired_replicas, template) = match spec {
            Some(spec) => (spec.replicas, spec.template.unwrap_or_default()),
            None => (None, PodTemplateSpec::default()),
        };
        let (replicas, ready_replicas, available_replicas) = match status {
            Some(s) => (s.replicas, s.ready_replicas, s.available_replicas),
            None => (0, None, None),
        };
        Self {
            metadata: ObjectMeta {
                name: meta.name,
                namespace: meta.namespace,
                uid: meta.uid,
                resource_version: meta.resource_version,
                owner_references: meta.owner_references,
                creation_timestamp: meta.creation_timestamp,
                deletion_timestamp: meta.deletion_timestamp,
                ..ObjectMeta::default()
            },
            pod_template_hash: labels.remove(POD_TEMPLATE_HASH_LABEL),
            revision: annotations
                .get(REVISION_ANNOTATION)
                .and_then(|r| r.parse().ok()),
            scale_down_deadline: annotations
                .get(SCALE_DOWN_DEADLINE_ANNOTATION)
                .and_then(|d| d.parse().ok()),
            desired_replicas,
            replicas,
            ready_replicas,
            available_replicas,
            template: TemplateDigest::of(&template),
            baseline: labels.get(ROLE_LABEL).map(String::as_str) == Some(BASELINE_ROLE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::{Value, json};

    /// A ReplicaSet as the API server sends it for a Rollout `web` with image `image`.
    fn replica_set_json(image: &str, hash: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": format!("web-{hash}"),
                "namespace": "shop",
                "uid": "7d1c6f0e-1b7a-4f4e-9a53-0f3c2b8f1a11",
                "resourceVersion": "4711",
                "generation": 2,
                "creationTimestamp": "2026-11-22T10:00:00Z",
                "labels": {"app": "web", POD_TEMPLATE_HASH_LABEL: hash},
                "annotations": {
                    REVISION_ANNOTATION: "3",
                    SCALE_DOWN_DEADLINE_ANNOTATION: "2026-11-22T10:05:00Z",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}"
                },
                "ownerReferences": [{
                    "apiVersion": "sluice.dev/v1alpha1",
                    "kind": "Rollout",
                    "name": "web",
                    "uid": "0a8e2c55-3d8c-4b0e-8f0e-5e9b7f0c2d22",
                    "controller": true,
                    "blockOwnerDeletion": true
                }],
                "managedFields": [{
                    "manager": "sluice-controller",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}}
                }]
            },
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "web", POD_TEMPLATE_HASH_LABEL: hash}},
                "template": {
                    "metadata": {"labels": {"app": "web", POD_TEMPLATE_HASH_LABEL: hash}},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": image,
                        "ports": [{"containerPort": 8080}]
                    }]}
                }
            },
            "status": {
                "replicas": 4,
                "fullyLabeledReplicas": 4,
                "readyReplicas": 3,
                "availableReplicas": 2,
                "observedGeneration": 2
            }
        })
    }

    /// The Rollout's template for `image`: no hash label, as the Rollout spec holds it.
    fn rollout_template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "web",
                "image": image,
                "ports": [{"containerPort": 8080}]
            }]}
        }))
        .unwrap()
    }

    fn cached(json: Value) -> CachedReplicaSet {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn keeps_what_observe_and_the_reflector_read() {
        let rs = cached(replica_set_json("nginx:1", "abc1234"));
        let meta = &rs.metadata;
        assert_eq!(meta.name.as_deref(), Some("web-abc1234"), "{rs:#?}");
        assert_eq!(meta.namespace.as_deref(), Some("shop"), "{rs:#?}");
        assert_eq!(
            meta.uid.as_deref(),
            Some("7d1c6f0e-1b7a-4f4e-9a53-0f3c2b8f1a11")
        );
        assert_eq!(meta.resource_version.as_deref(), Some("4711"), "{rs:#?}");
        let owners = rs.owner_references();
        assert_eq!(owners.len(), 1, "{rs:#?}");
        assert_eq!(owners[0].uid, "0a8e2c55-3d8c-4b0e-8f0e-5e9b7f0c2d22");
        assert_eq!(owners[0].kind, "Rollout");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(
            meta.creation_timestamp.as_ref().map(|t| t.0.to_string()),
            Some("2026-11-22T10:00:00Z".to_string())
        );
        assert!(meta.deletion_timestamp.is_none());
        assert!(
            meta.labels.is_none() && meta.annotations.is_none(),
            "{rs:#?}"
        );
        assert!(meta.managed_fields.is_none() && meta.generation.is_none());
        assert_eq!(rs.pod_template_hash.as_deref(), Some("abc1234"));
        assert_eq!(rs.revision, Some(3));
        assert_eq!(
            rs.scale_down_deadline.map(|t| t.to_string()),
            Some("2026-11-22T10:05:00Z".to_string())
        );
        assert_eq!(rs.desired_replicas, Some(4));
        assert_eq!(
            (rs.replicas, rs.ready_replicas, rs.available_replicas),
            (4, Some(3), Some(2))
        );
        assert_eq!(CachedReplicaSet::kind(&()), "ReplicaSet");
        assert_eq!(CachedReplicaSet::api_version(&()), "apps/v1");
        assert_eq!(CachedReplicaSet::plural(&()), "replicasets");
    }

    #[test]
    fn template_digest_is_the_rollout_templates_and_ignores_the_hash_label() {
        let rs = cached(replica_set_json("nginx:1", "abc1234"));
        assert_eq!(
            rs.template,
            TemplateDigest::of(&rollout_template("nginx:1"))
        );
        let other_hash = cached(replica_set_json("nginx:1", "zzz9999"));
        assert_eq!(
            rs.template, other_hash.template,
            "only the hash label differs"
        );
        let other_image = cached(replica_set_json("nginx:2", "abc1234"));
        assert_ne!(rs.template, other_image.template, "the image differs");
    }

    #[test]
    fn missing_spec_status_and_annotations_read_as_absent() {
        let rs = cached(json!({"metadata": {"name": "bare", "namespace": "shop"}}));
        assert_eq!(rs.pod_template_hash, None);
        assert_eq!((rs.revision, rs.scale_down_deadline), (None, None));
        assert_eq!((rs.desired_replicas, rs.replicas), (None, 0));
        assert_eq!(rs.template, TemplateDigest::of(&PodTemplateSpec::default()));
    }

    #[test]
    fn recognises_a_baseline_by_its_role_label() {
        let plain = cached(replica_set_json("example/app:1", "abc1234"));
        assert!(!plain.baseline, "{plain:#?}");
        let mut json = replica_set_json("example/app:1", "xyz5678");
        json["metadata"]["labels"][ROLE_LABEL] = json!(BASELINE_ROLE);
        let baseline = cached(json);
        assert!(baseline.baseline, "{baseline:#?}");
        assert_eq!(baseline.pod_template_hash.as_deref(), Some("xyz5678"));
    }
}
