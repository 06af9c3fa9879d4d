//! `kubectl sluice get rollout NAME [-w]`: placeholder.

use super::context::Ctx;
use clap::Args;

/// Show a Rollout.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The Rollout.
    pub name: String,
}

/// Runs the verb.
///
/// # Errors
/// Never yet.
pub async fn run(_ctx: &Ctx, _args: &GetArgs) -> anyhow::Result<()> {
    Ok(())
}
