//! The blue/green strategy of a Rollout.

use super::{PodMetadata, RolloutAnalysis};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Bring the new version up beside the old one, behind a preview Service, and switch the
/// active Service to it at once.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.previewService) || self.previewService != self.activeService").message("activeService and previewService must differ"))]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Service that sends production traffic to the active ReplicaSet.
    pub active_service: String,
    /// Service that always selects the newest ReplicaSet, for testing before promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_service: Option<String>,
    /// Number of pods the preview runs before promotion; full size when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub preview_replica_count: Option<i32>,
    /// Switch the active Service without waiting for a promote. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_enabled: Option<bool>,
    /// Pause, then promote automatically after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub auto_promotion_seconds: Option<i32>,
    /// Seconds to keep the old active ReplicaSet up after the switch. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_seconds: Option<i32>,
    /// How many old ReplicaSets may be kept up while their scale-down delay runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Seconds after an abort before the preview is scaled down; 0 keeps it up. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Analysis that must succeed before the active Service switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// Analysis run after the switch; its failure switches back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    /// Labels and annotations for the preview pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_metadata: Option<PodMetadata>,
    /// Labels and annotations for the active pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_metadata: Option<PodMetadata>,
    /// Pods that may be unavailable while restarting (a number or a percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}
