//! The canary strategy of a Rollout and its steps, with the analysis references that steps and
//! background analysis share with blue/green.

use super::{PodMetadata, TrafficRouting};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Shift traffic to the new version step by step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.canaryService) || !has(self.stableService) || self.canaryService == '' || self.canaryService != self.stableService").message("canaryService and stableService must differ"))]
#[x_kube(validation = Rule::new("!has(self.steps) || self.steps.all(s, !has(s.setWeight) || s.setWeight <= (has(self.trafficRouting) && has(self.trafficRouting.maxTrafficWeight) ? self.trafficRouting.maxTrafficWeight : 100))").message("setWeight must be between 0 and trafficRouting.maxTrafficWeight (default 100)"))]
#[x_kube(validation = Rule::new("!has(self.baseline) || !has(self.trafficRouting) || (has(self.baseline.service) && self.baseline.service != '')").message("baseline.service is required with trafficRouting: the routers send the baseline its weight through it"))]
#[x_kube(validation = Rule::new("!has(self.baseline) || !has(self.baseline.service) || ((!has(self.canaryService) || self.baseline.service != self.canaryService) && (!has(self.stableService) || self.baseline.service != self.stableService))").message("baseline.service must differ from canaryService and stableService"))]
#[x_kube(validation = Rule::new("!has(self.baseline) || !has(self.trafficRouting) || !has(self.trafficRouting.nginx)").message("the nginx router cannot send traffic to a baseline (no third destination); use gatewayAPI, istio, smi or traefik, or remove baseline"))]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Service whose selector the controller points at the canary pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// Service whose selector the controller points at the stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// The steps of an update, in order. No steps means a plain rolling update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub steps: Vec<CanaryStep>,
    /// Route traffic by weight through a mesh or ingress. Without it, the canary weight is
    /// approximated by the ratio of canary to stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    /// Pods that may be created above the desired count during an update (a number or a
    /// percentage). Defaults to 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Pods that may be unavailable during an update (a number or a percentage). Defaults to
    /// 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Analysis that runs in the background for the whole update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
    /// Labels and annotations added to canary pods while they are the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<PodMetadata>,
    /// Labels and annotations added to stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<PodMetadata>,
    /// Seconds to keep the old stable ReplicaSet up after the stable Service has switched, so
    /// load balancers converge. Traffic routing only. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_seconds: Option<i32>,
    /// How many old ReplicaSets may be kept up while their scale-down delay runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Seconds after an abort before the canary is scaled down; 0 keeps it up. Traffic routing
    /// only. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Scale the stable ReplicaSet down as the canary weight rises (traffic routing only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_stable_scale: bool,
    /// With traffic routing, the least number of pods a ReplicaSet that gets traffic may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_pods_per_replica_set: Option<i32>,
    /// How many canary pods must be available before a step counts as reached. Defaults to
    /// 100%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
    /// Run a baseline next to the canary: fresh pods of the stable version, as many as the
    /// canary at every step and (with traffic routing) given the canary's weight, so a judge
    /// compares canary and baseline pods of the same age under the same load. Removed on
    /// promotion, abort and a new revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<CanaryBaseline>,
}

/// The baseline of a canary: a ReplicaSet made from the stable pod template whose pods carry
/// the label `rollout.sluice.dev/role: baseline` and their own `rollouts-pod-template-hash`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CanaryBaseline {
    /// Service whose selector the controller points at the baseline pods (at the stable pods
    /// while there is no baseline). Required with `trafficRouting`: the routers send the
    /// baseline its weight through it. Must differ from `canaryService` and `stableService`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service: Option<String>,
    /// Labels and annotations added to the baseline pods (besides the role label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodMetadata>,
}

/// One step of a canary update. Exactly one field is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("[has(self.setWeight), has(self.pause), has(self.setCanaryScale), has(self.analysis), has(self.setHeaderRoute), has(self.setMirrorRoute)].filter(x, x).size() == 1").message("each step sets exactly one of setWeight, pause, setCanaryScale, analysis, setHeaderRoute, setMirrorRoute"))]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Send this percentage of traffic to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub set_weight: Option<i32>,
    /// Pause for a duration, or until promoted when no duration is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<RolloutPause>,
    /// Scale the canary independently of its traffic weight (traffic routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    /// Run an analysis; the step completes when it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysis>,
    /// Send requests that match headers to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
    /// Mirror a share of matching requests to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_mirror_route: Option<SetMirrorRoute>,
}

