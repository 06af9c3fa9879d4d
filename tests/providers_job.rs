//! The `job` metric provider on the playground through the real `kube` client: a Job that
//! completes measures Successful, one that fails measures Failed with the Job's reason, a
//! retried measurement adopts the Job it created, a Job it did not create is left alone,
//! terminating deletes the Job, and the Job belongs to its AnalysisRun (deleting the run
//! deletes its Jobs and their pods).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod playground_common;
use playground_common::eventually;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use sluice::crd::{AnalysisPhase, AnalysisRun, Measurement, Metric};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions, SimulationOptions};
use sluice::providers::job::{JOB_NAME_KEY, JobProvider, job_name};
use sluice::providers::{Args, MeasureRequest, MetricProvider, Outcome, ProviderError};
use std::collections::BTreeMap;
use std::time::Duration;

/// A playground with the CRDs and one AnalysisRun, `run`, in `default`.
async fn start() -> (PlaygroundHandle, AnalysisRun) {
    let pg = Playground::start(PlaygroundOptions {
        simulation: SimulationOptions {
            pod_ready_delay: Duration::from_millis(30),
            ..SimulationOptions::default()
        },
        ..PlaygroundOptions::default()
    })
    .await
    .expect("playground starts");
    let crds: Api<CustomResourceDefinition> = Api::all(pg.client());
    for crd in sluice::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let runs: Api<AnalysisRun> = Api::default_namespaced(pg.client());
    let run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "run"}, "spec": {"metrics": []},
    }))
    .unwrap();
    let run = runs.create(&PostParams::default(), &run).await.unwrap();
    (pg, run)
}

/// A job metric whose pod succeeds, or fails when `fail`.
fn metric(name: &str, fail: bool) -> Metric {
    let mut labels = json!({"app": "check"});
    if fail {
        labels["playground.sluice.dev/behaviour"] = json!("fail");
    }
    serde_json::from_value(json!({"name": name, "provider": {"job": {
        "metadata": {"labels": {"team": "shop"}},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "check", "image": "curlimages/curl:8.10.1"}]}}},
    }}}))
    .unwrap()
}

fn request<'a>(run: &'a AnalysisRun, metric: &'a Metric, args: &'a Args) -> MeasureRequest<'a> {
    MeasureRequest {
        namespace: "default",
        run_name: "run",
        run_uid: run.metadata.uid.as_deref().unwrap(),
        metric,
        args,
        index: 0,
        now: jiff::Timestamp::UNIX_EPOCH,
    }
}

fn in_progress(metadata: BTreeMap<String, String>) -> Measurement {
    serde_json::from_value(json!({"phase": "Running", "metadata": metadata})).unwrap()
}

