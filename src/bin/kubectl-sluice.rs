//! The `kubectl-sluice` binary: kubectl finds it on PATH and runs it as `kubectl sluice`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = sluice::plugin::Cli::parse();
    match sluice::plugin::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
