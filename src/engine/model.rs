//! The engine's plain-data contract: `Observed` (what the controller read from the cluster)
//! in, `Decision` (the new status, the actions to take, when to look again) out. Nothing here
//! does I/O; the controller's observe step builds `Observed` and its act step interprets each
//! `Action`.

use super::hash::TemplateDigest;
use crate::crd::{
    AnalysisPhase, RolloutAnalysis, RolloutStatus, SetHeaderRoute, SetMirrorRoute, TrafficWeights,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Annotation on a ReplicaSet: the Rollout revision it belongs to.
pub const REVISION_ANNOTATION: &str = "rollout.sluice.dev/revision";
/// Annotation on a ReplicaSet: when it may be scaled down (RFC 3339).
pub const SCALE_DOWN_DEADLINE_ANNOTATION: &str = "rollout.sluice.dev/scale-down-deadline";
/// Annotation on a Service: the Rollout that manages its selector.
pub const MANAGED_BY_ANNOTATION: &str = "rollout.sluice.dev/managed-by";

/// What the controller observed of the cluster for one Rollout, as plain data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// ReplicaSets the Rollout owns (controller owner reference), in any order.
    pub replica_sets: Vec<ObservedReplicaSet>,
    /// Services the spec names (canary, stable, active, preview), by name; `None` when the
    /// Service does not exist.
    pub services: BTreeMap<String, Option<ObservedService>>,
    /// AnalysisRuns the Rollout owns.
    pub analysis_runs: Vec<ObservedAnalysisRun>,
    /// The Deployment a `workloadRef` points at; `None` when there is none or it is missing.
    pub workload: Option<ObservedWorkload>,
    /// Whether the traffic routers confirmed the weights in `status.canary.weights`; `None`
    /// when they cannot tell or there is no traffic routing.
    pub weights_verified: Option<bool>,
    /// The pods of this Rollout's ReplicaSets, listed only while a `spec.restartAt` is due and
    /// not yet recorded; `None` when the controller did not list them.
    pub restart_pods: Option<Vec<ObservedPod>>,
    /// The analysis templates the spec references, as far as the controller looked them up:
    /// `None` when it does not exist, else the problems validation found in it (empty when it
    /// is usable). A template absent from the map was not looked up and is not checked.
    pub analysis_templates: BTreeMap<TemplateKey, Option<Vec<String>>>,
    /// What the Rollout may claim in its namespace (`validate::tenancy`).
    pub tenancy: Tenancy,
}

/// Tenancy: whether routes may live in other namespaces, and which of the objects the spec
/// references (`validate::claims`) another Rollout claimed first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tenancy {
    /// The controller runs with `--allow-cross-namespace-routing`.
    pub allow_cross_namespace_routing: bool,
    /// `Claim::key` → the Rollout that claimed it first (creation time, then name).
    pub claimed_by: BTreeMap<String, String>,
    /// Services the spec names that front the Kubernetes API server (labelled
    /// `component=apiserver` or `provider=kubernetes`).
    pub api_server_services: BTreeSet<String>,
}

/// An analysis template reference: `(cluster_scope, name)`.
pub type TemplateKey = (bool, String);

/// One ReplicaSet as the engine needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedReplicaSet {
    /// The ReplicaSet's name.
    pub name: String,
    /// Its `rollouts-pod-template-hash` label.
    pub pod_template_hash: Option<String>,
    /// The digest of its pod template (without the hash label), to recognise a rollback to it.
    pub template: TemplateDigest,
    /// `spec.replicas`.
    pub desired_replicas: i32,
    /// `status.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
    /// Its revision annotation.
    pub revision: Option<i64>,
    /// Its scale-down deadline annotation.
    pub scale_down_deadline: Option<Timestamp>,
    /// When it was created.
    pub created_at: Option<Timestamp>,
    /// It has a deletion timestamp.
    pub deleting: bool,
    /// It is a canary's baseline (`rollout.sluice.dev/role: baseline`), not a revision.
    pub baseline: bool,
}

