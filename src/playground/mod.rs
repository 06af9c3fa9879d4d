//! The playground: an embedded Kubernetes API server and simulated cluster controllers, used by
//! `sluice playground`, the integration tests and the scale benchmarks. This module holds the
//! public entry point (`Playground::start`) and wires the pieces; it emulates Kubernetes, it is
//! not Kubernetes (see `docs/playground.md`).

mod apply;
mod builtin;
mod defaults;
mod delete;
mod discovery;
pub mod error;
mod eviction;
mod faults;
mod gc;
mod holds;
mod http;
mod openapi;
pub mod ops;
mod patch;
mod pod_validation;
pub mod prometheus;
mod protobuf;
pub mod registry;
mod selectors;
pub mod simulation;
pub mod store;
mod table;
pub mod traffic;
mod update;
mod validation;
mod watch;

pub use faults::Faults;
pub use holds::{Hold, HoldFilter, Holds};
pub use simulation::SimulationOptions;

use ops::Api;
use registry::{GroupResource, Registry};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::task::JoinHandle;

/// Errors starting the playground.
#[derive(Debug, thiserror::Error)]
pub enum PlaygroundError {
    #[error("binding 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the kubeconfig to {path}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("building the kube client for {url}")]
    Client {
        url: String,
        #[source]
        source: kube::Error,
    },
    #[error("the server URL {url} is invalid")]
    Url { url: String },
}

/// How to start a playground.
#[derive(Debug, Clone)]
pub struct PlaygroundOptions {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write the kubeconfig; `None` writes it to a temporary directory that lives as
    /// long as the handle.
    pub kubeconfig: Option<PathBuf>,
    /// Watch events retained per resource; watches resuming from older versions get `410 Gone`.
    pub history_limit: usize,
    /// How often watches that allow bookmarks receive one.
    pub bookmark_interval: Duration,
    /// The simulated cluster controllers; `SimulationOptions::disabled()` for a bare API server.
    pub simulation: SimulationOptions,
}

impl Default for PlaygroundOptions {
    fn default() -> Self {
        PlaygroundOptions {
            port: 0,
            kubeconfig: None,
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
            simulation: SimulationOptions::default(),
        }
    }
}

/// The playground entry point.
pub struct Playground;

/// A running playground. Dropping it without `shutdown` leaves its tasks to the runtime.
pub struct PlaygroundHandle {
    base_url: String,
    addr: SocketAddr,
    client: kube::Client,
    kubeconfig: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    api: Arc<Api>,
    faults: Arc<Faults>,
    holds: Arc<Holds>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    demo_metrics: Option<SocketAddr>,
}

impl Playground {
    /// Start the API server (and the simulation, per options) on 127.0.0.1.
    ///
    /// # Errors
    /// When the port cannot be bound, the kubeconfig cannot be written or the client built.
    pub async fn start(options: PlaygroundOptions) -> Result<PlaygroundHandle, PlaygroundError> {
        let (listener, addr) = bind_loopback(options.port).await?;
        let base_url = format!("http://{addr}");
        let (store, removals) = Store::new(options.history_limit);
        let api = Arc::new(Api::new(store, Arc::new(Registry::with_builtins())));
        seed_namespaces(&api);
        let faults = Arc::new(Faults::default());
        let holds = Arc::new(Holds::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = Arc::new(http::Server {
            api: api.clone(),
            faults: faults.clone(),
            holds: holds.clone(),
            addr,
            bookmark_every: options.bookmark_interval,
        });
        let mut tasks = vec![tokio::spawn(http::serve(listener, server, stopped.clone()))];
        let (requeue_tx, requeue_rx) = tokio::sync::mpsc::unbounded_channel();
        let feed = merge_feeds(removals, requeue_rx);
        tasks.push(tokio::spawn(gc::run(api.clone(), feed, requeue_tx)));
        let demo_metrics = match options.simulation.traffic.clone() {
            Some(traffic) => {
                let (listener, addr) = bind_loopback(0).await?;
                tasks.extend(traffic::spawn(
                    api.clone(),
                    traffic,
                    listener,
                    stopped.clone(),
                ));
                Some(addr)
            }
            None => None,
        };
        tasks.extend(simulation::spawn(
            api.clone(),
            options.simulation.clone(),
            stopped,
        ));

        let (kubeconfig, tempdir) = match &options.kubeconfig {
            Some(path) => (path.clone(), None),
            None => {
                let dir = tempfile::tempdir().map_err(|source| PlaygroundError::Kubeconfig {
                    path: PathBuf::from("<tempdir>"),
                    source,
                })?;
                (dir.path().join("kubeconfig"), Some(dir))
            }
        };
        write_kubeconfig(&kubeconfig, &base_url)?;
        let url = base_url.parse().map_err(|_| PlaygroundError::Url {
            url: base_url.clone(),
        })?;
        let mut config = kube::Config::new(url);
        config.default_namespace = "default".into();
        let client = kube::Client::try_from(config).map_err(|source| PlaygroundError::Client {
            url: base_url.clone(),
            source,
        })?;
        tracing::info!(%base_url, "playground API server listening");
        Ok(PlaygroundHandle {
            base_url,
            addr,
            client,
            kubeconfig,
            _tempdir: tempdir,
            api,
            faults,
            holds,
            stop,
            tasks,
            demo_metrics,
        })
    }
}

async fn bind_loopback(
    port: u16,
) -> Result<(tokio::net::TcpListener, SocketAddr), PlaygroundError> {
    let bind = |source| PlaygroundError::Bind { port, source };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    Ok((listener, addr))
}

fn merge_feeds(
    mut a: tokio::sync::mpsc::UnboundedReceiver<store::Change>,
    mut b: tokio::sync::mpsc::UnboundedReceiver<store::Change>,
) -> tokio::sync::mpsc::UnboundedReceiver<store::Change> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                x = a.recv() => x,
                x = b.recv() => x,
            };
            match next {
                Some(change) => {
                    if tx.send(change).is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
    });
    rx
}

