//! Act: interpret each `Action` of a `Decision` against the API server, idempotently. Writes
//! ReplicaSets, Service selectors, AnalysisRuns and the `workloadRef` Deployment's scale, evicts
//! pods for a restart, and calls the traffic routers (every router, whatever the others
//! answer); every write uses field manager `sluice-controller` and is refused once this replica
//! is no longer the leader. Never writes the Rollout itself.

use super::analysis_run::{self, AnalysisRunError};
use super::context::Context;
use super::leader::NotLeader;
use super::routing_condition::RouterOutcomes;
use crate::crd::{FIELD_MANAGER, POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::baseline::baseline_template;
use crate::engine::{
    Action, MANAGED_BY_ANNOTATION, REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION,
};
use crate::traffic::{RouteContext, TrafficRouter};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;

/// Errors of the act step. A failing traffic router is not one: it is recorded in
/// `RouterOutcomes` and the other actions go on.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// This replica lost the leader Lease; it stopped before writing.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// An API call failed.
    #[error("{verb} {kind} {name}")]
    Api {
        /// The call.
        verb: &'static str,
        /// The object's kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// An object the Rollout would create exists and is not the Rollout's.
    #[error(
        "{kind} {name} already exists and is {owner}, not this Rollout's; Sluice will not \
         adopt it: delete or rename it"
    )]
    OwnedByAnother {
        /// The object's kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// Who owns it (`owned by Kind/name`, or `not owned by anyone`).
        owner: String,
    },
    /// An AnalysisRun could not be built.
    #[error("analysis run")]
    AnalysisRun(#[source] AnalysisRunError),
    /// The Rollout lacks a field the API server always sets.
    #[error("rollout has no {field}")]
    Incomplete {
        /// The missing field.
        field: &'static str,
    },
}

impl ActError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotLeader(_) => "NotLeader",
            Self::Api { .. } => "ApiError",
            Self::OwnedByAnother { .. } => "ObjectOwnedByAnother",
            Self::AnalysisRun(error) => error.category(),
            Self::Incomplete { .. } => "ObjectIncomplete",
        }
    }
}

impl ActError {
    /// An AnalysisRun error; a run name taken by another owner is reported like any object's.
    fn from_analysis_run(error: AnalysisRunError) -> Self {
        match error {
            AnalysisRunError::OwnedByAnother { name, owner } => Self::OwnedByAnother {
                kind: "AnalysisRun",
                name,
                owner,
            },
            other => Self::AnalysisRun(other),
        }
    }
}

/// What acting did. The Events describing it come from the engine's `Decision`.
#[derive(Debug, Default)]
pub struct ActReport {
    /// API writes (creates, patches, deletes) made, router calls included.
    pub writes: u32,
    /// Scale-downs to zero and deletions held back because a router failed.
    pub held: u32,
    /// A disruption budget refused an eviction: the round's other evictions wait for the
    /// restart's next poll.
    pub evictions_refused: bool,
}

/// The Rollout being acted for, its routers, and what they did so far.
pub struct Acting<'a> {
    /// The Rollout.
    pub rollout: &'a Rollout,
    /// Its traffic routers.
    pub routers: &'a [Box<dyn TrafficRouter>],
    /// What the routers are told about the Rollout.
    pub route_ctx: &'a RouteContext,
    /// What each router did in this reconcile (verification included).
    pub outcomes: &'a mut RouterOutcomes,
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Interpret every action in order. Every router is tried for every traffic action and a
/// failing one is recorded in `outcomes`, never stopping the rest: scaling and Service
/// selectors are applied even when a router is down. The one exception is the safety rule:
/// while a router fails, no ReplicaSet is scaled to zero or deleted, since that router may
/// still send it traffic (the engine asks again on the next reconcile). Any other failure
/// stops here; what was written stays written and the next reconcile carries on.
///
/// # Errors
/// When this replica is not the leader, or a write other than a router call fails.
pub async fn act(
    ctx: &Context,
    acting: &mut Acting<'_>,
    actions: &[Action],
) -> Result<ActReport, ActError> {
    let namespace = acting
        .rollout
        .namespace()
        .ok_or(ActError::Incomplete { field: "namespace" })?;
    let mut report = ActReport::default();
    for action in actions {
        ctx.leadership.ensure()?;
        if acting.outcomes.failed() && removes_pods(action) {
            tracing::info!(
                ?action,
                "a traffic router failed: keeping the ReplicaSet's pods"
            );
            report.held += 1;
            continue;
        }
        if report.evictions_refused && matches!(action, Action::EvictPod { .. }) {
            continue;
        }
        if route(acting, action, &mut report).await {
            continue;
        }
        apply_one(ctx, acting.rollout, &namespace, action, &mut report).await?;
    }
    Ok(report)
}

fn removes_pods(action: &Action) -> bool {
    matches!(
        action,
        Action::ScaleReplicaSet { replicas: 0, .. } | Action::DeleteReplicaSet { .. }
    )
}

