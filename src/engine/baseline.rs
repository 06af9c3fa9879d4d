//! The baseline of a canary (`spec.strategy.canary.baseline`): fresh pods of the stable
//! template, as many as the canary, given the canary's weight, so a judge compares pods of the
//! same age under the same load (Kayenta's practice). This module holds its identity (hash,
//! role label, template), its validation, and its part of a canary plan: replica target,
//! creation, removal, Service selector, weight and status. Reads and writes only the `Plan`.
//!
//! Lifetime: a baseline belongs to one canary revision (its revision annotation is the
//! canary's). It runs while that canary is in progress and is scaled to 0, then deleted, on
//! promotion, abort and a new revision; the routers lose its weight in the same decision,
//! before its pods go.

use super::hash::{TemplateDigest, fnv1a32, safe_encode, strip_hash_label};
use super::model::{Action, ObservedReplicaSet};
use super::plan::{Plan, live};
use super::validate::{Canary, InvalidSpec};
use crate::crd::{BaselineStatus, CanaryStrategy, PodMetadata, WeightDestination};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Label on baseline ReplicaSets and their pods: their role.
pub const ROLE_LABEL: &str = "rollout.sluice.dev/role";
/// The value of `ROLE_LABEL` on baseline pods.
pub const BASELINE_ROLE: &str = "baseline";

/// The `rollouts-pod-template-hash` of the baseline pods that run beside a stable hash:
/// FNV-1a of `baseline/<stable>` in the pod-template hash alphabet. Deterministic, and never
/// equal to `stable_hash`, so the stable Service never selects baseline pods.
pub fn baseline_hash(stable_hash: &str) -> String {
    let mut input = format!("baseline/{stable_hash}");
    loop {
        let hash = safe_encode(fnv1a32(input.as_bytes()));
        if hash != stable_hash {
            return hash;
        }
        // One chance in 27^7 per stable hash; rehash rather than collide.
        input.push('/');
    }
}

/// The baseline as the engine needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Baseline {
    /// The Service that selects the baseline pods, if any.
    pub service: Option<String>,
    /// Labels and annotations for the baseline pods.
    pub metadata: Option<PodMetadata>,
}

/// The baseline's pod template: the stable template (without its hash label) plus the role
/// label and the configured metadata. The role label is set last, so metadata cannot remove it.
pub fn baseline_template(
    stable: &PodTemplateSpec,
    metadata: Option<&PodMetadata>,
) -> PodTemplateSpec {
    let mut template = strip_hash_label(stable);
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    if let Some(m) = metadata {
        labels.extend(m.labels.clone());
        if !m.annotations.is_empty() {
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(m.annotations.clone());
        }
    }
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(ROLE_LABEL.into(), BASELINE_ROLE.into());
    template
}

/// Validates `spec.strategy.canary.baseline`. The CRD's CEL rules say the same; this catches
/// objects stored before them or applied without them.
///
/// # Errors
/// A missing or shared Service, or a router with no third destination (NGINX).
pub fn validate(
    c: &CanaryStrategy,
    check_service: impl Fn(&str, &str) -> Result<(), InvalidSpec>,
) -> Result<Option<Baseline>, InvalidSpec> {
    let Some(b) = &c.baseline else {
        return Ok(None);
    };
    let f = "spec.strategy.canary.baseline";
    let invalid = |field: &str, problem: &str| InvalidSpec {
        field: format!("{f}{field}"),
        problem: problem.to_string(),
    };
    let service = b.service.clone().filter(|s| !s.is_empty());
    if let Some(t) = &c.traffic_routing {
        if t.nginx.is_some() {
            return Err(invalid(
                "",
                "the nginx router cannot send traffic to a baseline (no third destination); use gatewayAPI, istio, smi or traefik, or remove baseline",
            ));
        }
        if service.is_none() {
            return Err(invalid(
                ".service",
                "is required with trafficRouting: the routers send the baseline its weight through it",
            ));
        }
    }
    if let Some(svc) = &service {
        if [&c.canary_service, &c.stable_service]
            .iter()
            .any(|s| s.as_deref() == Some(svc.as_str()))
        {
            return Err(invalid(
                ".service",
                "must differ from canaryService and stableService",
            ));
        }
        check_service(svc, &format!("{f}.service"))?;
    }
    Ok(Some(Baseline {
        service,
        metadata: b.metadata.clone(),
    }))
}

/// Whether a baseline should run now: configured, a stable to copy, and a canary in progress.
fn wanted(p: &Plan, c: &Canary) -> bool {
    c.baseline.is_some() && !p.promoted() && !p.status.abort && p.stable_rs().is_some()
}

/// The baseline hash for the current stable, when there is a stable.
fn hash(p: &Plan) -> Option<String> {
    p.status.stable_rs.as_deref().map(baseline_hash)
}

/// The baseline ReplicaSet of the current canary: the stable's baseline hash and the
/// canary's revision.
pub fn current<'a>(p: &Plan<'a>, c: &Canary) -> Option<&'a ObservedReplicaSet> {
    if !wanted(p, c) {
        return None;
    }
    let hash = hash(p)?;
    live(p.observed).find(|rs| {
        rs.baseline
            && rs.pod_template_hash.as_deref() == Some(hash.as_str())
            && rs.revision == Some(p.new_revision)
    })
}

/// The baseline is at the canary's count with enough pods available (what a step that sizes
/// the canary waits for); always true without a baseline.
pub fn ready(p: &Plan, c: &Canary, canary: i32, needed: i32) -> bool {
    if !wanted(p, c) {
        return true;
    }
    current(p, c).map_or(canary == 0, |rs| {
        rs.desired_replicas == canary && rs.available_replicas >= needed
    })
}

