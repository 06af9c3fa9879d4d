//! Conformance of the playground with the real `kubectl` binary: apply of built-ins, a CRD and
//! a custom resource, get with `-o json`, label selectors and `-w`, every patch type,
//! server-side apply, scale, cascading delete and events. kubectl must be on PATH.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only covers test bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kubectl_support;
mod playground_common;
use kubectl_support::Kubectl;
use playground_common::eventually;

use serde_json::Value;
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions};
use std::process::Output;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn start() -> PlaygroundHandle {
    Playground::start(PlaygroundOptions::default())
        .await
        .expect("playground starts")
}

async fn run(pg: &PlaygroundHandle, args: &[&str], stdin: Option<&str>) -> Output {
    Kubectl::new(pg.kubeconfig_path()).run(args, stdin).await
}

/// Run kubectl and require success; returns stdout.
async fn kubectl(pg: &PlaygroundHandle, args: &[&str]) -> String {
    kubectl_in(pg, args, None).await
}

async fn kubectl_in(pg: &PlaygroundHandle, args: &[&str], stdin: Option<&str>) -> String {
    Kubectl::new(pg.kubeconfig_path()).ok(args, stdin).await
}

async fn json(pg: &PlaygroundHandle, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = kubectl(pg, &all).await;
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("kubectl {args:?} printed invalid JSON ({e}): {out}"))
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: example/web:1
        ports: [{containerPort: 8080, name: http}]
        env: [{name: MODE, value: blue}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: string, enum: [small, large]}
              replicas: {type: integer, minimum: 0, default: 1}
          status:
            type: object
            properties:
              replicas: {type: integer}
"#;

