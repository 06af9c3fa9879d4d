//! Demo traffic: pods whose template has `demo.sluice.dev/serve: "true"` serve simulated
//! requests in real time, each version behaving as its annotations say (`model`), each pod
//! receiving the share the routing objects and Services give it (`shares`). One task ticks the
//! counters from the store's current objects (read only, in process); another serves them in
//! the Prometheus text format at `/metrics` on a loopback port of their own.

mod model;
pub mod shares;

pub use model::{
    AnnotationError, BUCKETS, Behaviour, ERROR_RATE_ANNOTATION, LATENCY_MEDIAN_ANNOTATION,
    LATENCY_SPREAD_ANNOTATION, SERVE_ANNOTATION,
};

use super::ops::Api;
use super::registry::GroupResource;
use model::{Counters, PodLabels};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use shares::{PodView, ROUTE_RESOURCES, entry_of, service_view, string_map};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the counters advance.
const TICK: Duration = Duration::from_millis(100);

/// Demo traffic settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficOptions {
    /// Requests per second entering each entry point (a routing object, or a Service no
    /// routing object names).
    pub requests_per_second: f64,
    /// Seed of the random source (arrivals, errors, latencies).
    pub seed: u64,
}

impl Default for TrafficOptions {
    fn default() -> Self {
        TrafficOptions {
            requests_per_second: 200.0,
            seed: 0x5eed,
        }
    }
}

/// One serving pod.
struct Serving {
    labels: PodLabels,
    behaviour: Behaviour,
    counters: Counters,
}

/// Every serving pod's counters, by pod UID, and the pods already warned about.
#[derive(Default)]
struct Served {
    pods: BTreeMap<String, Serving>,
    malformed: BTreeSet<String>,
}

/// Spawn the traffic and its `/metrics` server on `listener`.
pub fn spawn(
    api: Arc<Api>,
    options: TrafficOptions,
    listener: tokio::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let served = Arc::new(Mutex::new(Served::default()));
    vec![
        tokio::spawn(serve_metrics(listener, served.clone(), stop.clone())),
        tokio::spawn(run(api, options, served, stop)),
    ]
}

async fn run(
    api: Arc<Api>,
    options: TrafficOptions,
    served: Arc<Mutex<Served>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let now = tokio::time::Instant::now();
        let seconds = now.duration_since(last).as_secs_f64();
        last = now;
        let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
        step(
            &api,
            &mut served,
            options.requests_per_second,
            seconds,
            &mut rng,
        );
    }
}

/// The objects traffic depends on, by namespace.
#[derive(Default)]
struct Namespace {
    pods: Vec<Arc<Value>>,
    services: Vec<Arc<Value>>,
    routes: Vec<(String, Arc<Value>)>,
    destination_rules: Vec<Value>,
}

/// What a collection holds, for traffic.
enum Kind {
    Services,
    DestinationRules,
    Route(String),
}

fn kind_of(r: &GroupResource) -> Option<Kind> {
    match (r.group.as_str(), r.resource.as_str()) {
        ("", "services") => Some(Kind::Services),
        ("networking.istio.io", "destinationrules") => Some(Kind::DestinationRules),
        (g, res) if ROUTE_RESOURCES.contains(&(g, res)) => Some(Kind::Route(res.to_string())),
        _ => None,
    }
}

/// The serving pods by namespace, with the Services and routing objects of those namespaces
/// only (a playground of thousands of Rollouts without demo pods costs one pass over pods).
fn snapshot(api: &Api) -> BTreeMap<String, Namespace> {
    let serving = |v: &Value| {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(SERVE_ANNOTATION))
            .and_then(Value::as_str)
            == Some("true")
            && v.pointer("/metadata/deletionTimestamp").is_none()
    };
    let collections = api.store.collections();
    let mut out: BTreeMap<String, Namespace> = BTreeMap::new();
    let pods = GroupResource::new("", "pods");
    for c in collections.iter().filter(|c| c.resource == pods) {
        for pod in c.list(&api.store, None, None, None, &serving).0 {
            let ns = str_at(&pod, "/metadata/namespace");
            out.entry(ns).or_default().pods.push(pod);
        }
    }
    for c in &collections {
        let Some(kind) = kind_of(&c.resource) else {
            continue;
        };
        for (ns, entry) in &mut out {
            for obj in c.list(&api.store, Some(ns), None, None, &|_| true).0 {
                match &kind {
                    Kind::Services => entry.services.push(obj),
                    Kind::DestinationRules => entry.destination_rules.push((*obj).clone()),
                    Kind::Route(resource) => entry.routes.push((resource.clone(), obj)),
                }
            }
        }
    }
    out
}