/// Plans the baseline ReplicaSets after the canary's targets: the current one follows the
/// canary's target (created when missing), every other one goes to 0 and then away.
pub fn targets(p: &mut Plan, c: &Canary) {
    let canary = p
        .targets
        .get(&p.new_name)
        .copied()
        .unwrap_or_else(|| p.new_spec());
    let keep = current(p, c).map(|rs| rs.name.clone());
    for rs in live(p.observed).filter(|rs| rs.baseline) {
        if Some(&rs.name) == keep.as_ref() {
            p.targets.insert(rs.name.clone(), canary);
        } else if rs.desired_replicas > 0 || rs.replicas > 0 {
            p.targets.insert(rs.name.clone(), 0);
        } else {
            p.baseline_deletes.push(Action::DeleteReplicaSet {
                name: rs.name.clone(),
            });
        }
    }
    if keep.is_none() && wanted(p, c) && canary > 0 {
        create(p, c, canary);
    }
}

/// Asks for the baseline ReplicaSet, once its name is free (a stale one may still be going).
fn create(p: &mut Plan, c: &Canary, replicas: i32) {
    let (Some(hash), Some(stable)) = (hash(p), p.stable_rs()) else {
        return;
    };
    let name = format!("{}-{hash}", p.v.name);
    if p.observed.replica_sets.iter().any(|rs| rs.name == name) {
        return;
    }
    p.baseline_create = Some(Action::CreateBaselineReplicaSet {
        name: name.clone(),
        pod_template_hash: hash,
        stable_replica_set: stable.name.clone(),
        replicas,
        revision: p.new_revision,
        metadata: c.baseline.as_ref().and_then(|b| b.metadata.clone()),
        min_ready_seconds: p.v.min_ready_seconds,
    });
    p.event(
        super::model::EventKind::Normal,
        "BaselineReplicaSetCreated",
        format!("Created baseline ReplicaSet {name} with {replicas} replicas"),
    );
}

/// Points the baseline Service at the baseline pods once some are available, and back at the
/// stable pods when no baseline runs (as the canary Service goes back after an update).
pub fn service(p: &mut Plan, c: &Canary, stable_hash: &str, stable_available: i32) {
    let Some(svc) = c.baseline.as_ref().and_then(|b| b.service.clone()) else {
        return;
    };
    match current(p, c) {
        Some(rs) if rs.available_replicas > 0 => {
            let hash = rs.pod_template_hash.clone().unwrap_or_default();
            p.select(&svc, &hash, rs.available_replicas);
        }
        Some(_) if p.observed_selector(&svc).is_some() => {}
        Some(_) | None => p.select(&svc, stable_hash, stable_available),
    }
}

/// The baseline's destination for a canary weight: the canary's weight (at most what stable
/// has left), only while the baseline Service selects available baseline pods. `None` gives
/// the baseline nothing.
pub fn destination(
    p: &Plan,
    c: &Canary,
    canary_weight: i32,
    max: i32,
) -> Option<WeightDestination> {
    let svc = c.baseline.as_ref()?.service.clone()?;
    let rs = current(p, c)?;
    let hash = rs.pod_template_hash.clone()?;
    let weight = canary_weight.min(max - canary_weight);
    let selected = p.planned_selector(&svc).as_deref() == Some(hash.as_str());
    (weight > 0 && selected && rs.available_replicas > 0).then_some(WeightDestination {
        weight,
        service_name: Some(svc),
        pod_template_hash: Some(hash),
    })
}

/// `status.canary.baseline`: the current baseline, while one runs.
pub fn status(p: &Plan, c: &Canary) -> Option<BaselineStatus> {
    let rs = current(p, c)?;
    Some(BaselineStatus {
        pod_template_hash: rs.pod_template_hash.clone()?,
        replicas: p
            .targets
            .get(&rs.name)
            .copied()
            .unwrap_or(rs.desired_replicas),
        available_replicas: rs.available_replicas,
    })
}

/// The digest a baseline ReplicaSet is recorded with in the simulated world: baselines are
/// never adopted by template, so any fixed value does.
pub fn simulated_digest() -> TemplateDigest {
    TemplateDigest::of(&PodTemplateSpec::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_hash_is_deterministic_label_safe_and_differs_from_stable() {
        for stable in ["rbx6qjl", "55n2fbg", "", "bbbbbbb"] {
            let h = baseline_hash(stable);
            assert_eq!(h, baseline_hash(stable), "deterministic for {stable:?}");
            assert_ne!(h, stable);
            assert_eq!(h.len(), 7, "{h}");
            assert!(
                h.bytes()
                    .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
            );
        }
        assert_ne!(baseline_hash("rbx6qjl"), baseline_hash("55n2fbg"));
    }

    #[test]
    fn baseline_template_keeps_stable_spec_drops_its_hash_and_adds_the_role() {
        let stable: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web", "rollouts-pod-template-hash": "rbx6qjl"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}
        }))
        .unwrap();
        let metadata = PodMetadata {
            labels: BTreeMap::from([
                ("team".into(), "a".into()),
                (ROLE_LABEL.into(), "canary".into()),
            ]),
            annotations: BTreeMap::from([("note".into(), "b".into())]),
        };
        let t = baseline_template(&stable, Some(&metadata));
        let meta = t.metadata.clone().unwrap();
        let labels = meta.labels.unwrap();
        assert_eq!(labels.get(ROLE_LABEL).map(String::as_str), Some("baseline"));
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert!(!labels.contains_key(crate::crd::POD_TEMPLATE_HASH_LABEL));
        assert_eq!(meta.annotations.unwrap()["note"], "b");
        assert_eq!(t.spec, stable.spec);
    }
}