/// `measure`, then `resume` until the provider decides a phase.
async fn measure_to_the_end(
    p: &JobProvider,
    req: &MeasureRequest<'_>,
) -> (AnalysisPhase, Option<String>, String) {
    let Outcome::InProgress { metadata, .. } = p.measure(req).await.unwrap() else {
        panic!("a new Job is in progress");
    };
    let name = metadata[JOB_NAME_KEY].clone();
    let measurement = in_progress(metadata);
    eventually(&format!("Job {name} to finish"), || async {
        match p.resume(req, &measurement).await.unwrap() {
            Outcome::Phase { phase, message, .. } => Some((phase, message, name.clone())),
            Outcome::InProgress { .. } => None,
            other => panic!("{other:?}"),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_completes_is_a_successful_measurement_owned_by_the_run() {
    let (pg, run) = start().await;
    let p = JobProvider::new(pg.client()).with_poll_interval(Duration::from_millis(50));
    let (m, args) = (metric("smoke", false), Args::default());
    let req = request(&run, &m, &args);

    let (phase, message, name) = measure_to_the_end(&p, &req).await;

    assert_eq!((phase, message), (AnalysisPhase::Successful, None));
    assert_eq!(name, job_name(req.run_uid, "smoke", 0));
    let job = Api::<Job>::default_namespaced(pg.client())
        .get(&name)
        .await
        .unwrap();
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        (
            "sluice.dev/v1alpha1",
            "AnalysisRun",
            "run",
            req.run_uid,
            Some(true)
        )
    );
    let labels = job.metadata.labels.unwrap();
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("shop"),
        "the metric's labels: {labels:?}"
    );
    assert_eq!(
        labels
            .get("sluice.dev/analysis-run-uid")
            .map(String::as_str),
        Some(req.run_uid)
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_is_a_failed_measurement_with_the_jobs_reason() {
    let (pg, run) = start().await;
    let p = JobProvider::new(pg.client()).with_poll_interval(Duration::from_millis(50));
    let (m, args) = (metric("smoke", true), Args::default());

    let (phase, message, _) = measure_to_the_end(&p, &request(&run, &m, &args)).await;

    assert_eq!(phase, AnalysisPhase::Failed);
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("BackoffLimitExceeded")),
        "{message:?}"
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_measurement_adopts_its_job_but_never_a_stranger() {
    let (pg, run) = start().await;
    let p = JobProvider::new(pg.client());
    let (m, args) = (metric("smoke", false), Args::default());
    let req = request(&run, &m, &args);

    let first = p.measure(&req).await.unwrap();
    let again = p.measure(&req).await.unwrap();
    assert_eq!(first, again, "the second attempt finds the same Job");

    // A Job of the same name that some one else made.
    let other = metric("other", false);
    let name = job_name(req.run_uid, "other", 0);
    let stranger: Job = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": other.provider.job.as_ref().unwrap().spec.clone()}))
    .unwrap();
    let jobs: Api<Job> = Api::default_namespaced(pg.client());
    jobs.create(&PostParams::default(), &stranger)
        .await
        .unwrap();
    let err = p.measure(&request(&run, &other, &args)).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Config(m) if m.contains(&name)),
        "{err}"
    );
    assert!(
        jobs.get(&name)
            .await
            .unwrap()
            .metadata
            .owner_references
            .is_none(),
        "the stranger is untouched"
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_deletes_the_job() {
    let (pg, run) = start().await;
    let p = JobProvider::new(pg.client());
    let (m, args) = (metric("smoke", false), Args::default());
    let req = request(&run, &m, &args);
    let Outcome::InProgress { metadata, .. } = p.measure(&req).await.unwrap() else {
        panic!("a new Job is in progress");
    };
    let name = metadata[JOB_NAME_KEY].clone();
    let measurement = in_progress(metadata);

    p.terminate(&req, &measurement).await.unwrap();

    let jobs: Api<Job> = Api::default_namespaced(pg.client());
    eventually(&format!("Job {name} to be deleted"), || async {
        jobs.get_opt(&name).await.unwrap().is_none().then_some(())
    })
    .await;
    p.terminate(&req, &measurement)
        .await
        .expect("terminating twice is fine");
    let err = p.resume(&req, &measurement).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Response(m) if m.contains("no longer exists")),
        "{err}"
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_run_deletes_its_jobs_and_their_pods() {
    let (pg, run) = start().await;
    let p = JobProvider::new(pg.client());
    let (m, args) = (metric("smoke", false), Args::default());
    let req = request(&run, &m, &args);
    let (_, _, name) = measure_to_the_end(&p, &req).await;
    let pods: Api<Pod> = Api::default_namespaced(pg.client());
    let selector = format!("batch.kubernetes.io/job-name={name}");
    assert_eq!(
        pods.list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let runs: Api<AnalysisRun> = Api::default_namespaced(pg.client());
    runs.delete("run", &DeleteParams::background())
        .await
        .unwrap();

    let jobs: Api<Job> = Api::default_namespaced(pg.client());
    eventually("the run's Job and pod to be collected", || async {
        let job_gone = jobs.get_opt(&name).await.unwrap().is_none();
        let pods_gone = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .is_empty();
        (job_gone && pods_gone).then_some(())
    })
    .await;
    pg.shutdown().await;
}
