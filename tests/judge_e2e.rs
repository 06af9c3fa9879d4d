//! The canary judge in the loop, end to end: the controller's judge metrics query a real
//! `prometheus` once per side (canary and stable) with the `{{scope.*}}` placeholders, over the
//! analysis window, and the judge's verdict decides the Rollout. A feeder thread plays the pods
//! of each version: per-pod latency gauges, request and error counters whose behaviour the test
//! sets per pod-template hash; Prometheus scrapes them every second.
//!
//! Covered: a good canary passes (score 100) and is promoted; a latency shift is High and
//! aborts with everything back on stable; zero-heavy errors at 2.4× pass the rank test but
//! the rate-ratio test flags them; a marginal score pauses until a person promotes; no traffic
//! is NoData, and `mustHaveData` fails it; with a baseline, the canary is compared with it (not
//! with the warm stable pods), and its weight and pods are read back with `kubectl`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;
mod kubectl_support;
mod prometheus_support;

use controller_support::*;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use kubectl_support::Kubectl;
use prometheus_support::{exporter, shared};
use serde_json::{Value, json};
use sluice::controller::embedded::Embedded;
use sluice::crd::{AnalysisPhase, AnalysisRun, AnalysisTemplate, Rollout, RolloutPhase};
use sluice_analysis::classify::Classification;
use sluice_analysis::score::Verdict;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How one version's pods behave.
#[derive(Clone, Copy, Debug)]
struct Profile {
    pods: u32,
    /// Median latency (ms) and log-normal spread.
    latency_ms: f64,
    spread: f64,
    /// Requests per second per pod, and the share of them that fail.
    rps: f64,
    error_rate: f64,
}

const NORMAL: Profile = Profile {
    pods: 4,
    latency_ms: 100.0,
    spread: 0.05,
    rps: 20.0,
    error_rate: 0.01,
};

#[derive(Default)]
struct Pod {
    requests: f64,
    errors: f64,
}

/// The versions fed, by (namespace, pod-template hash), and their pods' counters.
#[derive(Default)]
struct Feeder {
    profiles: BTreeMap<(String, String), Profile>,
    pods: BTreeMap<String, Pod>,
    rng: u64,
}

const TICK: Duration = Duration::from_millis(250);

impl Feeder {
    fn uniform(&mut self) -> f64 {
        // xorshift64*: a test's random numbers, seeded; quality is ample here.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn tick(&mut self) {
        let profiles: Vec<_> = self.profiles.clone().into_iter().collect();
        for ((ns, hash), p) in profiles {
            for i in 0..p.pods {
                let labels = format!(
                    "namespace=\"{ns}\",rollouts_pod_template_hash=\"{hash}\",pod=\"{hash}-{i}\""
                );
                if p.rps > 0.0 {
                    let latency = p.latency_ms * (p.spread * self.normal()).exp();
                    exporter().set(&format!("judge_latency_ms{{{labels}}}"), latency);
                }
                let requests = p.rps * TICK.as_secs_f64();
                let chance = requests * p.error_rate;
                let error = if self.uniform() < chance { 1.0 } else { 0.0 };
                let pod = self.pods.entry(labels.clone()).or_default();
                pod.requests += requests;
                pod.errors += error;
                let (r, e) = (pod.requests, pod.errors);
                exporter().set(&format!("judge_requests_total{{{labels}}}"), r);
                exporter().set(&format!("judge_errors_total{{{labels}}}"), e);
            }
        }
    }
}

fn feeder() -> &'static Arc<Mutex<Feeder>> {
    static FEEDER: OnceLock<Arc<Mutex<Feeder>>> = OnceLock::new();
    FEEDER.get_or_init(|| {
        let feeder = Arc::new(Mutex::new(Feeder {
            rng: 0x9E37_79B9_7F4A_7C15,
            ..Feeder::default()
        }));
        let fed = feeder.clone();
        std::thread::spawn(move || {
            loop {
                fed.lock().unwrap().tick();
                std::thread::sleep(TICK);
            }
        });
        feeder
    })
}

