//! A real `prometheus` server as a child process, for the playground, the analysis bench and
//! the tests: a generated configuration scraping the given loopback targets, a temporary data
//! directory, a free loopback port, and the process killed when this handle drops. Starts a
//! process and talks to it over HTTP; nothing else.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Errors starting Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// No `prometheus` binary was found.
    #[error(
        "no `prometheus` binary on PATH: install the Debian package `prometheus` (`apt-get install prometheus`) or pass its path"
    )]
    NotInstalled,
    /// A file of the temporary directory could not be written.
    #[error("preparing Prometheus' directory")]
    Files(#[source] std::io::Error),
    /// The process could not be started.
    #[error("starting {binary}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server did not become ready; its log's last lines say why.
    #[error("prometheus did not become ready within {seconds} s; its log ends with:\n{log}")]
    NotReady {
        /// How long we waited.
        seconds: u64,
        /// The end of its log.
        log: String,
    },
}

/// A running Prometheus; killed on drop.
pub struct PrometheusServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// `prometheus` from PATH.
///
/// # Errors
/// When there is none.
pub fn find_binary() -> Result<PathBuf, PrometheusError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
        .ok_or(PrometheusError::NotInstalled)
}

fn free_port() -> Result<u16, PrometheusError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(PrometheusError::Files)?;
    Ok(listener
        .local_addr()
        .map_err(PrometheusError::Files)?
        .port())
}

/// The configuration: one job scraping `targets` (`host:port`) every `interval`.
fn config(targets: &[String], interval: Duration) -> String {
    let interval = format!("{}ms", interval.as_millis().max(100));
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\nscrape_configs:\n  - job_name: sluice\n    scrape_interval: {interval}\n    scrape_timeout: {interval}\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    )
}

impl PrometheusServer {
    /// Starts `binary` scraping `targets` every `interval`, and waits until it is ready.
    ///
    /// # Errors
    /// When it cannot be started or does not become ready within 30 s.
    pub async fn start(
        binary: &Path,
        targets: &[String],
        interval: Duration,
    ) -> Result<Self, PrometheusError> {
        let dir = tempfile::tempdir().map_err(PrometheusError::Files)?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config(targets, interval)).map_err(PrometheusError::Files)?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .map_err(PrometheusError::Files)?;
        let port = free_port()?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=2h")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PrometheusError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let server = Self { child, port, dir };
        server.wait_ready(Duration::from_secs(30)).await?;
        Ok(server)
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), PrometheusError> {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + limit;
        let ready = format!("{}/-/ready", self.url());
        while tokio::time::Instant::now() < deadline {
            if let Ok(response) = client.get(&ready).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(PrometheusError::NotReady {
            seconds: limit.as_secs(),
            log: self.log_tail(20),
        })
    }

    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last `lines` of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_scrapes_every_target_at_the_interval() {
        let c = config(
            &["127.0.0.1:9000".into(), "127.0.0.1:9001".into()],
            Duration::from_secs(1),
        );
        assert!(c.contains("scrape_interval: 1000ms"), "{c}");
        assert!(
            c.contains("targets: ['127.0.0.1:9000', '127.0.0.1:9001']"),
            "{c}"
        );
    }
}
