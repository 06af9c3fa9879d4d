//! `kubectl sluice restart NAME [--in DURATION]`: sets `spec.restartAt`; the controller evicts
//! the pods created before that time, a few at a time.

use super::context::Ctx;
use super::steer;
use crate::engine::duration::parse_pause_duration;
use anyhow::anyhow;
use clap::Args;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

/// Restart the pods of a Rollout.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The Rollout.
    pub name: String,
    /// Restart after this delay (`30s`, `5m`, `1h`) instead of now.
    #[arg(short = 'i', long = "in", value_name = "DURATION")]
    pub delay: Option<String>,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// Runs the verb.
///
/// # Errors
/// When the delay is not a duration, the Rollout is missing or the patch is refused.
pub async fn run(ctx: &Ctx, args: &RestartArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let delay = match &args.delay {
        Some(text) => parse_pause_duration(&IntOrString::String(text.clone()))
            .map_err(|e| anyhow!("--in {text:?} is not a duration (30s, 5m, 1h): {e}"))?,
        None => std::time::Duration::ZERO,
    };
    let delay = jiff::SignedDuration::try_from(delay)?;
    // metav1.Time keeps whole seconds: round so the stored time is the one printed.
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())?;
    let at = now.checked_add(delay)?;
    let after =
        steer::patch_spec(ctx, name, json!({"spec": {"restartAt": at.to_string()}})).await?;
    let line = if delay.is_zero() {
        format!("rollout '{name}' restarts now")
    } else {
        format!("rollout '{name}' restarts at {at}")
    };
    steer::confirm(ctx, &after, &line)
}
