//! `kubectl sluice` steering verbs through the real `kubectl`, which finds the built
//! `kubectl-sluice` on PATH, against one shared playground running the Sluice controller:
//! each verb's confirmation and its effect read back from the API; bad names, missing CRDs and
//! forbidden verbs give one clear line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kubectl_support;
mod plugin_support;

use plugin_support::*;
use sluice::crd::RolloutPhase;

const STEPS: &str =
    "        - setWeight: 20\n        - pause: {}\n        - setWeight: 50\n        - pause: {}\n";

#[tokio::test]
async fn set_image_promote_and_promote_full_walk_a_canary_to_healthy() {
    let ns = Ns::create("verbs-promote").await;
    ns.healthy_canary("web", STEPS).await;

    let line = ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    assert_eq!(line, "rollout 'web' image updated\n");
    let r = ns
        .wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    assert_eq!(image(&r), "example/app:2");
    let containers = &r
        .spec
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers;
    assert_eq!(
        containers[1].image.as_deref(),
        Some("example/proxy:1"),
        "only `app` changes"
    );

    assert_eq!(ns.ok(&["promote", "web"]).await, "rollout 'web' promoted\n");
    ns.wait("web", "paused at step 3 after promote", |r| paused_at(r, 3))
        .await;

    assert_eq!(
        ns.ok(&["promote", "web", "--full"]).await,
        "rollout 'web' fully promoted\n"
    );
    let r = ns.wait("web", "healthy at 2", healthy).await;
    assert_eq!(image(&r), "example/app:2");

    let err = ns.fails(&["promote", "web"]).await;
    assert!(
        err.contains("is fully promoted: nothing to promote"),
        "{err}"
    );
}

#[tokio::test]
async fn abort_sends_the_rollout_back_and_retry_starts_it_again() {
    let ns = Ns::create("verbs-abort").await;
    ns.healthy_canary("web", STEPS).await;
    ns.ok(&["set", "image", "web", "*=example/app:2"]).await;
    let r = ns
        .wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    let containers = &r
        .spec
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers;
    assert!(
        containers
            .iter()
            .all(|c| c.image.as_deref() == Some("example/app:2")),
        "`*` sets every container: {containers:?}"
    );

    assert_eq!(ns.ok(&["abort", "web"]).await, "rollout 'web' aborted\n");
    let r = ns
        .wait("web", "degraded after abort", |r| {
            phase(r) == Some(RolloutPhase::Degraded)
        })
        .await;
    assert!(r.status.as_ref().unwrap().abort, "{:?}", r.status);

    let out = ns.run(&["status", "web", "--timeout", "10s"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "status of an aborted rollout exits 1"
    );
    assert!(
        text(&out.stdout).starts_with("Degraded"),
        "{}",
        text(&out.stdout)
    );

    assert_eq!(
        ns.ok(&["retry", "rollout", "web"]).await,
        "rollout 'web' retried\n"
    );
    let r = ns
        .wait("web", "paused at step 1 again", |r| paused_at(r, 1))
        .await;
    assert!(!r.status.as_ref().unwrap().abort);
    let err = ns.fails(&["retry", "web"]).await;
    assert!(err.contains("is not aborted: nothing to retry"), "{err}");
}

#[tokio::test]
async fn pause_holds_a_rollout_and_resume_releases_it() {
    let ns = Ns::create("verbs-pause").await;
    ns.healthy_canary("web", STEPS).await;
    assert_eq!(ns.ok(&["pause", "web"]).await, "rollout 'web' paused\n");
    let r = ns
        .wait("web", "manually paused", |r| {
            phase(r) == Some(RolloutPhase::Paused)
        })
        .await;
    assert!(r.spec.paused);
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = ns.rollout("web").await;
    assert_eq!(
        step(&r),
        Some(0),
        "a paused rollout takes no step: {:?}",
        r.status
    );

    assert_eq!(ns.ok(&["resume", "web"]).await, "rollout 'web' resumed\n");
    let r = ns
        .wait("web", "step 1 after resume", |r| paused_at(r, 1))
        .await;
    assert!(!r.spec.paused);
    // Resume also clears a step's pause, without skipping the step after it.
    ns.ok(&["resume", "web"]).await;
    ns.wait("web", "paused at step 3", |r| paused_at(r, 3))
        .await;
}

#[tokio::test]
async fn restart_sets_restart_at_now_or_later() {
    let ns = Ns::create("verbs-restart").await;
    ns.healthy_canary("web", STEPS).await;
    let line = ns.ok(&["restart", "web", "--in", "1h"]).await;
    let at = ns.rollout("web").await.spec.restart_at.unwrap().0;
    let ahead = at.as_second() - jiff::Timestamp::now().as_second();
    assert!(
        (3590..=3600).contains(&ahead),
        "restartAt {at} is {ahead}s ahead"
    );
    assert_eq!(line, format!("rollout 'web' restarts at {at}\n"));

    assert_eq!(
        ns.ok(&["restart", "web"]).await,
        "rollout 'web' restarts now\n"
    );
    let r = ns
        .wait("web", "restart recorded", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.restarted_at.as_ref())
                .is_some()
        })
        .await;
    assert!(r.spec.restart_at.unwrap().0 <= jiff::Timestamp::now());
}

