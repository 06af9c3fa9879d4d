//! Analysis end to end: the controller (with its real providers) measures AnalysisRuns against
//! a real `prometheus` scraping an exporter the test controls, and the run's outcome decides the
//! Rollout: a good canary is promoted, a bad one aborted with every pod back on stable, an
//! inconclusive one paused until a person promotes it (then measured again), a Prometheus that
//! goes away errors the run and aborts. Also: a range query, Job metrics on the playground,
//! Argo Rollouts' own templates with only the apiVersion changed, a template broken at the
//! start, and a Secret argument that reaches Prometheus and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;
mod prometheus_support;

use controller_support::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use prometheus_support::{Prometheus, exporter, shared};
use serde_json::{Value, json};
use sluice::controller::embedded::Embedded;
use sluice::crd::{
    AnalysisPhase, AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout, RolloutPhase,
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The controller's log, captured for the whole test binary (the secret test reads it).
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("sluice=debug")
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A controller whose Prometheus metrics reach the servers `prometheus` registers
/// (`NAME=URL`), and nothing else.
fn controller(h: &Harness, prometheus: &[String]) -> Embedded {
    log();
    h.controller_with_prometheus(prometheus)
}

fn shared_controller(h: &Harness) -> Embedded {
    controller(h, &[format!("test={}", shared().url())])
}

async fn create<K>(client: &Client, ns: Option<&str>, value: Value) -> K
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::Scope: ScopeApi<K>,
{
    let obj: K = serde_json::from_value(value).unwrap();
    K::Scope::api(client, ns)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap()
}

/// Namespaced or cluster-wide `Api` by the resource's scope.
trait ScopeApi<K> {
    fn api(client: &Client, ns: Option<&str>) -> Api<K>;
}

impl<K> ScopeApi<K> for k8s_openapi::NamespaceResourceScope
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    fn api(client: &Client, ns: Option<&str>) -> Api<K> {
        Api::namespaced(client.clone(), ns.unwrap())
    }
}

impl<K> ScopeApi<K> for k8s_openapi::ClusterResourceScope
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>,
{
    fn api(client: &Client, _ns: Option<&str>) -> Api<K> {
        Api::all(client.clone())
    }
}

/// A template with one Prometheus metric reading `ratio{rollout="<name arg>"}`.
fn ratio_template(ns: &str, metric: Value) -> Value {
    let mut m = json!({
        "name": "success-rate",
        "provider": {"prometheus": {"server": "test", "query": "ratio{rollout=\"{{args.name}}\"}"}}
    });
    for (k, v) in metric.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate", "namespace": ns},
        "spec": {"args": [{"name": "name"}], "metrics": [m]}
    })
}

const ANALYSIS_STEPS: &str = "        - setWeight: 50\n        - analysis:\n            templates:\n            - templateName: success-rate\n            args:\n            - name: name\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name\n        - setWeight: 100\n";

/// A playground, a controller on the shared Prometheus, the namespace, the exporter's ratio
/// for `name`, and the `success-rate` template with `metric`'s fields.
async fn with_ratio_template(
    ns: &str,
    name: &str,
    ratio: f64,
    metric: Value,
) -> (Harness, Embedded) {
    let h = Harness::start().await;
    let c = shared_controller(&h);
    h.namespace(ns).await;
    set_ratio(shared(), name, ratio).await;
    create::<AnalysisTemplate>(&h.client, Some(ns), ratio_template(ns, metric)).await;
    (h, c)
}