/// One pod as a restart needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPod {
    /// The pod's name.
    pub name: String,
    /// Its `rollouts-pod-template-hash` label.
    pub pod_template_hash: Option<String>,
    /// When it was created.
    pub created_at: Option<Timestamp>,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    /// It has a deletion timestamp.
    pub deleting: bool,
    /// Its eviction was asked for in the decision being made and is not confirmed yet (set
    /// only by `simulate`; an observed pod never is).
    pub evicted: bool,
}

/// One Service as the engine needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedService {
    /// Its selector.
    pub selector: BTreeMap<String, String>,
    /// The Rollout that manages it, from its managed-by annotation.
    pub managed_by: Option<String>,
}

/// One AnalysisRun as the engine needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedAnalysisRun {
    /// The run's name.
    pub name: String,
    /// What the run is for.
    pub kind: AnalysisKind,
    /// The pod-template hash of the revision it analyses.
    pub pod_template_hash: String,
    /// Its phase; `Pending` when it has no status yet.
    pub phase: AnalysisPhase,
    /// Its status message.
    pub message: Option<String>,
    /// `spec.terminate` is set.
    pub terminating: bool,
}

/// Label on an AnalysisRun: what it is for (`Step`, `Background`, `PrePromotion`,
/// `PostPromotion`), the value of `AnalysisKind::label_value`.
pub const ANALYSIS_KIND_LABEL: &str = "rollout.sluice.dev/analysis-kind";
/// Label on a step AnalysisRun: the step index.
pub const STEP_INDEX_LABEL: &str = "rollout.sluice.dev/step-index";

/// What an AnalysisRun is for. Recorded on the run as a label so observe can read it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnalysisKind {
    /// The analysis step at this index.
    Step(i32),
    /// The canary's background analysis.
    Background,
    /// Blue/green pre-promotion analysis.
    PrePromotion,
    /// Blue/green post-promotion analysis.
    PostPromotion,
}

impl AnalysisKind {
    /// The value of `ANALYSIS_KIND_LABEL` (Argo's `rollout-type` values).
    pub fn label_value(self) -> &'static str {
        match self {
            AnalysisKind::Step(_) => "Step",
            AnalysisKind::Background => "Background",
            AnalysisKind::PrePromotion => "PrePromotion",
            AnalysisKind::PostPromotion => "PostPromotion",
        }
    }

    /// Reads the kind back from a run's labels; `None` when they do not say.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        match labels.get(ANALYSIS_KIND_LABEL)?.as_str() {
            "Step" => labels
                .get(STEP_INDEX_LABEL)?
                .parse()
                .ok()
                .map(AnalysisKind::Step),
            "Background" => Some(AnalysisKind::Background),
            "PrePromotion" => Some(AnalysisKind::PrePromotion),
            "PostPromotion" => Some(AnalysisKind::PostPromotion),
            _ => None,
        }
    }

    /// The labels that record this kind on a run.
    pub fn labels(self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([(
            ANALYSIS_KIND_LABEL.to_string(),
            self.label_value().to_string(),
        )]);
        if let AnalysisKind::Step(i) = self {
            labels.insert(STEP_INDEX_LABEL.to_string(), i.to_string());
        }
        labels
    }
}

/// The Deployment behind a `workloadRef`.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedWorkload {
    /// Its pod template.
    pub template: PodTemplateSpec,
    /// Its `metadata.generation`.
    pub generation: i64,
    /// Its `spec.replicas`.
    pub replicas: i32,
}

/// What the engine decided for one Rollout at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// The status the Rollout should have. The controller patches it only when it differs.
    pub status: RolloutStatus,
    /// What to change in the cluster, in order.
    pub actions: Vec<Action>,
    /// Events to record.
    pub events: Vec<EventNote>,
    /// When to decide again at the latest (the earliest timer); `None` waits for a change.
    pub requeue_after: Option<Duration>,
    /// The canary weight the current step asks for (0 once aborted, the maximum weight once
    /// promoted or past the last step); `None` for blue/green and for a spec refused as invalid.
    /// Reported as a metric; the weights applied to routers are in the actions and status.
    pub desired_weight: Option<i32>,
}