#[tokio::test]
async fn undo_goes_back_to_the_previous_revision() {
    let ns = Ns::create("verbs-undo").await;
    ns.healthy_canary("web", "        - setWeight: 50\n").await;
    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "healthy at 2", |r| {
        healthy(r) && image(r) == "example/app:2"
    })
    .await;

    let err = ns.fails(&["undo", "web", "--to-revision", "7"]).await;
    assert_eq!(err, "error: rollout \"web\" has no revision 7\n");
    assert_eq!(
        ns.ok(&["undo", "web"]).await,
        "rollout 'web' rolled back to revision 1\n"
    );
    let r = ns
        .wait("web", "healthy at 1 again", |r| {
            healthy(r) && image(r) == "example/app:1"
        })
        .await;
    let labels = r.spec.template.unwrap().metadata.unwrap().labels.unwrap();
    assert!(
        !labels.contains_key("rollouts-pod-template-hash"),
        "the hash label is not copied back: {labels:?}"
    );
}

#[tokio::test]
async fn terminate_analysisrun_sets_terminate() {
    use kube::api::{Api, PostParams};
    use sluice::crd::AnalysisRun;
    let ns = Ns::create("verbs-terminate").await;
    let run: AnalysisRun = serde_yaml::from_str(
        r#"
apiVersion: sluice.dev/v1alpha1
kind: AnalysisRun
metadata: {name: smoke}
spec:
  metrics:
    - name: up
      interval: 1h
      successCondition: "result == 1"
      provider:
        web: {url: "http://127.0.0.1:9/health"}
"#,
    )
    .unwrap();
    let api: Api<AnalysisRun> = Api::namespaced(ns.client.clone(), &ns.name);
    api.create(&PostParams::default(), &run).await.unwrap();
    assert_eq!(
        ns.ok(&["terminate", "analysisrun", "smoke"]).await,
        "analysisrun 'smoke' terminated\n"
    );
    assert!(api.get("smoke").await.unwrap().spec.terminate);
    let err = ns.fails(&["terminate", "ar", "nope"]).await;
    assert_eq!(
        err,
        format!(
            "error: analysisrun \"nope\" not found in namespace \"{}\"\n",
            ns.name
        )
    );
}