fn seed_namespaces(api: &Api) {
    let Some(def) = api.registry.get("", "v1", "namespaces") else {
        return;
    };
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let target = ops::Target {
            def: def.clone(),
            namespace: None,
            name: None,
            subresource: None,
        };
        let opts = ops::WriteOpts {
            field_manager: "playground".into(),
            ..Default::default()
        };
        if let Err(error) = api.create(&target, json!({"metadata": {"name": name}}), &opts) {
            tracing::warn!(%error, name, "seeding namespace failed");
        }
    }
}

/// The kubeconfig text for a server URL (context `playground`, namespace `default`).
pub fn kubeconfig_yaml(base_url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: playground\n  cluster:\n    server: {base_url}\ncontexts:\n- name: playground\n  context:\n    cluster: playground\n    user: playground\n    namespace: default\ncurrent-context: playground\nusers:\n- name: playground\n  user:\n    token: playground\npreferences: {{}}\n"
    )
}

fn write_kubeconfig(path: &Path, base_url: &str) -> Result<(), PlaygroundError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| PlaygroundError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, kubeconfig_yaml(base_url)).map_err(|source| PlaygroundError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })
}

impl PlaygroundHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `kube::Client` for this playground (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The kubeconfig file (`KUBECONFIG=... kubectl get pods`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Fault-injection knobs (fail the next N matching requests).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Request holds (park the next matching request until the test releases it).
    pub fn holds(&self) -> &Holds {
        &self.holds
    }

    /// End every open watch now; clients re-watch from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.api.store.drop_watches();
    }

    /// Forget the retained watch history, so resuming an older resourceVersion gets
    /// `410 Gone` (clients must re-list).
    pub fn expire_history(&self) {
        self.api.store.compact();
    }

    /// Force a 410 on every watcher: expire the history, then drop open watches.
    pub fn force_gone(&self) {
        self.expire_history();
        self.drop_watches();
    }

    /// Number of stored objects of a resource (e.g. `("apps", "replicasets")`).
    pub fn object_count(&self, group: &str, resource: &str) -> usize {
        self.api
            .store
            .collection(&GroupResource::new(group, resource))
            .len()
    }

    /// The Prometheus scrape target (`127.0.0.1:PORT`) serving the demo traffic's series at
    /// `/metrics`; `None` when the options turned demo traffic off.
    pub fn demo_metrics_target(&self) -> Option<String> {
        self.demo_metrics.map(|addr| addr.to_string())
    }

    /// `http://127.0.0.1:PORT/metrics` of the demo traffic, when it runs.
    pub fn demo_metrics_url(&self) -> Option<String> {
        self.demo_metrics
            .map(|addr| format!("http://{addr}/metrics"))
    }

    /// Serves one request in-process, without a socket, through the same routing and parsing
    /// as the HTTP server (path, query parameters, headers, body), and returns the response.
    /// For the fuzz target `playground_request` (`fuzz/`); tests use [`Self::client`].
    #[doc(hidden)]
    pub async fn serve_request(
        &self,
        request: ::http::Request<bytes::Bytes>,
    ) -> ::http::Response<impl hyper::body::Body<Data = bytes::Bytes>> {
        let server = http::Server {
            api: self.api.clone(),
            faults: self.faults.clone(),
            holds: self.holds.clone(),
            addr: self.addr,
            bookmark_every: Duration::from_secs(5),
        };
        http::serve_one(&server, request).await
    }

    /// The API layer, for in-process callers that want to skip HTTP.
    pub fn api(&self) -> Arc<Api> {
        self.api.clone()
    }

    /// Stop the server and the simulation and wait for their tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}
