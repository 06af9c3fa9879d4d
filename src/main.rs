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
    /// Scale bench: N Rollouts in the playground, each through one canary update; prints figures.
    Bench(sluice::bench::BenchArgs),
    /// Analysis bench: N Rollouts each with a running Prometheus analysis against a real
    /// `prometheus`; prints measurements per second, due-to-written delay, CPU and memory.
    BenchAnalysis(sluice::bench::analysis::AnalysisBenchArgs),
    /// Fault campaign: N Rollouts through canary steps, analysis, promotion and abort while the
    /// controller is killed (at random and before its writes), API requests fail and routers
    /// go down; prints kills, injected errors and invariant violations.
    BenchFaults(sluice::bench::faults::FaultArgs),
    /// The embedded playground cluster (an emulated Kubernetes API server with simulated
    /// workloads and demo traffic). Without a subcommand: a guided demo with the controller
    /// running in-process and a real `prometheus` scraping the demo traffic: a canary rollout,
    /// an abort and a retry, then a canary the judge promotes and one it aborts, with their
    /// scores; it leaves nothing behind.
    Playground {
        /// The `prometheus` binary the demo starts (default: `prometheus` on PATH; without one
        /// the judge part is skipped).
        #[arg(long, value_name = "PATH", env = "SLUICE_PROMETHEUS_BINARY")]
        prometheus_binary: Option<std::path::PathBuf>,
        #[command(subcommand)]
        command: Option<PlaygroundCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum PlaygroundCommand {
    /// Start the playground API server and simulated controllers, write a kubeconfig and run
    /// until interrupted (Ctrl-C).
    Serve {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0, env = "SLUICE_PLAYGROUND_PORT")]
        port: u16,
        /// Where to write the kubeconfig (default: `sluice-playground.kubeconfig` in the
        /// system temporary directory).
        #[arg(long, env = "SLUICE_PLAYGROUND_KUBECONFIG")]
        kubeconfig: Option<std::path::PathBuf>,
        /// Disable the simulated cluster controllers (a bare API server).
        #[arg(long)]
        no_simulation: bool,
    },
}

fn playground_serve(
    port: u16,
    kubeconfig: Option<std::path::PathBuf>,
    no_simulation: bool,
) -> anyhow::Result<()> {
    use sluice::playground::{Playground, PlaygroundOptions, SimulationOptions};
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let kubeconfig =
            kubeconfig.unwrap_or_else(|| std::env::temp_dir().join("sluice-playground.kubeconfig"));
        let simulation = if no_simulation {
            SimulationOptions::disabled()
        } else {
            SimulationOptions::default()
        };
        let options = PlaygroundOptions {
            port,
            kubeconfig: Some(kubeconfig),
            simulation,
            ..PlaygroundOptions::default()
        };
        let handle = Playground::start(options).await?;
        println!(
            "Sluice playground API server listening on {}",
            handle.base_url()
        );
        println!(
            "Kubeconfig written to {}",
            handle.kubeconfig_path().display()
        );
        println!();
        println!("Use it with kubectl:");
        println!("  export KUBECONFIG={}", handle.kubeconfig_path().display());
        println!("  kubectl get namespaces");
        println!();
        println!("This is an emulated cluster (no containers run). Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        handle.shutdown().await;
        anyhow::Ok(())
    })
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

fn playground_demo(prometheus_binary: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    sluice::controller::cli::init_logging(sluice::controller::cli::LogFormat::Plain, "warn");
    let options = sluice::demo::DemoOptions { prometheus_binary };
    runtime()?.block_on(sluice::demo::run(options))
}

fn run_bench(args: sluice::bench::BenchArgs) -> anyhow::Result<()> {
    sluice::controller::cli::init_logging(sluice::controller::cli::LogFormat::Plain, "warn");
    let binary = std::env::current_exe()?;
    runtime()?.block_on(sluice::bench::run(args, &binary))
}

fn run_bench_analysis(args: sluice::bench::analysis::AnalysisBenchArgs) -> anyhow::Result<()> {
    sluice::controller::cli::init_logging(sluice::controller::cli::LogFormat::Plain, "warn");
    let binary = std::env::current_exe()?;
    runtime()?.block_on(sluice::bench::analysis::run(args, &binary))
}

fn run_bench_faults(args: sluice::bench::faults::FaultArgs) -> anyhow::Result<()> {
    // The campaign's progress only: the faults it injects make the clients log errors by design.
    sluice::controller::cli::init_logging(
        sluice::controller::cli::LogFormat::Plain,
        "off,sluice::bench::faults=info",
    );
    runtime()?.block_on(sluice::bench::faults::run(args))
}

fn run_controller(args: sluice::controller::cli::ControllerArgs) -> anyhow::Result<()> {
    // The only place that reads the environment directly: the default Lease identity.
    let identity = std::env::var("HOSTNAME").unwrap_or_else(|_| "sluice-controller".into());
    runtime()?.block_on(sluice::controller::cli::run_controller(
        args,
        identity,
        sluice::engine::decide,
        sluice::traffic::routers_for,
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { out_dir: None } => sluice::crd::crds_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(anyhow::Error::from),
        Command::Crds { out_dir: Some(dir) } => write_crds(&dir),
        Command::Controller(args) => run_controller(*args),
        Command::Bench(args) => run_bench(args),
        Command::BenchAnalysis(args) => run_bench_analysis(args),
        Command::BenchFaults(args) => run_bench_faults(args),
        Command::Playground {
            prometheus_binary,
            command: None,
        } => playground_demo(prometheus_binary),
        Command::Playground {
            prometheus_binary: _,
            command:
                Some(PlaygroundCommand::Serve {
                    port,
                    kubeconfig,
                    no_simulation,
                }),
        } => playground_serve(port, kubeconfig, no_simulation),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
