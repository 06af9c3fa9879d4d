//! The analysis resources: `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun`, with
//! their metrics, providers and the canary judge's configuration.

use super::{DryRun, MeasurementRetention};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metrics that judge a rollout, with the arguments they take.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    plural = "analysistemplates",
    shortname = "sat",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// The metrics to measure.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub metrics: Vec<Metric>,
    /// Arguments the metrics refer to as `{{args.NAME}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Metrics whose failure is recorded but does not fail the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// How judge metrics are scored together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<JudgementConfig>,
}

/// An `AnalysisTemplate` available to Rollouts in every namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    plural = "clusteranalysistemplates",
    shortname = "scat"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAnalysisTemplateSpec {
    /// The template, with the same fields as an AnalysisTemplate's spec.
    #[serde(flatten)]
    pub template: AnalysisTemplateSpec,
}

/// One execution of analysis templates with resolved arguments.
// Each `printcolumn(...)` repeats `type_ = ...`; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "AnalysisRun",
    plural = "analysisruns",
    shortname = "sar",
    namespaced,
    status = "AnalysisRunStatus",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "Phase of the run"
    ),
    printcolumn(
        name = "Score",
        type_ = "number",
        json_path = ".status.judgement.score",
        description = "Canary score of judge metrics"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics to measure, with arguments substituted.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The arguments the run was created with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Stop measuring; a run stopped without failures is Successful.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminate: bool,
    /// Metrics whose failure is recorded but does not fail the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// How judge metrics are scored together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<JudgementConfig>,
    /// Which pods judge metrics compare; set by the controller that creates the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RunScope>,
}

/// A template argument.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// The argument's name.
    pub name: String,
    /// Its value; an argument without one must be supplied by the Rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Read the value from a Secret at measurement time (never stored in the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentSource>,
}

/// Where an argument's value comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentSource {
    /// A key of a Secret in the run's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// A key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key within it.
    pub key: String,
}

/// A metric: a provider, how often to measure it, and how to judge each measurement (a
/// condition on `result`) or the whole comparison (the canary judge).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.judge) || (!has(self.successCondition) && !has(self.failureCondition))").message("a metric uses either a judge or success/failure conditions, not both"))]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// The metric's name, unique in the run.
    pub name: String,
    /// Time between measurements (`30s`, `5m`); one measurement when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Delay before the first measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Number of measurements; unlimited with an interval and no count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// Expression over `result` that a successful measurement satisfies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// Expression over `result` that a failed measurement satisfies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Failed measurements tolerated before the metric fails; -1 for no limit. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// Inconclusive measurements tolerated. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// Consecutive provider errors tolerated. Defaults to 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// Consecutive successes after which the metric succeeds; 0 disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
    /// Where the measurements come from.
    pub provider: MetricProviderSpec,
    /// Compare canary with baseline or stable statistically instead of by condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeMetric>,
}

/// The source of a metric's measurements. Exactly one is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("[has(self.prometheus), has(self.web), has(self.job), has(self.plugin)].filter(x, x).size() == 1").message("a metric provider sets exactly one of prometheus, web, job, plugin"))]
#[serde(rename_all = "camelCase")]
pub struct MetricProviderSpec {
    /// A Prometheus query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// An HTTP endpoint returning JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    /// A Kubernetes Job whose success is the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    /// An out-of-process provider by name, with its configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_form_object")]
    pub plugin: Option<BTreeMap<String, serde_json::Value>>,
}

/// A Prometheus query. The server is one an administrator registered with the controller
/// (`--prometheus NAME=URL`): named by `server`, or given by an `address` equal to a registered
/// URL, or the registered default when both are unset.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!(has(self.server) && has(self.address))").message("a prometheus metric names a registered server or gives its address, not both"))]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// The name of a Prometheus server registered with the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's base URL; must equal the URL of a registered server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The PromQL query; `{{args.NAME}}` is substituted.
    pub query: String,
    /// Query timeout in seconds. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout: Option<i64>,
    /// Skip TLS certificate verification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Extra HTTP headers, such as authorisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
    /// Run a range query instead of an instant one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_query: Option<RangeQuery>,
}

/// A range query's window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RangeQuery {
    /// Start of the window, as a duration before now (`10m`).
    pub start: String,
    /// End of the window, as a duration before now; now when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Resolution (`30s`).
    pub step: String,
}

/// An HTTP header.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeader {
    /// The header's name.
    pub key: String,
    /// The header's value.
    pub value: String,
}

/// An HTTP endpoint returning JSON.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// `GET`, `POST` or `PUT`. Defaults to `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The URL; `{{args.NAME}}` is substituted.
    pub url: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Timeout in seconds. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i64>,
    /// JSONPath of the result in the response. Defaults to `{$}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// Skip TLS certificate verification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// A Kubernetes Job whose completion is the measurement.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobMetric {
    /// Labels and annotations of the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<super::PodMetadata>,
    /// The Job's spec (`batch/v1` JobSpec).
    #[schemars(schema_with = "super::schema::free_form_object")]
    pub spec: serde_json::Value,
}

