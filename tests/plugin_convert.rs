//! `kubectl sluice convert` through the real `kubectl` on every Argo Rollouts and Flagger
//! manifest of the shared upstream folder (`../shared/upstream/manifests`): each file converts
//! or is refused with one line per reason; what converts parses as our types, is accepted by
//! our CRDs on the playground (applied with `kubectl apply`), and every converted Rollout runs
//! to Healthy once what it references but the file lacks (its Deployment, Services, routing
//! objects) is created.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kubectl_support;
mod plugin_support;
mod traffic_common;

use plugin_support::*;
use serde_json::{Value, json};
use sluice::crd::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout, RolloutPhase};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The upstream manifests, beside the repository.
fn manifests_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/upstream/manifests"
    ));
    assert!(
        dir.join("argo-rollouts").is_dir() && dir.join("flagger").is_dir(),
        "{} is missing: these tests convert the upstream Argo Rollouts and Flagger manifests of \
         the shared folder, which must be checked out beside the repository as `shared/`",
        dir.display()
    );
    dir
}

/// Files of `dir` that upstream's own index marks as not plain YAML (Helm templates and the
/// like): `convert` must say so and exit 1.
fn unparseable(dir: &Path) -> BTreeSet<String> {
    let index = std::fs::read_to_string(dir.join("index.txt")).unwrap();
    index
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("not parseable"))
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn documents(text: &str) -> Vec<Value> {
    sluice::plugin::convert::parse(text).expect("convert writes YAML")
}

fn is_source(doc: &Value) -> bool {
    let group = doc["apiVersion"].as_str().unwrap_or("").split('/').next();
    matches!(group, Some("argoproj.io" | "flagger.app"))
}

/// The outcome of one file.
struct Converted {
    file: PathBuf,
    output: Vec<Value>,
}

/// Converts one file through kubectl and checks the contract of the verb's output.
async fn convert(file: &Path, unparseable: &BTreeSet<String>) -> Option<Converted> {
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    let path = file.to_str().unwrap();
    let out = sluice(&["convert", "-f", path]).await;
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let context = format!("convert {name}:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    if unparseable.contains(&name) {
        assert_eq!(out.status.code(), Some(1), "{context}");
        assert!(stderr.contains(": not YAML, skipped: "), "{context}");
        return None;
    }
    let sources: Vec<Value> = documents(&std::fs::read_to_string(file).unwrap())
        .into_iter()
        .filter(is_source)
        .collect();
    let findings: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("error: "))
        .collect();
    for line in &findings {
        // `<file>: <kind>/<name>: <field path>: <reason>`
        let parts: Vec<&str> = line.splitn(4, ": ").collect();
        assert_eq!(
            parts.len(),
            4,
            "finding without file, object, field and reason: {line}\n{context}"
        );
        assert_eq!(parts[0], path, "{context}");
        assert!(parts[1].contains('/'), "{line}\n{context}");
        assert!(!parts[3].trim().is_empty(), "{line}\n{context}");
    }
    let output = documents(&stdout);
    let converted: Vec<&Value> = output
        .iter()
        .filter(|d| d["apiVersion"] == "sluice.dev/v1alpha1")
        .collect();
    if out.status.code() == Some(1) {
        // Nothing converted: each source object is named with its reason.
        assert!(converted.is_empty(), "{context}");
        for source in &sources {
            let object = format!("{}/", source["kind"].as_str().unwrap());
            assert!(
                findings.iter().any(|l| l.contains(&object)),
                "{object} not explained\n{context}"
            );
        }
        assert!(stderr.contains("error: nothing in "), "{context}");
        return None;
    }
    assert!(out.status.success(), "{context}");
    assert!(!converted.is_empty(), "{context}");
    assert!(
        !output.iter().any(is_source),
        "an Argo or Flagger object left in the output\n{context}"
    );
    for doc in &converted {
        parses_as_ours(doc, &context);
    }
    Some(Converted {
        file: file.to_path_buf(),
        output,
    })
}