fn feed(ns: &str, hash: &str, profile: Profile) {
    feeder()
        .lock()
        .unwrap()
        .profiles
        .insert((ns.into(), hash.into()), profile);
}

fn controller(h: &Harness) -> Embedded {
    h.controller_with_prometheus(&[format!("test={}", shared().url())])
}

const SCOPE: &str =
    r#"namespace="{{scope.namespace}}",rollouts_pod_template_hash="{{scope.podTemplateHash}}""#;

fn latency_metric(extra: Value) -> Value {
    let mut m = json!({
        "name": "latency",
        "interval": "10s",
        "count": 1,
        "provider": {"prometheus": {"server": "test", "query": format!("judge_latency_ms{{{SCOPE}}}")}},
        "judge": {"direction": "increase", "step": "1s", "effectSize": {"allowedIncrease": 1.1}, "group": "latency"}
    });
    merge(&mut m["judge"], extra);
    m
}

fn errors_metric(extra: Value) -> Value {
    let mut m = json!({
        "name": "errors",
        "interval": "10s",
        "count": 1,
        "provider": {"prometheus": {"server": "test", "query": format!("sum(increase(judge_errors_total{{{SCOPE}}}[{{{{scope.window}}}}]))")}},
        "judge": {
            "test": "rateRatio", "direction": "increase", "group": "errors",
            "totalQuery": format!("sum(increase(judge_requests_total{{{SCOPE}}}[{{{{scope.window}}}}]))")
        }
    });
    merge(&mut m["judge"], extra);
    m
}

fn merge(target: &mut Value, extra: Value) {
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            target[k] = v;
        }
    }
}

async fn template(client: &Client, ns: &str, metrics: Value, judgement: Value) {
    let t: AnalysisTemplate = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "judge", "namespace": ns},
        "spec": {"metrics": metrics, "judgement": judgement}
    }))
    .unwrap();
    Api::<AnalysisTemplate>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &t)
        .await
        .unwrap();
}

const STEPS: &str = "        - setWeight: 50\n        - analysis:\n            templates:\n            - templateName: judge\n        - setWeight: 100\n";