/// A pause step.
// `string()` of an int is its digits (a negative one starts with `-` and fails the pattern), so
// one pattern checks both forms; `type()` would say the same, but kube's CEL evaluator, which the
// playground enforces rules with, lacks it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.duration) || string(self.duration).matches('^([0-9]+|([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+)$')").message("pause.duration must be a whole number of seconds or a duration such as 30s, 5m, 1h30m"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutPause {
    /// How long to pause: a number of seconds, or a string with units (`30s`, `5m`, `1h30m`).
    /// Without it the rollout pauses until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
}

/// Scales the canary independently of its traffic weight.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("[has(self.replicas), has(self.weight), has(self.matchTrafficWeight) && self.matchTrafficWeight].filter(x, x).size() == 1").message("setCanaryScale sets exactly one of replicas, weight and matchTrafficWeight"))]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// Run exactly this many canary pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Run this percentage of `spec.replicas` as canary pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub weight: Option<i32>,
    /// Go back to sizing the canary by its traffic weight.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_traffic_weight: bool,
}

/// A step that routes requests matching headers to the canary.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// Name of the route; it must be listed in `trafficRouting.managedRoutes`.
    pub name: String,
    /// Header matches, all of which must hold. An empty list removes the route.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HeaderRoutingMatch>,
}

/// One header condition of a header route.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    /// The header's name.
    pub header_name: String,
    /// How the header's value must match.
    pub header_value: StringMatch,
}

/// A string condition: exactly one of `exact`, `prefix` and `regex`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("[has(self.exact), has(self.prefix), has(self.regex)].filter(x, x).size() == 1").message("a string match sets exactly one of exact, prefix and regex"))]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// The value equals this string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The value starts with this string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The value matches this regular expression (RE2 syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// A step that mirrors matching requests to the canary.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SetMirrorRoute {
    /// Name of the route; it must be listed in `trafficRouting.managedRoutes`.
    pub name: String,
    /// Request conditions: all within one entry must hold, any entry may match. An empty list
    /// removes the route.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<RouteMatch>,
    /// Percentage of matching requests to mirror. Defaults to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub percentage: Option<i32>,
}

/// Request conditions of a mirror route.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// The HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// The request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    /// Request headers by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
}

/// How many canary pods must be available before a step counts as reached.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaProgressThreshold {
    /// `Percent` of the desired canary pods, or a number of `Pods`.
    #[serde(rename = "type")]
    pub kind: ProgressThresholdType,
    /// The threshold's value.
    #[schemars(range(min = 0))]
    pub value: i32,
}

/// The unit of a replica progress threshold.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum ProgressThresholdType {
    /// A percentage of the desired canary pods.
    #[default]
    Percent,
    /// A number of pods.
    Pods,
}

/// The analysis to run for a step, in the background, or around a blue/green promotion.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// Templates whose metrics make up the AnalysisRun.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<AnalysisTemplateRef>,
    /// Arguments passed to the templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisRunArgument>,
    /// Metrics whose failure is recorded but does not fail the run (`*` for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Labels and annotations for the AnalysisRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<PodMetadata>,
}

/// Analysis that runs for the whole update, from a step on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundAnalysis {
    /// The analysis to run.
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    /// Index of the step from which the background analysis starts. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_step: Option<i32>,
}

/// A reference to an AnalysisTemplate or ClusterAnalysisTemplate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// The template's name.
    pub template_name: String,
    /// Refer to a ClusterAnalysisTemplate instead of an AnalysisTemplate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_scope: bool,
}

/// An argument passed from the Rollout to its AnalysisRuns.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunArgument {
    /// The argument's name.
    pub name: String,
    /// A literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where to take the value from instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentValueFrom>,
}

/// The source of an analysis argument.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentValueFrom {
    /// The pod-template hash of the `Stable` or `Latest` ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<PodTemplateHashValue>,
    /// A field of the Rollout, such as `metadata.labels['region']`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// Which ReplicaSet's pod-template hash an argument takes.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum PodTemplateHashValue {
    /// The stable ReplicaSet.
    #[default]
    Stable,
    /// The newest ReplicaSet.
    Latest,
}

/// A path to a field of the Rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// The field's path.
    pub field_path: String,
}

/// A metric whose failure does not fail the run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// The metric's name, or `*` for all.
    pub metric_name: String,
}

/// How many measurements to keep for a metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// The metric's name, or `*` for all.
    pub metric_name: String,
    /// Measurements to keep.
    #[schemars(range(min = 1))]
    pub limit: i32,
}