fn is_traffic(action: &Action) -> bool {
    matches!(
        action,
        Action::SetWeights(_)
            | Action::SetHeaderRoute(_)
            | Action::SetMirrorRoute(_)
            | Action::RemoveManagedRoutes
    )
}

/// Send a traffic action to every router, recording each outcome. `false` when `action` is
/// not a traffic action.
async fn route(acting: &mut Acting<'_>, action: &Action, report: &mut ActReport) -> bool {
    if !is_traffic(action) {
        return false;
    }
    let ctx = acting.route_ctx;
    for router in acting.routers {
        let name = router.name();
        let result = match action {
            Action::SetWeights(w) => router
                .set_weight(ctx, w)
                .await
                .map(|()| Some(w.canary.weight)),
            Action::SetHeaderRoute(r) => router.set_header_route(ctx, r).await.map(|()| None),
            Action::SetMirrorRoute(r) => router.set_mirror_route(ctx, r).await.map(|()| None),
            Action::RemoveManagedRoutes => router.remove_managed_routes(ctx).await.map(|()| None),
            // `is_traffic` admits nothing else.
            _ => break,
        };
        if let Some(taken) = acting.outcomes.record(name, result) {
            report.writes += 1;
            if let Some(weight) = taken {
                acting.outcomes.took_weight(name, weight);
            }
        }
    }
    true
}

async fn apply_one(
    ctx: &Context,
    rollout: &Rollout,
    namespace: &str,
    action: &Action,
    report: &mut ActReport,
) -> Result<(), ActError> {
    let replica_sets: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), namespace);
    let rs_patch = |name: &str, body: serde_json::Value| {
        merge_patch(&replica_sets, "ReplicaSet", name.to_owned(), body)
    };
    match action {
        Action::CreateReplicaSet {
            name,
            pod_template_hash,
            template,
            replicas,
            revision,
            min_ready_seconds,
        } => {
            let rs = build_replica_set(
                rollout,
                name,
                pod_template_hash,
                template,
                *replicas,
                *revision,
                *min_ready_seconds,
            );
            create_replica_set(rollout, &replica_sets, &rs, name, report).await?;
        }
        Action::CreateBaselineReplicaSet { .. } => {
            create_baseline(rollout, &replica_sets, action, report).await?;
        }
        Action::ScaleReplicaSet { name, replicas } => {
            rs_patch(name, json!({"spec": {"replicas": replicas}})).await?;
            report.writes += 1;
        }
        Action::SetScaleDownDeadline { name, deadline } => {
            let value = deadline.map(|d| d.to_string());
            let body =
                json!({"metadata": {"annotations": {SCALE_DOWN_DEADLINE_ANNOTATION: value}}});
            rs_patch(name, body).await?;
            report.writes += 1;
        }
        Action::SetRevision { name, revision } => {
            let body =
                json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision.to_string()}}});
            rs_patch(name, body).await?;
            report.writes += 1;
        }
        Action::DeleteReplicaSet { name } => {
            match replica_sets.delete(name, &DeleteParams::background()).await {
                Ok(_) => report.writes += 1,
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(api_error("delete", "ReplicaSet", name, source)),
            }
        }
        Action::SetServiceSelector {
            service,
            pod_template_hash,
        } => {
            let services: Api<Service> = Api::namespaced(ctx.client.clone(), namespace);
            let body = json!({
                "metadata": {"annotations": {MANAGED_BY_ANNOTATION: rollout.name_any()}},
                "spec": {"selector": {POD_TEMPLATE_HASH_LABEL: pod_template_hash}},
            });
            merge_patch(&services, "Service", service.clone(), body).await?;
            report.writes += 1;
        }
        Action::CreateAnalysisRun {
            name,
            kind,
            pod_template_hash,
            analysis,
        } => {
            let created = analysis_run::create(
                ctx,
                rollout,
                namespace,
                name,
                *kind,
                pod_template_hash,
                analysis,
            )
            .await
            .map_err(ActError::from_analysis_run)?;
            if created {
                report.writes += 1;
            }
        }
        Action::TerminateAnalysisRun { name } => {
            analysis_run::terminate(ctx, namespace, name)
                .await
                .map_err(ActError::AnalysisRun)?;
            report.writes += 1;
        }
        Action::ScaleWorkload { replicas } => {
            let Some(wref) = &rollout.spec.workload_ref else {
                return Ok(());
            };
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
            let body = json!({"spec": {"replicas": replicas}});
            merge_patch(&deployments, "Deployment", wref.name.clone(), body).await?;
            report.writes += 1;
        }
        Action::EvictPod { name } => evict(ctx, namespace, name, report).await?,
        // Sent to the routers by `route`.
        Action::SetWeights(_)
        | Action::SetHeaderRoute(_)
        | Action::SetMirrorRoute(_)
        | Action::RemoveManagedRoutes => {}
    }
    Ok(())
}

