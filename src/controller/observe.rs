//! Observe: build the engine's plain-data `Observed` for one Rollout from the reflector stores
//! (owned ReplicaSets and AnalysisRuns, the Services the spec names, the `workloadRef`
//! Deployment) and from the traffic routers' weight verification. Reads only; writes nothing.

use super::cache::CachedReplicaSet;
use super::context::Stores;
use crate::crd::{AnalysisPhase, AnalysisRun, POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::{
    AnalysisKind, MANAGED_BY_ANNOTATION, Observed, ObservedAnalysisRun, ObservedReplicaSet,
    ObservedService, ObservedWorkload, Tenancy,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeMap;

/// Label on an AnalysisRun: what it is for (`Step`, `Background`, `PrePromotion`,
/// `PostPromotion`).
pub const ANALYSIS_KIND_LABEL: &str = "rollout.sluice.dev/analysis-kind";
/// Label on a step AnalysisRun: the index of its step.
pub const STEP_INDEX_LABEL: &str = "rollout.sluice.dev/step-index";

/// Errors of the observe step.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The Rollout lacks a field the API server always sets.
    #[error("rollout has no {field}")]
    Incomplete {
        /// The missing field.
        field: &'static str,
    },
}

impl ObserveError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } => "ObjectIncomplete",
        }
    }
}

