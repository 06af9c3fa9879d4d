//! Creating and terminating the AnalysisRuns a Rollout asks for: reads the referenced
//! AnalysisTemplates and ClusterAnalysisTemplates, resolves the Rollout's arguments, and writes
//! the run with labels observe reads back. Touches only AnalysisRuns and templates.

use super::context::Context;
use super::observe::{ANALYSIS_KIND_LABEL, STEP_INDEX_LABEL, analysis_kind_label};
use crate::crd::{
    AnalysisRun, AnalysisRunSpec, AnalysisTemplateSpec, Argument, FIELD_MANAGER,
    POD_TEMPLATE_HASH_LABEL, PodTemplateHashValue, Rollout, RolloutAnalysis, RunScope,
};
use crate::engine::AnalysisKind;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;

/// Errors creating or terminating an AnalysisRun.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisRunError {
    /// A referenced template does not exist.
    #[error("analysis template {name} not found")]
    TemplateNotFound {
        /// The template's name.
        name: String,
    },
    /// An AnalysisRun with the run's name exists and is not the Rollout's.
    #[error(
        "AnalysisRun {name} already exists and is {owner}, not this Rollout's; Sluice will not \
         adopt it: delete or rename it"
    )]
    OwnedByAnother {
        /// The run's name.
        name: String,
        /// Who owns it (`owned by Kind/name`, or `not owned by anyone`).
        owner: String,
    },
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
}

impl AnalysisRunError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::TemplateNotFound { .. } => "AnalysisTemplateNotFound",
            Self::OwnedByAnother { .. } => "ObjectOwnedByAnother",
            Self::Api { .. } => "ApiError",
        }
    }
}

/// Create the run unless it exists. Returns whether it was created.
///
/// # Errors
/// When a template is missing or an API call fails.
pub async fn create(
    ctx: &Context,
    rollout: &Rollout,
    namespace: &str,
    name: &str,
    kind: AnalysisKind,
    pod_template_hash: &str,
    analysis: &RolloutAnalysis,
) -> Result<bool, AnalysisRunError> {
    let mut spec = AnalysisRunSpec {
        dry_run: analysis.dry_run.clone(),
        measurement_retention: analysis.measurement_retention.clone(),
        scope: Some(scope(rollout, pod_template_hash)),
        ..AnalysisRunSpec::default()
    };
    for template_ref in &analysis.templates {
        let template = fetch_template(ctx, namespace, template_ref)?;
        spec.metrics.extend(template.metrics);
        for arg in template.args {
            if !spec.args.iter().any(|a| a.name == arg.name) {
                spec.args.push(arg);
            }
        }
        spec.dry_run.extend(template.dry_run);
        spec.measurement_retention
            .extend(template.measurement_retention);
        if spec.judgement.is_none() {
            spec.judgement = template.judgement;
        }
    }
    for arg in &analysis.args {
        let value = resolve_argument(rollout, pod_template_hash, arg);
        match spec.args.iter_mut().find(|a| a.name == arg.name) {
            Some(existing) => {
                existing.value = value;
                existing.value_from = None;
            }
            None => spec.args.push(Argument {
                name: arg.name.clone(),
                value,
                value_from: None,
            }),
        }
    }

    let mut labels = BTreeMap::from([
        (
            ANALYSIS_KIND_LABEL.to_string(),
            analysis_kind_label(kind).to_string(),
        ),
        (
            POD_TEMPLATE_HASH_LABEL.to_string(),
            pod_template_hash.to_string(),
        ),
    ]);
    if let AnalysisKind::Step(index) = kind {
        labels.insert(STEP_INDEX_LABEL.into(), index.to_string());
    }
    // The run belongs to the same controller instance as its Rollout.
    if let Some(id) = rollout.labels().get(super::INSTANCE_ID_LABEL) {
        labels.insert(super::INSTANCE_ID_LABEL.into(), id.clone());
    }
    let mut annotations = BTreeMap::new();
    if let Some(meta) = &analysis.analysis_run_metadata {
        labels.extend(meta.labels.clone());
        annotations.extend(meta.annotations.clone());
    }
    let mut run = AnalysisRun::new(name, spec);
    run.metadata = ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references: rollout.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&params, &run).await {
        Ok(_) => Ok(true),
        // Ours from an earlier reconcile whose cache had not caught up yet, or someone else's.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api.get_opt(name).await;
            let existing = existing.map_err(|source| AnalysisRunError::Api {
                verb: "get",
                kind: "AnalysisRun",
                name: name.into(),
                source,
            })?;
            // Gone again since the 409: the next reconcile creates it.
            if let Some(existing) = existing {
                ours(rollout, name, existing.owner_references())?;
            }
            Ok(false)
        }
        Err(source) => Err(AnalysisRunError::Api {
            verb: "create",
            kind: "AnalysisRun",
            name: name.into(),
            source,
        }),
    }
}

