//! The dashboard in headless Debian `chromium`, against the shared playground with the Sluice
//! controller and the real `kubectl sluice dashboard` process: a progressing rollout updates
//! the open page without a reload, also across a restart of the server; a judgement renders its
//! score chart, metric rows, distributions and a threshold metric's values; promote from the
//! page promotes; read-only offers no actions and the action endpoint answers 403, as it does
//! to a request without the CSRF header or from another Host.
//!
//! The judgement is a recorded fixture: the real judge (`sluice_analysis`) judges seeded samples
//! here, and the result is written to an AnalysisRun's status through the API (the judge in the
//! loop with Prometheus is `judge_e2e`'s subject).
//!
//! Screenshots: `SLUICE_DASHBOARD_SCREENSHOTS=docs/dashboard cargo test --test dashboard`
//! rewrites the PNGs shown in `docs/dashboard.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dashboard_support;
mod kubectl_support;
mod plugin_support;

use dashboard_support::*;
use fantoccini::Locator;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use plugin_support::*;
use serde_json::json;
use sluice::crd::{AnalysisPhase, AnalysisRun};
use std::time::Duration;

const STEPS: &str =
    "        - setWeight: 20\n        - pause: {}\n        - setWeight: 60\n        - pause: {}\n";

/// Deletes the Rollout and waits until the controller's clean-up let it go.
async fn delete(ns: &Ns, name: &str) {
    ns.rollouts()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ns.rollouts().get_opt(name).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "{name} not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn row(ns: &str, name: &str, cell: &str) -> String {
    format!("tr[data-rollout=\"{ns}/{name}\"] .{cell}")
}

