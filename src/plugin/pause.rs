//! `kubectl sluice pause NAME`: sets `spec.paused`; the engine holds the steps and scaling and
//! reports phase Paused.

use super::context::Ctx;
use super::steer;
use clap::Args;
use serde_json::json;

/// Pause a Rollout.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The Rollout.
    pub name: String,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout is missing or the patch is refused.
pub async fn run(ctx: &Ctx, args: &PauseArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let after = steer::patch_spec(ctx, name, json!({"spec": {"paused": true}})).await?;
    steer::confirm(ctx, &after, &format!("rollout '{name}' paused"))
}
