//! `kubectl sluice list rollouts [-A]`: a table of Rollouts (name, strategy, status, step,
//! weights, replica counts), or the list as `-o json|yaml|name`.

use super::context::{Ctx, Request};
use super::output::{Format, pad};
use super::summary;
use crate::crd::Rollout;
use clap::{Args, Subcommand};
use kube::api::{Api, ListParams};

/// List objects.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(subcommand)]
    pub what: ListCommand,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// What `list` lists.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// List Rollouts in the namespace, or in all of them with -A.
    #[command(visible_aliases = ["rollout", "ro"])]
    Rollouts {
        /// After the table, print a row each time a Rollout's row changes, until Ctrl-C.
        #[arg(short = 'w', long)]
        watch: bool,
    },
}

/// Runs the verb.
///
/// # Errors
/// When the list is refused or the CRDs are missing.
pub async fn run(ctx: &Ctx, args: &ListArgs) -> anyhow::Result<()> {
    let ListCommand::Rollouts { watch } = args.what;
    let api: Api<Rollout> = if ctx.all_namespaces {
        Api::all(ctx.client.clone())
    } else {
        Api::namespaced(ctx.client.clone(), &ctx.namespace)
    };
    let list = match api.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(e) => {
            let request = Request {
                verb: "list",
                resource: "rollouts",
                name: None,
            };
            return Err(ctx.explain(&request, e).await);
        }
    };
    let mut items = list.items;
    items.sort_by_key(|r| (r.metadata.namespace.clone(), r.metadata.name.clone()));
    match ctx.output {
        Some(Format::Json | Format::Yaml) => {
            let value = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            super::output::print_object(ctx.output, "", &value)?;
        }
        Some(Format::Name) => {
            for r in &items {
                println!(
                    "rollout.sluice.dev/{}",
                    r.metadata.name.as_deref().unwrap_or_default()
                );
            }
        }
        Some(Format::Wide) | None => {
            if items.is_empty() {
                let place = if ctx.all_namespaces {
                    "any namespace".to_string()
                } else {
                    format!("namespace {:?}", ctx.namespace)
                };
                eprintln!("No rollouts found in {place}.");
                return Ok(());
            }
            print!("{}", table(ctx, &items));
        }
    }
    if watch {
        return follow(ctx, api, &items).await;
    }
    Ok(())
}

/// Prints the row of every Rollout whose row changes, from a watch, until Ctrl-C.
async fn follow(ctx: &Ctx, api: Api<Rollout>, items: &[Rollout]) -> anyhow::Result<()> {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let key = |r: &Rollout| (r.metadata.namespace.clone(), r.metadata.name.clone());
    let mut shown: std::collections::BTreeMap<_, String> = items
        .iter()
        .map(|r| {
            (
                key(r),
                row(ctx, r, ctx.output == Some(Format::Wide)).join("  "),
            )
        })
        .collect();
    let stream = watcher(api, watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    let interrupted = tokio::signal::ctrl_c();
    let mut interrupted = std::pin::pin!(interrupted);
    loop {
        let event = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            event = stream.next() => event,
        };
        let Some(event) = event else {
            return Ok(());
        };
        let event = event.map_err(|e| anyhow::anyhow!("watching rollouts: {e}"))?;
        let rollout = match event {
            watcher::Event::Apply(r) | watcher::Event::InitApply(r) => r,
            watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitDone => {
                continue;
            }
        };
        let line = row(ctx, &rollout, ctx.output == Some(Format::Wide)).join("  ");
        if shown.get(&key(&rollout)) != Some(&line) {
            println!("{line}");
            shown.insert(key(&rollout), line);
        }
    }
}

fn table(ctx: &Ctx, items: &[Rollout]) -> String {
    let wide = ctx.output == Some(Format::Wide);
    let mut header = vec![
        "NAME",
        "STRATEGY",
        "STATUS",
        "STEP",
        "SET-WEIGHT",
        "READY",
        "DESIRED",
        "UP-TO-DATE",
        "AVAILABLE",
    ];
    if wide {
        header.extend(["ACTUAL-WEIGHT", "MESSAGE"]);
    }
    if ctx.all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for r in items {
        rows.push(row(ctx, r, wide));
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| super::output::visible_width(&r[c]))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c + 1 == columns {
                    cell.clone()
                } else {
                    pad(cell, widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn row(ctx: &Ctx, r: &Rollout, wide: bool) -> Vec<String> {
    let s = r.status.clone().unwrap_or_default();
    let dash = || "-".to_string();
    let number = |n: Option<i32>| n.unwrap_or(0).to_string();
    let mut row = vec![
        r.metadata.name.clone().unwrap_or_default(),
        summary::strategy(r).to_string(),
        summary::status_icon(r, ctx.color),
        summary::step(r).unwrap_or_else(dash),
        summary::set_weight(r).map_or_else(dash, |w| w.to_string()),
        format!(
            "{}/{}",
            number(s.ready_replicas),
            r.spec.replicas.unwrap_or(1)
        ),
        r.spec.replicas.unwrap_or(1).to_string(),
        number(s.updated_replicas),
        number(s.available_replicas),
    ];
    if wide {
        row.push(summary::actual_weight(r).map_or_else(dash, |w| w.to_string()));
        row.push(summary::message(r));
    }
    if ctx.all_namespaces {
        row.insert(0, r.metadata.namespace.clone().unwrap_or_default());
    }
    row
}
