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
    Crds {
        /// Write one file per CRD into this directory (as committed in `crds/`) instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Run the Rollout controller against a cluster.
    Controller(Box<sluice::controller::cli::ControllerArgs>),
}

fn write_crds(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    for (file, yaml) in sluice::crd::crd_files()? {
        let path = dir.join(file);
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run_controller(args: sluice::controller::cli::ControllerArgs) -> anyhow::Result<()> {
    // The only place that reads the environment directly: the default Lease identity.
    let identity = std::env::var("HOSTNAME").unwrap_or_else(|_| "sluice-controller".into());
    runtime()?.block_on(sluice::controller::cli::run_controller(
        args,
        identity,
        decide,
        sluice::controller::no_routers,
    ))
}

/// Stand-in until the engine lands: keeps the status as it is and asks for nothing.
fn decide(
    rollout: &sluice::crd::Rollout,
    _observed: &sluice::engine::Observed,
    _now: jiff::Timestamp,
) -> sluice::engine::Decision {
    sluice::engine::Decision {
        status: rollout.status.clone().unwrap_or_default(),
        ..Default::default()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { out_dir: None } => sluice::crd::crds_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(anyhow::Error::from),
        Command::Crds { out_dir: Some(dir) } => write_crds(&dir),
        Command::Controller(args) => run_controller(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
