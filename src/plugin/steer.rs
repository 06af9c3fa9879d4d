//! What the steering verbs share: read a Rollout, patch its spec or `/status` with the
//! plugin's field manager, and confirm in one line (or print the object for `-o`).

use super::context::{Ctx, Request};
use super::output::print_object;
use crate::crd::Rollout;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;

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

/// Merge-patches `/status` with `{"status": status}`: the fields the engine reads as a
/// person's operations (`abort`, `promoteFull`, `pauseConditions`, `currentStepIndex`).
///
/// # Errors
/// As `get`, for `patch` on `rollouts/status`.
pub async fn patch_status(ctx: &Ctx, name: &str, status: Value) -> anyhow::Result<Rollout> {
    let params = params();
    let body = serde_json::json!({ "status": status });
    match rollouts(ctx)
        .patch_status(name, &params, &Patch::Merge(body))
        .await
    {
        Ok(rollout) => Ok(rollout),
        Err(e) => Err(ctx
            .explain(&request("patch", "rollouts/status", name), e)
            .await),
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