/// Sets the exporter's ratio for `rollout` and waits until Prometheus has it.
async fn set_ratio(prometheus: &Prometheus, rollout: &str, value: f64) {
    exporter().set(&format!("ratio{{rollout=\"{rollout}\"}}"), value);
    prometheus
        .wait_for(&format!("ratio{{rollout=\"{rollout}\"}}"), |r| {
            r[0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                == Some(value)
        })
        .await;
}

/// The Rollout's first revision, then an update to `example/app:2`; returns the v1 hash.
async fn update(h: &Harness, ns: &str, name: &str, steps: &str) -> String {
    h.apply_yaml(ns, &canary_yaml(name, 2, steps)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    h.set_image(ns, name, "example/app:2").await;
    v1
}

async fn runs(h: &Harness, ns: &str) -> Vec<AnalysisRun> {
    let mut runs = Api::<AnalysisRun>::namespaced(h.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    runs.sort_by_key(|r| r.name_any());
    runs
}

/// Waits until a run of `ns` satisfies `check`; returns it.
async fn wait_run(
    h: &Harness,
    ns: &str,
    what: &str,
    check: impl Fn(&AnalysisRun) -> bool,
) -> AnalysisRun {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let all = runs(h, ns).await;
        if let Some(run) = all.iter().find(|r| check(r)) {
            return run.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} in {ns}; runs: {}",
            serde_json::to_string_pretty(
                &all.iter()
                    .map(|r| (r.name_any(), r.status.clone()))
                    .collect::<Vec<_>>()
            )
            .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn run_phase(run: &AnalysisRun) -> Option<AnalysisPhase> {
    run.status.as_ref()?.phase
}

/// Waits until the update away from `v1` completed.
async fn promoted(h: &Harness, ns: &str, name: &str, v1: &str) -> Rollout {
    h.wait_rollout_for(ns, name, "promoted", Duration::from_secs(60), |r| {
        phase(r) == Some(RolloutPhase::Healthy)
            && stable_hash(r).is_some_and(|s| s != v1)
            && step(r) == Some(3)
    })
    .await
}

fn is_aborted(r: &Rollout) -> bool {
    r.status.as_ref().is_some_and(|s| s.abort) && phase(r) == Some(RolloutPhase::Degraded)
}

#[tokio::test]
async fn a_good_canary_passes_its_analysis_and_is_promoted() {
    let (ns, name) = ("analysis-pass", "pass-web");
    let (h, c) = with_ratio_template(
        ns,
        name,
        0.99,
        json!({"count": 2, "interval": "1s", "successCondition": "result[0] >= 0.95"}),
    )
    .await;
    let v1 = update(&h, ns, name, ANALYSIS_STEPS).await;
    let r = promoted(&h, ns, name, &v1).await;
    assert!(!r.status.as_ref().unwrap().abort);
    let run = runs(&h, ns).await.pop().expect("the step's run");
    // Named and labelled for its Rollout, revision and step; owned by the Rollout.
    let v2 = stable_hash(&r).unwrap();
    assert_eq!(run.name_any(), format!("{name}-{v2}-2-1"));
    let labels = run.labels();
    for (key, value) in [
        ("rollout.sluice.dev/analysis-kind", "Step"),
        ("rollout.sluice.dev/step-index", "1"),
        (sluice::crd::POD_TEMPLATE_HASH_LABEL, v2.as_str()),
    ] {
        assert_eq!(
            labels.get(key).map(String::as_str),
            Some(value),
            "{labels:?}"
        );
    }
    let owner = run
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .unwrap_or_else(|| panic!("no controller owner: {:?}", run.metadata));
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Rollout", name)
    );
    assert_eq!(owner.uid, r.uid().unwrap());
    let status = run.status.clone().unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Successful), "{status:#?}");
    let metric = &status.metric_results[0];
    assert_eq!((metric.count, metric.successful), (2, 2), "{metric:#?}");
    assert_eq!(metric.measurements[0].value.as_deref(), Some("[0.99]"));
    let query = metric.measurements[0]
        .metadata
        .values()
        .find(|v| v.contains("ratio{"))
        .unwrap_or_else(|| panic!("no resolved query: {metric:#?}"));
    assert!(query.contains(&format!("rollout=\"{name}\"")), "{query}");
    let reasons: Vec<String> = events(&h, ns).await.into_iter().map(|e| e.0).collect();
    for reason in [
        "AnalysisRunRunning",
        "AnalysisRunSuccessful",
        "MetricSuccessful",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    c.stop().await;
}

#[tokio::test]
async fn a_bad_canary_fails_its_analysis_and_is_aborted_back_to_stable() {
    let (ns, name) = ("analysis-fail", "fail-web");
    let (h, c) = with_ratio_template(ns, name, 0.5, json!({"count": 3, "interval": "1s", "successCondition": "result[0] >= 0.95", "failureLimit": 1})).await;
    let v1 = update(&h, ns, name, ANALYSIS_STEPS).await;
    let r = h.wait_rollout(ns, name, "aborted", is_aborted).await;
    let v2 = current_hash(&r).unwrap();
    let run = runs(&h, ns).await.pop().unwrap();
    let status = run.status.clone().unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Failed), "{status:#?}");
    assert_eq!(
        status.metric_results[0].failed, 2,
        "failed > failureLimit (1)"
    );
    assert!(
        r.status
            .as_ref()
            .unwrap()
            .message
            .as_deref()
            .unwrap_or("")
            .contains(&run.name_any()),
        "the abort names the run: {:?}",
        r.status
    );
    // Every pod back on stable, none on the canary.
    eventually("canary scaled down", || async {
        h.rs_replicas(ns, &v2).await == 0 && h.rs_replicas(ns, &v1).await == 2
    })
    .await;
    assert_eq!(
        h.service_hash(ns, &format!("{name}-canary")).await,
        Some(v1.clone())
    );
    assert_eq!(
        h.service_hash(ns, &format!("{name}-stable")).await,
        Some(v1)
    );
    c.stop().await;
}

