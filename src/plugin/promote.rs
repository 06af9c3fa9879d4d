//! `kubectl sluice promote NAME [--full]`: what Argo's promote patches. Unpause the spec; then
//! remove the pause conditions (the engine resumes a controller pause with no condition), or,
//! on a canary that is not paused, move `currentStepIndex` past the current step. `--full`
//! sets `status.promoteFull`, which skips every remaining step and analysis.

use super::context::Ctx;
use super::steer::{self, Steered};
use crate::crd::{Rollout, RolloutStatus};
use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

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
    let unpause = rollout.spec.paused;
    if unpause {
        steer::patch_spec(ctx, name, json!({"spec": {"paused": false}})).await?;
    }
    // Decided on the Rollout the write lands on: a step the controller advanced meanwhile is
    // not skipped twice.
    let after = steer::update_status(ctx, name, |current| {
        if full {
            full_patch(name, current, unpause)
        } else {
            step_patch(name, current, unpause)
        }
    })
    .await?;
    let line = if full {
        format!("rollout '{name}' fully promoted")
    } else {
        format!("rollout '{name}' promoted")
    };
    Ok(Steered {
        rollout: after,
        line,
    })
}

fn promoted(status: &RolloutStatus) -> bool {
    status.current_pod_hash.is_some() && status.current_pod_hash == status.stable_rs
}

/// `promoteFull`, unless there is nothing to promote.
fn full_patch(name: &str, rollout: &Rollout, unpaused: bool) -> anyhow::Result<Option<Value>> {
    let status = rollout.status.clone().unwrap_or_default();
    if promoted(&status) && !unpaused {
        bail!("rollout {name:?} is fully promoted: nothing to promote");
    }
    Ok(Some(json!({"promoteFull": true})))
}

/// The status change that moves past the current pause or step; `None` when unpausing the
/// spec was all there was to do.
fn step_patch(name: &str, rollout: &Rollout, unpaused: bool) -> anyhow::Result<Option<Value>> {
    let status = rollout.status.clone().unwrap_or_default();
    let steps = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .map_or(0, |c| c.steps.len());
    let index = usize::try_from(status.current_step_index.unwrap_or(0)).unwrap_or(0);
    if !status.pause_conditions.is_empty() {
        Ok(Some(json!({"pauseConditions": null})))
    } else if unpaused {
        Ok(None)
    } else if !promoted(&status) && !status.abort && index < steps {
        // Not paused: skip the current step, as Argo does.
        Ok(Some(json!({"currentStepIndex": index + 1})))
    } else if promoted(&status) {
        bail!("rollout {name:?} is fully promoted: nothing to promote");
    } else if status.abort {
        bail!("rollout {name:?} is aborted: `kubectl sluice retry {name}` starts it again");
    } else {
        bail!("rollout {name:?} is not paused: nothing to promote (--full skips every step)");
    }
}
