//! Simulated cluster controllers: Deployment → ReplicaSet → Pods with rolling updates, Jobs
//! whose pods run to completion, pod
//! readiness (delayed, crash-looping or never ready, chosen per pod-template label), Service
//! endpoints, and the acceptance status routing controllers write. One task, driven by the
//! store's change feed and timers, acting only through `ops::Api` (in process, no HTTP).

mod jobs;
mod pods;
mod routing;
mod workloads;

use super::ops::{Api, PatchType, Target, WriteOpts};
use super::registry::GroupResource;
use super::store::{Change, Key};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// How a simulated pod behaves once scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodBehaviour {
    /// Running and Ready after the ready delay.
    Ready,
    /// Running but never Ready (a failing readiness probe).
    NeverReady,
    /// Containers crash and restart: `CrashLoopBackOff`, never Ready.
    CrashLoop,
    /// Containers exit with code 1: a Job's pod ends `Failed`; any other pod crash-loops.
    Fail,
}

/// Pods whose labels include `label=value` behave as `behaviour`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRule {
    pub label: String,
    pub value: String,
    pub behaviour: PodBehaviour,
}

/// The label a pod template can carry to choose its behaviour without options:
/// `ready`, `never-ready`, `crash-loop` or `fail` (a Job's pod fails).
pub const BEHAVIOUR_LABEL: &str = "playground.sluice.dev/behaviour";

/// Knobs of the simulated controllers.
#[derive(Debug, Clone)]
pub struct SimulationOptions {
    /// Deployment → ReplicaSet controller (rolling update and recreate).
    pub deployments: bool,
    /// ReplicaSet → Pod controller.
    pub replicasets: bool,
    /// Pod lifecycle (phase, readiness, restarts).
    pub pods: bool,
    /// Service → Endpoints and EndpointSlice.
    pub endpoints: bool,
    /// Acceptance status on HTTPRoute, GRPCRoute, VirtualService and Ingress.
    pub routing: bool,
    /// Job → Pods that run to completion → Job conditions.
    pub jobs: bool,
    /// Time from pod creation to Running (and Ready, for `Ready` pods).
    pub pod_ready_delay: Duration,
    /// Per-label pod behaviours (first match wins; then `BEHAVIOUR_LABEL`; then `Ready`).
    pub pod_rules: Vec<PodRule>,
    /// Demo traffic for pods annotated `demo.sluice.dev/serve: "true"`, served at
    /// `PlaygroundHandle::demo_metrics_url`; `None` serves none.
    pub traffic: Option<crate::playground::traffic::TrafficOptions>,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions {
            deployments: true,
            replicasets: true,
            pods: true,
            endpoints: true,
            routing: true,
            jobs: true,
            pod_ready_delay: Duration::from_millis(100),
            pod_rules: Vec::new(),
            traffic: Some(crate::playground::traffic::TrafficOptions::default()),
        }
    }
}

impl SimulationOptions {
    /// No simulated controllers: a bare API server.
    pub fn disabled() -> Self {
        SimulationOptions {
            deployments: false,
            replicasets: false,
            pods: false,
            endpoints: false,
            routing: false,
            jobs: false,
            traffic: None,
            ..Self::default()
        }
    }

    fn any(&self) -> bool {
        self.deployments
            || self.replicasets
            || self.pods
            || self.endpoints
            || self.routing
            || self.jobs
    }
}

/// One unit of reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    Deployment(Key),
    ReplicaSet(Key),
    PodStart(Key),
    PodFinish(Key),
    Job(Key),
    Endpoints(String),
    Route(GroupResource, Key),
}

fn gr(group: &str, resource: &str) -> GroupResource {
    GroupResource::new(group, resource)
}

