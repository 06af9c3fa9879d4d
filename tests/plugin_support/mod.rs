//! Shared harness of the `kubectl sluice` tests: ONE playground with the CRDs and the Sluice
//! controller per test binary (on its own thread and runtime, so every test's runtime can come
//! and go), the real `kubectl` finding the built `kubectl-sluice` first on PATH, one namespace
//! per test, and bounded waits that print the object when they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use sluice::controller::embedded::{Embedded, EmbeddedOptions};
use sluice::crd::{Rollout, RolloutPhase};
use sluice::playground::{Playground, PlaygroundOptions};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

static SHARED: OnceLock<PathBuf> = OnceLock::new();

/// The kubeconfig of the shared playground, started on first use.
pub fn kubeconfig() -> &'static Path {
    SHARED.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("plugin-{}", std::process::id()));
        let path = dir.join("kubeconfig");
        let (tx, rx) = std::sync::mpsc::channel();
        let options = PlaygroundOptions {
            kubeconfig: Some(path.clone()),
            ..PlaygroundOptions::default()
        };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let playground = Playground::start(options).await.expect("playground starts");
                install_crds(&playground.client()).await;
                let _controller = Embedded::spawn(playground.client(), EmbeddedOptions::default());
                tx.send(()).unwrap();
                // Serve until the test binary exits.
                std::future::pending::<()>().await;
                drop(playground);
            });
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("shared playground starts");
        path
    })
}

pub async fn install_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in sluice::crd::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD installs");
    }
}

/// A client of the shared playground for this test's runtime.
pub async fn client() -> Client {
    client_for(kubeconfig()).await
}

pub async fn client_for(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// PATH with the directory of the built `kubectl-sluice` first.
pub fn path_with_plugin() -> String {
    let plugin = Path::new(env!("CARGO_BIN_EXE_kubectl-sluice"));
    let dir = plugin.parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// The real kubectl with the plugin on its PATH, against `kubeconfig`.
pub fn kubectl_with_plugin(kubeconfig: &Path) -> crate::kubectl_support::Kubectl {
    crate::kubectl_support::Kubectl::offline()
        .env("KUBECONFIG", &kubeconfig.display().to_string())
        .env("PATH", &path_with_plugin())
}

/// Runs `kubectl sluice ARGS` through the real kubectl against `kubeconfig`.
pub async fn sluice_with(kubeconfig: &Path, args: &[&str]) -> Output {
    let all: Vec<&str> = std::iter::once("sluice")
        .chain(args.iter().copied())
        .collect();
    kubectl_with_plugin(kubeconfig).run(&all, None).await
}

/// Runs `kubectl sluice ARGS` against the shared playground.
pub async fn sluice(args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(30), sluice_with(kubeconfig(), args))
        .await
        .expect("kubectl sluice finishes within 30 s")
}

/// Runs it and requires success; stdout.
pub async fn ok(args: &[&str]) -> String {
    let out = sluice(args).await;
    assert!(
        out.status.success(),
        "kubectl sluice {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs it and requires failure; stderr, which must be exactly one line.
pub async fn fails(args: &[&str]) -> String {
    let out = sluice(args).await;
    one_line_error(args, &out)
}

pub fn one_line_error(args: &[&str], out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "kubectl sluice {args:?} should fail; stdout: {}",
        text(&out.stdout)
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "kubectl sluice {args:?}: the error should be one line:\n{stderr}"
    );
    stderr
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub struct Ns {
    pub client: Client,
    pub name: String,
}

impl Ns {
    /// A fresh namespace on the shared playground.
    pub async fn create(name: &str) -> Ns {
        let client = client().await;
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
        Ns {
            client,
            name: name.to_string(),
        }
    }

    pub fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub async fn rollout(&self, name: &str) -> Rollout {
        self.rollouts().get(name).await.unwrap()
    }

    /// Runs `kubectl sluice -n NS ARGS`, requiring success.
    pub async fn ok(&self, args: &[&str]) -> String {
        ok(&self.args(args)).await
    }

    /// Runs `kubectl sluice -n NS ARGS`, requiring a one-line failure.
    pub async fn fails(&self, args: &[&str]) -> String {
        fails(&self.args(args)).await
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        sluice(&self.args(args)).await
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(["-n", self.name.as_str()]);
        all
    }

    /// Creates every document of a YAML stream (Services and Rollouts).
    pub async fn apply(&self, yaml: &str) {
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            match value["kind"].as_str() {
                Some("Rollout") => {
                    let obj: Rollout = serde_json::from_value(value).unwrap();
                    self.rollouts()
                        .create(&PostParams::default(), &obj)
                        .await
                        .unwrap();
                }
                Some("Service") => {
                    let obj: Service = serde_json::from_value(value).unwrap();
                    Api::<Service>::namespaced(self.client.clone(), &self.name)
                        .create(&PostParams::default(), &obj)
                        .await
                        .unwrap();
                }
                other => panic!("apply: unsupported kind {other:?}"),
            }
        }
    }

    /// Waits (bounded) until `check` holds; fails printing the status.
    pub async fn wait(&self, name: &str, what: &str, check: impl Fn(&Rollout) -> bool) -> Rollout {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.rollouts().get_opt(name).await.unwrap();
            if let Some(r) = &r
                && check(r)
            {
                return r.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what} on {}/{name}; status: {}",
                self.name,
                serde_json::to_string_pretty(&r.and_then(|r| r.status)).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A canary Rollout `name` with `steps`, Healthy at `example/app:1`.
    pub async fn healthy_canary(&self, name: &str, steps: &str) -> Rollout {
        self.apply(&canary_yaml(name, 3, steps)).await;
        self.wait(name, "first revision healthy", healthy).await
    }
}

pub fn phase(r: &Rollout) -> Option<RolloutPhase> {
    r.status.as_ref()?.phase
}

pub fn healthy(r: &Rollout) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.phase == Some(RolloutPhase::Healthy)
            && s.stable_rs.is_some()
            && s.stable_rs == s.current_pod_hash
            && s.observed_generation == r.metadata.generation
    })
}

pub fn step(r: &Rollout) -> Option<i32> {
    r.status.as_ref()?.current_step_index
}

pub fn paused_at(r: &Rollout, index: i32) -> bool {
    step(r) == Some(index)
        && r.status
            .as_ref()
            .is_some_and(|s| s.controller_pause && !s.pause_conditions.is_empty())
}

pub fn image(r: &Rollout) -> String {
    r.spec
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

/// Two Services and a canary Rollout of `example/app:1` with `steps` (a YAML list indented by
/// eight spaces).
pub fn canary_yaml(name: &str, replicas: i32, steps: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: {name}-stable}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}-canary}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: sluice.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: example/app:1
        - name: sidecar
          image: example/proxy:1
  strategy:
    canary:
      canaryService: {name}-canary
      stableService: {name}-stable
      maxSurge: 1
      maxUnavailable: 0
      steps:
{steps}
"#
    )
}
