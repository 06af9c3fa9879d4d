//! The kube-runtime wiring: reflectors for ReplicaSets, AnalysisRuns, Services and Deployments,
//! the `Controller` on Rollouts that owns the first two and maps the others back to the Rollouts
//! naming them, re-reconciling everything when this replica becomes leader. Reads the API
//! through watches only; all writes happen in the reconcile stages.

use super::backoff::{WatchBackoff, absorb_errors};
use super::context::{Context, DecideFn, RoutersFn, Settings, Stores};
use super::leader::Leadership;
use super::metrics::Metrics;
use super::observe::{ANALYSIS_KIND_LABEL, service_names};
use super::queue::Triggers;
use super::reconcile::{error_policy, reconcile};
use crate::crd::{AnalysisRun, POD_TEMPLATE_HASH_LABEL, Rollout};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Label that assigns a Rollout to one controller instance (`--instance-id`).
pub const INSTANCE_ID_LABEL: &str = "rollout.sluice.dev/controller-instance-id";

/// Everything `run` needs that is built outside it.
pub struct Wiring {
    /// The one API client.
    pub client: kube::Client,
    /// The one HTTP client.
    pub http: reqwest::Client,
    /// The decision engine.
    pub decide: DecideFn,
    /// The traffic router factory.
    pub routers: RoutersFn,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Leadership (always leader when election is off).
    pub leadership: Leadership,
    /// Settings.
    pub settings: Settings,
    /// Set once every cache has synced (for `/readyz`).
    pub ready: Arc<AtomicBool>,
}

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config))
        .backoff(WatchBackoff::default())
        .touched_objects();
    (
        reader,
        absorb_errors(stream, K::kind(&Default::default()).into_owned()),
    )
}

/// The label selector for the Rollouts this instance reconciles.
pub fn rollout_selector(instance_id: Option<&str>) -> String {
    match instance_id {
        Some(id) => format!("{INSTANCE_ID_LABEL}={id}"),
        None => format!("!{INSTANCE_ID_LABEL}"),
    }
}

/// Run the controller until `shutdown` completes.
pub async fn run(wiring: Wiring, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let Wiring {
        client,
        http,
        decide,
        routers,
        metrics,
        leadership,
        settings,
        ready,
    } = wiring;
    let ns = settings.namespace.clone();
    let ns = ns.as_deref();
    let rollout_config =
        watcher::Config::default().labels(&rollout_selector(settings.instance_id.as_deref()));
    // The Controller's own watch, built here so its events can be noted for the queue depth.
    let (rollouts, rollout_writer) = reflector::store();
    let triggers = Triggers::new(metrics.clone(), rollouts.clone());
    let noted = triggers.clone();
    let rollout_stream = reflector::reflector(
        rollout_writer,
        watcher(api::<Rollout>(&client, ns), rollout_config),
    )
    .backoff(WatchBackoff::default())
    .applied_objects()
    .inspect(move |r| {
        if let Ok(r) = r {
            noted.rollout(r);
        }
    });
    let controller = Controller::for_stream(
        absorb_errors(rollout_stream, "Rollout".into()),
        rollouts.clone(),
    );

    let (replica_sets, rs_stream) = reflect(
        api::<ReplicaSet>(&client, ns),
        watcher::Config::default().labels(POD_TEMPLATE_HASH_LABEL),
    );
    let (analysis_runs, run_stream) = reflect(
        api::<AnalysisRun>(&client, ns),
        watcher::Config::default().labels(ANALYSIS_KIND_LABEL),
    );
    let (services, svc_stream) = reflect(api::<Service>(&client, ns), watcher::Config::default());
    let (deployments, deploy_stream) =
        reflect(api::<Deployment>(&client, ns), watcher::Config::default());

    let stores = Stores {
        rollouts: rollouts.clone(),
        replica_sets: replica_sets.clone(),
        services: services.clone(),
        analysis_runs: analysis_runs.clone(),
        deployments: deployments.clone(),
    };
    {
        let stores = stores.clone();
        tokio::spawn(async move {
            let synced = stores.rollouts.wait_until_ready().await.is_ok()
                && stores.replica_sets.wait_until_ready().await.is_ok()
                && stores.services.wait_until_ready().await.is_ok()
                && stores.analysis_runs.wait_until_ready().await.is_ok()
                && stores.deployments.wait_until_ready().await.is_ok();
            ready.store(synced, Ordering::SeqCst);
        });
    }

    let became_leader = futures::stream::unfold(leadership.subscribe(), |mut changes| async move {
        loop {
            changes.changed().await.ok()?;
            if *changes.borrow_and_update() {
                return Some(((), changes));
            }
        }
    });

    let concurrency = settings.concurrency;
    let ctx = Arc::new(Context::new(
        client, http, decide, routers, stores, metrics, leadership, settings,
    ));
    let routing = super::routing_watch::served_kinds(&ctx.client).await;
    let mut controller = controller;
    for resource in routing {
        let store = rollouts.clone();
        let t = triggers.clone();
        let stream = super::routing_watch::stream(&ctx.client, ns, &resource);
        controller = controller.watches_stream_with(
            stream,
            move |obj| t.mapped(super::routing_watch::rollouts_routing_through(&store, &obj)),
            resource,
        );
    }
    let svc_rollouts = rollouts.clone();
    let deploy_rollouts = rollouts;
    let (t_rs, t_run, t_svc, t_deploy) = (
        triggers.clone(),
        triggers.clone(),
        triggers.clone(),
        triggers,
    );
    controller
        .owns_stream(rs_stream.inspect(move |rs| {
            if let Ok(rs) = rs {
                t_rs.owned(rs);
            }
        }))
        .owns_stream(run_stream.inspect(move |run| {
            if let Ok(run) = run {
                t_run.owned(run);
            }
        }))
        .watches_stream(svc_stream, move |svc: Service| {
            t_svc.mapped(rollouts_naming(&svc_rollouts, &svc, service_names))
        })
        .watches_stream(deploy_stream, move |deploy: Deployment| {
            t_deploy.mapped(rollouts_naming(&deploy_rollouts, &deploy, |r| {
                r.spec.workload_ref.iter().map(|w| w.name.clone()).collect()
            }))
        })
        .reconcile_all_on(became_leader)
        .trigger_backoff(WatchBackoff::default())
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller stream error");
            }
        })
        .await;
}

/// The Rollouts in `obj`'s namespace whose `names` include `obj`'s name.
fn rollouts_naming<K: Resource>(
    rollouts: &Store<Rollout>,
    obj: &K,
    names: impl Fn(&Rollout) -> Vec<String>,
) -> Vec<ObjectRef<Rollout>> {
    let namespace = obj.namespace();
    let name = obj.name_any();
    rollouts
        .state()
        .iter()
        .filter(|r| r.namespace() == namespace)
        .filter(|r| names(r).contains(&name))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}