#[tokio::test]
async fn an_inconclusive_canary_pauses_until_promoted_then_is_measured_again() {
    let (ns, name) = ("analysis-inconclusive", "maybe-web");
    let (h, c) = with_ratio_template(
        ns,
        name,
        0.8,
        json!({"successCondition": "result[0] >= 0.95", "failureCondition": "result[0] < 0.5"}),
    )
    .await;
    let v1 = update(&h, ns, name, ANALYSIS_STEPS).await;
    let r = h
        .wait_rollout(ns, name, "paused on the inconclusive run", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.pause_conditions
                    .iter()
                    .any(|p| format!("{:?}", p.reason).contains("Inconclusive"))
            })
        })
        .await;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused));
    let first = runs(&h, ns).await.pop().unwrap();
    assert_eq!(run_phase(&first), Some(AnalysisPhase::Inconclusive));

    // Fixed, then promoted by a person: a new run measures again and the step completes.
    set_ratio(shared(), name, 0.99).await;
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    promoted(&h, ns, name, &v1).await;
    let all = runs(&h, ns).await;
    assert_eq!(
        all.len(),
        2,
        "a second run: {:?}",
        all.iter().map(|r| r.name_any()).collect::<Vec<_>>()
    );
    assert_eq!(all[1].name_any(), format!("{}.1", first.name_any()));
    assert_eq!(run_phase(&all[1]), Some(AnalysisPhase::Successful));
    c.stop().await;
}

#[tokio::test]
async fn prometheus_going_away_errors_the_run_and_aborts() {
    let h = Harness::start().await;
    let own = Prometheus::start(exporter());
    let c = controller(&h, &[format!("test={}", own.url())]);
    let (ns, name) = ("analysis-outage", "outage-web");
    h.namespace(ns).await;
    set_ratio(&own, name, 0.99).await;
    create::<AnalysisTemplate>(
        &h.client,
        Some(ns),
        ratio_template(
            ns,
            json!({"interval": "1s", "successCondition": "result[0] >= 0.95", "consecutiveErrorLimit": 2}),
        ),
    )
    .await;
    update(&h, ns, name, ANALYSIS_STEPS).await;
    wait_run(&h, ns, "a successful measurement", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.metric_results.first().is_some_and(|m| m.successful >= 1))
    })
    .await;
    own.stop();
    let r = h.wait_rollout(ns, name, "aborted", is_aborted).await;
    let run = runs(&h, ns).await.pop().unwrap();
    let status = run.status.clone().unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Error), "{status:#?}");
    let metric = &status.metric_results[0];
    assert_eq!(
        metric.consecutive_error, 3,
        "consecutiveError > limit (2): {metric:#?}"
    );
    let last = metric.measurements.last().unwrap();
    assert_eq!(last.phase, AnalysisPhase::Error);
    assert!(last.message.is_some(), "{last:#?}");
    assert!(r.status.unwrap().abort);
    c.stop().await;
}

