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
}

fn write_crds(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    for (file, yaml) in sluice::crd::crd_files()? {
        let path = dir.join(file);
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { out_dir: None } => sluice::crd::crds_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(anyhow::Error::from),
        Command::Crds { out_dir: Some(dir) } => write_crds(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
