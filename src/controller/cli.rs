//! The `sluice controller` command: clap flags (each with a `SLUICE_` environment fallback),
//! client construction, logging, the metrics/health server, leader election and the controller
//! itself, until SIGINT/SIGTERM. The CLI layer: errors are `anyhow`.

use super::context::{DecideFn, RoutersFn, Settings};
use super::leader::{Leadership, LeaseSettings, run_election};
use super::metrics::Metrics;
use super::run::{Wiring, run};
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Log output format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Flags of `sluice controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig file; in-cluster configuration or `$KUBECONFIG` when unset.
    #[arg(long, env = "SLUICE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, env = "SLUICE_CONTEXT")]
    pub context: Option<String>,
    /// Watch only this namespace (namespaced install, needs only a Role).
    #[arg(long, env = "SLUICE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Reconcile only Rollouts labelled `rollout.sluice.dev/controller-instance-id=<ID>`.
    #[arg(long, env = "SLUICE_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Address serving `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "0.0.0.0:8090")]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value = "plain")]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long, env = "SLUICE_LOG", default_value = "info")]
    pub log: String,
    /// Sustained API requests per second the client may make.
    #[arg(long, env = "SLUICE_QPS", default_value_t = 40)]
    pub qps: u32,
    /// Requests above `--qps` allowed in a burst.
    #[arg(long, env = "SLUICE_BURST", default_value_t = 80)]
    pub burst: u32,
    /// Rollouts reconciled at once.
    #[arg(long, env = "SLUICE_CONCURRENCY", default_value_t = 10)]
    pub concurrency: u16,
    /// Elect a leader on a Lease so only one replica writes.
    #[arg(long, env = "SLUICE_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// The Lease's name (suffixed with `-<instance id>` when one is set).
    #[arg(
        long,
        env = "SLUICE_LEASE_NAME",
        default_value = "sluice-controller-lock"
    )]
    pub lease_name: String,
    /// The Lease's namespace. Defaults to the controller's own namespace in a cluster (its
    /// service account's), or the kubeconfig context's namespace outside one.
    #[arg(long, env = "SLUICE_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a standby waits, from the last change of the Lease it saw, before it takes
    /// over (`15s`, whole seconds are written to the Lease).
    #[arg(long, env = "SLUICE_LEADER_ELECT_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: std::time::Duration,
    /// How long the leader keeps writing after the start of its last successful renewal;
    /// shorter than the lease duration.
    #[arg(long, env = "SLUICE_LEADER_ELECT_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: std::time::Duration,
    /// How often candidates try to acquire or renew the Lease; shorter than the renew deadline.
    #[arg(long, env = "SLUICE_LEADER_ELECT_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: std::time::Duration,
    /// This replica's identity in the Lease and in Events (defaults to the host name).
    #[arg(long, env = "SLUICE_IDENTITY")]
    pub identity: Option<String>,
    /// A traffic router plugin Rollouts may name, as `NAME=URL` (repeatable; the environment
    /// variable takes a comma-separated list). Rollouts cannot name addresses themselves.
    #[arg(
        long = "traffic-plugin",
        env = "SLUICE_TRAFFIC_PLUGINS",
        value_delimiter = ','
    )]
    pub traffic_plugins: Vec<crate::traffic::PluginEntry>,
    /// The longest timeout of one traffic plugin request (`30s`, `500ms`, or seconds); a
    /// Rollout's `timeoutSeconds` cannot exceed it.
    #[arg(long, env = "SLUICE_PLUGIN_TIMEOUT_MAX", default_value = "10s", value_parser = parse_duration)]
    pub plugin_timeout_max: std::time::Duration,
    /// The most retries of one traffic plugin call; a Rollout's `retries` cannot exceed it.
    /// One call, retries included, never takes longer than these two bounds allow.
    #[arg(long, env = "SLUICE_PLUGIN_RETRIES_MAX", default_value_t = 2)]
    pub plugin_retries_max: u32,
    /// The largest traffic plugin answer read, in bytes; a larger one is refused.
    #[arg(long, env = "SLUICE_PLUGIN_BODY_MAX", default_value_t = 1024 * 1024)]
    pub plugin_body_max: usize,
    /// A Prometheus server analysis metrics may query, as `NAME=URL` (repeatable; the
    /// environment variable takes a comma-separated list). Metrics name it (`server: NAME`) or
    /// give its URL as `address`; nothing else is ever contacted.
    #[arg(long = "prometheus", env = "SLUICE_PROMETHEUS", value_delimiter = ',')]
    pub prometheus: Vec<crate::providers::registry::PrometheusEntry>,
    /// The Prometheus server of metrics that name none (the first `--prometheus` when unset).
    #[arg(long, env = "SLUICE_PROMETHEUS_DEFAULT")]
    pub prometheus_default: Option<String>,
    /// A URL prefix web metrics may call (repeatable; comma-separated in the environment).
    #[arg(
        long = "web-metric-allow",
        env = "SLUICE_WEB_METRIC_ALLOW",
        value_delimiter = ','
    )]
    pub web_metric_allow: Vec<String>,
    /// A registered endpoint (Prometheus NAME or web URL-PREFIX) whose metrics may skip TLS
    /// verification with `insecure: true` (repeatable).
    #[arg(
        long = "metric-insecure-tls",
        env = "SLUICE_METRIC_INSECURE_TLS",
        value_delimiter = ','
    )]
    pub metric_insecure_tls: Vec<String>,
    /// Trust the PEM certificates in PATH for a registered endpoint, as `ENDPOINT=PATH`
    /// (repeatable).
    #[arg(
        long = "metric-ca-bundle",
        env = "SLUICE_METRIC_CA_BUNDLE",
        value_delimiter = ','
    )]
    pub metric_ca_bundle: Vec<crate::providers::registry::CaBundleEntry>,
    /// AnalysisRun measurements taken at once, over all runs (each also bounded by its
    /// provider's timeout); further due measurements wait for a free place.
    #[arg(long, env = "SLUICE_MEASUREMENTS_AT_ONCE", default_value_t = 64)]
    pub measurements_at_once: usize,
    /// Let Rollouts name routing objects in other namespaces (`gatewayAPI.namespace`, Istio
    /// `namespace/name`); refused with InvalidSpec otherwise.
    #[arg(long, env = "SLUICE_ALLOW_CROSS_NAMESPACE_ROUTING")]
    pub allow_cross_namespace_routing: bool,
}

