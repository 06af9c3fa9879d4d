//! Test support: a real `prometheus` process scraping an exporter the test serves itself, so a
//! test sets a series (`exporter().set("http_requests_total{code=\"200\"}", 42.0)`) and, after
//! `wait_for`, queries it through a real Prometheus. Use with `mod prometheus_support;`.
//!
//! One Prometheus per test binary (`shared()`), started on first use; `Prometheus::start` gives
//! a private one a test may `stop` and `restart`. The exporter also serves `/proxy/...`, which
//! forwards to the shared Prometheus and records each request's headers, so a test can see what
//! a client sent.
//!
//! Clean-up without `prctl` or signal handlers: statics are never dropped, so each `prometheus`
//! runs under a small `sh` that holds the read end of a pipe whose write end only this process
//! has. When the test binary exits, however it exits, the pipe closes; `sh` then kills
//! `prometheus` and removes its temporary directory (config, TSDB, log).

// Not every test file uses every helper; helpers panic on a broken environment by design.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often Prometheus scrapes the exporter.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

const SUPERVISOR: &str = r#"dir="$1"; shift
prometheus "$@" >"$dir/prometheus.log" 2>&1 &
child=$!
read _eof
kill "$child" 2>/dev/null
wait "$child"
rm -rf "$dir""#;

/// The shared Prometheus, scraping `exporter()`.
pub fn shared() -> &'static Prometheus {
    static SHARED: OnceLock<Prometheus> = OnceLock::new();
    SHARED.get_or_init(|| {
        let prometheus = Prometheus::start(exporter());
        exporter().proxy_to(&prometheus.url());
        prometheus
    })
}

/// The shared exporter.
pub fn exporter() -> &'static Exporter {
    static EXPORTER: OnceLock<Exporter> = OnceLock::new();
    EXPORTER.get_or_init(Exporter::start)
}

/// Series served in the Prometheus text format, settable at any time.
pub struct Exporter {
    addr: SocketAddr,
    state: Arc<ExporterState>,
}

#[derive(Default)]
struct ExporterState {
    series: Mutex<BTreeMap<String, f64>>,
    proxy_target: Mutex<Option<String>>,
    proxied_headers: Mutex<Vec<http::HeaderMap>>,
}

impl Exporter {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the exporter");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ExporterState::default());
        let served = state.clone();
        // Its own thread and runtime: a test's runtime ends with the test, the exporter must not.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router(served)).await.unwrap();
            });
        });
        Self { addr, state }
    }

    /// Sets a series (`name{label="value"}`) to `value`.
    pub fn set(&self, series: &str, value: f64) {
        self.state
            .series
            .lock()
            .unwrap()
            .insert(series.to_string(), value);
    }

    /// Stops serving a series.
    pub fn remove(&self, series: &str) {
        self.state.series.lock().unwrap().remove(series);
    }

    /// `host:port` of the exporter.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the recording proxy in front of the shared Prometheus.
    pub fn proxy_url(&self) -> String {
        format!("http://{}/proxy", self.addr)
    }

    /// The headers of every request the proxy forwarded so far.
    pub fn proxied_headers(&self) -> Vec<http::HeaderMap> {
        self.state.proxied_headers.lock().unwrap().clone()
    }

    fn proxy_to(&self, url: &str) {
        *self.state.proxy_target.lock().unwrap() = Some(url.to_string());
    }
}

fn router(state: Arc<ExporterState>) -> axum::Router {
    use axum::routing::{any, get};
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/proxy/{*path}", any(proxy))
        .with_state(state)
}

async fn metrics(axum::extract::State(state): axum::extract::State<Arc<ExporterState>>) -> String {
    let series = state.series.lock().unwrap();
    let mut body = String::new();
    for (name, value) in series.iter() {
        body.push_str(&format!("{name} {}\n", text_value(*value)));
    }
    body
}

/// A value in the text format, which spells the non-finite ones as Go does.
fn text_value(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".into(),
        v if v == f64::INFINITY => "+Inf".into(),
        v if v == f64::NEG_INFINITY => "-Inf".into(),
        v => v.to_string(),
    }
}

async fn proxy(
    axum::extract::State(state): axum::extract::State<Arc<ExporterState>>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> axum::response::Response {
    state.proxied_headers.lock().unwrap().push(headers.clone());
    let target = state.proxy_target.lock().unwrap().clone().unwrap();
    let path_and_query = uri.path_and_query().map_or("", |p| p.as_str());
    let upstream = format!("{target}{}", path_and_query.trim_start_matches("/proxy"));
    let mut request = reqwest::Client::new().request(method, upstream).body(body);
    if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
        request = request.header(http::header::CONTENT_TYPE, content_type);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let content_type = answer.headers().get(http::header::CONTENT_TYPE).cloned();
    let body = answer.bytes().await.unwrap();
    let mut response = axum::response::Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type);
    }
    response
}

