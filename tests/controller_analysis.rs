//! End-to-end step analysis: a canary `analysis` step creates its AnalysisRun (deterministic
//! name, kind/hash/step labels, the Rollout as controller owner, the template's metrics); the
//! run's outcome, written to its status here as an analysis runner would, decides the step:
//! Successful moves on to the next step, Failed aborts the update.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use sluice::crd::{AnalysisRun, AnalysisTemplate, POD_TEMPLATE_HASH_LABEL, Rollout, RolloutPhase};
use std::time::Duration;

const STEPS: &str = "        - setWeight: 50\n        - analysis:\n            templates:\n            - templateName: success-rate\n        - pause: {}\n";

/// A Rollout at its analysis step (index 1) of revision 2, and the AnalysisRun it created.
async fn at_analysis_step(h: &Harness, ns: &str, name: &str) -> (Rollout, AnalysisRun) {
    h.namespace(ns).await;
    let template: AnalysisTemplate = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate", "namespace": ns},
        "spec": {"metrics": [{
            "name": "success-rate",
            "successCondition": "result >= 0.95",
            "provider": {"web": {"url": "http://metrics.invalid/success-rate"}}
        }]}
    }))
    .unwrap();
    Api::<AnalysisTemplate>::namespaced(h.client.clone(), ns)
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    h.apply_yaml(ns, &canary_yaml(name, 2, STEPS)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "at the analysis step", |r| {
            step(r) == Some(1) && current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    let runs: Api<AnalysisRun> = Api::namespaced(h.client.clone(), ns);
    let expected = format!("{name}-{v2}-2-1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let run = loop {
        if let Some(run) = runs.get_opt(&expected).await.unwrap() {
            break run;
        }
        let names: Vec<String> = runs
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| r.name_any())
            .collect();
        assert!(
            tokio::time::Instant::now() < deadline,
            "no AnalysisRun {expected}; runs: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (r, run)
}

async fn set_run_phase(h: &Harness, ns: &str, run: &str, phase: &str) {
    Api::<AnalysisRun>::namespaced(h.client.clone(), ns)
        .patch_status(
            run,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_successful_step_analysis_moves_on_to_the_next_step() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("analysis-ok", "web");
    let (r, run) = at_analysis_step(&h, ns, name).await;
    let v2 = current_hash(&r).unwrap();

    let labels = run.labels();
    assert_eq!(
        labels
            .get("rollout.sluice.dev/analysis-kind")
            .map(String::as_str),
        Some("Step"),
        "{labels:?}"
    );
    assert_eq!(labels.get(POD_TEMPLATE_HASH_LABEL), Some(&v2), "{labels:?}");
    assert_eq!(
        labels
            .get("rollout.sluice.dev/step-index")
            .map(String::as_str),
        Some("1"),
        "{labels:?}"
    );
    let owner = run
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .unwrap_or_else(|| panic!("no controller owner: {:?}", run.metadata));
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            Some(owner.uid.as_str())
        ),
        (Rollout::kind(&()).as_ref(), name, r.uid().as_deref()),
    );
    assert_eq!(
        run.spec
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["success-rate"],
        "the template's metrics: {:?}",
        run.spec
    );
    // Still running: the step waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        step(&h.rollout(ns, name).await),
        Some(1),
        "advanced before the run ended"
    );

    set_run_phase(&h, ns, &run.name_any(), "Successful").await;
    let r = h
        .wait_rollout(ns, name, "the pause after the analysis", |r| {
            step(r) == Some(2) && paused_on_step(r)
        })
        .await;
    assert!(!r.status.as_ref().unwrap().abort, "{:?}", r.status);
    controller.stop().await;
}

#[tokio::test]
async fn a_failed_step_analysis_aborts_the_update() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (ns, name) = ("analysis-failed", "web");
    let (r, run) = at_analysis_step(&h, ns, name).await;
    let v1 = stable_hash(&r).unwrap();

    set_run_phase(&h, ns, &run.name_any(), "Failed").await;
    let r = h
        .wait_rollout(ns, name, "aborted", |r| {
            r.status.as_ref().is_some_and(|s| s.abort) && phase(r) == Some(RolloutPhase::Degraded)
        })
        .await;
    assert_eq!(stable_hash(&r).as_deref(), Some(v1.as_str()), "stable kept");
    eventually(
        "the stable Service still selects the stable pods",
        || async {
            h.service_hash(ns, &format!("{name}-stable"))
                .await
                .as_deref()
                == Some(v1.as_str())
        },
    )
    .await;
    let events = events(&h, ns).await;
    assert!(
        events.iter().any(|(reason, _)| reason == "RolloutAborted"),
        "no RolloutAborted Event: {events:?}"
    );
    controller.stop().await;
}
