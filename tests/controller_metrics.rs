//! The controller's `/metrics` after a short rollout: every request of its Kubernetes client
//! counted by verb and code (lists and watches included, not only the reconciler's own calls)
//! and the work-queue depth gauge exported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use serde_json::json;
use sluice::crd::RolloutPhase;
use std::collections::BTreeMap;

/// `sluice_api_requests_total{verb,code}` from the text exposition.
fn requests(text: &str) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("sluice_api_requests_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").unwrap();
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap()
        };
        out.insert((label("verb"), label("code")), value.parse().unwrap());
    }
    out
}

#[tokio::test]
async fn metrics_count_every_api_request_and_export_the_queue_depth() {
    let h = Harness::start().await;
    let controller = h.controller();
    let (addr, server) = serve_metrics(&controller).await;

    let (ns, name) = ("metrics", "web");
    h.namespace(ns).await;
    h.apply_yaml(
        ns,
        &canary_yaml(name, 2, "        - setWeight: 50\n        - pause: {}\n"),
    )
    .await;
    let v1 = h.first_revision_healthy(ns, name).await;
    h.set_image(ns, name, "example/app:2").await;
    h.wait_rollout(ns, name, "paused at step 1", |r| {
        paused_on_step(r) && current_hash(r).is_some_and(|c| c != v1)
    })
    .await;
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "promoted", |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some_and(|s| s != v1)
    })
    .await;

    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counts = requests(&text);
    for verb in ["list", "watch", "patch"] {
        let n = counts
            .get(&(verb.to_string(), "200".to_string()))
            .copied()
            .unwrap_or(0.0);
        assert!(
            n > 0.0,
            "no {verb} requests with code 200 counted: {counts:?}"
        );
    }
    assert!(
        counts
            .keys()
            .any(|(verb, code)| verb == "create" && code == "201"),
        "creates answer 201: {counts:?}"
    );
    let depth = text
        .lines()
        .find_map(|l| l.strip_prefix("sluice_work_queue_depth "))
        .unwrap_or_else(|| panic!("no queue depth gauge in:\n{text}"));
    let depth: f64 = depth.parse().unwrap();
    assert!(depth >= 0.0, "queue depth {depth}");
    assert!(
        text.contains("# HELP sluice_work_queue_depth"),
        "the gauge says what it means:\n{text}"
    );
    // Nothing is left waiting once the rollout is idle.
    eventually("the queue drains", || async {
        controller.metrics.queue_depth() == 0
    })
    .await;
    server.abort();
    controller.stop().await;
}