/// A playground, the controller, the namespace, the template; the first revision fed with
/// `stable`, then an update whose canary is fed with `canary`. Returns the v1 hash.
async fn judged_update(
    ns: &str,
    name: &str,
    metrics: Value,
    judgement: Value,
    [stable, canary]: [Profile; 2],
) -> (Harness, Embedded, String) {
    shared();
    let h = Harness::start().await;
    let c = controller(&h);
    h.namespace(ns).await;
    template(&h.client, ns, metrics, judgement).await;
    h.apply_yaml(ns, &canary_yaml(name, 2, STEPS)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    feed(ns, &v1, stable);
    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "the canary's hash", |r| {
            current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    feed(ns, &current_hash(&r).unwrap(), canary);
    (h, c, v1)
}

async fn judged_run(h: &Harness, ns: &str) -> AnalysisRun {
    let mut runs = Api::<AnalysisRun>::namespaced(h.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    runs.sort_by_key(|r| r.name_any());
    runs.into_iter()
        .rev()
        .find(|r| r.status.as_ref().is_some_and(|s| s.judgement.is_some()))
        .unwrap_or_else(|| panic!("no judged run in {ns}"))
}

fn classification(run: &AnalysisRun, metric: &str) -> Classification {
    let j = run.status.as_ref().unwrap().judgement.as_ref().unwrap();
    j.latest
        .metrics
        .iter()
        .find(|m| m.name == metric)
        .unwrap_or_else(|| panic!("{metric} not judged: {j:#?}"))
        .classification
}

async fn promoted(h: &Harness, ns: &str, name: &str, v1: &str) -> Rollout {
    h.wait_rollout_for(ns, name, "promoted", Duration::from_secs(90), |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some_and(|s| s != v1)
    })
    .await
}

async fn aborted(h: &Harness, ns: &str, name: &str) -> Rollout {
    h.wait_rollout_for(ns, name, "aborted", Duration::from_secs(90), |r| {
        r.status.as_ref().is_some_and(|s| s.abort) && phase(r) == Some(RolloutPhase::Degraded)
    })
    .await
}

#[tokio::test]
async fn a_good_canary_passes_the_judge_and_is_promoted() {
    let (ns, name) = ("judge-pass", "pass-web");
    let metrics = json!([latency_metric(json!({})), errors_metric(json!({}))]);
    let (h, c, v1) = judged_update(ns, name, metrics, json!({}), [NORMAL, NORMAL]).await;
    let r = promoted(&h, ns, name, &v1).await;
    assert!(!r.status.as_ref().unwrap().abort);
    let run = judged_run(&h, ns).await;
    let status = run.status.clone().unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Successful), "{status:#?}");
    let judgement = status.judgement.unwrap();
    assert_eq!(
        (judgement.latest.score, judgement.latest.result),
        (100.0, Verdict::Pass)
    );
    assert_eq!(judgement.history.len(), 1);
    // Both sides were measured, the canary against stable (no baseline here).
    let scope = run.spec.scope.clone().unwrap();
    assert_eq!(scope.stable_pod_template_hash.as_deref(), Some(v1.as_str()));
    assert_eq!(scope.rollout.as_deref(), Some(name));
    let latency = &judgement.latest.metrics[0];
    let sides = [latency.experiment.clone(), latency.control.clone()];
    for side in sides {
        match side {
            Some(sluice_analysis::classify::SideStats::Sample(d)) => {
                assert!(d.count >= 20, "{d:?}");
                assert_eq!(d.quantiles.len(), 21);
            }
            other => panic!("{other:?}"),
        }
    }
    let measurement = &status.metric_results[0].measurements[0];
    assert_eq!(measurement.value.as_deref(), Some("Pass"));
    let reasons: Vec<String> = events(&h, ns).await.into_iter().map(|e| e.0).collect();
    assert!(
        reasons.iter().any(|r| r == "CanaryJudgedPass"),
        "{reasons:?}"
    );

    // `kubectl get sar` shows the score.
    let table = kubectl(&h, &["get", "sar", "-n", ns]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "SCORE", "AGE"], "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&run.name_any()))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row.split_whitespace().nth(2), Some("100"), "{table}");

    // The controller exports the score and each metric's classification.
    let metrics = c.metrics.encode().unwrap();
    let score = format!("sluice_canary_score{{namespace=\"{ns}\",rollout=\"{name}\"}} 100");
    assert!(metrics.contains(&score), "{score} in {metrics}");
    let pass = format!(
        "sluice_canary_metric_classification{{namespace=\"{ns}\",rollout=\"{name}\",metric=\"latency\",classification=\"Pass\"}} 1"
    );
    assert!(metrics.contains(&pass), "{pass}");
    c.stop().await;
}

async fn kubectl(h: &Harness, args: &[&str]) -> String {
    Kubectl::new(h.playground.kubeconfig_path())
        .ok(args, None)
        .await
}

#[tokio::test]
async fn a_latency_shift_is_high_and_aborts_back_to_stable() {
    let (ns, name) = ("judge-slow", "slow-web");
    let metrics = json!([latency_metric(json!({})), errors_metric(json!({}))]);
    let slow = Profile {
        latency_ms: 130.0,
        ..NORMAL
    };
    let (h, c, v1) = judged_update(ns, name, metrics, json!({}), [NORMAL, slow]).await;
    let r = aborted(&h, ns, name).await;
    let run = judged_run(&h, ns).await;
    assert_eq!(classification(&run, "latency"), Classification::High);
    let status = run.status.clone().unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Failed));
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("latency (High)") && message.contains("canary score"),
        "{message}"
    );
    let j = status.judgement.unwrap();
    assert_eq!(j.latest.result, Verdict::Fail);
    assert!(j.latest.score < 75.0, "{}", j.latest.score);
    // Everything back on stable.
    h.wait_rollout(ns, name, "all on stable", |r| {
        stable_hash(r).as_deref() == Some(v1.as_str())
    })
    .await;
    let canary = current_hash(&r).unwrap();
    eventually("the canary scaled away or to no traffic", || async {
        h.rs_replicas(ns, &v1).await == 2
    })
    .await;
    let warnings = events(&h, ns).await;
    let judged = warnings
        .iter()
        .find(|e| e.0 == "CanaryJudgedFail")
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(judged.1.contains("latency (High)"), "{}", judged.1);
    assert!(judged.1.contains("canary score"), "{}", judged.1);
    assert_ne!(canary, v1);
    c.stop().await;
}

