//! `sluice controller` outside a cluster with leader election on (the default): the Lease goes
//! to the kubeconfig context's namespace when `--lease-namespace` is not given, and a Lease
//! namespace that does not exist stops the controller at once with one error naming the flag,
//! instead of a warning repeated for ever. The real binary against the playground.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use sluice::playground::{Playground, PlaygroundOptions};
use std::process::Stdio;
use std::time::Duration;

async fn playground() -> sluice::playground::PlaygroundHandle {
    let pg = Playground::start(PlaygroundOptions::default())
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(pg.client());
    for crd in sluice::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    pg
}

fn controller(
    pg: &sluice::playground::PlaygroundHandle,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("controller")
        .arg("--kubeconfig")
        .arg(pg.kubeconfig_path())
        .args(["--metrics-addr", "127.0.0.1:0", "--identity", "lease-test"])
        .args(extra)
        .env_remove("SLUICE_LEASE_NAMESPACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn a_missing_lease_namespace_is_one_clear_error_naming_the_flag() {
    let pg = playground().await;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        controller(&pg, &["--lease-namespace", "sluice-system"]).output(),
    )
    .await
    .expect("the controller exits instead of retrying for ever")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"sluice-system\" does not exist") && stderr.contains("--lease-namespace"),
        "{stderr}"
    );
    pg.shutdown().await;
}

#[tokio::test]
async fn without_the_flag_the_lease_is_in_the_kubeconfig_contexts_namespace() {
    let pg = playground().await;
    let mut child = controller(&pg, &[]).spawn().unwrap();
    let leases: Api<Lease> = Api::namespaced(pg.client(), "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(lease) = leases.get_opt("sluice-controller-lock").await.unwrap() {
            let holder = lease.spec.and_then(|s| s.holder_identity);
            assert_eq!(holder.as_deref(), Some("lease-test"));
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use tokio::io::AsyncReadExt;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .await
                .unwrap();
            panic!("the controller exited ({status}): {stderr}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Lease in default"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().await.unwrap();
    pg.shutdown().await;
}
