//! `kubectl sluice dashboard [--port 3100] [--address 127.0.0.1] [--read-only]`: serves the web
//! dashboard (`crate::dashboard`) with the user's kubeconfig, over the namespace of `-n` (or the
//! context's) or, with `-A`, every namespace, until Ctrl-C.

use super::context::Ctx;
use crate::dashboard::{self, Options};
use clap::Args;
use std::net::IpAddr;

/// Serve the dashboard.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The port to listen on.
    #[arg(long, default_value_t = 3100)]
    pub port: u16,
    /// The address to listen on; the default serves this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Offer no actions: promote, abort and retry are refused with 403.
    #[arg(long)]
    pub read_only: bool,
}

/// Runs the verb.
///
/// # Errors
/// When the address is taken or cannot be bound, or the server fails.
pub async fn run(ctx: &Ctx, args: &DashboardArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((args.address, args.port))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}:{}: {e}; pass another --port or --address",
                args.address,
                args.port
            )
        })?;
    let namespace = (!ctx.all_namespaces).then(|| ctx.namespace.clone());
    let local = listener.local_addr()?;
    let scope = namespace.as_deref().map_or_else(
        || "all namespaces".to_string(),
        |ns| format!("namespace {ns}"),
    );
    let mode = if args.read_only { ", read-only" } else { "" };
    println!("Sluice dashboard on http://{local}/ ({scope}{mode}); Ctrl-C stops it");
    let options = Options {
        namespace,
        read_only: args.read_only,
    };
    let server = dashboard::serve(ctx.client.clone(), listener, options);
    tokio::select! {
        result = server => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