/// One change to the cluster. The controller's act step interprets each idempotently.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the ReplicaSet for a pod template.
    CreateReplicaSet {
        /// `<rollout>-<hash>`.
        name: String,
        /// The template's hash, set as label on the ReplicaSet, its selector and its pods.
        pod_template_hash: String,
        /// The pod template (without the hash label; the controller adds it). Boxed: it is
        /// far larger than every other action.
        template: Box<PodTemplateSpec>,
        /// Initial `spec.replicas`.
        replicas: i32,
        /// The revision annotation.
        revision: i64,
        /// `spec.minReadySeconds`.
        min_ready_seconds: i32,
    },
    /// Create a canary's baseline ReplicaSet from the stable ReplicaSet's pod template
    /// (`baseline::baseline_template`). The template is read at act time: the engine's world
    /// holds only template digests.
    CreateBaselineReplicaSet {
        /// `<rollout>-<baseline hash>`.
        name: String,
        /// `baseline::baseline_hash` of the stable hash.
        pod_template_hash: String,
        /// The stable ReplicaSet whose template the baseline copies.
        stable_replica_set: String,
        /// Initial `spec.replicas`.
        replicas: i32,
        /// The revision annotation: the canary's revision, which the baseline belongs to.
        revision: i64,
        /// `baseline.metadata`.
        metadata: Option<crate::crd::PodMetadata>,
        /// `spec.minReadySeconds`.
        min_ready_seconds: i32,
    },
    /// Set a ReplicaSet's `spec.replicas`.
    ScaleReplicaSet {
        /// The ReplicaSet.
        name: String,
        /// The new count.
        replicas: i32,
    },
    /// Set or clear a ReplicaSet's scale-down deadline annotation.
    SetScaleDownDeadline {
        /// The ReplicaSet.
        name: String,
        /// The deadline; `None` removes the annotation.
        deadline: Option<Timestamp>,
    },
    /// Set a ReplicaSet's revision annotation: a rollback reuses an old ReplicaSet, which
    /// becomes the newest revision.
    SetRevision {
        /// The ReplicaSet.
        name: String,
        /// The new revision.
        revision: i64,
    },
    /// Delete a fully scaled-down old ReplicaSet beyond the revision history limit.
    DeleteReplicaSet {
        /// The ReplicaSet.
        name: String,
    },
    /// Point a Service's selector at a pod-template hash.
    SetServiceSelector {
        /// The Service.
        service: String,
        /// The hash it should select.
        pod_template_hash: String,
    },
    /// Apply traffic weights through every configured router.
    SetWeights(TrafficWeights),
    /// Apply or (with no matches) remove a header route.
    SetHeaderRoute(SetHeaderRoute),
    /// Apply or (with no matches) remove a mirror route.
    SetMirrorRoute(SetMirrorRoute),
    /// Remove every managed route.
    RemoveManagedRoutes,
    /// Create an AnalysisRun from templates.
    CreateAnalysisRun {
        /// The run's name.
        name: String,
        /// What the run is for.
        kind: AnalysisKind,
        /// The hash of the revision it analyses.
        pod_template_hash: String,
        /// The templates and arguments.
        analysis: RolloutAnalysis,
    },
    /// Set `spec.terminate` on a running AnalysisRun.
    TerminateAnalysisRun {
        /// The run's name.
        name: String,
    },
    /// Scale the Deployment behind a `workloadRef`.
    ScaleWorkload {
        /// The new count.
        replicas: i32,
    },
    /// Evict a pod through `pods/eviction`, for `spec.restartAt`.
    EvictPod {
        /// The pod.
        name: String,
    },
}

/// An Event to record on the Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    /// Normal or Warning.
    pub kind: EventKind,
    /// A stable, one-word reason (`RolloutStepCompleted`, `RolloutAborted`, ...).
    pub reason: &'static str,
    /// A message for people.
    pub message: String,
}

/// The type of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Normal progress.
    Normal,
    /// Something needs attention.
    Warning,
}
