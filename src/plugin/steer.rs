//! What the steering verbs share: read a Rollout, patch its spec or `/status` with the
//! plugin's field manager, and confirm in one line (or print the object for `-o`). Status
//! writes are read-modify-write guarded by the resourceVersion read, so a person's operation is
//! decided on the object it lands on, and neither it nor the controller's write is lost.

use super::context::{Ctx, Request};
use super::output::print_object;
use crate::crd::Rollout;
use anyhow::anyhow;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;

/// How many times a status write is decided again when the Rollout changed under it.
const CONFLICT_ATTEMPTS: u32 = 5;

/// The field manager of the plugin's writes, so `managedFields` tell them from the controller's.
pub const FIELD_MANAGER: &str = "kubectl-sluice";

/// What a steering action did: the Rollout after it and the line that says so. The CLI prints
/// it (`confirm`); the dashboard answers with it.
pub struct Steered {
    /// The Rollout as the last patch returned it.
    pub rollout: Rollout,
    /// One line for people: `rollout 'web' promoted`.
    pub line: String,
}

/// Rollouts in the verb's namespace.
pub fn rollouts(ctx: &Ctx) -> Api<Rollout> {
    Api::namespaced(ctx.client.clone(), &ctx.namespace)
}

/// Reads a Rollout.
///
/// # Errors
/// One line naming the Rollout and namespace when it is missing, or the missing permission.
pub async fn get(ctx: &Ctx, name: &str) -> anyhow::Result<Rollout> {
    match rollouts(ctx).get(name).await {
        Ok(rollout) => Ok(rollout),
        Err(e) => Err(ctx.explain(&request("get", "rollouts", name), e).await),
    }
}

/// Merge-patches the Rollout's spec (`patch` is the whole body, e.g. `{"spec": {...}}`).
///
/// # Errors
/// As `get`, for the `patch` verb.
pub async fn patch_spec(ctx: &Ctx, name: &str, patch: Value) -> anyhow::Result<Rollout> {
    let params = params();
    match rollouts(ctx)
        .patch(name, &params, &Patch::Merge(patch))
        .await
    {
        Ok(rollout) => Ok(rollout),
        Err(e) => Err(ctx.explain(&request("patch", "rollouts", name), e).await),
    }
}

/// JSON-patches the Rollout (operations that must apply exactly, such as replacing one
/// container's image by index).
///
/// # Errors
/// As `get`, for the `patch` verb.
pub async fn json_patch(
    ctx: &Ctx,
    name: &str,
    patch: json_patch::Patch,
) -> anyhow::Result<Rollout> {
    match rollouts(ctx)
        .patch(name, &params(), &Patch::<()>::Json(patch))
        .await
    {
        Ok(rollout) => Ok(rollout),
        Err(e) => Err(ctx.explain(&request("patch", "rollouts", name), e).await),
    }
}

/// Read-modify-write of `/status`: reads the Rollout, asks `change` which fields a person's
/// operation sets (`{"abort": true}`, `abort`, `promoteFull`, `pauseConditions`,
/// `currentStepIndex`; `None`: nothing to write) and merges them guarded by the resourceVersion
/// read. When the Rollout changed in between (the controller advanced a step, someone else
/// steered), reads it again and asks `change` again, so the operation is never decided on an
/// older object than the one it lands on. Returns the Rollout as written (or as read).
///
/// # Errors
/// What `change` returns; as `get`, for `patch` on `rollouts/status`; or a conflict that
/// persists after a few attempts.
pub async fn update_status<F>(ctx: &Ctx, name: &str, change: F) -> anyhow::Result<Rollout>
where
    F: Fn(&Rollout) -> anyhow::Result<Option<Value>>,
{
    let mut attempt = 1;
    loop {
        let rollout = get(ctx, name).await?;
        let Some(status) = change(&rollout)? else {
            return Ok(rollout);
        };
        let version = rollout
            .resource_version()
            .ok_or_else(|| anyhow!("rollout {name:?} came back without a resourceVersion"))?;
        let body = serde_json::json!({
            "metadata": {"resourceVersion": version},
            "status": status,
        });
        match rollouts(ctx)
            .patch_status(name, &params(), &Patch::Merge(body))
            .await
        {
            Ok(written) => return Ok(written),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < CONFLICT_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => {
                return Err(ctx
                    .explain(&request("patch", "rollouts/status", name), e)
                    .await);
            }
        }
    }
}

/// Patch parameters naming the plugin as the field manager.
pub fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// A request on a named Rollout, for error messages.
pub fn request<'a>(verb: &'static str, resource: &'static str, name: &'a str) -> Request<'a> {
    Request {
        verb,
        resource,
        name: Some(name),
    }
}

/// Prints the object for `-o json|yaml|name`, or the confirmation line.
///
/// # Errors
/// When the object cannot be serialised.
pub fn confirm(ctx: &Ctx, rollout: &Rollout, line: &str) -> anyhow::Result<()> {
    let name = format!(
        "rollout.sluice.dev/{}",
        rollout.metadata.name.as_deref().unwrap_or_default()
    );
    if !print_object(ctx.output, &name, rollout)? {
        println!("{line}");
    }
    Ok(())
}
