//! `kubectl sluice terminate analysisrun NAME`: sets `spec.terminate`; the run stops measuring
//! and, with no failures so far, counts as Successful.

use super::context::Ctx;
use super::output::print_object;
use super::steer;
use crate::crd::AnalysisRun;
use clap::{Args, Subcommand};
use kube::api::{Api, Patch};
use serde_json::json;

/// Terminate a running object.
#[derive(Debug, Args)]
pub struct TerminateArgs {
    #[command(subcommand)]
    pub what: TerminateCommand,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// What `terminate` stops.
#[derive(Debug, Subcommand)]
pub enum TerminateCommand {
    /// Terminate an AnalysisRun.
    #[command(visible_alias = "ar")]
    Analysisrun {
        /// The AnalysisRun.
        name: String,
    },
}

/// Runs the verb.
///
/// # Errors
/// When the AnalysisRun is missing or the patch is refused.
pub async fn run(ctx: &Ctx, args: &TerminateArgs) -> anyhow::Result<()> {
    let TerminateCommand::Analysisrun { name } = &args.what;
    let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let patch = Patch::Merge(json!({"spec": {"terminate": true}}));
    let run = match api.patch(name, &steer::params(), &patch).await {
        Ok(run) => run,
        Err(e) => {
            let request = steer::request("patch", "analysisruns", name);
            return Err(ctx.explain(&request, e).await);
        }
    };
    let kind_name = format!("analysisrun.sluice.dev/{name}");
    if !print_object(ctx.output, &kind_name, &run)? {
        println!("analysisrun '{name}' terminated");
    }
    Ok(())
}
