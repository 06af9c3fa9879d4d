//! Browser harness of the dashboard tests: ONE headless Debian `chromium` per test binary,
//! driven through `chromedriver` (WebDriver) with `fantoccini`, on its own thread and runtime so
//! every test's runtime can come and go; tests take turns on its one window (`browser()`).
//! The dashboard itself runs as the real `kubectl-sluice dashboard` process (against the shared
//! playground of `plugin_support` in the tests), so killing and restarting it is a real server
//! restart. The dashboard bench uses this file too.
//!
//! Clean-up without `prctl` or signal handlers, as `prometheus_support` does: `chromedriver`
//! runs under a small `sh` in its own process group that holds the read end of a pipe only this
//! process writes; when the test binary exits the pipe closes and `sh` ends the whole group
//! (chromedriver and the chromium it started) and removes the browser profile.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use fantoccini::{Client, ClientBuilder, Locator};
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

const SUPERVISOR: &str = r#"dir="$1"; port="$2"
chromedriver --port="$port" >"$dir/chromedriver.log" 2>&1 &
read _eof
rm -rf "$dir"
kill -TERM 0"#;

/// The window size of the desktop screenshots and of most tests.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// A phone's width (and height).
pub const PHONE: (u32, u32) = (390, 844);

struct Shared {
    client: Client,
    lock: Mutex<()>,
    _supervisor: std::sync::Mutex<(Child, ChildStdin)>,
}

/// The shared browser, locked for the caller until the guard drops.
pub async fn browser() -> (Client, MutexGuard<'static, ()>) {
    let shared = shared();
    let guard = shared.lock.lock().await;
    shared
        .client
        .set_window_size(DESKTOP.0, DESKTOP.1)
        .await
        .unwrap();
    (shared.client.clone(), guard)
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(start)
}

fn start() -> Shared {
    let dir = tempfile::Builder::new()
        .prefix("sluice-chromium-")
        .tempdir()
        .unwrap()
        .keep();
    let port = free_port();
    let mut supervisor = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("sh")
        .arg(&dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("chromedriver starts (Debian package chromium-driver)");
    let stdin = supervisor.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let profile = dir.join("profile");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = connect(port, &profile).await;
            tx.send(client).unwrap();
            // The WebDriver session's task lives on this runtime until the binary exits.
            std::future::pending::<()>().await;
        });
    });
    let client = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("chromium starts under chromedriver");
    Shared {
        client,
        lock: Mutex::new(()),
        _supervisor: std::sync::Mutex::new((supervisor, stdin)),
    }
}

async fn connect(port: u16, profile: &std::path::Path) -> Client {
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
                format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a WebDriver session on chromium")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `kubectl-sluice dashboard`, killed on drop.
pub struct Dashboard {
    pub port: u16,
    kubeconfig: PathBuf,
    namespace: String,
    read_only: bool,
    child: Option<Child>,
}

impl Dashboard {
    /// Starts the dashboard on the cluster of `kubeconfig`, over `namespace`, and waits until
    /// it answers.
    pub async fn start(kubeconfig: &Path, namespace: &str, read_only: bool) -> Dashboard {
        let mut d = Dashboard {
            port: free_port(),
            kubeconfig: kubeconfig.to_path_buf(),
            namespace: namespace.to_string(),
            read_only,
            child: None,
        };
        d.restart().await;
        d
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id, to read its CPU time and memory.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process; the page loses its event stream.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the process again on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let mut args = vec![
            "dashboard",
            "--port",
            &port,
            "-n",
            &self.namespace,
            "--kubeconfig",
        ];
        let config = self.kubeconfig.to_str().unwrap().to_string();
        args.push(&config);
        if self.read_only {
            args.push("--read-only");
        }
        let child = Command::new(env!("CARGO_BIN_EXE_kubectl-sluice"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let answer = http
                .get(format!("{}/api/overview", self.url()))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                let mut child = self.child.take().unwrap();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                child.wait().unwrap();
                panic!("the dashboard exited ({status}): {err}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the dashboard did not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (bounded) until the text of the first element matching `css` satisfies `check`; fails
/// printing the text it last saw.
pub async fn wait_text(c: &Client, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::from("(no such element)");
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            if check(&text) {
                return text;
            }
            last = text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} in {css:?}; last text: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many elements match `css` now.
pub async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.unwrap().len()
}

/// A screenshot of the viewport at `size`: checked to be a PNG of that width, and saved as
/// `docs/dashboard/NAME.png` when `SLUICE_DASHBOARD_SCREENSHOTS` names the docs folder.
pub async fn screenshot(c: &Client, name: &str, size: (u32, u32)) {
    c.set_window_size(size.0, size.1).await.unwrap();
    // Let the page lay out at the new width before the capture.
    c.execute(
        "return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(innerWidth))))",
        vec![],
    )
    .await
    .unwrap();
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, size.0, "{name}: the screenshot is {width} px wide");
    if let Some(dir) = std::env::var_os("SLUICE_DASHBOARD_SCREENSHOTS") {
        let path = PathBuf::from(dir).join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
    }
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
}
