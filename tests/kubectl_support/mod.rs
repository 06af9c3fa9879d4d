//! The one way the tests run the real `kubectl`: a bounded run with optional standard input,
//! a long-running one whose output is read as it comes (watches), a clear failure when kubectl
//! is missing, and helpers that require success.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Child;

/// How to run kubectl: `--kubeconfig` (none for offline verbs) and extra environment.
#[derive(Clone, Debug, Default)]
pub struct Kubectl {
    kubeconfig: Option<std::path::PathBuf>,
    env: Vec<(String, String)>,
}

impl Kubectl {
    /// kubectl against the cluster of `kubeconfig`.
    pub fn new(kubeconfig: &Path) -> Self {
        Self {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            env: Vec::new(),
        }
    }

    /// kubectl without a kubeconfig flag (offline verbs, or `KUBECONFIG` from `env`).
    pub fn offline() -> Self {
        Self::default()
    }

    /// Sets an environment variable of the kubectl process (`PATH` to find a plugin).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts `kubectl ARGS` with standard output and error piped, killed when dropped: for
    /// watches, whose output the test reads line by line.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.start(args, Stdio::null())
    }

    fn start(&self, args: &[&str], stdin: Stdio) -> Child {
        let mut cmd = tokio::process::Command::new("kubectl");
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.arg("--kubeconfig").arg(kubeconfig);
        }
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "kubectl is not installed or not on PATH: install it (Debian: apt-get install \
                 kubernetes-client; scripts/test.sh does) to run these tests"
            ),
            Err(e) => panic!("running kubectl: {e}"),
        }
    }

    /// Runs `kubectl ARGS`, feeding `stdin` when given; at most 60 s.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let piped = if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self.start(args, piped);
        if let Some(input) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
            drop(pipe);
        }
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 60 s"))
            .unwrap()
    }

    /// Runs `kubectl ARGS` and requires success; its standard output.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs `kubectl ARGS -o json` and requires success; the parsed output.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all, None).await).unwrap()
    }
}