/// A duration flag: `10s`, `500ms`, `1m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let value = match text.parse::<i32>() {
        Ok(secs) => k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(secs),
        Err(_) => k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(text.into()),
    };
    match crate::engine::duration::parse_pause_duration(&value)? {
        d if d.is_zero() => Err(format!("{text}: must be more than zero")),
        d => Ok(d),
    }
}

/// Install the global tracing subscriber.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (tests, the demo): keep the first one.
    drop(result);
}

/// The API configuration from the flags.
///
/// # Errors
/// When the kubeconfig cannot be read or names an unknown context.
async fn config(args: &ControllerArgs) -> anyhow::Result<kube::Config> {
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer()
            .await
            .context("no kubeconfig and not in a cluster: pass --kubeconfig")?,
    };
    Ok(config)
}

/// Build the one `kube::Client` of reconciles from the flags.
///
/// # Errors
/// When the kubeconfig cannot be read or names an unknown context.
pub async fn client(
    args: &ControllerArgs,
    counting: &super::client_metrics::RequestCountLayer,
) -> anyhow::Result<kube::Client> {
    let builder = kube::client::ClientBuilder::try_from(config(args).await?)
        .context("building the Kubernetes client")?;
    Ok(builder
        .with_layer(&super::throttle::ThrottleLayer::new(args.qps, args.burst))
        .with_layer(counting)
        .build())
}