/// How the canary judge compares one metric: its query runs once per side (the canary, and
/// the baseline or stable) with the `{{scope.*}}` placeholders filled for that side
/// (docs/judge.md), and the two sides' data are compared statistically.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.test) && self.test == 'rateRatio') == has(self.totalQuery)").message("a judge metric sets totalQuery exactly when its test is rateRatio"))]
#[serde(rename_all = "camelCase")]
pub struct JudgeMetric {
    /// What the canary is compared with: `baseline` (fresh pods of the stable version) or
    /// `stable`. Defaults to `baseline` when the rollout runs one, else `stable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<JudgeControl>,
    /// The judge's configuration of this metric.
    #[serde(flatten)]
    pub spec: sluice_analysis::spec::MetricSpec,
    /// `rateRatio` only: the query of the total (requests, seconds) the provider's query
    /// counts events of; both run as instant queries at the end of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub total_query: Option<String>,
    /// `mannWhitney`: the resolution of the range query; each point is one value of the side's
    /// sample (`5s`, `1m`). Defaults to 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// How far back each judgement looks (`10m`). Defaults to everything since the run
    /// started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

/// What the canary is compared with.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum JudgeControl {
    /// Fresh pods of the stable version, the same size as the canary and given the same traffic.
    Baseline,
    /// The stable pods.
    Stable,
}

/// How judge metrics are scored together (confidence, score thresholds, group weights).
pub type JudgementConfig = sluice_analysis::spec::JudgementSpec;

/// Which pods a run's judge metrics compare, filled in by the controller that creates the run
/// from the Rollout's ReplicaSets; the judge's `{{scope.*}}` placeholders come from here.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunScope {
    /// The Rollout the run judges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// The canary's pod-template hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_pod_template_hash: Option<String>,
    /// The stable pods' pod-template hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_pod_template_hash: Option<String>,
    /// The baseline pods' pod-template hash, when the Rollout runs a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_pod_template_hash: Option<String>,
}

/// The judge's latest judgement of a run's judge metrics, and the scores before it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunJudgement {
    /// The latest judgement: score, verdict, reason, group scores and every metric's
    /// classification with its statistics and both sides' descriptive statistics.
    #[serde(flatten)]
    pub latest: sluice_analysis::Judgement,
    /// When the latest judgement was made.
    pub judged_at: Time,
    /// What the canary was compared with: `baseline` or `stable`.
    pub control: JudgeControl,
    /// The window the latest judgement looked at, as `[start, end]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window: Vec<Time>,
    /// Earlier scores, oldest first, at most 30 (the latest included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<ScorePoint>,
}

/// One past judgement's score.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScorePoint {
    /// When it was made.
    pub judged_at: Time,
    /// Its score, 0–100.
    pub score: f64,
    /// `Pass`, `Marginal` or `Fail`.
    pub result: sluice_analysis::score::Verdict,
}

/// The observed state of an AnalysisRun.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// `Pending`, `Running`, `Successful`, `Failed`, `Error` or `Inconclusive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// Why the run is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// Per-metric results, with a bounded history of measurements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResult>,
    /// Counts of the measurements of metrics that are not dry-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_summary: Option<RunSummary>,
    /// Counts of the measurements of dry-run metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
    /// The canary judge's latest judgement, for judge metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<RunJudgement>,
}

/// How many metrics of a run ended in each phase.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Metrics counted.
    #[serde(default)]
    pub count: i32,
    /// Metrics Successful.
    #[serde(default)]
    pub successful: i32,
    /// Metrics Failed.
    #[serde(default)]
    pub failed: i32,
    /// Metrics Inconclusive.
    #[serde(default)]
    pub inconclusive: i32,
    /// Metrics in Error.
    #[serde(default)]
    pub error: i32,
}

/// The phase of an AnalysisRun or of one metric.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalysisPhase {
    /// Not started.
    Pending,
    /// Measuring.
    Running,
    /// Passed.
    Successful,
    /// Failed.
    Failed,
    /// Could not measure.
    Error,
    /// Neither passed nor failed.
    Inconclusive,
}

/// The results of one metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// The metric's name.
    pub name: String,
    /// The metric's phase.
    pub phase: AnalysisPhase,
    /// Why the metric is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The most recent measurements, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// Measurements taken.
    #[serde(default)]
    pub count: i32,
    /// Successful measurements.
    #[serde(default)]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default)]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default)]
    pub inconclusive: i32,
    /// Measurements that errored.
    #[serde(default)]
    pub error: i32,
    /// Errors in a row.
    #[serde(default)]
    pub consecutive_error: i32,
    /// Successes in a row.
    #[serde(default)]
    pub consecutive_success: i32,
    /// The metric is dry-run: its result does not count towards the run's phase.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Facts of the latest measurement worth keeping (the resolved query, the Job's name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// One measurement of a metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// The measurement's phase.
    pub phase: AnalysisPhase,
    /// Why, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The value measured, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For a measurement still in progress (`Running`, a Job): when to look at it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Time>,
    /// Facts of this measurement (the resolved query, the Job's name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}