#[tokio::test]
async fn a_progressing_rollout_updates_the_page_without_reload_and_after_a_server_restart() {
    let ns = Ns::create("dash-live").await;
    ns.healthy_canary("web", STEPS).await;
    let mut dashboard = Dashboard::start(kubeconfig(), &ns.name, false).await;
    let (c, _turn) = browser().await;
    c.goto(&dashboard.url()).await.unwrap();
    wait_text(&c, &row(&ns.name, "web", "phase"), "Healthy", |t| {
        t.contains("Healthy")
    })
    .await;
    // A mark on this document: a reload would lose it.
    c.execute("window.sameDocument = true", vec![])
        .await
        .unwrap();

    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    wait_text(&c, &row(&ns.name, "web", "phase"), "Paused", |t| {
        t.contains("Paused")
    })
    .await;
    wait_text(&c, &row(&ns.name, "web", "step"), "step 2 of 4", |t| {
        t == "2/4"
    })
    .await;
    let weight = c
        .find(Locator::Css(&row(&ns.name, "web", "weight")))
        .await
        .unwrap();
    assert!(
        weight.text().await.unwrap().starts_with("20 %"),
        "{:?}",
        weight.text().await
    );
    screenshot(&c, "overview-desktop", DESKTOP).await;
    screenshot(&c, "overview-phone", PHONE).await;

    dashboard.stop();
    wait_text(&c, "#live", "the page noticing the server is gone", |t| {
        t.contains("Reconnecting")
    })
    .await;
    dashboard.restart().await;
    wait_text(&c, "#live", "the page back live", |t| t.contains("Live")).await;
    ns.ok(&["promote", "web"]).await;
    ns.wait("web", "paused at step 3", |r| paused_at(r, 3))
        .await;
    wait_text(
        &c,
        &row(&ns.name, "web", "step"),
        "step 4 of 4 after the restart",
        |t| t == "4/4",
    )
    .await;
    let same = c
        .execute("return window.sameDocument === true", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the page was reloaded");

    delete(&ns, "web").await;
    wait_text(&c, "#results", "the deleted rollout gone", |t| {
        t.contains("No Rollouts yet")
    })
    .await;
}

#[tokio::test]
async fn promote_from_the_rollout_page_promotes() {
    let ns = Ns::create("dash-promote").await;
    ns.healthy_canary("web", STEPS).await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    let dashboard = Dashboard::start(kubeconfig(), &ns.name, false).await;
    let (c, _turn) = browser().await;
    c.goto(&format!("{}/#/rollouts/{}/web", dashboard.url(), ns.name))
        .await
        .unwrap();
    let current = wait_text(&c, "li[aria-current=step]", "the current step", |t| {
        t.contains("Pause")
    })
    .await;
    assert!(current.contains("Pause until promoted"), "{current}");
    wait_text(&c, ".revisions", "two revisions with their pods", |t| {
        t.matches("Revision").count() == 2
    })
    .await;
    screenshot(&c, "rollout-desktop", DESKTOP).await;
    screenshot(&c, "rollout-phone", PHONE).await;

    c.find(Locator::Css("#act-promote"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let dialog = c.find(Locator::Css("dialog#confirm")).await.unwrap();
    assert_eq!(dialog.attr("open").await.unwrap().as_deref(), Some("true"));
    let title = c
        .find(Locator::Css("#confirm-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, "Promote web?");
    c.find(Locator::Css("#confirm-ok"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#toast", "the confirmation", |t| {
        t.contains("rollout 'web' promoted")
    })
    .await;
    ns.wait("web", "promoted to step 3", |r| paused_at(r, 3))
        .await;
    wait_text(&c, "li[aria-current=step]", "the next pause current", |t| {
        t.contains("Pause")
    })
    .await;
    let done = count(&c, "li.step-done").await;
    assert_eq!(done, 3, "steps 1–3 done after the promotion");

    delete(&ns, "web").await;
}

#[tokio::test]
async fn read_only_offers_no_actions_and_every_guard_refuses_them() {
    let ns = Ns::create("dash-readonly").await;
    ns.healthy_canary("web", STEPS).await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    let read_only = Dashboard::start(kubeconfig(), &ns.name, true).await;
    let (c, _turn) = browser().await;
    c.goto(&format!("{}/#/rollouts/{}/web", read_only.url(), ns.name))
        .await
        .unwrap();
    wait_text(&c, "#read-only", "the read-only note", |t| {
        t.contains("Read-only")
    })
    .await;
    assert_eq!(
        count(&c, "button[data-action]").await,
        0,
        "read-only offers no buttons"
    );
    drop(_turn);

    let http = reqwest::Client::new();
    let action =
        |d: &Dashboard| format!("{}/api/rollouts/{}/web/actions/promote", d.url(), ns.name);
    let refused = http
        .post(action(&read_only))
        .header("X-Sluice-Dashboard", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("read-only"),
        "{body}"
    );

    let writable = Dashboard::start(kubeconfig(), &ns.name, false).await;
    let no_header = http.post(action(&writable)).send().await.unwrap();
    assert_eq!(no_header.status(), 403, "an action without the CSRF header");
    let other_origin = http
        .post(action(&writable))
        .header("X-Sluice-Dashboard", "1")
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(other_origin.status(), 403, "an action from another origin");
    let rebound = http
        .get(format!("{}/api/overview", writable.url()))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403, "a read through another Host name");
    let r = ns.rollout("web").await;
    assert!(
        paused_at(&r, 1),
        "no guard let the promote through: {:?}",
        r.status
    );

    delete(&ns, "web").await;
}

/// Seeded samples: latency 12 % higher on the canary (High), errors at the same rate (Pass),
/// CPU unchanged (Pass).
fn judge_request() -> String {
    let series = |n: usize, base: f64, spread: f64, seed: u64| -> Vec<f64> {
        (0..n)
            .map(|i| {
                let x = ((i as u64 * 2_654_435_761 + seed) % 1000) as f64 / 1000.0;
                base + spread * (x - 0.5)
            })
            .collect()
    };
    json!({
        "thresholds": {"pass": 95, "marginal": 75},
        "groups": {"latency": 60, "errors": 20, "saturation": 20},
        "metrics": [
            {"name": "p95-latency", "group": "latency", "direction": "increase",
             "control": series(60, 100.0, 10.0, 7), "experiment": series(60, 112.0, 10.0, 11)},
            {"name": "error-rate", "group": "errors", "direction": "increase", "test": "rateRatio",
             "control": {"events": 20, "total": 10000}, "experiment": {"events": 22, "total": 10000}},
            {"name": "cpu", "group": "saturation", "direction": "either",
             "control": series(40, 0.5, 0.1, 3), "experiment": series(40, 0.5, 0.1, 5)}
        ]
    })
    .to_string()
}

#[tokio::test]
async fn a_recorded_judgement_renders_its_score_chart_metric_rows_and_measurements() {
    let ns = Ns::create("dash-judge").await;
    ns.healthy_canary("web", STEPS).await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;

    let request = sluice_analysis::input::parse(&judge_request()).unwrap();
    let judgement = sluice_analysis::judge(&request);
    assert_eq!(judgement.metrics.len(), 3);
    let runs: Api<AnalysisRun> = Api::namespaced(ns.client.clone(), &ns.name);
    let run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "web-judged"},
        "spec": {
            "terminate": true,
            "scope": {"rollout": "web"},
            "metrics": [{"name": "success-rate", "successCondition": "result[0] >= 0.99",
                         "provider": {"prometheus": {"query": "sum(rate(ok[1m])) / sum(rate(all[1m]))"}}}]
        }
    }))
    .unwrap();
    runs.create(&PostParams::default(), &run).await.unwrap();
    // The controller ends a terminated run; a completed run's status is then left as written.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while runs
        .get("web-judged")
        .await
        .unwrap()
        .status
        .and_then(|s| s.phase)
        .is_none_or(|p| p == AnalysisPhase::Running || p == AnalysisPhase::Pending)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let times = [
        "2026-01-01T10:00:00Z",
        "2026-01-01T10:01:00Z",
        "2026-01-01T10:02:00Z",
        "2026-01-01T10:03:00Z",
    ];
    let history: Vec<_> = [100.0, 96.0, 80.0, judgement.score]
        .iter()
        .zip(times)
        .map(|(score, at)| {
            let result = if *score >= 95.0 {
                "Pass"
            } else if *score >= 75.0 {
                "Marginal"
            } else {
                "Fail"
            };
            json!({"judgedAt": at, "score": score, "result": result})
        })
        .collect();
    let mut recorded = serde_json::to_value(&judgement).unwrap();
    let fields = recorded.as_object_mut().unwrap();
    fields.insert("judgedAt".into(), json!(times[3]));
    fields.insert("control".into(), json!("baseline"));
    fields.insert("window".into(), json!(["2026-01-01T09:58:00Z", times[3]]));
    fields.insert("history".into(), json!(history));
    let measurements: Vec<_> = [(0.995, "Successful"), (0.993, "Successful"), (0.981, "Failed"), (0.996, "Successful")]
        .iter()
        .zip(times)
        .map(|((v, phase), at)| json!({"phase": phase, "value": format!("[{v}]"), "startedAt": at, "finishedAt": at}))
        .collect();
    let status = json!({"status": {
        "phase": "Failed", "message": "recorded judgement fixture",
        "startedAt": times[0], "completedAt": times[3],
        "metricResults": [{"name": "success-rate", "phase": "Failed", "measurements": measurements,
                           "count": 4, "successful": 3, "failed": 1}],
        "judgement": recorded
    }});
    runs.patch_status("web-judged", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let stored = runs.get("web-judged").await.unwrap();
    assert!(
        stored.status.as_ref().unwrap().judgement.is_some(),
        "{:?}",
        stored.status
    );

    let dashboard = Dashboard::start(kubeconfig(), &ns.name, false).await;
    let (c, _turn) = browser().await;
    c.goto(&format!("{}/#/rollouts/{}/web", dashboard.url(), ns.name))
        .await
        .unwrap();
    let run = "#run-web-judged";
    let verdict = wait_text(&c, &format!("{run} .verdict"), "the score", |t| {
        !t.is_empty()
    })
    .await;
    assert!(
        verdict.contains(&format!("{}", judgement.score)),
        "{verdict} vs {}",
        judgement.score
    );
    assert_eq!(count(&c, &format!("{run} svg.score-chart")).await, 1);
    assert_eq!(
        count(&c, &format!("{run} svg.score-chart g.marker")).await,
        4,
        "one marker per judgement"
    );
    assert_eq!(count(&c, &format!("{run} tr.metric-row")).await, 3);
    let latency = c
        .find(Locator::Css(&format!("{run} tr[data-metric=p95-latency]")))
        .await
        .unwrap();
    let text = latency.text().await.unwrap();
    assert!(text.contains("High"), "{text}");
    assert_eq!(
        count(&c, &format!("{run} tr.metric-row svg.effect-row")).await,
        3,
        "every row on the common axis"
    );
    assert_eq!(
        count(&c, &format!("{run} svg.distribution")).await,
        2,
        "the two sampled metrics' distributions"
    );
    assert_eq!(
        count(
            &c,
            &format!("{run} figure[data-metric=success-rate] svg.series g.marker")
        )
        .await,
        4
    );
    let condition = c
        .find(Locator::Css(&format!(
            "{run} figure[data-metric=success-rate] figcaption"
        )))
        .await
        .unwrap();
    assert!(
        condition
            .text()
            .await
            .unwrap()
            .contains("success when result[0] >= 0.99")
    );
    c.execute(
        &format!("document.querySelector('{run} details.distributions').open = true"),
        vec![],
    )
    .await
    .unwrap();
    c.execute(
        &format!("document.querySelector('{run}').scrollIntoView()"),
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, "judgement-desktop", DESKTOP).await;
    screenshot(&c, "judgement-phone", PHONE).await;

    runs.delete("web-judged", &DeleteParams::default())
        .await
        .unwrap();
    let gone = wait_text(&c, "#h-runs + *", "the deleted run gone", |t| {
        t.contains("No AnalysisRuns")
    })
    .await;
    assert!(!gone.is_empty());
    assert!(
        runs.get_opt("web-judged")
            .await
            .unwrap()
            .map(|r| r.name_any())
            .is_none()
    );
    delete(&ns, "web").await;
}
