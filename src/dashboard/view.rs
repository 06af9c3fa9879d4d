//! The JSON view models of the page, computed purely from a `World`: the overview's rows and one
//! Rollout's page (steps, weights, revisions with pods, AnalysisRuns with judgements and
//! measurements). No I/O here; the page draws exactly what these say.

use super::store::World;
use crate::crd::{
    AnalysisRun, POD_TEMPLATE_HASH_LABEL, Rollout, RolloutPhase, RolloutStatus, RunJudgement,
};
use crate::engine::{ANALYSIS_KIND_LABEL, REVISION_ANNOTATION, STEP_INDEX_LABEL};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;
use sluice_analysis::score::Verdict;
use std::sync::Arc;

/// The overview page: every Rollout in scope, sorted by namespace and name.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub read_only: bool,
    /// The namespace the dashboard serves, or null for all.
    pub namespace: Option<String>,
    pub rollouts: Vec<Row>,
}

/// One Rollout's line in the overview (and the head of its page).
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub namespace: String,
    pub name: String,
    /// `canary` or `blueGreen`.
    pub strategy: &'static str,
    pub phase: Option<RolloutPhase>,
    pub message: Option<String>,
    /// The current step index, and how many steps there are (canary).
    pub step: Option<i32>,
    pub steps: usize,
    /// The canary weight the steps ask for now, and the one the router reports.
    pub desired_weight: Option<i32>,
    pub actual_weight: Option<i32>,
    /// The newest judgement's score and verdict among the Rollout's runs.
    pub score: Option<f64>,
    pub verdict: Option<Verdict>,
    pub paused: bool,
    pub aborted: bool,
}

/// One Rollout's page.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub read_only: bool,
    pub rollout: Row,
    /// The canary steps as written in the spec (`setWeight`, `pause`, `analysis`, …).
    pub step_specs: Vec<Value>,
    pub pause_reasons: Vec<String>,
    pub conditions: Vec<Condition>,
    /// Newest revision first.
    pub revisions: Vec<Revision>,
    /// Newest run first.
    pub runs: Vec<Run>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// A ReplicaSet of the Rollout with its pods.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub name: String,
    pub hash: Option<String>,
    pub revision: Option<String>,
    /// `stable`, `canary`, `baseline` (several when they coincide).
    pub roles: Vec<&'static str>,
    pub images: Vec<String>,
    pub replicas: i32,
    pub ready: i32,
    pub pods: Vec<PodView>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    pub name: String,
    pub phase: Option<String>,
    pub ready: bool,
}

/// An AnalysisRun of the Rollout.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub name: String,
    pub phase: Option<String>,
    pub message: Option<String>,
    /// `step`, `background`, `prePromotion`, … (the run's analysis-kind label).
    pub kind: Option<String>,
    pub step: Option<String>,
    pub created: Option<String>,
    pub judgement: Option<RunJudgement>,
    /// The score thresholds of the run's judgement (defaults 95 and 75).
    pub pass: f64,
    pub marginal: f64,
    /// Threshold metrics and their measurements.
    pub metrics: Vec<MeasuredMetric>,
}

/// A threshold (non-judge) metric with its measured values over time.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MeasuredMetric {
    pub name: String,
    pub phase: String,
    pub message: Option<String>,
    pub success_condition: Option<String>,
    pub failure_condition: Option<String>,
    pub measurements: Vec<Point>,
}

/// One measurement: when, the value (a number when it reads as one), and its phase.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    pub at: Option<String>,
    pub value: Option<f64>,
    pub text: Option<String>,
    pub phase: String,
}

/// The overview of `world`.
pub fn overview(world: &World, namespace: Option<&str>, read_only: bool) -> Overview {
    let mut rollouts: Vec<Row> = world.rollouts.iter().map(|r| row(r, world)).collect();
    rollouts.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Overview {
        read_only,
        namespace: namespace.map(str::to_string),
        rollouts,
    }
}

