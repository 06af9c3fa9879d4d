//! Shared support of the traffic end-to-end tests: a Rollout walked step by step by the
//! embedded controller on the playground (`Walk`), readers of `(canary, stable)` weights from
//! each provider's routing object as `kubectl` returns it, and the upstream schema check.

#![allow(dead_code)] // Each test binary uses part of it.

use crate::controller_support::*;
use crate::traffic_common::{create_object, install_routing_crds, kubectl_json};
use serde_json::{Value, json};
use sluice::controller::embedded::{Embedded, EmbeddedOptions};
use sluice::crd::RolloutPhase;
use std::time::Duration;

/// `(canary, stable)` weights read from a routing object.
pub type Reader = fn(&Value) -> Option<(i64, i64)>;

pub fn weight_of(list: &Value, key: &str, name: &str) -> Option<i64> {
    list.as_array()?
        .iter()
        .find(|e| e.pointer(key).and_then(Value::as_str) == Some(name))
        .and_then(|e| e["weight"].as_i64())
}

/// The weights of the first rule that splits (managed header rules route to the canary only).
pub fn gateway(v: &Value) -> Option<(i64, i64)> {
    v["spec"]["rules"].as_array()?.iter().find_map(|rule| {
        let refs = &rule["backendRefs"];
        Some((
            weight_of(refs, "/name", "web-canary")?,
            weight_of(refs, "/name", "web-stable")?,
        ))
    })
}

pub fn istio(v: &Value) -> Option<(i64, i64)> {
    let route = &v["spec"]["http"][0]["route"];
    Some((
        weight_of(route, "/destination/host", "web-canary")?,
        weight_of(route, "/destination/host", "web-stable")?,
    ))
}

pub fn smi(v: &Value) -> Option<(i64, i64)> {
    let b = &v["spec"]["backends"];
    Some((
        weight_of(b, "/service", "web-canary")?,
        weight_of(b, "/service", "web-stable")?,
    ))
}

pub fn traefik(v: &Value) -> Option<(i64, i64)> {
    let s = &v["spec"]["weighted"]["services"];
    Some((
        weight_of(s, "/name", "web-canary")?,
        weight_of(s, "/name", "web-stable")?,
    ))
}

pub fn nginx(v: &Value) -> Option<(i64, i64)> {
    let w: i64 = v["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"]
        .as_str()?
        .parse()
        .ok()?;
    Some((w, 100 - w))
}

pub fn rollout_yaml(routing: &str) -> String {
    canary_yaml("web", 2, WEIGHT_STEPS).replace(
        "      steps:\n",
        &format!("      trafficRouting:\n{routing}      steps:\n"),
    )
}

/// A Rollout on the playground with the embedded controller, driven step by step.
pub struct Walk {
    pub h: Harness,
    controller: Embedded,
    pub ns: &'static str,
    /// The first revision's pod-template hash (stable throughout).
    pub v1: String,
}

impl Walk {
    /// Installs the routing CRDs, creates `objects` and the Rollout (`routing` is the
    /// trafficRouting block, `steps` the steps, both indented YAML) and waits until the first
    /// revision is healthy.
    pub async fn start(ns: &'static str, objects: Vec<Value>, routing: &str, steps: &str) -> Self {
        Self::start_with(ns, objects, routing, steps, EmbeddedOptions::default()).await
    }

    /// As `start`, with the controller's options (a router factory, settings).
    pub async fn start_with(
        ns: &'static str,
        objects: Vec<Value>,
        routing: &str,
        steps: &str,
        options: EmbeddedOptions,
    ) -> Self {
        let h = Harness::start().await;
        install_routing_crds(&h.client).await;
        let controller = h.controller_with(options);
        h.namespace(ns).await;
        for mut o in objects {
            o["metadata"]["namespace"] = json!(ns);
            create_object(&h.client, o).await;
        }
        let yaml = canary_yaml("web", 2, steps).replace(
            "      steps:\n",
            &format!("      trafficRouting:\n{routing}      steps:\n"),
        );
        h.apply_yaml(ns, &yaml).await;
        let v1 = h.first_revision_healthy(ns, "web").await;
        Self {
            h,
            controller,
            ns,
            v1,
        }
    }

