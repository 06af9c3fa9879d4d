//! `kubectl sluice status NAME [--timeout D] [--watch=false]`: prints each status change of a
//! Rollout from a watch until it is Healthy (exit 0) or Degraded (exit 1), or the timeout
//! passes (exit 2).

use super::context::Ctx;
use super::{steer, summary};
use crate::crd::{Rollout, RolloutPhase};
use crate::engine::duration::parse_pause_duration;
use anyhow::anyhow;
use clap::{ArgAction, Args};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::process::ExitCode;
use std::time::Duration;

/// Wait for a Rollout to become Healthy or Degraded.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The Rollout.
    pub name: String,
    /// Keep watching until it is Healthy or Degraded (`--watch=false` prints once).
    #[arg(short = 'w', long, default_value_t = true, action = ArgAction::Set)]
    pub watch: bool,
    /// Give up after this long (`30s`, `5m`) with exit code 2; no limit by default.
    #[arg(short = 't', long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// How the wait ended.
enum End {
    Healthy,
    Degraded,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout is missing or cannot be watched.
pub async fn run(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.as_str();
    let timeout = match &args.timeout {
        Some(text) => Some(
            parse_pause_duration(&IntOrString::String(text.clone()))
                .map_err(|e| anyhow!("--timeout {text:?} is not a duration (30s, 5m): {e}"))?,
        )
        .filter(|d| !d.is_zero()),
        None => None,
    };
    let rollout = steer::get(ctx, name).await?;
    if !args.watch {
        println!("{}", line(&rollout));
        return Ok(code(end(&rollout)));
    }
    let wait = follow(ctx, name);
    let ended = match timeout {
        Some(limit) => match tokio::time::timeout(limit, wait).await {
            Ok(ended) => ended?,
            Err(_) => {
                eprintln!(
                    "error: rollout {name:?} did not finish within {}",
                    show(limit)
                );
                return Ok(ExitCode::from(2));
            }
        },
        None => wait.await?,
    };
    Ok(code(Some(ended)))
}

async fn follow(ctx: &Ctx, name: &str) -> anyhow::Result<End> {
    let stream = kube::runtime::watcher::watch_object(steer::rollouts(ctx), name);
    let mut stream = std::pin::pin!(stream);
    let mut last = String::new();
    while let Some(event) = stream.next().await {
        let rollout = match event {
            Ok(Some(rollout)) => rollout,
            Ok(None) => return Err(anyhow!("rollout {name:?} was deleted")),
            Err(e) => return Err(anyhow!("watching rollout {name:?}: {e}")),
        };
        let text = line(&rollout);
        if text != last {
            println!("{text}");
            last = text;
        }
        if let Some(end) = end(&rollout) {
            return Ok(end);
        }
    }
    Err(anyhow!("the watch of rollout {name:?} ended"))
}

/// `Phase - message`, as Argo prints it.
fn line(rollout: &Rollout) -> String {
    let message = summary::message(rollout);
    let phase = summary::phase(rollout);
    if message.is_empty() {
        phase
    } else {
        format!("{phase} - {message}")
    }
}

/// Healthy or Degraded once the controller has seen the latest spec.
fn end(rollout: &Rollout) -> Option<End> {
    if !summary::observed(rollout) {
        return None;
    }
    match rollout.status.as_ref()?.phase? {
        RolloutPhase::Healthy => Some(End::Healthy),
        RolloutPhase::Degraded => Some(End::Degraded),
        RolloutPhase::Progressing | RolloutPhase::Paused => None,
    }
}

fn code(end: Option<End>) -> ExitCode {
    match end {
        Some(End::Degraded) => ExitCode::FAILURE,
        Some(End::Healthy) | None => ExitCode::SUCCESS,
    }
}

fn show(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}
