//! The `kubectl-sluice` binary: kubectl finds it on PATH and runs it as `kubectl sluice`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = sluice::plugin::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(sluice::plugin::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
