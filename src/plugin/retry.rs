//! `kubectl sluice retry [rollout] NAME`: clears `status.abort`; the engine sees `abortedAt`
//! still set, starts again from the first step and creates new AnalysisRuns.

use super::context::Ctx;
use super::steer::{self, Steered};
use anyhow::bail;
use clap::Args;
use serde_json::json;

/// Retry an aborted Rollout (`retry NAME` or, as in Argo, `retry rollout NAME`).
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The Rollout, optionally after the word `rollout`.
    #[arg(num_args = 1..=2, required = true, value_names = ["rollout", "NAME"])]
    pub words: Vec<String>,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout is missing, the patch is refused, or it is not aborted.
pub async fn run(ctx: &Ctx, args: &RetryArgs) -> anyhow::Result<()> {
    let name = match args.words.as_slice() {
        [name] => name.as_str(),
        [kind, name] if matches!(kind.as_str(), "rollout" | "rollouts" | "ro") => name.as_str(),
        [kind, _] => bail!("cannot retry a {kind:?}: only `retry rollout NAME` exists"),
        _ => bail!("retry needs the name of a Rollout"),
    };
    let done = retry(ctx, name).await?;
    steer::confirm(ctx, &done.rollout, &done.line)
}

/// Retries the aborted Rollout `name` in `ctx.namespace`, for the verb and the dashboard.
///
/// # Errors
/// When the Rollout is missing, the patch is refused, or it is not aborted.
pub async fn retry(ctx: &Ctx, name: &str) -> anyhow::Result<Steered> {
    let after = steer::update_status(ctx, name, |rollout| {
        let status = rollout.status.clone().unwrap_or_default();
        if !status.abort && status.aborted_at.is_none() {
            bail!("rollout {name:?} is not aborted: nothing to retry");
        }
        Ok(Some(json!({"abort": false})))
    })
    .await?;
    Ok(Steered {
        rollout: after,
        line: format!("rollout '{name}' retried"),
    })
}
