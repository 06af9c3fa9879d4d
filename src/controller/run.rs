//! The kube-runtime wiring: reflectors for Rollouts, ReplicaSets, AnalysisRuns, Services and
//! Deployments (each cache trimmed to the fields observe reads, each feeding the reverse indexes
//! of `index.rs`), the `Controller` on Rollouts that owns the children and maps Services and
//! Deployments back to the Rollouts naming them, re-reconciling everything when this replica
//! becomes leader. Reads the API through watches only; all writes happen in the reconcile stages.

use super::backoff::{WatchBackoff, absorb_errors};
use super::cache::CachedReplicaSet;
use super::context::{Context, DecideFn, RoutersFn, Settings, Stores};
use super::index::{Index, controller_uid};
use super::leader::Leadership;
use super::metrics::Metrics;
use super::observe::{ANALYSIS_KIND_LABEL, service_names};
use super::queue::Triggers;
use super::reconcile::{error_policy, reconcile};
use crate::crd::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, POD_TEMPLATE_HASH_LABEL, Rollout,
};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
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
    /// The metric providers AnalysisRuns are measured with.
    pub providers: crate::providers::MetricProviders,
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

/// The annotation `kubectl apply` keeps a full copy of the object in; nothing here reads it.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What every cache drops: `managedFields` and the last-applied copy, often larger than the rest
/// of the object together.
fn strip_metadata<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The watch events of `api`, every object trimmed (`strip_metadata`, then `trim`) and every
/// event fed to `indexes` on its way to the reflector.
fn trimmed_events<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    indexes: Vec<Index<K>>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(api, config)
        .modify(move |obj| {
            strip_metadata(obj);
            trim(obj);
        })
        .map(move |event| {
            if let Ok(event) = &event {
                for index in &indexes {
                    index.apply(event);
                }
            }
            event
        })
}

/// A reflector whose cache holds `trim`med objects and whose events also feed `indexes`, as a
/// stream of touched objects (deletions included) for the controller's triggers.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    indexes: Vec<Index<K>>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let events = trimmed_events(api, config, trim, indexes);
    let stream = reflector::reflector(writer, events)
        .backoff(WatchBackoff::default())
        .touched_objects();
    (
        reader,
        absorb_errors(stream, K::kind(&Default::default()).into_owned()),
    )
}

fn keep_all<K>(_: &mut K) {}

/// Observe reads a Service's selector and annotations only.
fn trim_service(svc: &mut Service) {
    svc.spec = svc.spec.take().map(|spec| ServiceSpec {
        selector: spec.selector,
        ..ServiceSpec::default()
    });
    svc.status = None;
}

/// Observe reads a Deployment's template, replicas and generation only.
fn trim_deployment(deploy: &mut Deployment) {
    deploy.spec = deploy.spec.take().map(|spec| DeploymentSpec {
        replicas: spec.replicas,
        selector: spec.selector,
        template: spec.template,
        ..DeploymentSpec::default()
    });
    deploy.status = None;
}