const WIDGET: &str =
    "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: small}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_and_rollout_of_builtins_and_custom_resources() {
    let pg = start().await;
    let out = kubectl_in(&pg, &["apply", "-f", "-"], Some(APP)).await;
    assert!(
        out.contains("deployment.apps/web created") && out.contains("service/web created"),
        "{out}"
    );
    kubectl(
        &pg,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    let d = json(&pg, &["get", "deployment", "web"]).await;
    assert_eq!(
        (
            d["spec"]["replicas"].as_i64(),
            d["status"]["availableReplicas"].as_i64()
        ),
        (Some(3), Some(3)),
        "{d}"
    );
    let ep = eventually("three ready endpoints", || async {
        let ep = json(&pg, &["get", "endpoints", "web"]).await;
        (ep["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(3)).then_some(ep)
    })
    .await;
    assert_eq!(
        ep["subsets"][0]["ports"][0]["port"], 8080,
        "named targetPort resolved: {ep}"
    );
    let again = kubectl_in(&pg, &["apply", "-f", "-"], Some(APP)).await;
    assert!(again.contains("deployment.apps/web unchanged"), "{again}");

    kubectl_in(&pg, &["apply", "-f", "-"], Some(CRD)).await;
    kubectl(
        &pg,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
    )
    .await;
    let out = kubectl_in(&pg, &["apply", "-f", "-"], Some(WIDGET)).await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    let w = json(&pg, &["get", "wd", "w1"]).await;
    assert_eq!(
        w["spec"],
        serde_json::json!({"size": "small", "replicas": 1}),
        "defaulted: {w}"
    );
    let table = kubectl(&pg, &["get", "widgets"]).await;
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .eq(["NAME", "SIZE", "AGE"]),
        "printer columns: {table}"
    );
    let bad = run(
        &pg,
        &["apply", "-f", "-"],
        Some(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: huge}\n",
        ),
    )
    .await;
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("spec.size") && err.contains("Unsupported value"),
        "{err}"
    );
    let strict = run(&pg, &["apply", "-f", "-"], Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w3}\nspec: {size: small, colour: red}\n")).await;
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(
        !strict.status.success() && err.contains("unknown field \"spec.colour\""),
        "kubectl's strict field validation: {err}"
    );
    let dry = kubectl_in(
        &pg,
        &["apply", "--dry-run=server", "-f", "-"],
        Some(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w4}\nspec: {size: large}\n",
        ),
    )
    .await;
    assert!(dry.contains("created (server dry run)"), "{dry}");
    assert!(
        !run(&pg, &["get", "widget", "w4"], None)
            .await
            .status
            .success(),
        "a server dry run stores nothing"
    );
    let missing = run(&pg, &["get", "deployment", "nope"], None).await;
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("Error from server (NotFound): deployments.apps \"nope\" not found"),
        "{err}"
    );
    // `kubectl create deployment` sends protobuf.
    kubectl(
        &pg,
        &[
            "create",
            "deployment",
            "made",
            "--image=example/made:2",
            "--replicas=2",
            "--port=8080",
        ],
    )
    .await;
    kubectl(
        &pg,
        &["rollout", "status", "deployment/made", "--timeout=20s"],
    )
    .await;
    let made = json(&pg, &["get", "deployment", "made"]).await;
    let c = &made["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (c["image"].as_str(), c["ports"][0]["containerPort"].as_i64()),
        (Some("example/made:2"), Some(8080)),
        "{made}"
    );
    assert_eq!(made["status"]["readyReplicas"], 2, "{made}");
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selectors_and_watch_with_timeout() {
    let pg = start().await;
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        kubectl(&pg, &["create", "configmap", name, "--from-literal=k=v"]).await;
        kubectl(&pg, &["label", "configmap", name, &format!("tier={tier}")]).await;
    }
    assert_eq!(
        names(&json(&pg, &["get", "configmaps", "-l", "tier=front"]).await),
        vec!["a", "c"]
    );
    assert_eq!(
        names(
            &json(
                &pg,
                &["get", "configmaps", "-l", "tier in (back),tier!=front"]
            )
            .await
        ),
        vec!["b"]
    );
    assert_eq!(
        names(
            &json(
                &pg,
                &["get", "configmaps", "--field-selector", "metadata.name=c"]
            )
            .await
        ),
        vec!["c"]
    );

    let mut child = Kubectl::new(pg.kubeconfig_path()).spawn(&[
        "get",
        "configmaps",
        "-l",
        "tier=front",
        "-w",
        "--output-watch-events",
        "-o",
        "json",
        "--request-timeout=3s",
    ]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the watch prints the initial list")
        .unwrap()
        .unwrap();
    seen.push_str(&first);
    kubectl(&pg, &["create", "configmap", "d", "--from-literal=k=v"]).await;
    kubectl(&pg, &["label", "configmap", "d", "tier=front"]).await;
    kubectl(&pg, &["create", "configmap", "e", "--from-literal=k=v"]).await;
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
        }
        child.wait().await
    })
    .await
    .expect("kubectl get -w ends after its --request-timeout");
    assert!(ended.is_ok());
    let events: Vec<(String, String)> = seen
        .lines()
        .flat_map(|l| serde_json::Deserializer::from_str(l).into_iter::<Value>())
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert!(
        events.contains(&("ADDED".to_string(), "d".to_string())),
        "d joining the selection is an ADDED event: {events:?}"
    );
    assert!(
        !events.iter().any(|(_, n)| n == "e"),
        "e does not match the selector: {events:?}"
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_types_server_side_apply_and_scale() {
    let pg = start().await;
    kubectl_in(&pg, &["apply", "-f", "-"], Some(APP)).await;
    kubectl(
        &pg,
        &[
            "patch",
            "deployment",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"team":"a"}}}"#,
        ],
    )
    .await;
    kubectl(
        &pg,
        &[
            "patch",
            "deployment",
            "web",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/metadata/annotations/owner","value":"me"}]"#,
        ],
    )
    .await;
    kubectl(&pg, &["patch", "deployment", "web", "--type", "strategic", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#]).await;
    let d = json(&pg, &["get", "deployment", "web"]).await;
    assert_eq!(d["metadata"]["labels"]["team"], "a");
    assert_eq!(d["metadata"]["annotations"]["owner"], "me");
    let env: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, vec!["MODE", "EXTRA"], "strategic merge kept MODE: {d}");
    assert_eq!(d["metadata"]["generation"], 2, "one spec change: {d}");

    let ssa = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1', b: '2'}\n";
    let out = kubectl_in(&pg, &["apply", "--server-side", "-f", "-"], Some(ssa)).await;
    assert!(out.contains("configmap/cfg serverside-applied"), "{out}");
    kubectl_in(
        &pg,
        &["apply", "--server-side", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n"),
    )
    .await;
    let cm = json(&pg, &["get", "configmap", "cfg"]).await;
    assert_eq!(
        cm["data"],
        serde_json::json!({"a": "1"}),
        "the field dropped from the applied config is removed: {cm}"
    );
    let clash = run(
        &pg,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "-f",
            "-",
        ],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '9'}\n"),
    )
    .await;
    assert!(
        !clash.status.success() && String::from_utf8_lossy(&clash.stderr).contains("conflict"),
        "{}",
        String::from_utf8_lossy(&clash.stderr)
    );
    kubectl_in(
        &pg,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "other",
            "-f",
            "-",
        ],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '9'}\n"),
    )
    .await;
    assert_eq!(
        json(&pg, &["get", "configmap", "cfg"]).await["data"]["a"],
        "9"
    );

    kubectl(&pg, &["scale", "deployment", "web", "--replicas=5"]).await;
    eventually("five web pods", || async {
        let pods = json(&pg, &["get", "pods", "-l", "app=web"]).await;
        (pods["items"].as_array().unwrap().len() == 5).then_some(())
    })
    .await;
    kubectl_in(&pg, &["apply", "-f", "-"], Some(CRD)).await;
    kubectl(
        &pg,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
    )
    .await;
    kubectl_in(&pg, &["apply", "-f", "-"], Some(WIDGET)).await;
    kubectl(&pg, &["scale", "widget", "w1", "--replicas=4"]).await;
    assert_eq!(
        json(&pg, &["get", "widget", "w1"]).await["spec"]["replicas"],
        4
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascading_delete_and_events() {
    let pg = start().await;
    kubectl_in(&pg, &["apply", "-f", "-"], Some(APP)).await;
    kubectl(
        &pg,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    let events = json(
        &pg,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web",
        ],
    )
    .await;
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"ScalingReplicaSet"),
        "deployment events: {events}"
    );
    let table = kubectl(&pg, &["get", "events"]).await;
    assert!(table.contains("SuccessfulCreate"), "{table}");

    // Orphan keeps the ReplicaSet and its pods, without the owner reference.
    kubectl(&pg, &["delete", "deployment", "web", "--cascade=orphan"]).await;
    let rs = json(&pg, &["get", "replicasets", "-l", "app=web"]).await;
    assert_eq!(rs["items"].as_array().unwrap().len(), 1, "{rs}");
    assert!(
        rs["items"][0]["metadata"]
            .get("ownerReferences")
            .is_none_or(|r| r.as_array().unwrap().is_empty()),
        "{rs}"
    );

    // Background (the default) removes the ReplicaSet, then the garbage collector its pods.
    let rs_name = names(&rs)[0].clone();
    kubectl(&pg, &["delete", "replicaset", &rs_name]).await;
    eventually("pods collected after their ReplicaSet", || async {
        json(&pg, &["get", "pods", "-l", "app=web"]).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;

    // Namespaces (created through kubectl's protobuf client) take their contents with them.
    kubectl(&pg, &["create", "namespace", "demo"]).await;
    kubectl(
        &pg,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "demo",
            "--from-literal=password=hunter2",
        ],
    )
    .await;
    let secret = json(&pg, &["get", "secret", "s", "-n", "demo"]).await;
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==", "{secret}");
    kubectl(&pg, &["delete", "namespace", "demo", "--timeout=20s"]).await;
    let left = run(&pg, &["get", "namespace", "demo"], None).await;
    assert!(!left.status.success(), "the namespace is gone");
    assert!(
        pg.object_count("", "secrets") == 0,
        "the namespace's secret is gone"
    );

    // Foreground waits for dependents.
    kubectl_in(&pg, &["apply", "-f", "-"], Some(APP)).await;
    kubectl(
        &pg,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    kubectl(
        &pg,
        &[
            "delete",
            "deployment",
            "web",
            "--cascade=foreground",
            "--wait=true",
            "--timeout=20s",
        ],
    )
    .await;
    assert!(
        json(&pg, &["get", "replicasets,pods", "-l", "app=web"]).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_crds_and_example_rollouts_apply() {
    let pg = start().await;
    let root = env!("CARGO_MANIFEST_DIR");
    let crds = format!("{root}/crds");
    let out = kubectl(&pg, &["apply", "-f", &crds]).await;
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/rollouts.sluice.dev created"),
        "{out}"
    );
    kubectl(
        &pg,
        &[
            "wait",
            "--for=condition=Established",
            "crd/rollouts.sluice.dev",
            "--timeout=10s",
        ],
    )
    .await;
    for example in ["canary", "bluegreen", "traffic-routed-canary"] {
        let file = format!("{root}/examples/rollouts/{example}.yaml");
        let ns = format!("ex-{example}");
        kubectl(&pg, &["create", "namespace", &ns]).await;
        let out = kubectl(&pg, &["apply", "-n", &ns, "-f", &file]).await;
        assert!(
            out.contains("rollout.sluice.dev/podinfo created"),
            "{example}: {out}"
        );
        let r = json(&pg, &["get", "rollout", "podinfo", "-n", &ns]).await;
        assert_eq!(r["metadata"]["generation"], 1, "{example}: {r}");
    }
    let table = kubectl(&pg, &["get", "sro", "-n", "ex-canary"]).await;
    assert!(table.lines().next().unwrap().starts_with("NAME"), "{table}");
    assert!(table.contains("podinfo"), "{table}");
    // No controller runs here, so the status columns are missing: the server leaves those cells
    // null, as a real one does, and kubectl prints them empty (not 0).
    let row = table.lines().find(|l| l.starts_with("podinfo")).unwrap();
    assert_eq!(
        row.split_whitespace().count(),
        3,
        "name, desired, age only:\n{table}"
    );
    kubectl(
        &pg,
        &[
            "scale",
            "rollout",
            "podinfo",
            "-n",
            "ex-canary",
            "--replicas=7",
        ],
    )
    .await;
    assert_eq!(
        json(&pg, &["get", "rollout", "podinfo", "-n", "ex-canary"]).await["spec"]["replicas"],
        7
    );
    pg.shutdown().await;
}

/// kubectl shows a built-in object the playground refuses as it shows kube-apiserver's answer:
/// each invalid field of a 422, and a quantity that does not parse as a 400 from decoding.
#[tokio::test]
async fn kubectl_reports_invalid_pod_templates_field_by_field() {
    let pg = start().await;
    let manifest = |container: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: bad}}\nspec:\n  selector: {{matchLabels: {{app: bad}}}}\n  template:\n    metadata: {{labels: {{app: bad}}}}\n    spec:\n      containers:\n      - {container}\n"
        )
    };
    let fields = run(
        &pg,
        &["apply", "-f", "-"],
        Some(&manifest(
            "{name: App_1, image: app:1, ports: [{containerPort: 70000}]}",
        )),
    )
    .await;
    let err = String::from_utf8_lossy(&fields.stderr);
    assert!(!fields.status.success(), "{err}");
    for want in [
        "is invalid",
        "spec.template.spec.containers[0].name: Invalid value: \"App_1\": a lowercase RFC 1123 label",
        "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    let quantity = run(
        &pg,
        &["apply", "-f", "-"],
        Some(&manifest(
            "{name: app, image: app:1, resources: {limits: {memory: invalid}}}",
        )),
    )
    .await;
    let err = String::from_utf8_lossy(&quantity.stderr);
    assert!(
        !quantity.status.success()
            && err.contains("Error from server (BadRequest)")
            && err.contains("Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression"),
        "{err}"
    );
    assert!(
        !run(&pg, &["get", "deployment", "bad"], None)
            .await
            .status
            .success(),
        "nothing stored"
    );
    pg.shutdown().await;
}
