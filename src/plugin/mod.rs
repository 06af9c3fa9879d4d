//! `kubectl sluice`: the kubectl plugin, one module per verb.

use clap::{Parser, Subcommand};

pub mod judge;

/// Progressive delivery for Kubernetes: inspect and steer Sluice rollouts.
#[derive(Debug, Parser)]
#[command(name = "kubectl-sluice", bin_name = "kubectl sluice", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs of `kubectl sluice`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version of the plugin.
    Version,
    /// Judge canary against baseline metrics from a JSON file (offline, no cluster needed).
    Judge(judge::JudgeArgs),
}

/// Runs the plugin with parsed arguments.
///
/// # Errors
/// Returns the verb's error, formatted for people by the binary's `main`.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("kubectl-sluice {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Judge(args) => judge::run(&args),
    }
}
