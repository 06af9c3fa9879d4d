//! End-to-end scenarios around failure and change: a crash-looping canary past its progress
//! deadline (progressDeadlineAbort), invalid specs, scale events during a rollout, and a
//! Rollout taking its template from a Deployment (`workloadRef`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::json;
use sluice::crd::RolloutPhase;

const STEPS: &str = "        - setWeight: 20\n        - pause: {}\n";

#[tokio::test]
async fn crash_looping_canary_aborts_at_the_progress_deadline() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("deadline", "api");
    h.namespace(ns).await;
    h.apply_yaml(ns, &canary_yaml(name, 3, STEPS)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    h.patch_spec(
        ns,
        name,
        json!({"spec": {"progressDeadlineSeconds": 2, "progressDeadlineAbort": true}}),
    )
    .await;
    // The new revision's pods crash-loop in the playground.
    let r = h.rollout(ns, name).await;
    let mut template = r.spec.template.clone().unwrap();
    template.spec.as_mut().unwrap().containers[0].image = Some("example/app:broken".into());
    template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(
            "playground.sluice.dev/behaviour".into(),
            "crash-loop".into(),
        );
    h.patch_spec(ns, name, json!({"spec": {"template": template}}))
        .await;

    let r = h
        .wait_rollout(ns, name, "abort on progress deadline", |r| {
            r.status.as_ref().is_some_and(|s| s.abort) && phase(r) == Some(RolloutPhase::Degraded)
        })
        .await;
    assert_eq!(stable_hash(&r).as_deref(), Some(v1.as_str()));
    let progressing = r
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .cloned()
        .unwrap();
    assert_eq!(progressing.status, "False", "{progressing:?}");
    eventually("canary Service back on stable", || async {
        h.service_hash(ns, "api-canary").await.as_deref() == Some(v1.as_str())
    })
    .await;
    assert_eq!(
        h.service_hash(ns, "api-stable").await.as_deref(),
        Some(v1.as_str())
    );
    controller.stop().await;
}

#[tokio::test]
async fn invalid_spec_is_reported_and_fixed_spec_proceeds() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("invalid", "bad");
    h.namespace(ns).await;
    // The selector does not match the template's labels.
    let yaml = canary_yaml(name, 2, STEPS).replace(
        "    matchLabels: {app: bad}",
        "    matchLabels: {app: other}",
    );
    h.apply_yaml(ns, &yaml).await;
    let r = h
        .wait_rollout(ns, name, "InvalidSpec condition", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "InvalidSpec" && c.status == "True")
            })
        })
        .await;
    assert_eq!(phase(&r), Some(RolloutPhase::Degraded), "{:?}", r.status);
    assert!(
        h.replica_sets(ns).await.is_empty(),
        "no ReplicaSet for an invalid spec"
    );
    wait_event(&h, ns, "InvalidSpec", "").await;

    h.patch_spec(
        ns,
        name,
        json!({"spec": {"selector": {"matchLabels": {"app": "bad"}}}}),
    )
    .await;
    h.wait_rollout(ns, name, "healthy once fixed", |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some()
    })
    .await;
    controller.stop().await;
}

#[tokio::test]
async fn scale_events_during_and_after_a_rollout() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("scaling", "api");
    h.namespace(ns).await;
    h.apply_yaml(ns, &canary_yaml(name, 4, STEPS)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "paused at step 1", |r| {
            paused_on_step(r) && current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();

    h.patch_spec(ns, name, json!({"spec": {"replicas": 8}}))
        .await;
    eventually("stable scaled up with the spec while paused", || async {
        h.rs_replicas(ns, &v1).await + h.rs_replicas(ns, &v2).await >= 8
    })
    .await;
    let r = h.rollout(ns, name).await;
    assert!(
        paused_on_step(&r) && step(&r) == Some(1),
        "still paused: {:?}",
        r.status
    );

    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "promotion", |r| healthy_at(r, &v2))
        .await;
    eventually("v2 at 8 replicas", || async {
        h.rs_replicas(ns, &v2).await == 8
    })
    .await;

    h.patch_spec(ns, name, json!({"spec": {"replicas": 2}}))
        .await;
    eventually("v2 scaled down to 2", || async {
        h.rs_replicas(ns, &v2).await == 2
    })
    .await;
    controller.stop().await;
}

#[tokio::test]
async fn workload_ref_takes_the_deployment_template_and_scales_it_down() {
    let h = Harness::start().await;
    let controller = h.controller();
    let ns = "workload-ref";
    h.namespace(ns).await;
    h.apply_yaml(
        ns,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: legacy}
spec:
  replicas: 3
  selector:
    matchLabels: {app: legacy}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      containers:
        - name: app
          image: example/legacy:1
---
apiVersion: sluice.dev/v1alpha1
kind: Rollout
metadata: {name: legacy}
spec:
  replicas: 3
  selector:
    matchLabels: {app: legacy}
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: legacy
    scaleDown: onsuccess
  strategy:
    canary:
      steps:
        - setWeight: 50
"#,
    )
    .await;
    let r = h
        .wait_rollout(
            ns,
            "legacy",
            "healthy from the Deployment's template",
            |r| phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some(),
        )
        .await;
    let hash = stable_hash(&r).unwrap();
    assert_eq!(h.rs_replicas(ns, &hash).await, 3);
    let rs = h.replica_sets(ns).await;
    let ours = rs
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(&format!("legacy-{hash}")))
        .expect("Rollout-owned ReplicaSet");
    let image = ours
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("example/legacy:1"));
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), ns);
    eventually("Deployment scaled to 0 on success", || async {
        deployments
            .get("legacy")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas
            == Some(0)
    })
    .await;
    controller.stop().await;
}