fn parses_as_ours(doc: &Value, context: &str) {
    let result = match doc["kind"].as_str().unwrap() {
        "Rollout" => serde_json::from_value::<Rollout>(doc.clone()).map(|_| ()),
        "AnalysisTemplate" => serde_json::from_value::<AnalysisTemplate>(doc.clone()).map(|_| ()),
        "ClusterAnalysisTemplate" => {
            serde_json::from_value::<ClusterAnalysisTemplate>(doc.clone()).map(|_| ())
        }
        "AnalysisRun" => serde_json::from_value::<AnalysisRun>(doc.clone()).map(|_| ()),
        other => panic!("convert wrote a sluice.dev {other}\n{context}"),
    };
    result.unwrap_or_else(|e| panic!("{e}: {doc}\n{context}"));
}

/// Kinds the playground serves in this test (the built-ins, ours and the routing CRDs).
fn applicable(doc: &Value) -> bool {
    let api = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    match api.split('/').next().unwrap_or("") {
        "v1" => matches!(kind, "Service" | "Secret" | "ConfigMap"),
        "apps" => kind == "Deployment",
        "networking.k8s.io" => kind == "Ingress",
        "sluice.dev" => true,
        "networking.istio.io" => matches!(kind, "VirtualService" | "DestinationRule"),
        "gateway.networking.k8s.io" => matches!(kind, "HTTPRoute" | "GRPCRoute"),
        "traefik.io" => kind == "TraefikService",
        _ => false,
    }
}