/// Whether `owner` is the controller owner reference of the object with `uid`.
fn is_controlled_by(owners: &[OwnerReference], uid: &str) -> bool {
    owners
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Build `Observed` from the stores. `weights_verified` is filled in by the reconcile, which asks
/// the routers (`reconcile::verify`).
///
/// # Errors
/// When the Rollout has no namespace or uid.
pub fn observe(rollout: &Rollout, stores: &Stores) -> Result<Observed, ObserveError> {
    let namespace = rollout
        .namespace()
        .ok_or(ObserveError::Incomplete { field: "namespace" })?;
    let uid = rollout
        .uid()
        .ok_or(ObserveError::Incomplete { field: "uid" })?;

    // The owner index names the candidates; the owner reference is checked again on the cached
    // object itself, so a lagging index can only make a child briefly invisible, never foreign.
    let mut replica_sets: Vec<ObservedReplicaSet> = stores
        .replica_sets_by_owner
        .lookup(&namespace, &uid)
        .iter()
        .filter_map(|key| stores.replica_sets.get(key))
        .filter(|rs| is_controlled_by(rs.owner_references(), &uid))
        .map(|rs| observe_replica_set(&rs))
        .collect();
    replica_sets.sort_by(|a, b| a.name.cmp(&b.name));

    let mut services = BTreeMap::new();
    for name in service_names(rollout) {
        let key = ObjectRef::new(&name).within(&namespace);
        let observed = stores.services.get(&key).map(|svc| ObservedService {
            selector: svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default(),
            managed_by: svc.annotations().get(MANAGED_BY_ANNOTATION).cloned(),
        });
        services.insert(name, observed);
    }

    let mut analysis_runs: Vec<ObservedAnalysisRun> = stores
        .analysis_runs_by_owner
        .lookup(&namespace, &uid)
        .iter()
        .filter_map(|key| stores.analysis_runs.get(key))
        .filter(|run| is_controlled_by(run.owner_references(), &uid))
        .filter_map(|run| observe_analysis_run(&run))
        .collect();
    analysis_runs.sort_by(|a, b| a.name.cmp(&b.name));

    let workload = rollout.spec.workload_ref.as_ref().and_then(|wref| {
        if wref.kind != "Deployment" {
            return None;
        }
        let key = ObjectRef::new(&wref.name).within(&namespace);
        stores.deployments.get(&key).map(|deploy| {
            let spec = deploy.spec.clone().unwrap_or_default();
            ObservedWorkload {
                template: spec.template,
                generation: deploy.metadata.generation.unwrap_or_default(),
                replicas: spec.replicas.unwrap_or(1),
            }
        })
    });

    Ok(Observed {
        replica_sets,
        services,
        analysis_runs,
        workload,
        weights_verified: None,
        // Listed by `restart::observe`, only while a restart is due.
        restart_pods: None,
        analysis_templates: super::templates::observe(rollout, &namespace, stores),
        tenancy: observe_tenancy(rollout, &namespace, stores),
    })
}

/// Labels by which the API server's own Service is known (the `kubernetes` Service in
/// `default` carries both); a Rollout never manages such a Service.
const API_SERVER_LABELS: [(&str, &str); 2] =
    [("component", "apiserver"), ("provider", "kubernetes")];

fn observe_tenancy(rollout: &Rollout, namespace: &str, stores: &Stores) -> Tenancy {
    let api_server_services = service_names(rollout)
        .into_iter()
        .filter(|name| {
            let key = ObjectRef::new(name).within(namespace);
            stores.services.get(&key).is_some_and(|svc| {
                let labels = svc.labels();
                API_SERVER_LABELS
                    .iter()
                    .any(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
        })
        .collect();
    Tenancy {
        allow_cross_namespace_routing: stores.claims.allow_cross_namespace_routing,
        claimed_by: stores.claims.claimed_by(rollout, &stores.rollouts),
        api_server_services,
    }
}

/// The Services a Rollout's strategy names, without duplicates.
pub fn service_names(rollout: &Rollout) -> Vec<String> {
    let strategy = &rollout.spec.strategy;
    let mut names: Vec<String> = Vec::new();
    if let Some(canary) = &strategy.canary {
        names.extend(canary.canary_service.iter().cloned());
        names.extend(canary.stable_service.iter().cloned());
        names.extend(canary.baseline.iter().filter_map(|b| b.service.clone()));
    }
    if let Some(bg) = &strategy.blue_green {
        names.push(bg.active_service.clone());
        names.extend(bg.preview_service.iter().cloned());
    }
    names.retain(|n| !n.is_empty());
    names.sort();
    names.dedup();
    names
}

fn observe_replica_set(rs: &CachedReplicaSet) -> ObservedReplicaSet {
    ObservedReplicaSet {
        name: rs.name_any(),
        pod_template_hash: rs.pod_template_hash.clone(),
        template: rs.template,
        desired_replicas: rs.desired_replicas.unwrap_or(1),
        replicas: rs.replicas,
        ready_replicas: rs.ready_replicas.unwrap_or_default(),
        available_replicas: rs.available_replicas.unwrap_or_default(),
        revision: rs.revision,
        scale_down_deadline: rs.scale_down_deadline,
        created_at: rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        deleting: rs.metadata.deletion_timestamp.is_some(),
        baseline: rs.baseline,
    }
}

/// The label value recording an AnalysisRun's kind.
pub fn analysis_kind_label(kind: AnalysisKind) -> &'static str {
    match kind {
        AnalysisKind::Step(_) => "Step",
        AnalysisKind::Background => "Background",
        AnalysisKind::PrePromotion => "PrePromotion",
        AnalysisKind::PostPromotion => "PostPromotion",
    }
}

fn observe_analysis_run(run: &AnalysisRun) -> Option<ObservedAnalysisRun> {
    let labels = run.labels();
    let kind = match labels.get(ANALYSIS_KIND_LABEL).map(String::as_str) {
        Some("Step") => AnalysisKind::Step(labels.get(STEP_INDEX_LABEL)?.parse().ok()?),
        Some("Background") => AnalysisKind::Background,
        Some("PrePromotion") => AnalysisKind::PrePromotion,
        Some("PostPromotion") => AnalysisKind::PostPromotion,
        // Not one of ours: the engine cannot place it, so it does not see it.
        _ => return None,
    };
    let status = run.status.as_ref();
    Some(ObservedAnalysisRun {
        name: run.name_any(),
        kind,
        pod_template_hash: labels
            .get(POD_TEMPLATE_HASH_LABEL)
            .cloned()
            .unwrap_or_default(),
        phase: status
            .and_then(|s| s.phase)
            .unwrap_or(AnalysisPhase::Pending),
        message: status.and_then(|s| s.message.clone()),
        terminating: run.spec.terminate,
    })
}