#[tokio::test]
async fn a_range_query_judges_every_sample_of_its_window() {
    let h = Harness::start().await;
    let c = shared_controller(&h);
    let (ns, name) = ("analysis-range", "range-web");
    h.namespace(ns).await;
    set_ratio(shared(), name, 0.97).await;
    // A few scrapes in the window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let template = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate", "namespace": ns},
        "spec": {"args": [{"name": "name"}], "metrics": [{
            "name": "success-rate",
            "successCondition": "len(result) >= 2 && result.all(x, x >= 0.95)",
            "provider": {"prometheus": {
                "server": "test",
                "query": "ratio{rollout=\"{{args.name}}\"}",
                "rangeQuery": {"start": "3s", "step": "1s"}
            }}
        }]}
    });
    create::<AnalysisTemplate>(&h.client, Some(ns), template).await;
    let v1 = update(&h, ns, name, ANALYSIS_STEPS).await;
    promoted(&h, ns, name, &v1).await;
    let run = runs(&h, ns).await.pop().unwrap();
    let value = run.status.unwrap().metric_results[0].measurements[0]
        .value
        .clone()
        .unwrap();
    let samples: Vec<f64> = serde_json::from_str(&value).unwrap();
    assert!(
        samples.len() >= 2 && samples.iter().all(|v| *v == 0.97),
        "{value}"
    );
    c.stop().await;
}

/// Argo Rollouts' example templates (`pass`, a Job metric, and the ClusterAnalysisTemplate
/// `always-pass`), with only the apiVersion changed, run to success on the playground's Jobs.
#[tokio::test]
async fn argo_rollouts_example_templates_run_with_only_the_api_version_changed() {
    let h = Harness::start().await;
    let c = shared_controller(&h);
    let (ns, name) = ("analysis-upstream", "upstream-web");
    h.namespace(ns).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/upstream/manifests/argo-rollouts");
    for file in [
        "examples__analysis-templates.yaml",
        "examples__cluster-analysis-templates.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} (the upstream manifests live in ../shared)"));
        let text = text.replace("argoproj.io/v1alpha1", "sluice.dev/v1alpha1");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            match value["kind"].as_str() {
                Some("AnalysisTemplate") if value["metadata"]["name"] == "pass" => {
                    create::<AnalysisTemplate>(&h.client, Some(ns), value).await;
                }
                Some("ClusterAnalysisTemplate") => {
                    create::<ClusterAnalysisTemplate>(&h.client, None, value).await;
                }
                _ => {}
            }
        }
    }
    // Both name their metric `pass`: one analysis step each (one run may not hold two metrics
    // of the same name, as in Argo).
    let steps = "        - setWeight: 50\n        - analysis:\n            templates:\n            - templateName: pass\n        - analysis:\n            templates:\n            - templateName: always-pass\n              clusterScope: true\n";
    let v1 = update(&h, ns, name, steps).await;
    promoted(&h, ns, name, &v1).await;
    let all = runs(&h, ns).await;
    assert_eq!(all.len(), 2, "one run per step");
    for run in all {
        let status = run.status.unwrap();
        assert_eq!(status.phase, Some(AnalysisPhase::Successful), "{status:#?}");
        let m = &status.metric_results[0];
        assert_eq!((m.name.as_str(), m.successful), ("pass", 1), "{m:#?}");
        assert!(m.metadata.contains_key("job-name"), "{m:#?}");
    }
    c.stop().await;
}

