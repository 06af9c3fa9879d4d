//! The offline verbs through the real `kubectl`, which finds `kubectl-sluice` and its
//! completion hook `kubectl_complete-sluice` on PATH: `lint`'s structural-schema and routing
//! checks, `lint` of what `convert` wrote, and `kubectl sluice <TAB>` completion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kubectl_support;
mod plugin_support;

use plugin_support::{path_with_plugin, text};
use std::process::Output;

async fn kubectl(args: &[&str]) -> Output {
    kubectl_support::Kubectl::offline()
        .env("PATH", &path_with_plugin())
        .run(args, None)
        .await
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const ROLLOUT: &str = r"
apiVersion: sluice.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: example/app:1}]}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting: {gatewayAPI: {httpRoute: web}}
      steps: [{setWeight: 20}, {pause: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: web-canary}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-stable}
spec: {selector: {app: web}, ports: [{port: 80}]}
";

#[tokio::test]
async fn lint_checks_the_schema_and_the_routing_objects_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good_route = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\n\
        spec: {rules: [{backendRefs: [{name: web-stable, port: 80}, {name: web-canary, port: 80}]}]}\n";
    let good = write(&dir, "good.yaml", &format!("{ROLLOUT}{good_route}"));
    let out = kubectl(&["sluice", "lint", "-f", &good]).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "rollout/web: ok\n");

    let bad_route = good_route
        .replace(
            "{name: web-canary, port: 80}",
            "{name: web-canary, port: 8080}",
        )
        .replace("{name: web-stable, port: 80}, ", "");
    let typo = ROLLOUT.replace("steps:", "stepz:");
    let bad = write(&dir, "bad.yaml", &format!("{typo}{bad_route}"));
    let out = kubectl(&["sluice", "lint", "-f", &bad]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stdout),
        "rollout/web: spec.strategy.canary.stepz: unknown field (the API server would drop it)\n"
    );
    let no_typo = write(&dir, "route.yaml", &format!("{ROLLOUT}{bad_route}"));
    let out = kubectl(&["sluice", "lint", "-f", &no_typo]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stdout),
        "rollout/web: spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute: HTTPRoute web has no backend for Service web-stable\n\
         rollout/web: HTTPRoute backendRef to web-canary uses port 8080, which the Service does not expose ([80])\n"
    );
    assert_eq!(
        text(&out.stderr),
        format!("error: 2 problem(s) in {no_typo}\n")
    );
}

#[tokio::test]
async fn what_convert_writes_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    let canary = write(
        &dir,
        "canary.yaml",
        r"
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
    threshold: 3
    metrics: [{name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app.kubernetes.io/name: web}}
  template:
    metadata: {labels: {app.kubernetes.io/name: web}}
    spec: {containers: [{name: app, image: example/app:1}]}
",
    );
    let out = kubectl(&["sluice", "convert", "-f", &canary]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let converted = write(&dir, "converted.yaml", &text(&out.stdout));
    let out = kubectl(&["sluice", "lint", "-f", &converted]).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "rollout/web: ok\nanalysistemplate/web-analysis: ok\n"
    );
}

#[tokio::test]
async fn kubectl_completes_the_plugin_through_its_hook() {
    // kubectl's hidden `__complete` is what its shell scripts call on <TAB>.
    let out = kubectl(&["__complete", "sluice", "con"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "convert\n:4\n");
    let out = kubectl(&["__complete", "sluice", "lint", "--file"]).await;
    assert_eq!(text(&out.stdout), "--filename\n:4\n");
}
