//! The `sluice` binary: `sluice crds` prints the CustomResourceDefinitions; the controller and
//! the playground are subcommands as they land.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Sluice: progressive delivery for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print every Sluice CustomResourceDefinition as a multi-document YAML stream.
    Crds,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds => sluice::crd::crds_yaml().map(|yaml| print!("{yaml}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
