//! The playground's batch/v1 Jobs through the real `kube` client: a Job's pod runs to
//! completion and the Job completes; a pod labelled to fail is retried up to `backoffLimit`
//! and the Job fails; the API server refuses a Job whose pods would restart for ever.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod playground_common;
use playground_common::eventually;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions, SimulationOptions};
use std::time::Duration;

async fn start() -> PlaygroundHandle {
    let simulation = SimulationOptions {
        pod_ready_delay: Duration::from_millis(30),
        ..SimulationOptions::default()
    };
    Playground::start(PlaygroundOptions {
        simulation,
        ..PlaygroundOptions::default()
    })
    .await
    .expect("playground starts")
}

fn job(name: &str, backoff_limit: i32, labels: Value, restart_policy: Option<&str>) -> Job {
    let mut pod = json!({"containers": [{"name": "check", "image": "curlimages/curl:8.10.1"}]});
    if let Some(p) = restart_policy {
        pod["restartPolicy"] = json!(p);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {"metadata": {"labels": labels}, "spec": pod}},
    }))
    .unwrap()
}

/// The Job once it has a `True` condition of type `Complete` or `Failed`.
async fn finished(jobs: &Api<Job>, name: &str) -> (Job, String) {
    eventually(&format!("Job {name} to finish"), || async {
        let j = jobs.get(name).await.ok()?;
        let done = j
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
        let ty = done.type_.clone();
        Some((j, ty))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_its_pod_to_completion() {
    let pg = start().await;
    let jobs: Api<Job> = Api::default_namespaced(pg.client());
    jobs.create(
        &PostParams::default(),
        &job("smoke", 6, json!({"app": "smoke"}), Some("Never")),
    )
    .await
    .unwrap();

    let (j, condition) = finished(&jobs, "smoke").await;

    assert_eq!(condition, "Complete", "{j:?}");
    let status = j.status.clone().unwrap();
    assert_eq!(status.succeeded, Some(1), "{status:?}");
    assert!(
        status.completion_time.is_some() && status.start_time.is_some(),
        "{status:?}"
    );
    let pods: Api<Pod> = Api::default_namespaced(pg.client());
    let list = pods
        .list(&ListParams::default().labels("job-name=smoke"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1, "one pod for one completion");
    let pod = &list.items[0];
    assert_eq!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded")
    );
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(
        labels.get("app").map(String::as_str),
        Some("smoke"),
        "template labels: {labels:?}"
    );
    assert_eq!(
        labels
            .get("batch.kubernetes.io/job-name")
            .map(String::as_str),
        Some("smoke")
    );
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), Some(owner.uid.as_str())),
        ("Job", j.metadata.uid.as_deref())
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pod_is_retried_up_to_the_backoff_limit_then_the_job_fails() {
    let pg = start().await;
    let jobs: Api<Job> = Api::default_namespaced(pg.client());
    let labels = json!({"app": "broken", "playground.sluice.dev/behaviour": "fail"});
    jobs.create(
        &PostParams::default(),
        &job("broken", 1, labels, Some("Never")),
    )
    .await
    .unwrap();

    let (j, condition) = finished(&jobs, "broken").await;

    assert_eq!(condition, "Failed", "{j:?}");
    let status = j.status.clone().unwrap();
    assert_eq!(status.failed, Some(2), "one try and one retry: {status:?}");
    assert_eq!(status.succeeded, None, "{status:?}");
    let failed = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    let pods: Api<Pod> = Api::default_namespaced(pg.client());
    let list = pods
        .list(&ListParams::default().labels("job-name=broken"))
        .await
        .unwrap();
    assert!(
        list.items
            .iter()
            .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")),
        "{:?}",
        list.items
            .iter()
            .map(|p| p.status.as_ref().and_then(|s| s.phase.clone()))
            .collect::<Vec<_>>()
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_pods_would_restart_for_ever_is_refused() {
    let pg = start().await;
    let jobs: Api<Job> = Api::default_namespaced(pg.client());
    let err = jobs
        .create(
            &PostParams::default(),
            &job("forever", 6, json!({"app": "x"}), None),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("restartPolicy")),
        "{err}"
    );
    pg.shutdown().await;
}