#[tokio::test]
async fn a_failing_job_metric_aborts_the_update() {
    let h = Harness::start().await;
    let c = shared_controller(&h);
    let (ns, name) = ("analysis-job-fail", "job-web");
    h.namespace(ns).await;
    let template = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke", "namespace": ns},
        "spec": {"metrics": [{"name": "smoke", "provider": {"job": {"spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"playground.sluice.dev/behaviour": "fail"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "smoke", "image": "example/smoke:1"}]}
            }
        }}}}]}
    });
    create::<AnalysisTemplate>(&h.client, Some(ns), template).await;
    let steps = "        - setWeight: 50\n        - analysis:\n            templates:\n            - templateName: smoke\n        - setWeight: 100\n";
    update(&h, ns, name, steps).await;
    h.wait_rollout(ns, name, "aborted", is_aborted).await;
    let run = runs(&h, ns).await.pop().unwrap();
    let status = run.status.unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Failed), "{status:#?}");
    c.stop().await;
}

#[tokio::test]
async fn a_broken_template_makes_the_rollout_invalid_before_anything_runs() {
    let h = Harness::start().await;
    let c = shared_controller(&h);
    let (ns, name) = ("analysis-invalid", "invalid-web");
    h.namespace(ns).await;
    create::<AnalysisTemplate>(
        &h.client,
        Some(ns),
        ratio_template(ns, json!({"successCondition": "result[0] >= "})),
    )
    .await;
    h.apply_yaml(ns, &canary_yaml(name, 2, ANALYSIS_STEPS))
        .await;
    let r = h
        .wait_rollout(ns, name, "InvalidSpec", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "InvalidSpec" && c.status == "True")
            })
        })
        .await;
    let condition = r
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "InvalidSpec")
        .unwrap();
    let message = condition.message.unwrap_or_default();
    assert!(
        message.contains("success-rate") && message.contains("successCondition"),
        "names the template, the metric and the condition: {message}"
    );
    assert!(runs(&h, ns).await.is_empty(), "nothing ran");
    assert!(h.replica_sets(ns).await.is_empty(), "nothing was created");
    c.stop().await;
}

/// A Secret argument is read at measurement time and sent as a header; its value is nowhere in
/// the API server's objects of the namespace, the Events, or the controller's log.
#[tokio::test]
async fn a_secret_argument_reaches_prometheus_and_nothing_else() {
    const SECRET: &str = "s3cr3t-token-9f8e7d";
    let h = Harness::start().await;
    shared();
    let c = controller(&h, &[format!("proxy={}", exporter().proxy_url())]);
    let (ns, name) = ("analysis-secret", "secret-web");
    h.namespace(ns).await;
    set_ratio(shared(), name, 0.99).await;
    create::<Secret>(
        &h.client,
        Some(ns),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom", "namespace": ns},
               "stringData": {"token": SECRET}}),
    )
    .await;
    let template = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate", "namespace": ns},
        "spec": {
            "args": [{"name": "name"}, {"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom", "key": "token"}}}],
            "metrics": [{
                "name": "success-rate",
                "successCondition": "result[0] >= 0.95",
                "provider": {"prometheus": {
                    "server": "proxy",
                    "query": "ratio{rollout=\"{{args.name}}\"}",
                    "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}]
                }}
            }]
        }
    });
    create::<AnalysisTemplate>(&h.client, Some(ns), template).await;
    let v1 = update(&h, ns, name, ANALYSIS_STEPS).await;
    promoted(&h, ns, name, &v1).await;
    let bearer = format!("Bearer {SECRET}");
    assert!(
        exporter().proxied_headers().iter().any(|headers| headers
            .get("authorization")
            .is_some_and(|v| v == bearer.as_str())),
        "the header reached Prometheus"
    );
    let mut everything = String::new();
    for run in runs(&h, ns).await {
        everything.push_str(&serde_json::to_string(&run).unwrap());
    }
    everything.push_str(&serde_json::to_string(&h.rollout(ns, name).await).unwrap());
    everything.push_str(&format!("{:?}", events(&h, ns).await));
    let templates: Vec<AnalysisTemplate> = Api::namespaced(h.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    everything.push_str(&serde_json::to_string(&templates).unwrap());
    assert!(
        everything.contains("success-rate"),
        "the dump holds the objects"
    );
    assert!(
        !everything.contains(SECRET),
        "the secret leaked into an object"
    );
    c.stop().await;
    let log = String::from_utf8_lossy(&log().lock().unwrap()).into_owned();
    assert!(!log.is_empty(), "the controller logged");
    assert!(!log.contains(SECRET), "the secret leaked into the log");
}