/// A running `prometheus` process (under its supervising `sh`).
pub struct Prometheus {
    port: u16,
    exporter: SocketAddr,
    tls: Option<TlsFiles>,
    running: Mutex<Option<(Child, ChildStdin)>>,
}

/// A server certificate and key (PEM) for a Prometheus serving HTTPS.
#[derive(Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl Prometheus {
    /// Starts a Prometheus of its own scraping `exporter`, and waits until it is ready.
    pub fn start(exporter: &Exporter) -> Self {
        Self::start_with(exporter, None)
    }

    /// Starts a Prometheus of its own serving HTTPS with `tls`. It is only waited for until it
    /// accepts connections: a test checks readiness through its own TLS client.
    pub fn start_tls(exporter: &Exporter, tls: TlsFiles) -> Self {
        Self::start_with(exporter, Some(tls))
    }

    /// Starts a Prometheus of its own scraping `/metrics` of `target` (such as the
    /// playground's demo traffic), and waits until it is ready.
    pub fn start_scraping(target: SocketAddr) -> Self {
        Self::scraping(target, None)
    }

    fn start_with(exporter: &Exporter, tls: Option<TlsFiles>) -> Self {
        Self::scraping(exporter.addr(), tls)
    }

    fn scraping(target: SocketAddr, tls: Option<TlsFiles>) -> Self {
        let prometheus = Self {
            port: free_port(),
            exporter: target,
            tls,
            running: Mutex::new(None),
        };
        prometheus.restart();
        prometheus
    }

    /// The base URL (`http://127.0.0.1:PORT`, `https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Stops the process (and removes its data); queries now fail with "connection refused".
    pub fn stop(&self) {
        if let Some((mut supervisor, stdin)) = self.running.lock().unwrap().take() {
            drop(stdin);
            supervisor
                .wait()
                .expect("wait for the prometheus supervisor");
        }
    }

    /// Starts the process again on the same port (with fresh data), and waits until it is
    /// ready. Stops it first when it runs.
    pub fn restart(&self) {
        self.stop();
        assert!(
            prometheus_installed(),
            "`prometheus` is not on PATH: install the Debian package prometheus (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("sluice-prometheus-")
            .tempdir()
            .expect("create a temporary directory")
            .keep();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, scrape_config(self.exporter)).unwrap();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&dir)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port));
        if let Some(tls) = &self.tls {
            command.arg(format!(
                "--web.config.file={}",
                write_tls_files(&dir, tls).display()
            ));
        }
        let mut supervisor = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run sh");
        let stdin = supervisor.stdin.take().unwrap();
        *self.running.lock().unwrap() = Some((supervisor, stdin));
        self.wait_ready(&dir);
    }

    /// Waits until Prometheus answers the query with a result `accept`s (the `data.result` of
    /// the answer), and returns that result. Panics after 20 s with the last answer.
    pub async fn wait_for(
        &self,
        query: &str,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::Client::new();
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            let answer = client
                .get(format!("{}/api/v1/query", self.url()))
                .query(&[("query", query)])
                .send()
                .await;
            if let Ok(answer) = answer
                && let Ok(body) = answer.json::<serde_json::Value>().await
            {
                last = body;
                if accept(&last["data"]["result"]) {
                    return last["data"]["result"].clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("Prometheus never answered {query:?} as expected; last answer: {last}");
    }

    fn wait_ready(&self, dir: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = match self.tls {
                None => http_get_status(self.port, "/-/ready") == Some(200),
                Some(_) => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        panic!("prometheus did not become ready within 30 s; its log:\n{log}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes the certificate, key and Prometheus web config into `dir`; returns the config's path.
fn write_tls_files(dir: &std::path::Path, tls: &TlsFiles) -> std::path::PathBuf {
    let (cert, key, web) = (
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("web.yml"),
    );
    std::fs::write(&cert, &tls.cert_pem).unwrap();
    std::fs::write(&key, &tls.key_pem).unwrap();
    let config = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        cert.display(),
        key.display()
    );
    std::fs::write(&web, config).unwrap();
    web
}

/// A fresh CA, and a certificate for 127.0.0.1 it signed: `(ca_pem, server)`.
pub fn test_certificates() -> (String, TlsFiles) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let files = TlsFiles {
        cert_pem: server.pem(),
        key_pem: server_key.serialize_pem(),
    };
    (ca_pem, files)
}

fn scrape_config(exporter: SocketAddr) -> String {
    format!(
        "global:\n  scrape_interval: {s}s\n  evaluation_interval: {s}s\nscrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: [\"{exporter}\"]\n",
        s = SCRAPE_INTERVAL.as_secs()
    )
}

fn prometheus_installed() -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("prometheus").is_file())
    })
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// The status of `GET path` on the loopback port, or `None` when nothing answers.
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