/// The page of the Rollout `namespace/name`, or None when it is not in `world`.
pub fn detail(world: &World, namespace: &str, name: &str, read_only: bool) -> Option<Detail> {
    let rollout = world
        .rollouts
        .iter()
        .find(|r| r.name_any() == name && r.namespace().as_deref() == Some(namespace))?;
    let status = rollout.status.clone().unwrap_or_default();
    let step_specs = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .map(|c| {
            c.steps
                .iter()
                .filter_map(|s| serde_json::to_value(s).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut runs: Vec<Run> = runs_of(rollout, world).map(|r| run(r)).collect();
    runs.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
    Some(Detail {
        read_only,
        rollout: row(rollout, world),
        step_specs,
        pause_reasons: status
            .pause_conditions
            .iter()
            .filter_map(|p| serde_json::to_value(p.reason).ok())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        conditions: status
            .conditions
            .iter()
            .map(|c| Condition {
                kind: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        revisions: revisions(rollout, &status, world),
        runs,
    })
}

fn row(rollout: &Rollout, world: &World) -> Row {
    let status = rollout.status.clone().unwrap_or_default();
    let canary = rollout.spec.strategy.canary.as_ref();
    let steps = canary.map_or(0, |c| c.steps.len());
    let latest = runs_of(rollout, world)
        .filter(|r| r.status.as_ref().is_some_and(|s| s.judgement.is_some()))
        .max_by_key(|r| r.creation_timestamp());
    let judgement = latest.and_then(|r| r.status.as_ref()?.judgement.as_ref());
    Row {
        namespace: rollout.namespace().unwrap_or_default(),
        name: rollout.name_any(),
        strategy: if canary.is_some() {
            "canary"
        } else {
            "blueGreen"
        },
        phase: status.phase,
        message: status.message.clone(),
        step: canary.and(status.current_step_index),
        steps,
        desired_weight: canary.map(|_| desired_weight(rollout, &status)),
        actual_weight: status
            .canary
            .as_ref()
            .and_then(|c| c.weights.as_ref())
            .map(|w| w.canary.weight),
        score: judgement.map(|j| j.latest.score),
        verdict: judgement.map(|j| j.latest.result),
        paused: rollout.spec.paused || !status.pause_conditions.is_empty(),
        aborted: status.abort,
    }
}

/// The canary weight the steps ask for at the current step: the last `setWeight` before it,
/// 100 once every step is done or the revision is stable, 0 before the first.
fn desired_weight(rollout: &Rollout, status: &RolloutStatus) -> i32 {
    let Some(canary) = rollout.spec.strategy.canary.as_ref() else {
        return 0;
    };
    let promoted = status.current_pod_hash.is_some() && status.current_pod_hash == status.stable_rs;
    if status.abort || promoted {
        return if promoted { 100 } else { 0 };
    }
    let index = usize::try_from(status.current_step_index.unwrap_or(0)).unwrap_or(0);
    if index >= canary.steps.len() {
        return 100;
    }
    canary.steps[..=index]
        .iter()
        .filter_map(|s| s.set_weight)
        .next_back()
        .unwrap_or(0)
}

fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|o| o.uid == uid))
}

fn runs_of<'a>(
    rollout: &'a Rollout,
    world: &'a World,
) -> impl Iterator<Item = &'a Arc<AnalysisRun>> {
    let uid = rollout.uid().unwrap_or_default();
    let (ns, name) = (rollout.namespace(), rollout.name_any());
    world.runs.iter().filter(move |run| {
        run.namespace() == ns
            && (owned_by(&run.metadata, &uid)
                || run.spec.scope.as_ref().and_then(|s| s.rollout.as_deref()) == Some(&name))
    })
}