/// Blue/green: the pre-promotion analysis passes, so the active Service switches; the
/// post-promotion analysis fails, so the update aborts and the active Service goes back.
#[tokio::test]
async fn blue_green_pre_promotion_passes_and_post_promotion_failure_switches_back() {
    let h = Harness::start().await;
    let c = shared_controller(&h);
    let (ns, name) = ("analysis-bluegreen", "bg-web");
    h.namespace(ns).await;
    set_ratio(shared(), name, 0.99).await;
    for (template, condition) in [("pre", "result[0] >= 0.95"), ("post", "result[0] >= 1.5")] {
        let mut t = ratio_template(ns, json!({"successCondition": condition}));
        t["metadata"]["name"] = json!(template);
        create::<AnalysisTemplate>(&h.client, Some(ns), t).await;
    }
    let analysis = |kind: &str, template: &str| {
        format!(
            "      {kind}:\n        templates:\n        - templateName: {template}\n        args:\n        - name: name\n          value: {name}\n"
        )
    };
    let extra = format!(
        "{}{}",
        analysis("prePromotionAnalysis", "pre"),
        analysis("postPromotionAnalysis", "post")
    );
    h.apply_yaml(ns, &bluegreen_yaml(name, 2, &extra)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    let active = format!("{name}-active");
    h.set_image(ns, name, "example/app:2").await;
    let pre = wait_run(&h, ns, "the pre-promotion run succeeded", |r| {
        r.name_any().ends_with("-pre") && run_phase(r) == Some(AnalysisPhase::Successful)
    })
    .await;
    let v2 = pre.labels()[sluice::crd::POD_TEMPLATE_HASH_LABEL].clone();
    let post = wait_run(&h, ns, "the post-promotion run failed", |r| {
        r.name_any().ends_with("-post") && run_phase(r) == Some(AnalysisPhase::Failed)
    })
    .await;
    assert_eq!(
        post.labels()["rollout.sluice.dev/analysis-kind"],
        "PostPromotion"
    );
    h.wait_rollout(ns, name, "aborted", is_aborted).await;
    eventually("active back on v1", || async {
        h.service_hash(ns, &active).await.as_deref() == Some(v1.as_str())
    })
    .await;
    assert_ne!(v1, v2);
    c.stop().await;
}

/// Background analysis starts at `startingStep`, not before; its failure aborts the update.
#[tokio::test]
async fn background_analysis_starts_at_its_step_and_its_failure_aborts() {
    let (ns, name) = ("analysis-background", "bg-analysis-web");
    let (h, c) = with_ratio_template(
        ns,
        name,
        0.5,
        json!({"interval": "1s", "successCondition": "result[0] >= 0.95"}),
    )
    .await;
    let yaml = canary_yaml(
        name,
        2,
        "        - setWeight: 25\n        - pause: {}\n        - setWeight: 50\n        - pause: {}\n",
    )
    .replace(
        "      steps:\n",
        "      analysis:\n        startingStep: 2\n        templates:\n        - templateName: success-rate\n        args:\n        - name: name\n          value: bg-analysis-web\n      steps:\n",
    );
    h.apply_yaml(ns, &yaml).await;
    h.first_revision_healthy(ns, name).await;
    h.set_image(ns, name, "example/app:2").await;
    h.wait_rollout(ns, name, "paused at step 1", |r| {
        step(r) == Some(1) && paused_on_step(r)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        runs(&h, ns).await.is_empty(),
        "no background run before step 2"
    );
    h.patch_status(ns, name, json!({"pauseConditions": null}))
        .await;
    h.wait_rollout(ns, name, "aborted by the background run", is_aborted)
        .await;
    let run = runs(&h, ns).await.pop().unwrap();
    assert_eq!(
        run.labels()["rollout.sluice.dev/analysis-kind"],
        "Background"
    );
    assert_eq!(run_phase(&run), Some(AnalysisPhase::Failed));
    c.stop().await;
}

/// A person's abort terminates the background run still measuring: it ends Successful with
/// "run terminated", and its measurements stop.
#[tokio::test]
async fn an_abort_terminates_the_running_background_analysis() {
    let (ns, name) = ("analysis-terminate", "terminate-web");
    let (h, c) = with_ratio_template(
        ns,
        name,
        0.99,
        json!({"interval": "1s", "successCondition": "result[0] >= 0.95"}),
    )
    .await;
    let yaml = canary_yaml(name, 2, "        - setWeight: 50\n        - pause: {}\n").replace(
        "      steps:\n",
        "      analysis:\n        templates:\n        - templateName: success-rate\n        args:\n        - name: name\n          value: terminate-web\n      steps:\n",
    );
    h.apply_yaml(ns, &yaml).await;
    h.first_revision_healthy(ns, name).await;
    h.set_image(ns, name, "example/app:2").await;
    wait_run(&h, ns, "two measurements", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.metric_results.first().is_some_and(|m| m.count >= 2))
    })
    .await;
    h.patch_status(ns, name, json!({"abort": true})).await;
    let run = wait_run(&h, ns, "the run terminated", |r| {
        r.spec.terminate && run_phase(r) == Some(AnalysisPhase::Successful)
    })
    .await;
    let count = run.status.as_ref().unwrap().metric_results[0].count;
    assert!(run.status.as_ref().unwrap().completed_at.is_some());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = runs(&h, ns).await.pop().unwrap();
    assert_eq!(
        later.status.unwrap().metric_results[0].count,
        count,
        "no measurement after the run ended"
    );
    c.stop().await;
}