/// Evict a pod for a restart. A pod already gone is fine; a `429` (a PodDisruptionBudget says
/// not now) ends the round's evictions quietly, and the restart's poll comes back.
async fn evict(
    ctx: &Context,
    namespace: &str,
    name: &str,
    report: &mut ActReport,
) -> Result<(), ActError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    match pods.evict(name, &EvictParams::default()).await {
        Ok(_) => {
            report.writes += 1;
            tracing::info!(pod = %name, "evicted for restart");
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(kube::Error::Api(status)) if status.code == 429 => {
            tracing::info!(pod = %name, "eviction refused by a disruption budget; retrying later");
            report.evictions_refused = true;
        }
        Err(source) => return Err(api_error("evict", "Pod", name, source)),
    }
    Ok(())
}

/// The one way act patches an object: a JSON merge patch under our field manager.
async fn merge_patch<K>(
    api: &Api<K>,
    kind: &'static str,
    name: String,
    body: serde_json::Value,
) -> Result<(), ActError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(&name, &patch_params(), &Patch::Merge(body))
        .await
        .map(drop)
        .map_err(|source| api_error("patch", kind, &name, source))
}

async fn create_baseline(
    rollout: &Rollout,
    replica_sets: &Api<ReplicaSet>,
    action: &Action,
    report: &mut ActReport,
) -> Result<(), ActError> {
    let Action::CreateBaselineReplicaSet {
        name,
        pod_template_hash,
        stable_replica_set,
        replicas,
        revision,
        metadata,
        min_ready_seconds,
    } = action
    else {
        return Ok(());
    };
    let stable = replica_sets.get(stable_replica_set).await;
    let stable =
        stable.map_err(|source| api_error("get", "ReplicaSet", stable_replica_set, source))?;
    let template = stable.spec.and_then(|s| s.template).unwrap_or_default();
    let template = baseline_template(&template, metadata.as_ref());
    let rs = build_replica_set(
        rollout,
        name,
        pod_template_hash,
        &template,
        *replicas,
        *revision,
        *min_ready_seconds,
    );
    create_replica_set(rollout, replica_sets, &rs, name, report).await
}

async fn create_replica_set(
    rollout: &Rollout,
    replica_sets: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    name: &str,
    report: &mut ActReport,
) -> Result<(), ActError> {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match replica_sets.create(&params, rs).await {
        Ok(_) => report.writes += 1,
        // Ours from an earlier reconcile whose cache had not caught up yet, or someone else's.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = replica_sets.get_opt(name).await;
            let existing =
                existing.map_err(|source| api_error("get", "ReplicaSet", name, source))?;
            if let Some(existing) = existing {
                check_owner(rollout, "ReplicaSet", name, existing.owner_references())?;
            }
        }
        Err(source) => return Err(api_error("create", "ReplicaSet", name, source)),
    }
    Ok(())
}

/// `Ok` when the Rollout is the object's controller owner.
///
/// # Errors
/// `OwnedByAnother`, naming the object and its owner.
pub fn check_owner(
    rollout: &Rollout,
    kind: &'static str,
    name: &str,
    owners: &[OwnerReference],
) -> Result<(), ActError> {
    match super::owner::foreign_owner(rollout.uid().as_deref(), owners) {
        None => Ok(()),
        Some(owner) => Err(ActError::OwnedByAnother {
            kind,
            name: name.to_owned(),
            owner,
        }),
    }
}

fn api_error(verb: &'static str, kind: &'static str, name: &str, source: kube::Error) -> ActError {
    ActError::Api {
        verb,
        kind,
        name: name.to_string(),
        source,
    }
}

/// The ReplicaSet for a pod template: deterministic name, the hash label on itself, its selector
/// and its pod template, the revision annotation and a controller owner reference.
pub fn build_replica_set(
    rollout: &Rollout,
    name: &str,
    pod_template_hash: &str,
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    replicas: i32,
    revision: i64,
    min_ready_seconds: i32,
) -> ReplicaSet {
    let mut template = template.clone();
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH_LABEL.into(), pod_template_hash.into());
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.retain(|k, _| !k.is_empty());

    let mut selector: LabelSelector = rollout.spec.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH_LABEL.into(), pod_template_hash.into());

    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: rollout.namespace(),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                REVISION_ANNOTATION.to_string(),
                revision.to_string(),
            )])),
            owner_references: rollout.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: Some(min_ready_seconds),
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::owner::tests::owner;

    #[test]
    fn a_name_taken_by_another_owner_is_an_error_naming_both() {
        let mut rollout = Rollout::new("web", Default::default());
        rollout.metadata.uid = Some("mine".into());
        let ours = [owner("Rollout", "web", "mine", true)];
        assert!(check_owner(&rollout, "ReplicaSet", "web-abc", &ours).is_ok());

        let theirs = [owner("Deployment", "other", "theirs", true)];
        let err = check_owner(&rollout, "ReplicaSet", "web-abc", &theirs).unwrap_err();
        assert_eq!(err.category(), "ObjectOwnedByAnother");
        let text = err.to_string();
        assert!(
            text.contains("ReplicaSet web-abc") && text.contains("owned by Deployment/other"),
            "{text}"
        );
        let err = check_owner(&rollout, "ReplicaSet", "web-abc", &[]).unwrap_err();
        assert!(err.to_string().contains("not owned by anyone"), "{err}");
    }
}