fn revisions(rollout: &Rollout, status: &RolloutStatus, world: &World) -> Vec<Revision> {
    let uid = rollout.uid().unwrap_or_default();
    let baseline = status
        .canary
        .as_ref()
        .and_then(|c| c.baseline.as_ref())
        .map(|b| b.pod_template_hash.clone());
    let mut out: Vec<(i64, Revision)> = world
        .replica_sets
        .iter()
        .filter(|rs| rs.namespace() == rollout.namespace() && owned_by(&rs.metadata, &uid))
        .map(|rs| {
            let hash = rs.labels().get(POD_TEMPLATE_HASH_LABEL).cloned();
            let revision = rs.annotations().get(REVISION_ANNOTATION).cloned();
            let mut roles = Vec::new();
            if hash.is_some() && hash == status.stable_rs {
                roles.push("stable");
            }
            if hash.is_some() && hash == status.current_pod_hash && hash != status.stable_rs {
                roles.push("canary");
            }
            if hash.is_some() && hash == baseline {
                roles.push("baseline");
            }
            let order = revision
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            (order, replica_set(rs, hash, revision, roles, world))
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.name.cmp(&b.1.name)));
    out.into_iter().map(|(_, r)| r).collect()
}

fn replica_set(
    rs: &ReplicaSet,
    hash: Option<String>,
    revision: Option<String>,
    roles: Vec<&'static str>,
    world: &World,
) -> Revision {
    let uid = rs.uid().unwrap_or_default();
    let mut pods: Vec<PodView> = world
        .pods
        .iter()
        .filter(|p| p.namespace() == rs.namespace() && owned_by(&p.metadata, &uid))
        .map(|p| pod(p))
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    let images = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref()?.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default();
    Revision {
        name: rs.name_any(),
        hash,
        revision,
        roles,
        images,
        replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        ready: rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        pods,
    }
}

fn pod(pod: &Pod) -> PodView {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    PodView {
        name: pod.name_any(),
        phase: status.and_then(|s| s.phase.clone()),
        ready,
    }
}

fn run(run: &AnalysisRun) -> Run {
    let status = run.status.clone().unwrap_or_default();
    let thresholds = run
        .spec
        .judgement
        .as_ref()
        .and_then(|j| j.thresholds)
        .unwrap_or_default();
    let defaults = sluice_analysis::config::Thresholds::default();
    let metrics = status
        .metric_results
        .iter()
        .filter(|m| !m.measurements.is_empty())
        .map(|m| {
            let spec = run.spec.metrics.iter().find(|s| s.name == m.name);
            MeasuredMetric {
                name: m.name.clone(),
                phase: phase_text(m.phase),
                message: m.message.clone(),
                success_condition: spec.and_then(|s| s.success_condition.clone()),
                failure_condition: spec.and_then(|s| s.failure_condition.clone()),
                measurements: m
                    .measurements
                    .iter()
                    .map(|x| Point {
                        at: x.finished_at.as_ref().or(x.started_at.as_ref()).map(time),
                        value: x.value.as_deref().and_then(number),
                        text: x.value.clone(),
                        phase: phase_text(x.phase),
                    })
                    .collect(),
            }
        })
        .collect();
    Run {
        name: run.name_any(),
        phase: status.phase.map(phase_text),
        message: status.message.clone(),
        kind: run.labels().get(ANALYSIS_KIND_LABEL).cloned(),
        step: run.labels().get(STEP_INDEX_LABEL).cloned(),
        created: run.creation_timestamp().as_ref().map(time),
        judgement: status.judgement.clone(),
        pass: thresholds.pass.unwrap_or(defaults.pass),
        marginal: thresholds.marginal.unwrap_or(defaults.marginal),
        metrics,
    }
}

fn time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    t.0.to_string()
}

fn phase_text(phase: crate::crd::AnalysisPhase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A measured value as a number: plain (`0.93`) or the single element of a vector (`[0.93]`).
fn number(text: &str) -> Option<f64> {
    let trimmed = text
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim();
    trimmed.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn measured_values_read_as_numbers_when_they_are_one() {
        assert_eq!(number("0.93"), Some(0.93));
        assert_eq!(number("[12.5]"), Some(12.5));
        assert_eq!(number("[1, 2]"), None);
        assert_eq!(number("NaN"), None);
        assert_eq!(number("ok"), None);
    }
}