fn key_of(v: &Value) -> Key {
    (
        v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

/// The controller owner's (kind, name) in the object's namespace.
fn controller_of(v: &Value) -> Option<(String, Key)> {
    let refs = v.pointer("/metadata/ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    let ns = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some((
        r.get("kind")?.as_str()?.to_string(),
        (ns.to_string(), r.get("name")?.as_str()?.to_string()),
    ))
}

/// Shared context of the simulated controllers.
struct Sim {
    api: Arc<Api>,
    options: SimulationOptions,
    timers: mpsc::UnboundedSender<Work>,
}

impl Sim {
    fn target(
        &self,
        resource: &GroupResource,
        key: &Key,
        subresource: Option<&str>,
    ) -> Option<Target> {
        let def = self.api.registry.any_for_storage(resource)?;
        Some(Target {
            def,
            namespace: Some(key.0.clone()).filter(|n| !n.is_empty()),
            name: Some(key.1.clone()).filter(|n| !n.is_empty()),
            subresource: subresource.map(str::to_string),
        })
    }

    fn opts(manager: &str) -> WriteOpts {
        WriteOpts {
            field_manager: manager.to_string(),
            ..WriteOpts::default()
        }
    }

    fn get(&self, resource: &GroupResource, key: &Key) -> Option<Arc<Value>> {
        self.api.store.collection(resource).get(key)
    }

    fn list(&self, resource: &GroupResource, namespace: &str) -> Vec<Arc<Value>> {
        self.api
            .store
            .collection(resource)
            .list(&self.api.store, Some(namespace), None, None, &|_| true)
            .0
    }

    fn create(
        &self,
        resource: &GroupResource,
        namespace: &str,
        obj: Value,
        manager: &str,
    ) -> Option<Value> {
        let t = self.target(resource, &(namespace.to_string(), String::new()), None)?;
        match self.api.create(&t, obj, &Self::opts(manager)) {
            Ok(v) => Some(v),
            Err(error) => {
                tracing::debug!(%error, resource = %resource.display(), "simulation create failed");
                None
            }
        }
    }

    fn merge(
        &self,
        resource: &GroupResource,
        key: &Key,
        sub: Option<&str>,
        patch: Value,
        manager: &str,
    ) {
        let Some(t) = self.target(resource, key, sub) else {
            return;
        };
        if let Err(error) = self
            .api
            .patch(&t, PatchType::Merge, patch, &Self::opts(manager))
        {
            tracing::debug!(%error, resource = %resource.display(), name = %key.1, "simulation patch failed");
        }
    }

    /// Replace `.status` wholesale when it differs from what is stored.
    fn set_status(&self, resource: &GroupResource, cur: &Value, status: Value, manager: &str) {
        if cur.get("status") == Some(&status) {
            return;
        }
        let key = key_of(cur);
        let Some(t) = self.target(resource, &key, Some("status")) else {
            return;
        };
        let mut next = cur.clone();
        next["status"] = status;
        if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let t = if t.def.status {
            t
        } else {
            Target {
                subresource: None,
                ..t
            }
        };
        if let Err(error) = self.api.update(&t, next, &Self::opts(manager)) {
            tracing::debug!(%error, resource = %resource.display(), name = %key.1, "simulation status write failed");
        }
    }

    fn delete(&self, resource: &GroupResource, key: &Key) {
        let Some(t) = self.target(resource, key, None) else {
            return;
        };
        let _ = self.api.delete(&t, &super::ops::DeleteOpts::default());
    }

    /// Record a core Event about `obj`, as the real controllers do.
    fn event(&self, obj: &Value, reason: &str, message: String, component: &str) {
        let (ns, name) = key_of(obj);
        let now = crate::playground::ops::now();
        let ev = json!({
            "metadata": {"name": format!("{name}.{}", self.api.suffix()), "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": name, "namespace": ns,
                "uid": obj.pointer("/metadata/uid"), "resourceVersion": obj.pointer("/metadata/resourceVersion"),
            },
            "reason": reason, "message": message, "type": "Normal",
            "source": {"component": component}, "reportingComponent": component, "reportingInstance": "playground",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        self.create(&gr("", "events"), &ns, ev, component);
    }

    fn after(&self, delay: Duration, work: Work) {
        let timers = self.timers.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = timers.send(work);
        });
    }

    fn route(&self, change: &Change, pending: &mut HashSet<Work>) {
        let obj = &change.event.object;
        let key = key_of(obj);
        let r = &change.resource;
        match (r.group.as_str(), r.resource.as_str()) {
            ("apps", "deployments") => {
                pending.insert(Work::Deployment(key));
            }
            ("apps", "replicasets") => {
                pending.insert(Work::ReplicaSet(key.clone()));
                if let Some((kind, owner)) = controller_of(obj)
                    && kind == "Deployment"
                {
                    pending.insert(Work::Deployment(owner));
                }
            }
            ("batch", "jobs") => {
                pending.insert(Work::Job(key));
            }
            ("", "pods") => {
                let owner = controller_of(obj);
                let added = change.event.kind == super::store::EventType::Added;
                if added && self.options.pods {
                    self.after(self.options.pod_ready_delay, Work::PodStart(key.clone()));
                    // A Job's pod runs for as long again, then exits.
                    if owner.as_ref().is_some_and(|(kind, _)| kind == "Job") {
                        self.after(
                            2 * self.options.pod_ready_delay,
                            Work::PodFinish(key.clone()),
                        );
                    }
                }
                match owner {
                    Some((kind, owner)) if kind == "ReplicaSet" => {
                        pending.insert(Work::ReplicaSet(owner));
                    }
                    Some((kind, owner)) if kind == "Job" => {
                        pending.insert(Work::Job(owner));
                    }
                    _ => {}
                }
                pending.insert(Work::Endpoints(key.0));
            }
            ("", "services") => {
                pending.insert(Work::Endpoints(key.0));
            }
            _ if routing::is_route(r) => {
                pending.insert(Work::Route(r.clone(), key));
            }
            _ => {}
        }
    }

    fn reconcile(&self, work: &Work) {
        match work {
            Work::Deployment(k) if self.options.deployments => workloads::deployment(self, k),
            Work::ReplicaSet(k) if self.options.replicasets => workloads::replicaset(self, k),
            Work::PodStart(k) if self.options.pods => pods::start(self, k),
            Work::PodFinish(k) if self.options.pods => jobs::finish_pod(self, k),
            Work::Job(k) if self.options.jobs => jobs::job(self, k),
            Work::Endpoints(ns) if self.options.endpoints => pods::endpoints(self, ns),
            Work::Route(r, k) if self.options.routing => routing::accept(self, r, k),
            _ => {}
        }
    }

    fn resync_all(&self, pending: &mut HashSet<Work>) {
        for c in self.api.store.collections() {
            for obj in c.list(&self.api.store, None, None, None, &|_| true).0 {
                let change = Change {
                    resource: c.resource.clone(),
                    event: Arc::new(super::store::WatchEvent::new(
                        0,
                        super::store::EventType::Modified,
                        obj,
                    )),
                };
                self.route(&change, pending);
            }
        }
    }
}

/// Spawn the enabled controllers.
pub fn spawn(
    api: Arc<Api>,
    options: SimulationOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    if !options.any() {
        return Vec::new();
    }
    let mut changes = api.store.subscribe_changes();
    let (timers, mut timer_rx) = mpsc::unbounded_channel();
    let sim = Sim {
        api,
        options,
        timers,
    };
    vec![tokio::spawn(async move {
        let mut pending: HashSet<Work> = HashSet::new();
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(c) => sim.route(&c, &mut pending),
                    Err(broadcast::error::RecvError::Lagged(_)) => sim.resync_all(&mut pending),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                Some(work) = timer_rx.recv() => { pending.insert(work); }
                _ = stop.changed() => return,
            }
            loop {
                match changes.try_recv() {
                    Ok(c) => sim.route(&c, &mut pending),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => sim.resync_all(&mut pending),
                    Err(_) => break,
                }
            }
            for work in std::mem::take(&mut pending) {
                sim.reconcile(&work);
            }
            tokio::task::yield_now().await;
        }
    })]
}