#[tokio::test]
async fn a_run_of_another_controller_instance_is_left_alone() {
    let (ns, name) = ("analysis-instance", "instance-web");
    let h = Harness::start().await;
    let c = shared_controller(&h);
    h.namespace(ns).await;
    set_ratio(shared(), name, 0.99).await;
    let run = |run_name: &str, labels: Value| {
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": run_name, "namespace": ns, "labels": labels},
            "spec": {"metrics": [{
                "name": "success-rate", "successCondition": "result[0] >= 0.95",
                "provider": {"prometheus": {"server": "test", "query": format!("ratio{{rollout=\"{name}\"}}")}}
            }]}
        })
    };
    let other = run(
        "other-instance",
        json!({sluice::controller::INSTANCE_ID_LABEL: "other"}),
    );
    create::<AnalysisRun>(&h.client, Some(ns), other).await;
    create::<AnalysisRun>(&h.client, Some(ns), run("this-instance", json!({}))).await;
    wait_run(&h, ns, "this instance's run measured", |r| {
        r.name_any() == "this-instance" && run_phase(r) == Some(AnalysisPhase::Successful)
    })
    .await;
    let all = runs(&h, ns).await;
    let other = all
        .iter()
        .find(|r| r.name_any() == "other-instance")
        .unwrap();
    assert_eq!(other.status, None, "measured by the wrong instance");
    c.stop().await;
}
