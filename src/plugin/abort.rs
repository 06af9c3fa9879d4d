//! `kubectl sluice abort NAME`: sets `status.abort`; the engine sends all traffic back to the
//! stable revision, terminates the runs and marks the Rollout Degraded.

use super::context::Ctx;
use super::steer::{self, Steered};
use anyhow::bail;
use clap::Args;
use serde_json::json;

/// Abort the update of a Rollout.
#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The Rollout.
    pub name: String,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout is missing, the patch is refused, or it is fully promoted (the engine
/// would clear the abort: there is nothing to go back from).
pub async fn run(ctx: &Ctx, args: &AbortArgs) -> anyhow::Result<()> {
    let done = abort(ctx, &args.name).await?;
    steer::confirm(ctx, &done.rollout, &done.line)
}

/// Aborts the update of the Rollout `name` in `ctx.namespace`, for the verb and the dashboard.
///
/// # Errors
/// As `run`.
pub async fn abort(ctx: &Ctx, name: &str) -> anyhow::Result<Steered> {
    let after = steer::update_status(ctx, name, |rollout| {
        let status = rollout.status.clone().unwrap_or_default();
        if status.current_pod_hash.is_some() && status.current_pod_hash == status.stable_rs {
            bail!("rollout {name:?} is fully promoted: nothing to abort");
        }
        Ok(Some(json!({"abort": true})))
    })
    .await?;
    Ok(Steered {
        rollout: after,
        line: format!("rollout '{name}' aborted"),
    })
}