/// Run the controller until interrupted.
///
/// # Errors
/// When the client cannot be built, the CRDs are missing, or the metrics address cannot be bound.
pub async fn run_controller(
    args: ControllerArgs,
    identity_default: String,
    decide: DecideFn,
    routers: RoutersFn,
) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log);
    let traffic_plugins = crate::traffic::PluginRegistry::new(args.traffic_plugins.clone())
        .context("--traffic-plugin")?
        .with_limits(crate::traffic::PluginLimits {
            timeout_max: args.plugin_timeout_max,
            retries_max: args.plugin_retries_max,
            body_max: args.plugin_body_max,
        });
    let metrics = Arc::new(Metrics::new());
    let client = client(&args, &metrics.request_layer()).await?;
    // No redirects: a registered endpoint (plugin, metric server) must not be able to send the
    // controller to an address nobody registered.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let endpoints =
        crate::providers::MetricEndpoints::new(crate::providers::registry::EndpointFlags {
            prometheus: args.prometheus.clone(),
            prometheus_default: args.prometheus_default.clone(),
            web_allow: args.web_metric_allow.clone(),
            insecure: args.metric_insecure_tls.clone(),
            ca_bundles: args.metric_ca_bundle.clone(),
        })
        .context("metric endpoints (--prometheus, --web-metric-allow, --metric-*)")?;
    let clients = crate::providers::registry::EndpointClients::new(http.clone(), &endpoints)
        .context("metric endpoint TLS settings")?;
    let endpoints_shown = endpoints.to_string();
    check_crds(&client).await?;

    let identity = args.identity.clone().unwrap_or(identity_default);
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    let mut http_stop = stop_rx.clone();
    let server = tokio::spawn(super::http::serve(
        listener,
        metrics.clone(),
        ready.clone(),
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
    ));

    let leadership = if args.leader_elect {
        let name = match &args.instance_id {
            Some(id) => format!("{}-{id}", args.lease_name),
            None => args.lease_name.clone(),
        };
        let leadership = Leadership::follower();
        let namespace = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let mut settings = LeaseSettings::new(name, namespace, identity.clone());
        settings.lease_duration = args.leader_elect_lease_duration;
        settings.renew_deadline = args.leader_elect_renew_deadline;
        settings.retry_period = args.leader_elect_retry_period;
        // Its own client: renewals never wait behind reconciles in the throttle.
        let election = super::leader::election_client(config(&args).await?, &identity)
            .context("building the leader election client")?;
        let election = metrics.election_layer().wrap(election);
        super::leader::preflight(&election, &settings).await?;
        tokio::spawn(run_election(
            election,
            settings,
            leadership.clone(),
            stop_rx.clone(),
        ));
        leadership
    } else {
        Leadership::always()
    };

    let settings = Settings {
        namespace: args.namespace.clone(),
        instance_id: args.instance_id.clone(),
        concurrency: args.concurrency,
        identity,
        traffic_plugins,
        measurements_at_once: args.measurements_at_once,
        allow_cross_namespace_routing: args.allow_cross_namespace_routing,
        ..Settings::default()
    };
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("*"),
        leader_elect = args.leader_elect,
        metrics_addr = %args.metrics_addr,
        traffic_plugins = %settings.traffic_plugins,
        metric_endpoints = %endpoints_shown,
        "starting sluice controller"
    );
    let providers = crate::providers::MetricProviders::standard(
        client.clone(),
        std::sync::Arc::new(endpoints),
        clients,
    );
    let wiring = Wiring {
        client,
        http,
        decide,
        routers,
        metrics,
        leadership,
        settings,
        ready,
        providers,
    };
    run(wiring, async {
        shutdown_signal().await;
    })
    .await;
    let _ = stop_tx.send(true);
    server.await.ok();
    tracing::info!("sluice controller stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The controller never installs its CRDs; it checks they exist and says how to install them.
async fn check_crds(client: &kube::Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in crate::crd::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        if api.get_opt(&name).await?.is_none() {
            anyhow::bail!(
                "CustomResourceDefinition {name} is not installed: run `sluice crds | kubectl apply -f -` (or `kubectl apply -k deploy/`)"
            );
        }
    }
    Ok(())
}