    /// Starts the second revision.
    pub async fn update(&self) {
        self.h.set_image(self.ns, "web", "example/app:2").await;
    }

    /// Waits for the pause at step `index` (not aborted); returns the Rollout.
    pub async fn paused_at(&self, index: i32) -> sluice::crd::Rollout {
        self.h
            .wait_rollout(self.ns, "web", &format!("pause at step {index}"), |r| {
                paused_on_step(r) && step(r) == Some(index) && !r.status.as_ref().unwrap().abort
            })
            .await
    }

    pub async fn resume(&self) {
        self.h
            .patch_status(self.ns, "web", json!({"pauseConditions": null}))
            .await;
    }

    /// Aborts and waits for `Degraded` with the first revision still stable.
    pub async fn abort(&self) {
        self.h
            .patch_status(self.ns, "web", json!({"abort": true}))
            .await;
        let r = self
            .h
            .wait_rollout(self.ns, "web", "aborted", |r| {
                phase(r) == Some(RolloutPhase::Degraded)
            })
            .await;
        assert_eq!(stable_hash(&r).as_deref(), Some(self.v1.as_str()));
    }

    /// The object read back with `kubectl get -o json` (`null` when absent).
    pub async fn get(&self, resource: &str, name: &str) -> Value {
        kubectl_json(
            self.h.playground.kubeconfig_path(),
            &["get", resource, name, "-n", self.ns, "--ignore-not-found"],
        )
        .await
    }

    /// Waits (bounded) until `reader` finds `want` in the object read back with kubectl.
    pub async fn expect(
        &self,
        resource: &str,
        name: &str,
        reader: Reader,
        want: (i64, i64),
        when: &str,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let object = self.get(resource, name).await;
            if reader(&object) == Some(want) {
                return object;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{when}: {resource}/{name} has (canary, stable) {:?}, want {want:?}: {object:#}; rollout status: {:#?}",
                reader(&object),
                self.h.rollout(self.ns, "web").await.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `status.canary.weights.verified` is `want`: `Some(true)` once the routing
    /// object's status shows the data plane took the weights up, `None` for providers that
    /// cannot tell.
    pub async fn verified(&self, want: Option<bool>, when: &str) {
        self.h
            .wait_rollout(self.ns, "web", &format!("{when}: verified {want:?}"), |r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.canary.as_ref())
                    .and_then(|c| c.weights.as_ref())
                    .is_some_and(|w| w.verified == want)
            })
            .await;
    }

    pub async fn stop(self) {
        self.controller.stop().await;
    }
}

pub const WEIGHT_STEPS: &str =
    "        - setWeight: 20\n        - pause: {}\n        - setWeight: 50\n        - pause: {}\n";

/// Deploys, updates, walks the steps and aborts, checking the routing object at each point;
/// returns the object as read back after the abort.
pub async fn walk(
    ns: &'static str,
    objects: Vec<Value>,
    routing: &str,
    resource: &str,
    name: &str,
    reader: Reader,
) -> Value {
    let w = Walk::start(ns, objects, routing, WEIGHT_STEPS).await;
    if let Some(got) = reader(&w.get(resource, name).await) {
        assert_eq!(got, (0, 100), "first deploy: all traffic on stable");
    }
    w.update().await;
    w.paused_at(1).await;
    w.expect(resource, name, reader, (20, 80), "at step 1")
        .await;
    w.verified(verifies(resource), "at step 1").await;
    w.resume().await;
    w.paused_at(3).await;
    w.expect(resource, name, reader, (50, 50), "at step 3")
        .await;
    w.abort().await;
    let object = w
        .expect(resource, name, reader, (0, 100), "after abort")
        .await;
    w.stop().await;
    object
}

/// What weight verification says for a provider's routing object: Gateway API routes and
/// Istio VirtualServices report acceptance in their status (the playground simulates it);
/// SMI, NGINX and Traefik objects cannot tell.
pub fn verifies(resource: &str) -> Option<bool> {
    matches!(resource, "httproutes" | "grpcroutes" | "virtualservices").then_some(true)
}

/// Validates an object read back against the upstream CRD schema of its own version.
pub fn assert_upstream(file: &str, object: &Value) {
    let version = object["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit('/').next())
        .unwrap();
    crate::traffic_common::assert_valid(file, version, object);
}
