//! Act: interpret each `Action` of a `Decision` against the API server, idempotently. Writes
//! ReplicaSets, Service selectors, AnalysisRuns and the `workloadRef` Deployment's scale, and
//! calls the traffic routers; every write uses field manager `sluice-controller` and is
//! refused once this replica is no longer the leader. Never writes the Rollout itself.

use super::analysis_run::{self, AnalysisRunError};
use super::context::Context;
use super::leader::NotLeader;
use crate::crd::{FIELD_MANAGER, POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::baseline::baseline_template;
use crate::engine::{
    Action, MANAGED_BY_ANNOTATION, REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION,
};
use crate::traffic::{RouteContext, TrafficError, TrafficRouter};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;

/// Errors of the act step.
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
    /// A traffic router failed.
    #[error("traffic router")]
    Traffic(#[source] Box<TrafficError>),
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
            Self::Traffic(error) => error.category(),
            Self::AnalysisRun(error) => error.category(),
            Self::Incomplete { .. } => "ObjectIncomplete",
        }
    }
}

/// What acting did. The Events describing it come from the engine's `Decision`.
#[derive(Debug, Default)]
pub struct ActReport {
    /// API writes (creates, patches, deletes) made, router calls included.
    pub writes: u32,
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Interpret every action in order. Stops at the first failure; what was written stays written
/// and the next reconcile, which recomputes everything, carries on from there.
///
/// # Errors
/// When this replica is not the leader, or a write or router call fails.
pub async fn act(
    ctx: &Context,
    rollout: &Rollout,
    routers: &[Box<dyn TrafficRouter>],
    route_ctx: &RouteContext,
    actions: &[Action],
) -> Result<ActReport, ActError> {
    let namespace = rollout
        .namespace()
        .ok_or(ActError::Incomplete { field: "namespace" })?;
    let mut report = ActReport::default();
    for action in actions {
        ctx.leadership.ensure()?;
        apply_one(
            ctx,
            rollout,
            &namespace,
            routers,
            route_ctx,
            action,
            &mut report,
        )
        .await?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn apply_one(
    ctx: &Context,
    rollout: &Rollout,
    namespace: &str,
    routers: &[Box<dyn TrafficRouter>],
    route_ctx: &RouteContext,
    action: &Action,
    report: &mut ActReport,
) -> Result<(), ActError> {
    let client = ctx.client.clone();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
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
            create_replica_set(ctx, &replica_sets, &rs, name, report).await?;
        }
        Action::CreateBaselineReplicaSet {
            name,
            pod_template_hash,
            stable_replica_set,
            replicas,
            revision,
            metadata,
            min_ready_seconds,
        } => {
            let stable = replica_sets.get(stable_replica_set).await;
            ctx.metrics.api_request("get", &stable);
            let stable = stable
                .map_err(|source| api_error("get", "ReplicaSet", stable_replica_set, source))?;
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
            create_replica_set(ctx, &replica_sets, &rs, name, report).await?;
        }
        Action::ScaleReplicaSet { name, replicas } => {
            let result = replica_sets
                .patch(
                    name,
                    &patch_params(),
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await;
            ctx.metrics.api_request("patch", &result);
            result.map_err(|source| api_error("patch", "ReplicaSet", name, source))?;
            report.writes += 1;
        }
        Action::SetScaleDownDeadline { name, deadline } => {
            let value = deadline.map(|d| d.to_string());
            let result = replica_sets
                .patch(
                    name,
                    &patch_params(),
                    &Patch::Merge(json!({"metadata": {"annotations": {
                        SCALE_DOWN_DEADLINE_ANNOTATION: value
                    }}})),
                )
                .await;
            ctx.metrics.api_request("patch", &result);
            result.map_err(|source| api_error("patch", "ReplicaSet", name, source))?;
            report.writes += 1;
        }
        Action::SetRevision { name, revision } => {
            let result = replica_sets
                .patch(
                    name,
                    &patch_params(),
                    &Patch::Merge(json!({"metadata": {"annotations": {
                        REVISION_ANNOTATION: revision.to_string()
                    }}})),
                )
                .await;
            ctx.metrics.api_request("patch", &result);
            result.map_err(|source| api_error("patch", "ReplicaSet", name, source))?;
            report.writes += 1;
        }
        Action::DeleteReplicaSet { name } => {
            let result = replica_sets.delete(name, &DeleteParams::background()).await;
            ctx.metrics.api_request("delete", &result);
            match result {
                Ok(_) => report.writes += 1,
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(api_error("delete", "ReplicaSet", name, source)),
            }
        }
        Action::SetServiceSelector {
            service,
            pod_template_hash,
        } => {
            let services: Api<Service> = Api::namespaced(client, namespace);
            let patch = json!({
                "metadata": {"annotations": {MANAGED_BY_ANNOTATION: rollout.name_any()}},
                "spec": {"selector": {POD_TEMPLATE_HASH_LABEL: pod_template_hash}},
            });
            let result = services
                .patch(service, &patch_params(), &Patch::Merge(patch))
                .await;
            ctx.metrics.api_request("patch", &result);
            result.map_err(|source| api_error("patch", "Service", service, source))?;
            report.writes += 1;
        }
        Action::SetWeights(weights) => {
            for router in routers {
                router
                    .set_weight(route_ctx, weights)
                    .await
                    .map_err(|e| ActError::Traffic(Box::new(e)))?;
                report.writes += 1;
            }
        }
        Action::SetHeaderRoute(route) => {
            for router in routers {
                router
                    .set_header_route(route_ctx, route)
                    .await
                    .map_err(|e| ActError::Traffic(Box::new(e)))?;
                report.writes += 1;
            }
        }
        Action::SetMirrorRoute(route) => {
            for router in routers {
                router
                    .set_mirror_route(route_ctx, route)
                    .await
                    .map_err(|e| ActError::Traffic(Box::new(e)))?;
                report.writes += 1;
            }
        }
        Action::RemoveManagedRoutes => {
            for router in routers {
                router
                    .remove_managed_routes(route_ctx)
                    .await
                    .map_err(|e| ActError::Traffic(Box::new(e)))?;
                report.writes += 1;
            }
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
            .map_err(ActError::AnalysisRun)?;
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
            let deployments: Api<Deployment> = Api::namespaced(client, namespace);
            let result = deployments
                .patch(
                    &wref.name,
                    &patch_params(),
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await;
            ctx.metrics.api_request("patch", &result);
            result.map_err(|source| api_error("patch", "Deployment", &wref.name, source))?;
            report.writes += 1;
        }
    }
    Ok(())
}

async fn create_replica_set(
    ctx: &Context,
    replica_sets: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    name: &str,
    report: &mut ActReport,
) -> Result<(), ActError> {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let result = replica_sets.create(&params, rs).await;
    ctx.metrics.api_request("create", &result);
    match result {
        Ok(_) => report.writes += 1,
        // Created by an earlier reconcile whose cache had not caught up yet.
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(source) => return Err(api_error("create", "ReplicaSet", name, source)),
    }
    Ok(())
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
