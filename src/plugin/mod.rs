//! `kubectl sluice`: the kubectl plugin, one module per verb. Verbs that talk to a cluster go
//! through the user's kubeconfig (`context`); `judge` and `version` work offline.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod abort;
pub mod completion;
pub mod context;
pub mod convert;
pub mod create;
pub mod dashboard;
pub mod get;
pub mod judge;
pub mod lint;
pub mod list;
pub mod output;
pub mod pause;
pub mod promote;
pub mod restart;
pub mod resume;
pub mod retry;
pub mod set_image;
pub mod status;
pub mod steer;
pub mod summary;
pub mod terminate;
pub mod undo;

pub use context::Globals;

/// Progressive delivery for Kubernetes: inspect and steer Sluice rollouts.
#[derive(Debug, Parser)]
#[command(name = "kubectl-sluice", bin_name = "kubectl sluice", version)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs of `kubectl sluice`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version of the plugin.
    Version,
    /// Print a shell completion script (bash, zsh or fish).
    Completion(completion::CompletionArgs),
    /// Judge canary against baseline metrics from a JSON file (offline, no cluster needed).
    Judge(judge::JudgeArgs),
    /// Check Sluice manifests offline (types, CEL rules, the engine's validation).
    Lint(lint::LintArgs),
    /// Convert Argo Rollouts and Flagger manifests to Sluice (offline).
    Convert(convert::ConvertArgs),
    /// Show a Rollout with its revisions, ReplicaSets, pods and AnalysisRuns.
    Get(get::GetArgs),
    /// List Rollouts.
    List(list::ListArgs),
    /// Go past the current pause or step; `--full` skips every remaining step.
    Promote(promote::PromoteArgs),
    /// Abort the update: all traffic back to the stable revision.
    Abort(abort::AbortArgs),
    /// Retry an aborted update from its first step.
    Retry(retry::RetryArgs),
    /// Pause a Rollout (`spec.paused`).
    Pause(pause::PauseArgs),
    /// Resume a paused Rollout without skipping a step.
    Resume(resume::ResumeArgs),
    /// Restart the pods of a Rollout, now or after a delay.
    Restart(restart::RestartArgs),
    /// Roll back to an earlier revision of the pod template.
    Undo(undo::UndoArgs),
    /// Set fields of a Rollout.
    Set(set_image::SetArgs),
    /// Wait for a Rollout to finish: exit 0 Healthy, 1 Degraded or aborted, 2 timeout.
    Status(status::StatusArgs),
    /// Create an AnalysisRun from a template.
    Create(create::CreateArgs),
    /// Terminate a running AnalysisRun.
    Terminate(terminate::TerminateArgs),
    /// Serve the live web dashboard of Rollouts and their judgements.
    Dashboard(dashboard::DashboardArgs),
}

/// Runs the plugin with parsed arguments; the exit code is the verb's (see `status`).
///
/// # Errors
/// Returns the verb's error as one line for people, printed by the binary's `main`.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli { globals, command } = cli;
    match command {
        Command::Version => {
            println!("kubectl-sluice {}", env!("CARGO_PKG_VERSION"));
            return Ok(ExitCode::SUCCESS);
        }
        Command::Judge(args) => {
            judge::run(&args)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Completion(args) => {
            completion::run(&args);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Lint(args) => {
            lint::run(&args)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Convert(args) => {
            convert::run(&args)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let ctx = context::Ctx::connect(&globals, output_of(&command)).await?;
    match command {
        Command::Version
        | Command::Judge(_)
        | Command::Completion(_)
        | Command::Lint(_)
        | Command::Convert(_) => {}
        Command::Get(args) => get::run(&ctx, &args).await?,
        Command::List(args) => list::run(&ctx, &args).await?,
        Command::Promote(args) => promote::run(&ctx, &args).await?,
        Command::Abort(args) => abort::run(&ctx, &args).await?,
        Command::Retry(args) => retry::run(&ctx, &args).await?,
        Command::Pause(args) => pause::run(&ctx, &args).await?,
        Command::Resume(args) => resume::run(&ctx, &args).await?,
        Command::Restart(args) => restart::run(&ctx, &args).await?,
        Command::Undo(args) => undo::run(&ctx, &args).await?,
        Command::Set(args) => set_image::run(&ctx, &args).await?,
        Command::Status(args) => return status::run(&ctx, &args).await,
        Command::Terminate(args) => terminate::run(&ctx, &args).await?,
        Command::Create(args) => create::run(&ctx, &args).await?,
        Command::Dashboard(args) => dashboard::run(&ctx, &args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The `-o` of the verbs that have one.
fn output_of(command: &Command) -> Option<output::Format> {
    match command {
        Command::Version
        | Command::Judge(_)
        | Command::Completion(_)
        | Command::Lint(_)
        | Command::Convert(_)
        | Command::Status(_)
        | Command::Dashboard(_) => None,
        Command::Get(a) => a.output.output,
        Command::List(a) => a.output.output,
        Command::Promote(a) => a.output.output,
        Command::Abort(a) => a.output.output,
        Command::Retry(a) => a.output.output,
        Command::Pause(a) => a.output.output,
        Command::Resume(a) => a.output.output,
        Command::Restart(a) => a.output.output,
        Command::Undo(a) => a.output.output,
        Command::Set(a) => a.output.output,
        Command::Terminate(a) => a.output.output,
        Command::Create(a) => a.output.output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_do_not_clash_between_verbs() {
        // Catches a global flag shadowing a verb's own (judge's `-o table|json`).
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["kubectl-sluice", "judge", "-f", "x.json", "-o", "table"]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from(["kubectl-sluice", "get", "rollout", "web", "-o", "wide"]);
        assert!(cli.is_ok(), "{cli:?}");
    }
}
