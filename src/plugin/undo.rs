//! `kubectl sluice undo NAME [--to-revision N]`: replaces `spec.template` with the template of
//! the Rollout's ReplicaSet at revision N (default: the one before the current), without the
//! pod-template-hash label. The engine treats it as a new revision, or skips the steps when it
//! goes back to the stable or within `rollbackWindow`.

use super::context::{Ctx, Request};
use super::steer;
use crate::crd::{POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::REVISION_ANNOTATION;
use anyhow::{anyhow, bail};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ListParams};
use serde_json::json;

/// Roll a Rollout back to an earlier revision.
#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    /// The Rollout.
    pub name: String,
    /// The revision to go back to; 0 (the default) is the one before the current.
    #[arg(long = "to-revision", default_value_t = 0)]
    pub to_revision: i64,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout or the revision is missing, or the patch is refused.
pub async fn run(ctx: &Ctx, args: &UndoArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let rollout = steer::get(ctx, name).await?;
    if rollout.spec.workload_ref.is_some() {
        bail!(
            "rollout {name:?} takes its template from a workloadRef: undo the referenced Deployment instead"
        );
    }
    let revisions = owned_revisions(ctx, &rollout).await?;
    let current = rollout
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone());
    let current_revision = revisions
        .iter()
        .find(|(_, rs)| hash(rs) == current)
        .map_or(i64::MAX, |(r, _)| *r);
    let target = if args.to_revision == 0 {
        revisions
            .iter()
            .filter(|(r, _)| *r < current_revision)
            .max_by_key(|(r, _)| *r)
            .ok_or_else(|| anyhow!("rollout {name:?} has no revision before the current one"))?
    } else {
        revisions
            .iter()
            .find(|(r, _)| *r == args.to_revision)
            .ok_or_else(|| anyhow!("rollout {name:?} has no revision {}", args.to_revision))?
    };
    let (revision, rs) = target;
    let mut template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .ok_or_else(|| anyhow!("the ReplicaSet of revision {revision} has no pod template"))?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template}
    ]))?;
    let after = steer::json_patch(ctx, name, patch).await?;
    steer::confirm(
        ctx,
        &after,
        &format!("rollout '{name}' rolled back to revision {revision}"),
    )
}

fn hash(rs: &ReplicaSet) -> Option<String> {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL).cloned())
}

/// The Rollout's ReplicaSets with their revision numbers.
async fn owned_revisions(ctx: &Ctx, rollout: &Rollout) -> anyhow::Result<Vec<(i64, ReplicaSet)>> {
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = match api.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(e) => {
            let request = Request {
                verb: "list",
                resource: "replicasets",
                name: None,
            };
            return Err(ctx.explain(&request, e).await);
        }
    };
    let uid = rollout.metadata.uid.clone();
    Ok(list
        .items
        .into_iter()
        .filter(|rs| owned_by(rs, uid.as_deref()))
        .filter_map(|rs| {
            let revision = rs
                .metadata
                .annotations
                .as_ref()?
                .get(REVISION_ANNOTATION)?
                .parse()
                .ok()?;
            Some((revision, rs))
        })
        .collect())
}

/// Whether the object's controller owner reference has this uid.
pub fn owned_by(rs: &impl kube::Resource, uid: Option<&str>) -> bool {
    uid.is_some_and(|uid| {
        rs.meta()
            .owner_references
            .as_ref()
            .is_some_and(|refs| refs.iter().any(|o| o.uid == uid))
    })
}
