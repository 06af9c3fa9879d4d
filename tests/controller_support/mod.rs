//! Shared harness of the controller end-to-end tests: a playground with simulated workloads,
//! the Sluice CRDs installed, an embedded controller, one namespace per test, and bounded waits
//! that print the object when they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sluice::controller::embedded::{Embedded, EmbeddedOptions};
use sluice::crd::{POD_TEMPLATE_HASH_LABEL, Rollout, RolloutPhase};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions, SimulationOptions};
use std::time::Duration;

pub struct Harness {
    pub playground: PlaygroundHandle,
    pub client: Client,
}

impl Harness {
    /// A playground with simulation and the CRDs installed; no controller yet.
    pub async fn start() -> Self {
        Self::start_with(SimulationOptions::default()).await
    }

    pub async fn start_with(simulation: SimulationOptions) -> Self {
        let options = PlaygroundOptions {
            simulation,
            ..PlaygroundOptions::default()
        };
        let playground = Playground::start(options).await.expect("playground starts");
        let client = playground.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in sluice::crd::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("CRD installs");
        }
        Self { playground, client }
    }

    pub fn controller(&self) -> Embedded {
        self.controller_with(EmbeddedOptions::default())
    }

    pub fn controller_with(&self, options: EmbeddedOptions) -> Embedded {
        Embedded::spawn(self.client.clone(), options)
    }

    /// A controller whose metric providers reach only the Prometheus servers given as
    /// `NAME=URL`, as `--prometheus NAME=URL` registers them.
    pub fn controller_with_prometheus(&self, servers: &[String]) -> Embedded {
        use sluice::providers::MetricProviders;
        use sluice::providers::registry::{EndpointClients, EndpointFlags, MetricEndpoints};
        let endpoints = MetricEndpoints::new(EndpointFlags {
            prometheus: servers.iter().map(|p| p.parse().unwrap()).collect(),
            ..EndpointFlags::default()
        })
        .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let providers = MetricProviders::standard(
            self.client.clone(),
            std::sync::Arc::new(endpoints),
            EndpointClients::shared_only(http),
        );
        self.controller_with(EmbeddedOptions {
            providers: Some(providers),
            ..EmbeddedOptions::default()
        })
    }

    pub async fn namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
    }

    pub fn rollouts(&self, ns: &str) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Create every document of a multi-document YAML in `ns`.
    pub async fn apply_yaml(&self, ns: &str, yaml: &str) {
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap().to_string();
            match kind.as_str() {
                "Rollout" => {
                    let obj: Rollout = serde_json::from_value(value).unwrap();
                    self.rollouts(ns)
                        .create(&PostParams::default(), &obj)
                        .await
                        .unwrap();
                }
                "Service" => {
                    let obj: Service = serde_json::from_value(value).unwrap();
                    Api::<Service>::namespaced(self.client.clone(), ns)
                        .create(&PostParams::default(), &obj)
                        .await
                        .unwrap();
                }
                "Deployment" => {
                    let obj: k8s_openapi::api::apps::v1::Deployment =
                        serde_json::from_value(value).unwrap();
                    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(
                        self.client.clone(),
                        ns,
                    )
                    .create(&PostParams::default(), &obj)
                    .await
                    .unwrap();
                }
                other => panic!("apply_yaml: unsupported kind {other}"),
            }
        }
    }

    pub async fn rollout(&self, ns: &str, name: &str) -> Rollout {
        self.rollouts(ns).get(name).await.unwrap()
    }

    /// Delete a Rollout and wait until it is gone (the controller's finalizer ran its clean-up).
    pub async fn delete_rollout(&self, ns: &str, name: &str) {
        self.rollouts(ns)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        eventually(
            &format!("rollout {name} deleted after clean-up"),
            || async { self.rollouts(ns).get_opt(name).await.unwrap().is_none() },
        )
        .await;
    }

    /// Install a schemaless HTTPRoute CRD.
    pub async fn install_httproute_crd(&self) {
        install_httproute_crd(self).await;
    }

    /// Create the HTTPRoute `shop` in `ns` (all traffic on stable).
    pub async fn create_shop_route(&self, ns: &str) {
        create_shop_route(self, ns).await;
    }

    /// Wait until the Rollout's first revision is Healthy; its pod-template hash.
    pub async fn first_revision_healthy(&self, ns: &str, name: &str) -> String {
        let r = self
            .wait_rollout(ns, name, "first revision healthy", |r| {
                phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some()
            })
            .await;
        stable_hash(&r).unwrap()
    }

    /// Wait (bounded) until `check` holds for the Rollout; fail printing its status.
    pub async fn wait_rollout(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Rollout) -> bool,
    ) -> Rollout {
        self.wait_rollout_for(ns, name, what, Duration::from_secs(30), check)
            .await
    }

    pub async fn wait_rollout_for(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        limit: Duration,
        check: impl Fn(&Rollout) -> bool,
    ) -> Rollout {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let rollout = self.rollouts(ns).get_opt(name).await.unwrap();
            if let Some(r) = &rollout
                && check(r)
            {
                return r.clone();
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what} on {ns}/{name}; status: {}",
                    serde_json::to_string_pretty(&rollout.and_then(|r| r.status)).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn patch_status(&self, ns: &str, name: &str, patch: Value) {
        self.rollouts(ns)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": patch })),
            )
            .await
            .unwrap();
    }

    pub async fn patch_spec(&self, ns: &str, name: &str, patch: Value) {
        self.rollouts(ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Change the first container's image.
    pub async fn set_image(&self, ns: &str, name: &str, image: &str) {
        let rollout = self.rollout(ns, name).await;
        let mut template = rollout.spec.template.clone().unwrap();
        template.spec.as_mut().unwrap().containers[0].image = Some(image.into());
        self.patch_spec(ns, name, json!({"spec": {"template": template}}))
            .await;
    }

    pub async fn replica_sets(&self, ns: &str) -> Vec<ReplicaSet> {
        Api::<ReplicaSet>::namespaced(self.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    pub async fn service_hash(&self, ns: &str, name: &str) -> Option<String> {
        let svc = Api::<Service>::namespaced(self.client.clone(), ns)
            .get(name)
            .await
            .unwrap();
        svc.spec?.selector?.get(POD_TEMPLATE_HASH_LABEL).cloned()
    }

    /// Spec replicas of the ReplicaSet with this hash (0 when missing).
    pub async fn rs_replicas(&self, ns: &str, hash: &str) -> i32 {
        self.replica_sets(ns)
            .await
            .iter()
            .find(|rs| rs.labels().get(POD_TEMPLATE_HASH_LABEL).map(String::as_str) == Some(hash))
            .and_then(|rs| rs.spec.as_ref()?.replicas)
            .unwrap_or(0)
    }
}

pub fn phase(r: &Rollout) -> Option<RolloutPhase> {
    r.status.as_ref()?.phase
}

pub fn step(r: &Rollout) -> Option<i32> {
    r.status.as_ref()?.current_step_index
}

pub fn paused_on_step(r: &Rollout) -> bool {
    r.status
        .as_ref()
        .is_some_and(|s| s.controller_pause && !s.pause_conditions.is_empty())
}

pub fn healthy_at(r: &Rollout, hash: &str) -> bool {
    let Some(s) = r.status.as_ref() else {
        return false;
    };
    s.phase == Some(RolloutPhase::Healthy)
        && s.stable_rs.as_deref() == Some(hash)
        && s.current_pod_hash.as_deref() == Some(hash)
        && s.observed_generation == r.metadata.generation
}

pub fn current_hash(r: &Rollout) -> Option<String> {
    r.status.as_ref()?.current_pod_hash.clone()
}

pub fn stable_hash(r: &Rollout) -> Option<String> {
    r.status.as_ref()?.stable_rs.clone()
}

/// Two Services selecting `app: NAME` and a Rollout of `example/app:1` using `strategy` (the
/// YAML under `spec.strategy`, indented by four spaces), as one YAML stream.
fn rollout_with_services(name: &str, services: [&str; 2], replicas: i32, strategy: &str) -> String {
    let mut out = String::new();
    for service in services {
        out.push_str(&format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: {service}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---"#
        ));
    }
    out.push_str(&format!(
        r#"
apiVersion: sluice.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: example/app:1
  strategy:
{strategy}
"#
    ));
    out
}

/// A canary Rollout with Services, as YAML: `steps` is the YAML list of steps.
pub fn canary_yaml(name: &str, replicas: i32, steps: &str) -> String {
    let (canary, stable) = (format!("{name}-canary"), format!("{name}-stable"));
    let strategy = format!(
        "    canary:\n      canaryService: {canary}\n      stableService: {stable}\n      maxSurge: 1\n      maxUnavailable: 0\n      steps:\n{steps}"
    );
    rollout_with_services(name, [&stable, &canary], replicas, &strategy)
}

/// Events recorded on objects in `ns`, as (reason, note).
pub async fn events(h: &Harness, ns: &str) -> Vec<(String, String)> {
    use k8s_openapi::api::events::v1::Event;
    Api::<Event>::namespaced(h.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// Waits until an Event with `reason` whose note contains `note` is published in `ns` (the
/// controller publishes a decision's Events after the status write that records it).
pub async fn wait_event(h: &Harness, ns: &str, reason: &str, note: &str) {
    eventually(&format!("an Event {reason} with {note:?}"), || async {
        events(h, ns)
            .await
            .iter()
            .any(|(r, n)| r == reason && n.contains(note))
    })
    .await;
}

/// Serves `controller`'s `/metrics` (ready) on a loopback port: its address, and the handle
/// that stops it.
pub async fn serve_metrics(
    controller: &Embedded,
) -> (std::net::SocketAddr, tokio::task::AbortHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(sluice::controller::http::serve(
        listener,
        controller.metrics.clone(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        std::future::pending(),
    ));
    (addr, server.abort_handle())
}

#[path = "../playground_common/mod.rs"]
mod common;

/// Wait (bounded) for an async condition: the one bounded wait of the test support
/// (`playground_common::eventually`), for checks that yield no value.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    common::eventually(what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await;
}

/// A blue/green Rollout with its active and preview Services, as YAML.
pub fn bluegreen_yaml(name: &str, replicas: i32, strategy_extra: &str) -> String {
    let (active, preview) = (format!("{name}-active"), format!("{name}-preview"));
    let strategy = format!(
        "    blueGreen:\n      activeService: {active}\n      previewService: {preview}\n{strategy_extra}"
    );
    rollout_with_services(name, [&active, &preview], replicas, &strategy)
}

const HTTPROUTE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {plural: httproutes, singular: httproute, kind: HTTPRoute, listKind: HTTPRouteList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

/// Install a schemaless HTTPRoute CRD (the routing tests read and write it as JSON).
pub async fn install_httproute_crd(h: &Harness) {
    let crd: CustomResourceDefinition = serde_yaml::from_str(HTTPROUTE_CRD).unwrap();
    Api::<CustomResourceDefinition>::all(h.client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
}

/// Create the HTTPRoute `shop`: all traffic on `shop-stable`, `shop-canary` at 0.
pub async fn create_shop_route(h: &Harness, ns: &str) {
    let route: Value = serde_yaml::from_str(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: public-gw}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs:
        - {name: shop-stable, port: 80, weight: 100}
        - {name: shop-canary, port: 80, weight: 0}
"#,
    )
    .unwrap();
    let route: DynamicObject = serde_json::from_value(route).unwrap();
    shop_route_api(h, ns)
        .create(&PostParams::default(), &route)
        .await
        .unwrap();
}

/// The canary Rollout `shop` routed through the HTTPRoute `shop`.
pub fn gateway_canary_yaml(replicas: i32, steps: &str) -> String {
    canary_yaml("shop", replicas, steps).replace(
        "      maxSurge: 1\n",
        "      trafficRouting:\n        gatewayAPI:\n          httpRoute: shop\n      maxSurge: 1\n",
    )
}

/// HTTPRoutes in `ns`.
pub fn shop_route_api(h: &Harness, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(h.client.clone(), ns, &ApiResource::from_gvk(&gvk))
}