/// The object in `ns`: its namespace removed (kubectl's `-n` places it).
fn placed(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(meta) = doc["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    doc
}

/// Runs `kubectl apply -n NS -f -` with `docs`, requiring success.
async fn kubectl_apply(ns: &str, docs: &[Value], context: &str) {
    let yaml: String = docs
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    let out = kubectl_with_plugin(kubeconfig())
        .run(&["apply", "-n", ns, "-f", "-"], Some(&yaml))
        .await;
    assert!(
        out.status.success(),
        "kubectl apply of the converted objects failed: {}\n{yaml}\n{context}",
        text(&out.stderr)
    );
}

/// What the Rollouts of `docs` reference but `docs` lack: the workloadRef Deployment, the
/// Services and the routing objects, shaped as the Rollout expects them.
fn missing_references(docs: &[Value], templates: &[Value]) -> Vec<Value> {
    let have: BTreeSet<(String, String)> = docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or("").into(),
                d["metadata"]["name"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let mut out = Vec::new();
    let mut add = |doc: Value| {
        let key = (
            doc["kind"].as_str().unwrap().to_string(),
            doc["metadata"]["name"].as_str().unwrap().to_string(),
        );
        if !have.contains(&key)
            && !out.iter().any(|d: &Value| {
                d["kind"] == doc["kind"] && d["metadata"]["name"] == doc["metadata"]["name"]
            })
        {
            out.push(doc);
        }
    };
    for rollout in docs.iter().filter(|d| d["kind"] == "Rollout") {
        let labels = rollout["spec"]["selector"]["matchLabels"].clone();
        let workload = &rollout["spec"]["workloadRef"];
        if workload["kind"] == "Deployment" {
            add(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": workload["name"]},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}}}));
        }
        let strategy = &rollout["spec"]["strategy"];
        let (stable, canary) = match (&strategy["canary"], &strategy["blueGreen"]) {
            (c, _) if c.is_object() => (c["stableService"].as_str(), c["canaryService"].as_str()),
            (_, b) => (b["activeService"].as_str(), b["previewService"].as_str()),
        };
        for name in [stable, canary].into_iter().flatten() {
            add(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}),
            );
        }
        for (name, cluster, args) in template_refs(rollout) {
            let kind = if cluster {
                "ClusterAnalysisTemplate"
            } else {
                "AnalysisTemplate"
            };
            let template = templates
                .iter()
                .find(|t| t["kind"] == kind && t["metadata"]["name"] == name.as_str())
                .cloned()
                .unwrap_or_else(|| json!({"apiVersion": "sluice.dev/v1alpha1", "kind": kind,
                    "metadata": {"name": name},
                    "spec": {"args": args, "metrics": [{"name": "up", "provider": {"web": {"url": "http://localhost/"}}}]}}));
            add(placed(&template));
        }
        let routing = &strategy["canary"]["trafficRouting"];
        let (stable, canary) = (stable.unwrap_or(""), canary.unwrap_or(""));
        for doc in routing_objects(routing, stable, canary) {
            add(doc);
        }
    }
    out
}

/// The templates a Rollout's analyses name: (name, cluster scope, the argument names).
fn template_refs(rollout: &Value) -> Vec<(String, bool, Vec<Value>)> {
    let strategy = &rollout["spec"]["strategy"];
    let mut analyses = vec![
        &strategy["canary"]["analysis"],
        &strategy["blueGreen"]["prePromotionAnalysis"],
        &strategy["blueGreen"]["postPromotionAnalysis"],
    ];
    for step in strategy["canary"]["steps"].as_array().into_iter().flatten() {
        analyses.push(&step["analysis"]);
    }
    let mut out = Vec::new();
    for analysis in analyses {
        let args: Vec<Value> = analysis["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| json!({"name": a["name"]}))
            .collect();
        for t in analysis["templates"].as_array().into_iter().flatten() {
            let name = t["templateName"].as_str().unwrap().to_string();
            out.push((name, t["clusterScope"] == true, args.clone()));
        }
    }
    out
}

fn routing_objects(routing: &Value, stable: &str, canary: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let vs = &routing["istio"]["virtualService"];
    let vss = routing["istio"]["virtualServices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for vs in std::iter::once(vs)
        .chain(vss.iter())
        .filter(|v| v.is_object())
    {
        let name = vs["name"].as_str().unwrap().rsplit('/').next().unwrap();
        let routes: Vec<Value> = match vs["routes"].as_array() {
            Some(names) if !names.is_empty() => names
                .iter()
                .map(|n| istio_route(Some(n), stable, canary))
                .collect(),
            _ => vec![istio_route(None, stable, canary)],
        };
        out.push(
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": name}, "spec": {"hosts": [stable], "http": routes}}),
        );
    }
    if let Some(route) = routing["gatewayAPI"]["httpRoute"].as_str() {
        out.push(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": route}, "spec": {"rules": [{"backendRefs": [
                {"name": stable, "port": 80, "weight": 100}, {"name": canary, "port": 80, "weight": 0}]}]}}));
    }
    if let Some(name) = routing["traefik"]["weightedTraefikServiceName"].as_str() {
        out.push(json!({"apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
            "metadata": {"name": name}, "spec": {"weighted": {"services": [
                {"name": stable, "port": 80, "weight": 100}, {"name": canary, "port": 80, "weight": 0}]}}}));
    }
    if let Some(ingress) = routing["nginx"]["stableIngress"].as_str() {
        out.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": ingress}, "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": stable, "port": {"number": 80}}}}]}}]}}));
    }
    out
}

fn istio_route(name: Option<&Value>, stable: &str, canary: &str) -> Value {
    let mut route = json!({"route": [
        {"destination": {"host": stable}, "weight": 100},
        {"destination": {"host": canary}, "weight": 0}]});
    if let Some(name) = name {
        route["name"] = name.clone();
    }
    route
}