#[tokio::test]
async fn status_exits_0_when_healthy_and_2_on_timeout() {
    let ns = Ns::create("verbs-status").await;
    ns.healthy_canary("web", STEPS).await;
    let out = ns.run(&["status", "web"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Healthy"),
        "{}",
        text(&out.stdout)
    );

    ns.ok(&["set", "image", "web", "app=example/app:2"]).await;
    ns.wait("web", "paused at step 1", |r| paused_at(r, 1))
        .await;
    let out = ns.run(&["status", "web", "--timeout", "1s"]).await;
    assert_eq!(out.status.code(), Some(2), "a paused rollout times out");
    assert_eq!(text(&out.stdout), "Paused - CanaryPauseStep\n");
    let err = text(&out.stderr);
    assert!(err.contains("did not finish within 1s"), "{err}");

    ns.ok(&["promote", "web", "--full"]).await;
    let out = ns.run(&["status", "web", "--timeout", "20s"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).trim_end().ends_with("Healthy"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn list_rollouts_shows_every_namespace_with_dash_a() {
    let a = Ns::create("verbs-list-a").await;
    let b = Ns::create("verbs-list-b").await;
    a.healthy_canary("alpha", STEPS).await;
    b.healthy_canary("beta", STEPS).await;

    let table = a.ok(&["list", "rollouts"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("SET-WEIGHT"),
        "{table}"
    );
    assert_eq!(lines.len(), 2, "{table}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "alpha", "Canary", "✔", "Healthy", "4/4", "100", "3/3", "3", "3", "3"
        ]
    );

    let all = ok(&["list", "rollouts", "-A"]).await;
    assert!(all.starts_with("NAMESPACE"), "{all}");
    assert!(
        all.contains("verbs-list-a") && all.contains("verbs-list-b"),
        "{all}"
    );
    assert_eq!(
        b.ok(&["list", "ro", "-o", "name"]).await,
        "rollout.sluice.dev/beta\n"
    );
}

#[tokio::test]
async fn bad_names_give_one_line_that_names_the_rollout_and_namespace() {
    let ns = Ns::create("verbs-missing").await;
    for verb in ["promote", "abort", "pause", "resume", "undo", "status"] {
        let err = ns.fails(&[verb, "nope"]).await;
        assert_eq!(
            err, "error: rollout \"nope\" not found in namespace \"verbs-missing\"\n",
            "{verb}"
        );
    }
    let err = ns.fails(&["set", "image", "nope", "app"]).await;
    assert_eq!(err, "error: \"app\" is not CONTAINER=IMAGE\n");
}

/// A playground of our own, started in this test's runtime: a bare API server the shared one
/// must not become (no CRDs, injected 403s).
async fn own_playground() -> sluice::playground::PlaygroundHandle {
    sluice::playground::Playground::start(sluice::playground::PlaygroundOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn missing_crds_say_how_to_install_them() {
    let pg = own_playground().await;
    let out = sluice_with(pg.kubeconfig_path(), &["promote", "web"]).await;
    let err = one_line_error(&["promote"], &out);
    assert!(err.contains("the Sluice CRDs are not installed"), "{err}");
    assert!(err.contains("kubectl apply -f crds/"), "{err}");
    pg.shutdown().await;
}

#[tokio::test]
async fn a_forbidden_patch_names_the_verb_and_the_resource() {
    let pg = own_playground().await;
    install_crds(&pg.client()).await;
    let ns = "default";
    let api: kube::Api<sluice::crd::Rollout> = kube::Api::namespaced(pg.client(), ns);
    let yaml = canary_yaml("web", 1, STEPS);
    let doc = yaml.split("---").last().unwrap();
    let rollout: sluice::crd::Rollout = serde_yaml::from_str(doc).unwrap();
    api.create(&Default::default(), &rollout).await.unwrap();

    pg.faults()
        .fail_next(Some("patch"), Some("rollouts/status"), 403, 1);
    let out = sluice_with(pg.kubeconfig_path(), &["abort", "web"]).await;
    let err = one_line_error(&["abort"], &out);
    assert!(
        err.starts_with("error: forbidden: you may not patch rollouts/status (sluice.dev) in namespace \"default\""),
        "{err}"
    );
    pg.faults()
        .fail_next(Some("patch"), Some("rollouts"), 403, 1);
    let out = sluice_with(pg.kubeconfig_path(), &["pause", "web"]).await;
    let err = one_line_error(&["pause"], &out);
    assert!(
        err.contains("you may not patch rollouts (sluice.dev)"),
        "{err}"
    );
    pg.shutdown().await;
}

#[tokio::test]
async fn kubeconfig_context_and_output_flags_follow_kubectl() {
    let ns = Ns::create("verbs-flags").await;
    ns.healthy_canary("web", STEPS).await;
    let run = |args: Vec<String>| async move {
        let all: Vec<&str> = std::iter::once("sluice")
            .chain(args.iter().map(String::as_str))
            .collect();
        kubectl_with_plugin(std::path::Path::new("no-such-kubeconfig"))
            .run(&all, None)
            .await
    };
    let path = kubeconfig().display().to_string();
    let with = |extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--kubeconfig".into(),
            path.clone(),
            "-n".into(),
            ns.name.clone(),
        ]);
        args
    };
    let out = run(with(&[
        "list",
        "rollouts",
        "-o",
        "name",
        "--context",
        "playground",
    ]))
    .await;
    assert_eq!(
        text(&out.stdout),
        "rollout.sluice.dev/web\n",
        "{}",
        text(&out.stderr)
    );

    let out = run(with(&["list", "rollouts", "--context", "nowhere"])).await;
    let err = one_line_error(&["--context", "nowhere"], &out);
    assert!(err.contains("cannot load the kubeconfig"), "{err}");

    let out = run(with(&["get", "rollout", "web", "-o", "json"])).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"]["phase"], "Healthy", "{json}");
    let out = run(with(&["pause", "web", "-o", "yaml"])).await;
    let yaml: serde_json::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(yaml["spec"]["paused"], true, "{yaml}");
    let out = run(with(&["resume", "web", "-o", "name"])).await;
    assert_eq!(text(&out.stdout), "rollout.sluice.dev/web\n");
}

#[tokio::test]
async fn bash_completion_completes_verbs_subcommands_and_flags() {
    let script = ok(&["completion", "bash"]).await;
    let complete = |words: &str, cword: usize| {
        let words: Vec<&str> = words.split(' ').collect();
        let probe = format!(
            "{script}\nCOMP_WORDS=({}); COMP_CWORD={cword}; _kubectl_sluice kubectl-sluice '{}' '{}'; echo \"${{COMPREPLY[@]}}\"",
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words[cword],
            words[cword - 1],
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(probe)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("kubectl-sluice pro", 1), "promote");
    assert_eq!(complete("kubectl-sluice set i", 2), "image");
    assert_eq!(complete("kubectl-sluice promote --fu", 2), "--full");
    for shell in ["zsh", "fish"] {
        let script = ok(&["completion", shell]).await;
        assert!(
            script.contains("kubectl-sluice") && script.contains("promote"),
            "{shell}"
        );
    }
}

#[tokio::test]
async fn create_analysisrun_instantiates_a_template_with_arguments() {
    use kube::api::{Api, PostParams};
    use sluice::crd::{AnalysisRun, AnalysisTemplate};
    let ns = Ns::create("verbs-create").await;
    let template: AnalysisTemplate = serde_yaml::from_str(
        r#"
apiVersion: sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  args: [{name: service}, {name: port, value: "80"}]
  metrics:
    - name: up
      interval: 1h
      successCondition: "result == 1"
      provider:
        web: {url: "http://{{args.service}}:{{args.port}}/health"}
"#,
    )
    .unwrap();
    Api::<AnalysisTemplate>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &template)
        .await
        .unwrap();

    let err = ns
        .fails(&["create", "analysisrun", "--from", "smoke"])
        .await;
    assert_eq!(
        err,
        "error: argument \"service\" has no value: pass -a service=VALUE\n"
    );
    let err = ns
        .fails(&["create", "ar", "--from", "nope", "-a", "x=y"])
        .await;
    assert_eq!(
        err,
        "error: analysistemplate \"nope\" not found in namespace \"verbs-create\"\n"
    );

    let line = ns
        .ok(&[
            "create",
            "analysisrun",
            "--from",
            "smoke",
            "-a",
            "service=web",
            "--name",
            "smoke-1",
        ])
        .await;
    assert_eq!(line, "analysisrun 'smoke-1' created\n");
    let run = Api::<AnalysisRun>::namespaced(ns.client.clone(), &ns.name)
        .get("smoke-1")
        .await
        .unwrap();
    let args: Vec<(String, Option<String>)> = run
        .spec
        .args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    assert_eq!(
        args,
        [
            ("service".into(), Some("web".into())),
            ("port".into(), Some("80".into()))
        ]
    );
    assert_eq!(run.spec.metrics[0].name, "up");

    let named = ns
        .ok(&[
            "create",
            "analysisrun",
            "--from",
            "smoke",
            "-a",
            "service=api",
            "-o",
            "name",
        ])
        .await;
    assert!(
        named.starts_with("analysisrun.sluice.dev/smoke-"),
        "{named}"
    );
}

#[tokio::test]
async fn list_watch_prints_a_row_when_a_rollout_changes() {
    use tokio::io::AsyncBufReadExt;
    let ns = Ns::create("verbs-list-watch").await;
    ns.healthy_canary("web", STEPS).await;
    let mut child = kubectl_with_plugin(kubeconfig())
        .spawn(&["sluice", "list", "rollouts", "-w", "-n", &ns.name]);
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .expect("the watch is still running")
    };
    assert!(next().await.starts_with("NAME"));
    assert!(next().await.contains("✔ Healthy"));
    ns.ok(&["pause", "web"]).await;
    let mut seen = Vec::new();
    loop {
        let line = next().await;
        if line.contains("॥ Paused") {
            break;
        }
        seen.push(line);
        assert!(seen.len() < 10, "no Paused row after pause: {seen:?}");
    }
    child.kill().await.unwrap();
}

#[tokio::test]
async fn lint_checks_types_cel_rules_and_the_services_of_the_file() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = canary_yaml("web", 3, STEPS);
    let path = write("good.yaml", &good);
    assert_eq!(ok(&["lint", "-f", &path]).await, "rollout/web: ok\n");

    // Without its Services the Rollout cannot run: the engine's validation says which.
    let alone = good.split("---").last().unwrap();
    let path = write("alone.yaml", alone);
    let out = sluice(&["lint", "-f", &path]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "rollout/web: spec.strategy.canary.canaryService: Service \"web-canary\" not found\n"
    );
    assert_eq!(
        text(&out.stderr),
        format!("error: 1 problem(s) in {path}\n")
    );

    let path = write(
        "weight.yaml",
        &good.replace("setWeight: 20", "setWeight: 120"),
    );
    let out = sluice(&["lint", "-f", &path]).await;
    assert!(
        text(&out.stdout).contains("setWeight must be between 0 and"),
        "the CRD's CEL rule: {}",
        text(&out.stdout)
    );
    let path = write("type.yaml", &good.replace("replicas: 3", "replicas: three"));
    let out = sluice(&["lint", "-f", &path]).await;
    assert_eq!(
        text(&out.stdout),
        "rollout/web: spec.replicas: invalid type: string \"three\", expected i32\n"
    );
}