/// `Ok` when the Rollout is the run's controller owner.
///
/// # Errors
/// `OwnedByAnother`, naming the run and its owner.
pub fn ours(
    rollout: &Rollout,
    name: &str,
    owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
) -> Result<(), AnalysisRunError> {
    match super::owner::foreign_owner(rollout.uid().as_deref(), owners) {
        None => Ok(()),
        Some(owner) => Err(AnalysisRunError::OwnedByAnother {
            name: name.to_owned(),
            owner,
        }),
    }
}

/// The pods a run's judge metrics compare: the canary (the revision the run is for), stable,
/// and the baseline when the Rollout runs one.
fn scope(rollout: &Rollout, canary_hash: &str) -> RunScope {
    let stable = rollout.status.as_ref().and_then(|s| s.stable_rs.clone());
    let runs_baseline = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .is_some_and(|c| c.baseline.is_some());
    RunScope {
        rollout: Some(rollout.name_any()),
        canary_pod_template_hash: Some(canary_hash.to_string()),
        baseline_pod_template_hash: stable
            .as_deref()
            .filter(|_| runs_baseline)
            .map(crate::engine::baseline::baseline_hash),
        stable_pod_template_hash: stable,
    }
}

/// Set `spec.terminate` on a run; a run that is gone is fine.
///
/// # Errors
/// When the API call fails.
pub async fn terminate(ctx: &Context, namespace: &str, name: &str) -> Result<(), AnalysisRunError> {
    let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let result = api
        .patch(
            name,
            &params,
            &Patch::Merge(json!({"spec": {"terminate": true}})),
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(AnalysisRunError::Api {
            verb: "patch",
            kind: "AnalysisRun",
            name: name.into(),
            source,
        }),
    }
}

/// A template from the caches: validation already found every referenced template there.
fn fetch_template(
    ctx: &Context,
    namespace: &str,
    template_ref: &crate::crd::AnalysisTemplateRef,
) -> Result<AnalysisTemplateSpec, AnalysisRunError> {
    super::templates::lookup(&ctx.stores, namespace, template_ref).ok_or_else(|| {
        AnalysisRunError::TemplateNotFound {
            name: template_ref.template_name.clone(),
        }
    })
}

fn resolve_argument(
    rollout: &Rollout,
    latest_hash: &str,
    arg: &crate::crd::AnalysisRunArgument,
) -> Option<String> {
    if let Some(value) = &arg.value {
        return Some(value.clone());
    }
    let from = arg.value_from.as_ref()?;
    if let Some(which) = from.pod_template_hash_value {
        return match which {
            PodTemplateHashValue::Stable => rollout.status.as_ref()?.stable_rs.clone(),
            PodTemplateHashValue::Latest => Some(latest_hash.to_string()),
        };
    }
    let path = &from.field_ref.as_ref()?.field_path;
    field_value(rollout, path)
}

/// The value of a simple field path of the Rollout: `metadata.name`, `metadata.namespace`,
/// `metadata.labels['k']`, `metadata.annotations['k']`.
fn field_value(rollout: &Rollout, path: &str) -> Option<String> {
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    match path {
        "metadata.name" => Some(rollout.name_any()),
        "metadata.namespace" => rollout.namespace(),
        _ => {
            if let Some(key) = keyed("metadata.labels['") {
                rollout.labels().get(&key).cloned()
            } else if let Some(key) = keyed("metadata.annotations['") {
                rollout.annotations().get(&key).cloned()
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_name_taken_by_another_owner_is_an_error_naming_both() {
        let mut rollout = Rollout::new("web", Default::default());
        rollout.metadata.uid = Some("mine".into());
        let ours_ref = rollout.controller_owner_ref(&()).unwrap();
        assert!(ours(&rollout, "web-abc-2", &[ours_ref]).is_ok());

        let mut other = Rollout::new("api", Default::default());
        other.metadata.uid = Some("theirs".into());
        let theirs = other.controller_owner_ref(&()).unwrap();
        let err = ours(&rollout, "web-abc-2", &[theirs]).unwrap_err();
        assert_eq!(err.category(), "ObjectOwnedByAnother");
        let text = err.to_string();
        assert!(
            text.contains("AnalysisRun web-abc-2") && text.contains("owned by Rollout/api"),
            "{text}"
        );
        let err = ours(&rollout, "web-abc-2", &[]).unwrap_err();
        assert!(err.to_string().contains("not owned by anyone"), "{err}");
    }
}