/// Waits (bounded) until every Rollout of `ns` in `names` is Healthy.
async fn all_healthy(ns: &str, names: &[String], context: &str) {
    let client = client().await;
    let api: kube::Api<Rollout> = kube::Api::namespaced(client, ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    for name in names {
        loop {
            let r = api.get(name).await.unwrap();
            let phase = r.status.as_ref().and_then(|s| s.phase);
            if phase == Some(RolloutPhase::Healthy) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{ns}/{name} did not become Healthy; status: {}\n{context}",
                serde_json::to_string_pretty(&r.status).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn convert_apply_and_run(kind: &str, prefix: &str) {
    let dir = manifests_dir().join(kind);
    let unparseable = unparseable(&dir);
    static ROUTING_CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ROUTING_CRDS
        .get_or_init(|| async { traffic_common::install_routing_crds(&client().await).await })
        .await;
    let mut converted = Vec::new();
    for (i, file) in yaml_files(&dir).iter().enumerate() {
        if let Some(c) = convert(file, &unparseable).await {
            converted.push((i, c));
        }
    }
    let converted_files = converted.len();
    // Templates of every file: a Rollout may name one from another file of the same example.
    let templates: Vec<Value> = converted
        .iter()
        .flat_map(|(_, c)| c.output.iter())
        .filter(|d| d["kind"] == "AnalysisTemplate" || d["kind"] == "ClusterAnalysisTemplate")
        .cloned()
        .collect();
    let mut runs = Vec::new();
    for (i, converted) in &converted {
        let ns = format!("{prefix}-{i}");
        Ns::create(&ns).await;
        let context = format!("file {}", converted.file.display());
        let mut docs: Vec<Value> = converted
            .output
            .iter()
            .filter(|d| applicable(d))
            .map(placed)
            .collect();
        docs.extend(missing_references(&docs, &templates));
        // Services and the rest before the Rollouts, as a user's `kubectl apply -f` of a dir.
        docs.sort_by_key(|d| d["kind"] == "Rollout");
        kubectl_apply(&ns, &docs, &context).await;
        let names: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "Rollout")
            .map(|d| d["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        runs.push((ns, names, context));
    }
    assert!(
        converted_files > 0,
        "no file of {} converted",
        dir.display()
    );
    for (ns, names, context) in &runs {
        all_healthy(ns, names, context).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_argo_rollouts_manifest_converts_applies_and_runs() {
    convert_apply_and_run("argo-rollouts", "cv-argo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flagger_manifest_converts_applies_and_runs() {
    convert_apply_and_run("flagger", "cv-flagger").await;
}

#[tokio::test]
async fn a_directory_converts_together_and_stdin_works() {
    // A Canary and the MetricTemplate it references, in two files of one directory: the
    // template's query is inlined into the Canary's analysis.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-canary.yaml"), CANARY).unwrap();
    std::fs::write(dir.path().join("b-template.yaml"), TEMPLATE).unwrap();
    let out = ok(&["convert", "-f", dir.path().to_str().unwrap()]).await;
    let docs = documents(&out);
    let analysis = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "web-analysis")
        .expect(&out);
    assert_eq!(
        analysis["spec"]["metrics"][0]["provider"]["prometheus"]["query"],
        r#"sum(rate(errors{namespace="{{args.namespace}}"}[2m]))"#,
        "{out}"
    );
    assert_eq!(
        analysis["spec"]["metrics"][0]["successCondition"],
        "len(result) > 0 && result[0] <= 1.0"
    );

    let out = kubectl_with_plugin(kubeconfig())
        .run(&["sluice", "convert", "-f", "-"], Some(CANARY))
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "<stdin>: Canary/web: spec.analysis.metrics[0].templateRef: MetricTemplate errors is not in the input; convert it together with the Canary\n"
    );
}

#[tokio::test]
async fn input_with_nothing_to_convert_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svc.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n",
    )
    .unwrap();
    let err = fails(&["convert", "-f", file.to_str().unwrap()]).await;
    assert!(err.starts_with("error: nothing in "), "{err}");
    let err = fails(&["convert", "-f", "/nonexistent/x.yaml"]).await;
    assert!(err.contains("/nonexistent/x.yaml"), "{err}");
}

const CANARY: &str = r"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80, gatewayRefs: [{name: public}]}
  analysis:
    interval: 30s
    stepWeight: 25
    metrics:
    - name: errors
      templateRef: {name: errors}
      thresholdRange: {max: 1}
      interval: 2m
";

const TEMPLATE: &str = r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: errors}
spec:
  provider: {type: prometheus, address: "http://prometheus:9090"}
  query: sum(rate(errors{namespace="{{ namespace }}"}[{{ interval }}]))
"#;