fn workload_names(rollout: &Rollout) -> Vec<String> {
    rollout
        .spec
        .workload_ref
        .iter()
        .map(|w| w.name.clone())
        .collect()
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
        providers,
    } = wiring;
    metrics.track_leadership(&leadership);
    // One shutdown for both controllers.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let ns = settings.namespace.clone();
    let ns = ns.as_deref();
    let rollout_config =
        watcher::Config::default().labels(&rollout_selector(settings.instance_id.as_deref()));
    let by_service = Index::new(service_names);
    let by_workload = Index::new(workload_names);
    let by_template = Index::new(super::templates::template_names);
    let by_claim = Index::new(super::index::claim_keys);
    // The Controller's own watch, built here so its cache is trimmed, it feeds the indexes and
    // its events are noted for the queue depth. As `Controller::new` does: applied objects only;
    // deletion runs through the finalizer.
    let (rollouts, rollout_writer) = reflector::store();
    let triggers = Triggers::new(metrics.clone(), rollouts.clone());
    let noted = triggers.clone();
    // A deleted Rollout frees its claims: the Rollouts waiting on them (InvalidSpec, which
    // waits for a change) are reconciled again so the next in line can proceed.
    let (freed_tx, freed_rx) = futures::channel::mpsc::unbounded();
    let claimants = by_claim.clone();
    let events = trimmed_events(
        api::<Rollout>(&client, ns),
        rollout_config,
        keep_all,
        vec![
            by_service.clone(),
            by_workload.clone(),
            by_template.clone(),
            by_claim.clone(),
        ],
    )
    .inspect(move |event| {
        if let Ok(watcher::Event::Delete(gone)) = event {
            for rival in rivals(&claimants, gone) {
                let _ = freed_tx.unbounded_send(rival);
            }
        }
    });
    let rollout_stream = reflector::reflector(rollout_writer, events)
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

    let replica_sets_by_owner = Index::new(controller_uid::<CachedReplicaSet>);
    let analysis_runs_by_owner = Index::new(controller_uid::<AnalysisRun>);
    // Trimmed as it is deserialised (`cache.rs`): the template is kept as a digest only.
    let (replica_sets, rs_stream) = reflect(
        api::<CachedReplicaSet>(&client, ns),
        watcher::Config::default().labels(POD_TEMPLATE_HASH_LABEL),
        keep_all,
        vec![replica_sets_by_owner.clone()],
    );
    let (analysis_runs, run_stream) = reflect(
        api::<AnalysisRun>(&client, ns),
        watcher::Config::default().labels(ANALYSIS_KIND_LABEL),
        keep_all,
        vec![analysis_runs_by_owner.clone()],
    );
    let (services, svc_stream) = reflect(
        api::<Service>(&client, ns),
        watcher::Config::default(),
        trim_service,
        Vec::new(),
    );
    let (deployments, deploy_stream) = reflect(
        api::<Deployment>(&client, ns),
        watcher::Config::default(),
        trim_deployment,
        Vec::new(),
    );

    let (analysis_templates, template_stream) = reflect(
        api::<AnalysisTemplate>(&client, ns),
        watcher::Config::default(),
        keep_all,
        Vec::new(),
    );
    let (cluster_analysis_templates, cluster_template_stream) = reflect(
        Api::<ClusterAnalysisTemplate>::all(client.clone()),
        watcher::Config::default(),
        keep_all,
        Vec::new(),
    );
    let templates_synced = Arc::new(AtomicBool::new(false));
    {
        let (t, c, synced) = (
            analysis_templates.clone(),
            cluster_analysis_templates.clone(),
            templates_synced.clone(),
        );
        tokio::spawn(async move {
            if t.wait_until_ready().await.is_ok() && c.wait_until_ready().await.is_ok() {
                synced.store(true, Ordering::SeqCst);
            }
        });
    }
    let stores = Stores {
        rollouts: rollouts.clone(),
        replica_sets: replica_sets.clone(),
        services: services.clone(),
        analysis_runs: analysis_runs.clone(),
        deployments: deployments.clone(),
        replica_sets_by_owner,
        analysis_runs_by_owner,
        analysis_templates,
        cluster_analysis_templates,
        templates_synced,
        claims: super::index::Claims {
            index: by_claim,
            allow_cross_namespace_routing: settings.allow_cross_namespace_routing,
        },
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

    let rollouts_became_leader = became_leader(&leadership);
    let runs_became_leader = became_leader(&leadership);

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
    let (t_rs, t_run, t_svc, t_deploy, t_template, t_cluster) = (
        triggers.clone(),
        triggers.clone(),
        triggers.clone(),
        triggers.clone(),
        triggers.clone(),
        triggers,
    );
    let all_rollouts = rollouts.clone();
    let measuring = super::measure::run(
        ctx.clone(),
        providers,
        runs_became_leader,
        stopped(stop_rx.clone()),
    );
    let rollouts = controller
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
            t_svc.mapped(rollouts_naming(&by_service, &svc))
        })
        .watches_stream(deploy_stream, move |deploy: Deployment| {
            t_deploy.mapped(rollouts_naming(&by_workload, &deploy))
        })
        .watches_stream(template_stream, move |t: AnalysisTemplate| {
            t_template.mapped(rollouts_naming(&by_template, &t))
        })
        .watches_stream(
            cluster_template_stream,
            move |t: ClusterAnalysisTemplate| {
                t_cluster.mapped(rollouts_using_cluster_template(&all_rollouts, &t))
            },
        )
        .reconcile_all_on(rollouts_became_leader)
        .reconcile_on(freed_rx)
        .trigger_backoff(WatchBackoff::default())
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .graceful_shutdown_on(stopped(stop_rx))
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller stream error");
            }
        });
    futures::join!(rollouts, measuring);
}

/// Completes once `stop` says so.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A stream with an item each time this replica becomes the leader.
fn became_leader(leadership: &Leadership) -> impl Stream<Item = ()> + Send + Sync + 'static {
    futures::stream::unfold(leadership.subscribe(), |mut changes| async move {
        loop {
            changes.changed().await.ok()?;
            if *changes.borrow_and_update() {
                return Some(((), changes));
            }
        }
    })
}

/// The Rollouts referencing a ClusterAnalysisTemplate (a scan: cluster templates change
/// rarely, and an index keyed by a cluster-wide name would need a namespace-free key).
fn rollouts_using_cluster_template(
    rollouts: &Store<Rollout>,
    template: &ClusterAnalysisTemplate,
) -> Vec<ObjectRef<Rollout>> {
    let name = template.metadata.name.clone().unwrap_or_default();
    rollouts
        .state()
        .iter()
        .filter(|r| {
            super::templates::analyses(r)
                .iter()
                .flat_map(|a| a.templates.iter())
                .any(|t| t.cluster_scope && t.template_name == name)
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// The other Rollouts of `rollout`'s namespace that claim one of the objects it claims.
fn rivals(by_claim: &Index<Rollout>, rollout: &Rollout) -> Vec<ObjectRef<Rollout>> {
    let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let mut out: Vec<ObjectRef<Rollout>> = super::index::claim_keys(rollout)
        .iter()
        .flat_map(|key| by_claim.lookup(&namespace, key))
        .filter(|r| r.name != name)
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// The Rollouts in `obj`'s namespace whose indexed names include `obj`'s name.
fn rollouts_naming<K: Resource>(index: &Index<Rollout>, obj: &K) -> Vec<ObjectRef<Rollout>> {
    let meta = obj.meta();
    match (&meta.namespace, &meta.name) {
        (Some(namespace), Some(name)) => index.lookup(namespace, name),
        _ => Vec::new(),
    }
}
