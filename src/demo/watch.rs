//! What the demo prints while it waits: one line per change of a Rollout's phase, step and
//! pods, and the small predicates the scenarios wait on. Reads the API; writes nothing.

use crate::crd::{POD_TEMPLATE_HASH_LABEL, Rollout, RolloutPhase};
use anyhow::bail;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use std::time::{Duration, Instant};

use super::NAMESPACE;

/// The label the controller puts on baseline ReplicaSets and pods (the contract of issue #12).
const ROLE_LABEL: &str = "rollout.sluice.dev/role";

pub(super) fn phase(r: &Rollout) -> Option<RolloutPhase> {
    r.status.as_ref()?.phase
}

pub(super) fn stable(r: &Rollout) -> Option<String> {
    r.status.as_ref()?.stable_rs.clone()
}

pub(super) fn healthy(r: &Rollout) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.phase == Some(RolloutPhase::Healthy)
            && s.stable_rs.is_some()
            && s.stable_rs == s.current_pod_hash
            && s.observed_generation == r.metadata.generation
    })
}

pub(super) fn moved(r: &Rollout, from: &str) -> bool {
    stable(r).is_some_and(|s| s != from)
}

pub(super) fn moved_current(r: &Rollout, from: &str) -> bool {
    r.status
        .as_ref()
        .and_then(|s| s.current_pod_hash.as_deref())
        .is_some_and(|c| c != from)
}

pub(super) async fn wait_selector(
    client: &kube::Client,
    service: &str,
    hash: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + limit;
    loop {
        let svc = services.get(service).await?;
        let selected = svc
            .spec
            .and_then(|s| s.selector)
            .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL).cloned());
        if selected.as_deref() == Some(hash) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{service} never selected {hash}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Print a line whenever the Rollout's step, phase, weight or pods change, until `done`
/// (or `limit` passes: an error naming `what`).
pub(super) async fn follow(
    client: &kube::Client,
    name: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&Rollout) -> bool,
) -> anyhow::Result<Rollout> {
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let rollout = rollouts.get(name).await?;
        let line = describe(&rollout, &replica_sets).await?;
        if line != last {
            println!("  {line}");
            last = line;
        }
        if done(&rollout) {
            return Ok(rollout);
        }
        if Instant::now() > deadline {
            bail!("{what} did not finish within {}s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn describe(rollout: &Rollout, replica_sets: &Api<ReplicaSet>) -> anyhow::Result<String> {
    let status = rollout.status.clone().unwrap_or_default();
    let steps = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .map_or(&[][..], |c| &c.steps[..]);
    let step = status.current_step_index.unwrap_or(0);
    let step_text = usize::try_from(step)
        .ok()
        .and_then(|i| steps.get(i))
        .map_or_else(|| "done".into(), step_text);
    let phase = status.phase.map_or("-".to_string(), |p| format!("{p:?}"));
    let weights = status
        .canary
        .as_ref()
        .and_then(|c| c.weights.as_ref())
        .map(|w| {
            let extra: String = w
                .additional
                .iter()
                .map(|a| format!("/{}", a.weight))
                .collect();
            format!(" weights {}/{}{extra}", w.stable.weight, w.canary.weight)
        })
        .unwrap_or_default();
    let pods = pods_text(rollout, replica_sets).await?;
    Ok(format!(
        "{phase:<11} step {step}/{} ({step_text:<13}){weights} pods: {pods}",
        steps.len()
    ))
}

fn step_text(step: &crate::crd::CanaryStep) -> String {
    match (step.set_weight, &step.pause, &step.analysis) {
        (Some(w), _, _) => format!("setWeight {w}"),
        (None, Some(p), _) => match &p.duration {
            Some(d) => format!("pause {}", intstr(d)),
            None => "pause".into(),
        },
        (None, None, Some(_)) => "analysis".into(),
        _ => "step".into(),
    }
}

/// `stable HASH 3/3 ready, canary HASH 1/1 ready, baseline HASH 1/1 ready` for the Rollout's
/// ReplicaSets that have or want pods.
async fn pods_text(rollout: &Rollout, replica_sets: &Api<ReplicaSet>) -> anyhow::Result<String> {
    let status = rollout.status.clone().unwrap_or_default();
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut list = replica_sets
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    list.sort_by_key(|rs| rs.creation_timestamp().map(|t| t.0));
    let mut pods = Vec::new();
    for rs in list {
        let hash = rs
            .labels()
            .get(POD_TEMPLATE_HASH_LABEL)
            .cloned()
            .unwrap_or_default();
        let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let ready = rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if want == 0 && ready == 0 {
            continue;
        }
        let role = match rs.labels().get(ROLE_LABEL).map(String::as_str) {
            Some("baseline") => "baseline",
            _ if Some(&hash) == status.stable_rs.as_ref() => "stable",
            _ if Some(&hash) == status.current_pod_hash.as_ref() => "canary",
            _ => "old",
        };
        pods.push(format!("{role} {hash} {ready}/{want} ready"));
    }
    Ok(pods.join(", "))
}

fn intstr(value: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    match value {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => format!("{i}s"),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    }
}