#[tokio::test]
async fn zero_heavy_errors_pass_the_rank_test_but_the_rate_ratio_flags_them() {
    let (ns, name) = ("judge-errors", "errors-web");
    // 40 pods a side; 0.25 % of 20 req/s fail on stable: most pods see no error in a step.
    let base = Profile {
        pods: 40,
        error_rate: 0.0025,
        ..NORMAL
    };
    let worse = Profile {
        error_rate: 0.006,
        ..base
    };
    let rank = json!({
        "name": "errors-rank",
        "interval": "20s",
        "count": 1,
        "provider": {"prometheus": {"server": "test", "query": format!("increase(judge_errors_total{{{SCOPE}}}[2s])")}},
        "judge": {"direction": "increase", "step": "2s", "muted": true}
    });
    let mut rate = errors_metric(json!({}));
    rate["interval"] = json!("20s");
    let metrics = json!([rank, rate]);
    let (h, c, _v1) = judged_update(ns, name, metrics, json!({}), [base, worse]).await;
    aborted(&h, ns, name).await;
    let run = judged_run(&h, ns).await;
    let j = run.status.as_ref().unwrap().judgement.clone().unwrap();
    assert_eq!(
        classification(&run, "errors-rank"),
        Classification::Pass,
        "{j:#?}"
    );
    assert_eq!(
        classification(&run, "errors"),
        Classification::High,
        "{j:#?}"
    );
    c.stop().await;
}

#[tokio::test]
async fn a_marginal_score_pauses_until_a_person_promotes() {
    let (ns, name) = ("judge-marginal", "marginal-web");
    // Two groups, latency fails: 50, between marginal (40) and pass (90).
    let metrics = json!([latency_metric(json!({})), errors_metric(json!({}))]);
    let judgement = json!({"thresholds": {"pass": 90, "marginal": 40}});
    let slow = Profile {
        latency_ms: 130.0,
        ..NORMAL
    };
    let (h, c, v1) = judged_update(ns, name, metrics, judgement, [NORMAL, slow]).await;
    let r = h
        .wait_rollout_for(
            ns,
            name,
            "paused on the marginal judgement",
            Duration::from_secs(60),
            |r| {
                r.status.as_ref().is_some_and(|s| {
                    s.pause_conditions
                        .iter()
                        .any(|p| format!("{:?}", p.reason).contains("Inconclusive"))
                })
            },
        )
        .await;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused));
    let run = judged_run(&h, ns).await;
    let j = run.status.as_ref().unwrap().judgement.clone().unwrap();
    assert_eq!((j.latest.score, j.latest.result), (50.0, Verdict::Marginal));
    assert_eq!(
        run.status.as_ref().unwrap().phase,
        Some(AnalysisPhase::Inconclusive)
    );
    // A person promotes past the analysis: the rollout completes.
    h.patch_status(
        ns,
        name,
        json!({"pauseConditions": null, "promoteFull": true}),
    )
    .await;
    promoted(&h, ns, name, &v1).await;
    c.stop().await;
}

