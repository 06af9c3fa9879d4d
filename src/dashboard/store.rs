//! Watch-fed caches of the objects the dashboard shows: Rollouts, AnalysisRuns, ReplicaSets and
//! Pods of one namespace or all, kept by kube-runtime reflectors. Every change bumps a counter on
//! a `watch` channel, which the event streams wait on: nothing polls.

use crate::crd::{AnalysisRun, Rollout};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store as Reader};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The four caches and the change counter.
#[derive(Clone)]
pub struct Store {
    pub rollouts: Reader<Rollout>,
    pub runs: Reader<AnalysisRun>,
    pub replica_sets: Reader<ReplicaSet>,
    pub pods: Reader<Pod>,
    changes: watch::Receiver<u64>,
    _tasks: Arc<Tasks>,
}

/// The watch tasks, aborted when the last `Store` clone goes.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The objects at one moment, for the view models.
pub struct World {
    pub rollouts: Vec<Arc<Rollout>>,
    pub runs: Vec<Arc<AnalysisRun>>,
    pub replica_sets: Vec<Arc<ReplicaSet>>,
    pub pods: Vec<Arc<Pod>>,
}

impl Store {
    /// Starts the four watches, over `namespace` or (None) every namespace.
    pub fn start(client: &Client, namespace: Option<&str>) -> Store {
        let (sender, changes) = watch::channel(0u64);
        let sender = Arc::new(sender);
        let (rollouts, a) = spawn_watch(api(client, namespace), &sender);
        let (runs, b) = spawn_watch(api(client, namespace), &sender);
        let (replica_sets, c) = spawn_watch(api(client, namespace), &sender);
        let (pods, d) = spawn_watch(api(client, namespace), &sender);
        Store {
            rollouts,
            runs,
            replica_sets,
            pods,
            changes,
            _tasks: Arc::new(Tasks(vec![a, b, c, d])),
        }
    }

    /// Waits until every cache has its first full list.
    ///
    /// # Errors
    /// When a watch task ended before its first list (the server is shutting down).
    pub async fn ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.rollouts.wait_until_ready().await?;
        self.runs.wait_until_ready().await?;
        self.replica_sets.wait_until_ready().await?;
        self.pods.wait_until_ready().await
    }

    /// A receiver that wakes on every change to any cache.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// The cached objects now.
    pub fn world(&self) -> World {
        World {
            rollouts: self.rollouts.state(),
            runs: self.runs.state(),
            replica_sets: self.replica_sets.state(),
            pods: self.pods.state(),
        }
    }

    /// Whether the Rollout `namespace/name` is in the dashboard's scope and cache.
    pub fn has_rollout(&self, namespace: &str, name: &str) -> bool {
        self.rollouts
            .get(&reflector::ObjectRef::new(name).within(namespace))
            .is_some()
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reflects `api` into a cache, bumping `changes` after every event. Managed fields are dropped
/// before caching: the dashboard never shows them and they are most of an object's size.
fn spawn_watch<K>(api: Api<K>, changes: &Arc<watch::Sender<u64>>) -> (Reader<K>, JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let changes = Arc::clone(changes);
    let task = tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|object: &mut K| object.managed_fields_mut().clear())
            .reflect(writer);
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changes.send_modify(|n| *n = n.wrapping_add(1)),
                Err(error) => tracing::warn!(%error, "dashboard watch failed; retrying"),
            }
        }
    });
    (reader, task)
}
