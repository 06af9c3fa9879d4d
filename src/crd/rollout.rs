//! The `Rollout` resource: its spec (workload, strategy choice, deadlines, history) and the
//! CustomResource definition (subresources, printer columns, CEL rules). Strategies live in
//! `canary.rs` and `bluegreen.rs`, the status in `status.rs`.

use super::{BlueGreenStrategy, CanaryStrategy, RolloutStatus};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A Rollout replaces a Deployment: it manages ReplicaSets of a pod template and moves traffic
/// from the stable version to a new one by a canary or blue/green strategy.
// Each `printcolumn(...)` repeats `type_ = ...`; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "Rollout",
    plural = "rollouts",
    shortname = "sro",
    namespaced,
    status = "RolloutStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Number of desired pods"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Total number of non-terminated pods"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Pods of the current revision"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas",
        description = "Available pods"
    ),
    printcolumn(
        name = "Step",
        type_ = "string",
        json_path = ".status.currentStepIndex",
        description = "Current canary step"
    ),
    printcolumn(
        name = "Weight",
        type_ = "integer",
        json_path = ".status.canary.weights.canary.weight",
        description = "Traffic weight applied to the canary"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Rollout phase"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.template) != has(self.workloadRef)").message("exactly one of spec.template and spec.workloadRef must be set"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Desired number of pods. Defaults to 1; the scale subresource (and so an HPA) writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Label selector for the pods. It must match the template's labels and cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The pod template. Exactly one of `template` and `workloadRef` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// Takes the pod template from an existing Deployment instead of `template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,
    /// Seconds a new pod must be ready, without any container crashing, to count as available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
    /// How many fully scaled-down old ReplicaSets to keep for rollback. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub revision_history_limit: Option<i32>,
    /// Pauses the rollout: steps stop advancing and ReplicaSets stop changing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Seconds an update may go without progress before it is reported as failed. Time spent
    /// paused, on a pause step or waiting on analysis does not count. Defaults to 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: Option<i32>,
    /// Abort the update when the progress deadline is exceeded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub progress_deadline_abort: bool,
    /// Restart every pod created before this time, a few at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Time>,
    /// Going back to one of the last N revisions skips the steps and analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindow>,
    /// How many completed AnalysisRuns to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisRunHistory>,
    /// The deployment strategy: exactly one of `canary` and `blueGreen`.
    pub strategy: RolloutStrategy,
}

/// The deployment strategy of a Rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.canary) != has(self.blueGreen)").message("exactly one of strategy.canary and strategy.blueGreen must be set"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Shift traffic to the new version step by step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
    /// Bring up the new version beside the old one and switch the active Service at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
}

/// A reference to the workload whose pod template the Rollout uses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// API version of the referenced workload, `apps/v1`.
    pub api_version: String,
    /// Kind of the referenced workload: `Deployment`.
    pub kind: String,
    /// Name of the referenced workload, in the Rollout's namespace.
    pub name: String,
    /// What to do with the referenced Deployment's pods: `never` (default), `onsuccess` (scale
    /// it to zero once the Rollout is healthy) or `progressively` (as the Rollout scales up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<WorkloadScaleDown>,
}

/// How the Deployment behind a `workloadRef` is scaled down.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadScaleDown {
    /// Leave the Deployment as it is.
    #[default]
    Never,
    /// Scale the Deployment to zero once the Rollout is healthy.
    Onsuccess,
    /// Scale the Deployment down as the Rollout's pods become available.
    Progressively,
}

/// Which revisions count as a rollback that skips steps.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindow {
    /// Number of revisions older than the stable one that a rollback may go back to.
    #[schemars(range(min = 0))]
    pub revisions: i32,
}

/// History limits for AnalysisRuns created by the Rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunHistory {
    /// Successful runs to keep. Defaults to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_run_history_limit: Option<i32>,
    /// Failed, errored or inconclusive runs to keep. Defaults to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub unsuccessful_run_history_limit: Option<i32>,
}

/// Labels and annotations added to the pods of one side (canary, stable, active or preview).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodMetadata {
    /// Labels to add.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations to add.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}