#[tokio::test]
async fn no_traffic_is_no_data_and_must_have_data_fails_it() {
    let (ns, name) = ("judge-nodata", "quiet-web");
    let quiet = Profile { rps: 0.0, ..NORMAL };
    let metrics = json!([
        latency_metric(json!({"mustHaveData": true})),
        errors_metric(json!({}))
    ]);
    let (h, c, _v1) = judged_update(ns, name, metrics, json!({}), [NORMAL, quiet]).await;
    aborted(&h, ns, name).await;
    let run = judged_run(&h, ns).await;
    assert_eq!(classification(&run, "latency"), Classification::NoData);
    assert_eq!(classification(&run, "errors"), Classification::NoData);
    let j = run.status.as_ref().unwrap().judgement.clone().unwrap();
    assert_eq!(
        (j.latest.score, j.latest.result),
        (0.0, Verdict::Fail),
        "{j:#?}"
    );
    c.stop().await;
}

/// Kayenta's point, on the playground: the stable pods are warm and faster than any fresh pod,
/// so a canary judged against stable would fail for its age alone; judged against the baseline
/// (fresh pods of the stable version, as many as the canary and given the same weight) it
/// passes. The baseline's weight and pods are read back with `kubectl` while the judge runs.
#[tokio::test]
async fn the_canary_is_judged_against_the_baseline_not_the_warm_stable_pods() {
    let ns = "judge-baseline";
    shared();
    let h = Harness::start().await;
    let c = controller(&h);
    h.namespace(ns).await;
    install_httproute_crd(&h).await;
    create_shop_route(&h, ns).await;
    let metrics = json!([latency_metric(json!({})), errors_metric(json!({}))]);
    template(&h.client, ns, metrics, json!({})).await;
    let steps = "        - setWeight: 20\n        - analysis:\n            templates:\n            - templateName: judge\n        - setWeight: 100\n";
    let yaml = gateway_canary_yaml(5, steps).replace(
        "      trafficRouting:\n",
        "      baseline:\n        service: shop-baseline\n      trafficRouting:\n",
    ) + "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: shop-baseline}\nspec:\n  selector: {app: shop}\n  ports: [{port: 80, targetPort: 8080}]\n";
    h.apply_yaml(ns, &yaml).await;
    let v1 = h.first_revision_healthy(ns, "shop").await;
    let warm = Profile {
        latency_ms: 80.0,
        ..NORMAL
    };
    let baseline = sluice::engine::baseline::baseline_hash(&v1);
    feed(ns, &v1, warm);
    feed(ns, &baseline, NORMAL);
    h.set_image(ns, "shop", "example/app:2").await;
    let r = h
        .wait_rollout(ns, "shop", "the canary's hash", |r| {
            current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let canary = current_hash(&r).unwrap();
    feed(ns, &canary, NORMAL);

    // While the judge runs: 20 % canary, 20 % baseline, 60 % stable, one pod each side.
    h.wait_rollout(ns, "shop", "at the analysis step", |r| step(r) == Some(1))
        .await;
    let route = kubectl(&h, &["get", "httproute", "shop", "-n", ns, "-o", "json"]).await;
    let route: Value = serde_json::from_str(&route).unwrap();
    let weights: BTreeMap<String, i64> = route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["weight"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        BTreeMap::from([
            ("shop-baseline".to_owned(), 20),
            ("shop-canary".to_owned(), 20),
            ("shop-stable".to_owned(), 60)
        ])
    );
    let pods = kubectl(
        &h,
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            &format!("rollouts-pod-template-hash={baseline}"),
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(pods.lines().count(), 1, "{pods}");

    promoted(&h, ns, "shop", &v1).await;
    let run = judged_run(&h, ns).await;
    let scope = run.spec.scope.clone().unwrap();
    assert_eq!(
        scope.baseline_pod_template_hash.as_deref(),
        Some(baseline.as_str())
    );
    let j = run.status.clone().unwrap().judgement.unwrap();
    assert_eq!(j.control, sluice::crd::JudgeControl::Baseline);
    assert_eq!(
        (j.latest.score, j.latest.result),
        (100.0, Verdict::Pass),
        "{j:#?}"
    );
    c.stop().await;
}
