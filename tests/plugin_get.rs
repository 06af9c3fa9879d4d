//! `kubectl sluice get rollout` through the real `kubectl`: the view at several moments of a
//! canary, a canary with a baseline, an aborted canary and a blue/green compared with reviewed golden files under
//! `tests/golden/plugin_get/` (ages and random pod suffixes masked; `UPDATE_GOLDEN=1`
//! rewrites them), and `--watch` showing a step change within a second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kubectl_support;
mod plugin_support;

use plugin_support::*;
use regex::Regex;
use sluice::crd::RolloutPhase;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const STEPS: &str =
    "        - setWeight: 20\n        - pause: {}\n        - setWeight: 60\n        - pause: {}\n";

/// The view with what changes from run to run masked: ages, pod-name suffixes and the
/// seconds left of a scale-down delay.
fn mask(text: &str) -> String {
    let age = Regex::new(r"  \d+[smhd](  |$)").unwrap();
    let pod = Regex::new(r"(□ [a-z0-9-]+)-[bcdfghjklmnpqrstvwxz2456789]{5}").unwrap();
    let delay = Regex::new(r"delay:\d+s").unwrap();
    text.lines()
        .map(|line| {
            let line = age.replace_all(line, "  <age>$1");
            let line = pod.replace_all(&line, "$1-xxxxx");
            delay.replace_all(&line, "delay:<n>s").into_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/plugin_get/{name}.txt"))
}

/// Polls `get rollout` until its masked output equals the golden file (the cluster settles
/// within a few hundred milliseconds); fails with both texts after 15 s.
async fn matches_golden(ns: &Ns, rollout: &str, golden: &str) {
    let path = golden_path(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // Let pods settle before recording.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = mask(&ns.ok(&["get", "rollout", rollout]).await);
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} missing ({e}); run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = mask(&ns.ok(&["get", "rollout", rollout]).await);
        if got == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "`get rollout {rollout}` differs from {golden}.txt\n--- want\n{want}--- got\n{got}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_canary_paused_then_promoted() {
    let ns = Ns::create("get-canary").await;
    ns.healthy_canary("web", STEPS).await;
    matches_golden(&ns, "web", "canary-1-healthy").await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    matches_golden(&ns, "web", "canary-2-paused-at-20").await;
    ns.ok(&["promote", "web"]).await;
    ns.wait("web", "paused at step 3", |r| paused_at(r, 3))
        .await;
    matches_golden(&ns, "web", "canary-3-paused-at-60").await;
    ns.ok(&["promote", "web"]).await;
    ns.wait("web", "healthy at 2", |r| {
        healthy(r) && image(r) == "example/app:2"
    })
    .await;
    matches_golden(&ns, "web", "canary-4-promoted").await;
}

#[tokio::test]
async fn an_aborted_canary() {
    let ns = Ns::create("get-abort").await;
    ns.healthy_canary("web", STEPS).await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    ns.ok(&["abort", "web"]).await;
    ns.wait("web", "degraded", |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await;
    matches_golden(&ns, "web", "aborted").await;
}

/// The baseline's lines under `spec.strategy.canary` and its Service.
const BASELINE: &str = "      baseline: {service: web-baseline}\n";
const BASELINE_SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web-baseline}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n---\n";

#[tokio::test]
async fn a_canary_with_a_baseline() {
    let ns = Ns::create("get-baseline").await;
    let yaml = canary_yaml("web", 3, STEPS)
        .replace("      steps:\n", &format!("{BASELINE}      steps:\n"));
    ns.apply(&format!("{BASELINE_SERVICE}{yaml}")).await;
    ns.wait("web", "first revision healthy", healthy).await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1 with a baseline", |r| {
        paused_at(r, 1)
            && r.status
                .as_ref()
                .and_then(|s| s.canary.as_ref())
                .and_then(|c| c.baseline.as_ref())
                .is_some_and(|b| b.available_replicas == 1)
    })
    .await;
    matches_golden(&ns, "web", "baseline-paused-at-20").await;
}

const BLUE_GREEN: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: shop-active}
spec:
  selector: {app: shop}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: shop-preview}
spec:
  selector: {app: shop}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: sluice.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  replicas: 2
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
        - name: app
          image: example/shop:1
  strategy:
    blueGreen:
      activeService: shop-active
      previewService: shop-preview
      autoPromotionEnabled: false
"#;

#[tokio::test]
async fn a_blue_green_waiting_for_promotion() {
    let ns = Ns::create("get-bluegreen").await;
    ns.apply(BLUE_GREEN).await;
    ns.wait("shop", "first revision healthy", healthy).await;
    ns.ok(&["set", "image", "shop", "app=example/shop:2"]).await;
    ns.wait("shop", "paused for promotion", |r| {
        phase(r) == Some(RolloutPhase::Paused)
    })
    .await;
    matches_golden(&ns, "shop", "bluegreen-paused").await;
}

#[tokio::test]
async fn watch_shows_a_step_change_within_a_second() {
    let ns = Ns::create("get-watch").await;
    ns.healthy_canary("web", STEPS).await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;

    let mut child = kubectl_with_plugin(kubeconfig())
        .spawn(&["sluice", "get", "rollout", "web", "--watch", "-n", &ns.name]);
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let step_line = |want: &'static str| {
        move |line: &str| line.trim_end() == format!("  Step:          {want}")
    };
    let first = step_line("1/4");
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if first(&line) {
                return;
            }
        }
        panic!("the watch ended before showing step 1/4");
    })
    .await
    .expect("the first view shows step 1/4");

    ns.ok(&["promote", "web"]).await;
    let promoted = tokio::time::Instant::now();
    let next = step_line("3/4");
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if next(&line) {
                return;
            }
        }
        panic!("the watch ended before showing step 3/4");
    })
    .await
    .expect("the watch shows step 3/4");
    let lag = promoted.elapsed();
    // Reaching step 3 takes the controller a scale-up of the canary (pods ready after 100 ms).
    assert!(
        lag < Duration::from_secs(1),
        "the view changed {lag:?} after the promote"
    );

    // Ctrl-C ends it cleanly.
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the watch ends on SIGINT")
        .unwrap();
    assert!(status.success(), "exit after SIGINT: {status:?}");
}
