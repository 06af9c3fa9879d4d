//! `kubectl sluice resume NAME`: what Argo CD's resume action does. Clears `spec.paused` and
//! removes the pause conditions, but, unlike `promote`, never skips a step that is running.

use super::context::Ctx;
use super::steer;
use anyhow::bail;
use clap::Args;
use serde_json::json;

/// Resume a paused Rollout.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The Rollout.
    pub name: String,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout is missing, the patch is refused, or it is not paused.
pub async fn run(ctx: &Ctx, args: &ResumeArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let rollout = steer::get(ctx, name).await?;
    let paused_conditions = rollout
        .status
        .as_ref()
        .is_some_and(|s| !s.pause_conditions.is_empty());
    if !rollout.spec.paused && !paused_conditions {
        bail!("rollout {name:?} is not paused: nothing to resume");
    }
    let mut after = rollout;
    if after.spec.paused {
        after = steer::patch_spec(ctx, name, json!({"spec": {"paused": false}})).await?;
    }
    if paused_conditions {
        // Only conditions still there are cleared: the controller may have ended the pause.
        after = steer::update_status(ctx, name, |current| {
            let paused = current
                .status
                .as_ref()
                .is_some_and(|s| !s.pause_conditions.is_empty());
            Ok(paused.then(|| json!({"pauseConditions": null})))
        })
        .await?;
    }
    steer::confirm(ctx, &after, &format!("rollout '{name}' resumed"))
}
