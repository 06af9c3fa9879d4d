//! `kubectl sluice get rollout NAME [-w]`: the Rollout's header and tree (see `render`).
//! `--watch` keeps four watches (Rollouts, ReplicaSets, Pods, AnalysisRuns in the namespace)
//! and re-renders whenever one of them delivers a change, until Ctrl-C.

mod render;

pub use render::{Snapshot, render};

use super::context::{Ctx, Request};
use super::output::print_object;
use crate::crd::{AnalysisRun, Rollout};
use clap::{Args, Subcommand};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::io::Write as _;

/// Show an object.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(subcommand)]
    pub what: GetCommand,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// What `get` shows.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// Show a Rollout with its revisions, ReplicaSets, pods and AnalysisRuns.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout {
        /// The Rollout.
        name: String,
        /// Re-render on every change until Ctrl-C.
        #[arg(short = 'w', long)]
        watch: bool,
    },
}

/// The namespace's objects, by name.
#[derive(Default)]
struct World {
    rollouts: BTreeMap<String, Rollout>,
    replica_sets: BTreeMap<String, ReplicaSet>,
    pods: BTreeMap<String, Pod>,
    runs: BTreeMap<String, AnalysisRun>,
}

/// Runs the verb.
///
/// # Errors
/// When the Rollout is missing or a list or watch is refused.
pub async fn run(ctx: &Ctx, args: &GetArgs) -> anyhow::Result<()> {
    let GetCommand::Rollout { name, watch } = &args.what;
    let rollout = super::steer::get(ctx, name).await?;
    if print_object(ctx.output, &format!("rollout.sluice.dev/{name}"), &rollout)? {
        return Ok(());
    }
    if *watch {
        return watch_loop(ctx, name).await;
    }
    let mut world = World::default();
    world.rollouts.insert(name.clone(), rollout);
    world.replica_sets = list(ctx, "replicasets").await?;
    world.pods = list(ctx, "pods").await?;
    world.runs = list(ctx, "analysisruns").await?;
    if let Some(text) = frame(ctx, &world, name) {
        print!("{text}");
    }
    Ok(())
}

async fn list<K>(ctx: &Ctx, resource: &'static str) -> anyhow::Result<BTreeMap<String, K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .map(|o| (o.meta().name.clone().unwrap_or_default(), o))
            .collect()),
        Err(e) => {
            let request = Request {
                verb: "list",
                resource,
                name: None,
            };
            Err(ctx.explain(&request, e).await)
        }
    }
}

/// The rendered view, `None` when the Rollout is gone.
fn frame(ctx: &Ctx, world: &World, name: &str) -> Option<String> {
    let rollout = world.rollouts.get(name)?;
    let uid = rollout.metadata.uid.as_deref();
    let replica_sets: Vec<&ReplicaSet> = world
        .replica_sets
        .values()
        .filter(|rs| super::undo::owned_by(*rs, uid))
        .collect();
    let set_uids: Vec<&str> = replica_sets
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .collect();
    let pods: Vec<&Pod> = world
        .pods
        .values()
        .filter(|p| set_uids.iter().any(|u| super::undo::owned_by(*p, Some(u))))
        .collect();
    let runs = world
        .runs
        .values()
        .filter(|r| super::undo::owned_by(*r, uid))
        .collect();
    let snapshot = Snapshot {
        rollout,
        replica_sets,
        pods,
        runs,
    };
    Some(render(&snapshot, jiff::Timestamp::now(), ctx.color))
}

/// A change delivered by one of the watches.
enum Change {
    Rollout(Box<watcher::Event<Rollout>>),
    ReplicaSet(watcher::Event<ReplicaSet>),
    Pod(watcher::Event<Pod>),
    Run(watcher::Event<AnalysisRun>),
}

fn watch_of<K>(ctx: &Ctx) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    watcher(api, watcher::Config::default())
}

async fn watch_loop(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    let streams = futures::stream::select_all([
        watch_of::<Rollout>(ctx)
            .map(|e| e.map(|e| Change::Rollout(Box::new(e))))
            .boxed(),
        watch_of::<ReplicaSet>(ctx)
            .map(|e| e.map(Change::ReplicaSet))
            .boxed(),
        watch_of::<Pod>(ctx).map(|e| e.map(Change::Pod)).boxed(),
        watch_of::<AnalysisRun>(ctx)
            .map(|e| e.map(Change::Run))
            .boxed(),
    ]);
    let mut streams = std::pin::pin!(streams);
    let mut world = World::default();
    let mut synced = [false; 4];
    let mut last = String::new();
    let interrupted = tokio::signal::ctrl_c();
    let mut interrupted = std::pin::pin!(interrupted);
    loop {
        let change = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            change = streams.next() => change,
        };
        let Some(change) = change else {
            return Ok(());
        };
        let change = change
            .map_err(|e| anyhow::anyhow!("watching the namespace {:?}: {e}", ctx.namespace))?;
        apply(&mut world, change, &mut synced);
        if !synced.iter().all(|s| *s) {
            continue;
        }
        let Some(text) = frame(ctx, &world, name) else {
            eprintln!("rollout {name:?} was deleted");
            return Ok(());
        };
        if text != last {
            show(ctx, &text)?;
            last = text;
        }
    }
}

fn show(ctx: &Ctx, text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if ctx.color {
        // On a terminal the view is redrawn in place.
        write!(stdout, "\x1b[H\x1b[2J{text}")?;
    } else {
        // Elsewhere each view follows the last, a blank line apart.
        writeln!(stdout, "{text}")?;
    }
    stdout.flush()?;
    Ok(())
}

fn apply(world: &mut World, change: Change, synced: &mut [bool; 4]) {
    match change {
        Change::Rollout(e) => apply_event(&mut world.rollouts, *e, &mut synced[0]),
        Change::ReplicaSet(e) => apply_event(&mut world.replica_sets, e, &mut synced[1]),
        Change::Pod(e) => apply_event(&mut world.pods, e, &mut synced[2]),
        Change::Run(e) => apply_event(&mut world.runs, e, &mut synced[3]),
    }
}

/// Keeps `map` equal to the watched set; `synced` once the initial list is complete.
fn apply_event<K: kube::Resource>(
    map: &mut BTreeMap<String, K>,
    event: watcher::Event<K>,
    synced: &mut bool,
) {
    match event {
        watcher::Event::Init => {
            // A re-list: hold the view until it is complete rather than show half of it.
            map.clear();
            *synced = false;
        }
        watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
            map.insert(o.meta().name.clone().unwrap_or_default(), o);
        }
        watcher::Event::Delete(o) => {
            map.remove(o.meta().name.as_deref().unwrap_or_default());
        }
        watcher::Event::InitDone => *synced = true,
    }
}