/// Advance every serving pod's counters by `seconds` of traffic at `rate` per entry point.
fn step(api: &Api, served: &mut Served, rate: f64, seconds: f64, rng: &mut StdRng) {
    let mut alive = BTreeSet::new();
    for (name, ns) in snapshot(api) {
        if ns.pods.is_empty() {
            continue;
        }
        let entries: Vec<shares::Entry> = ns
            .routes
            .iter()
            .filter_map(|(resource, route)| entry_of(resource, route, &ns.destination_rules))
            .collect();
        let services: Vec<_> = ns.services.iter().map(|s| service_view(s)).collect();
        let views: Vec<PodView> = ns.pods.iter().map(|p| pod_view(p)).collect();
        let shares = shares::shares(&entries, &services, &views);
        for pod in &ns.pods {
            alive.insert(uid(pod));
            let Some(serving) = served.serving(&name, pod) else {
                continue;
            };
            let share = shares.get(&serving.labels.pod).copied().unwrap_or(0.0);
            serving
                .counters
                .serve(&serving.behaviour, rate * share, seconds, rng);
        }
    }
    served.pods.retain(|uid, _| alive.contains(uid));
    served.malformed.retain(|uid| alive.contains(uid));
}

impl Served {
    /// The pod's state, created on first sight; `None` (with one warning) when its annotations
    /// are malformed.
    fn serving(&mut self, namespace: &str, pod: &Value) -> Option<&mut Serving> {
        let uid = uid(pod);
        if self.malformed.contains(&uid) {
            return None;
        }
        if !self.pods.contains_key(&uid) {
            let name = str_at(pod, "/metadata/name");
            let annotations = string_map(pod.pointer("/metadata/annotations"));
            match Behaviour::from_annotations(&annotations) {
                Ok(behaviour) => {
                    let labels = string_map(pod.pointer("/metadata/labels"));
                    let serving = Serving {
                        labels: PodLabels {
                            namespace: namespace.to_string(),
                            pod: name,
                            app: labels.get("app").cloned(),
                            hash: labels.get(crate::crd::POD_TEMPLATE_HASH_LABEL).cloned(),
                        },
                        behaviour,
                        counters: Counters::default(),
                    };
                    self.pods.insert(uid.clone(), serving);
                }
                Err(error) => {
                    tracing::warn!(%error, namespace, pod = %name, "demo pod serves no traffic");
                    self.malformed.insert(uid);
                    return None;
                }
            }
        }
        self.pods.get_mut(&uid)
    }

    fn exposition(&self) -> String {
        let mut pods: Vec<(&PodLabels, &Counters)> = self
            .pods
            .values()
            .map(|s| (&s.labels, &s.counters))
            .collect();
        pods.sort_by(|a, b| a.0.cmp(b.0));
        model::render(pods)
    }
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn uid(pod: &Value) -> String {
    str_at(pod, "/metadata/uid")
}

fn pod_view(pod: &Value) -> PodView {
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    PodView {
        name: str_at(pod, "/metadata/name"),
        labels: string_map(pod.pointer("/metadata/labels")),
        ready,
    }
}

async fn serve_metrics(
    listener: tokio::net::TcpListener,
    served: Arc<Mutex<Served>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = served
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .exposition();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(error) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(%error, "demo traffic metrics server stopped");
    }
}
