//! `kubectl sluice promote NAME [--full]`: what Argo's promote patches. Unpause the spec; then
//! remove the pause conditions (the engine resumes a controller pause with no condition), or,
//! on a canary that is not paused, move `currentStepIndex` past the current step. `--full`
//! sets `status.promoteFull`, which skips every remaining step and analysis.

use super::context::Ctx;
use super::steer::{self, Steered};
use anyhow::bail;
use clap::Args;
use serde_json::json;

/// Promote a Rollout past its current pause or step.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The Rollout.
    pub name: String,
    /// Skip every remaining step, pause and analysis, and promote now.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout is missing, the patch is refused, or there is nothing to promote.
pub async fn run(ctx: &Ctx, args: &PromoteArgs) -> anyhow::Result<()> {
    let done = promote(ctx, &args.name, args.full).await?;
    steer::confirm(ctx, &done.rollout, &done.line)
}

/// Promotes the Rollout `name` in `ctx.namespace` (`full`: past every remaining step), the
/// action behind both the verb and the dashboard's buttons.
///
/// # Errors
/// When the Rollout is missing, the patch is refused, or there is nothing to promote.
pub async fn promote(ctx: &Ctx, name: &str, full: bool) -> anyhow::Result<Steered> {
    let rollout = steer::get(ctx, name).await?;
    let status = rollout.status.clone().unwrap_or_default();
    let promoted = status.current_pod_hash.is_some() && status.current_pod_hash == status.stable_rs;
    let unpause = rollout.spec.paused;
    if unpause {
        steer::patch_spec(ctx, name, json!({"spec": {"paused": false}})).await?;
    }
    if full {
        if promoted && !unpause {
            bail!("rollout {name:?} is fully promoted: nothing to promote");
        }
        let after = steer::patch_status(ctx, name, json!({"promoteFull": true})).await?;
        return Ok(Steered {
            rollout: after,
            line: format!("rollout '{name}' fully promoted"),
        });
    }
    let steps = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .map_or(0, |c| c.steps.len());
    let index = usize::try_from(status.current_step_index.unwrap_or(0)).unwrap_or(0);
    let after = if !status.pause_conditions.is_empty() {
        steer::patch_status(ctx, name, json!({"pauseConditions": null})).await?
    } else if unpause {
        steer::get(ctx, name).await?
    } else if !promoted && !status.abort && index < steps {
        // Not paused: skip the current step, as Argo does.
        steer::patch_status(ctx, name, json!({"currentStepIndex": index + 1})).await?
    } else if promoted {
        bail!("rollout {name:?} is fully promoted: nothing to promote");
    } else if status.abort {
        bail!("rollout {name:?} is aborted: `kubectl sluice retry {name}` starts it again");
    } else {
        bail!("rollout {name:?} is not paused: nothing to promote (--full skips every step)");
    };
    Ok(Steered {
        rollout: after,
        line: format!("rollout '{name}' promoted"),
    })
}
