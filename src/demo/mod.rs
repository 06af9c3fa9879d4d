//! The `sluice playground` demo (the README's first command): start the embedded playground
//! with its demo traffic and a real `prometheus` scraping it, install the CRDs, run this
//! controller in-process against it (with that Prometheus as its default metric endpoint),
//! then tell the story: a canary to Healthy, an abort and a retry (`basic`), and a canary the
//! judge promotes and one it aborts (`judge`), printing what happens; leave nothing behind.
//! Without `prometheus` the judge part is skipped with a line saying how to install it. A CLI
//! entry point: errors are `anyhow`.

mod basic;
mod judge;
mod watch;

use crate::controller::embedded::{Embedded, EmbeddedOptions};
use crate::crd::Rollout;
use crate::playground::prometheus::{PrometheusServer, find_binary};
use crate::playground::traffic::TrafficOptions;
use crate::playground::{Playground, PlaygroundHandle, PlaygroundOptions, SimulationOptions};
use crate::providers::MetricProviders;
use crate::providers::registry::{EndpointClients, EndpointFlags, MetricEndpoints};
use anyhow::Context as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope};
use serde::Deserialize as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const NAMESPACE: &str = "default";
/// The name the demo registers its Prometheus under (the controller's default endpoint).
const PROMETHEUS_NAME: &str = "playground";
/// Requests per second entering each demo service: enough that the judge sees rare errors
/// (`examples/playground/judge.yaml` says how many).
const REQUESTS_PER_SECOND: f64 = 4000.0;

/// How to run the demo.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// The `prometheus` binary; `None` looks for one on PATH.
    pub prometheus_binary: Option<PathBuf>,
}

/// Run the demo.
///
/// # Errors
/// When the playground or a given Prometheus cannot start, or a Rollout does not reach the
/// expected state in time.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let playground = Playground::start(playground_options())
        .await
        .context("starting the playground")?;
    println!("▶ playground API server on {}", playground.base_url());
    println!(
        "  kubeconfig: {}  (`export KUBECONFIG={}` to follow along with kubectl sluice)",
        playground.kubeconfig_path().display(),
        playground.kubeconfig_path().display()
    );
    let prometheus = start_prometheus(&playground, options.prometheus_binary).await;
    let result = match prometheus {
        Ok(prometheus) => {
            let result = demo(&playground, prometheus.as_ref()).await;
            if let Some(prometheus) = prometheus {
                prometheus.stop().await;
                println!("■ prometheus stopped");
            }
            result
        }
        Err(error) => Err(error),
    };
    playground.shutdown().await;
    println!(
        "■ playground stopped and its kubeconfig removed ({:.1}s in all)",
        started.elapsed().as_secs_f64()
    );
    result
}

fn playground_options() -> PlaygroundOptions {
    PlaygroundOptions {
        simulation: SimulationOptions {
            pod_ready_delay: Duration::from_millis(400),
            traffic: Some(TrafficOptions {
                requests_per_second: REQUESTS_PER_SECOND,
                ..TrafficOptions::default()
            }),
            ..SimulationOptions::default()
        },
        ..PlaygroundOptions::default()
    }
}

/// A Prometheus scraping the demo traffic every second: the given binary (which must start),
/// or one from PATH; `None` (after saying how to get one) when there is none.
async fn start_prometheus(
    playground: &PlaygroundHandle,
    binary: Option<PathBuf>,
) -> anyhow::Result<Option<PrometheusServer>> {
    let binary = match binary.map_or_else(find_binary, Ok) {
        Ok(binary) => binary,
        Err(_) => {
            println!(
                "ℹ no `prometheus` on PATH, so the judge part is skipped: install it (`apt-get install prometheus`) or pass `--prometheus-binary PATH`"
            );
            return Ok(None);
        }
    };
    let targets: Vec<String> = playground.demo_metrics_target().into_iter().collect();
    let server = PrometheusServer::start(&binary, &targets, Duration::from_secs(1))
        .await
        .with_context(|| format!("starting {}", binary.display()))?;
    println!(
        "▶ prometheus ({}) on {}, scraping the demo traffic at {} every second",
        binary.display(),
        server.url(),
        playground.demo_metrics_url().unwrap_or_default()
    );
    Ok(Some(server))
}

async fn demo(
    playground: &PlaygroundHandle,
    prometheus: Option<&PrometheusServer>,
) -> anyhow::Result<()> {
    let client = playground.client();
    install_crds(&client).await?;
    let controller = Embedded::spawn(client.clone(), controller_options(&client, prometheus)?);
    println!("▶ started the Sluice controller in this process");
    let result = scenarios(&client, prometheus.is_some()).await;
    controller.stop().await;
    result
}

async fn scenarios(client: &kube::Client, judge: bool) -> anyhow::Result<()> {
    basic::scenario(client).await?;
    if judge {
        judge::scenario(client).await?;
    }
    println!("\n✔ the demo is done");
    Ok(())
}

async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let gateway: CustomResourceDefinition =
        serde_yaml::from_str(judge::HTTPROUTE_CRD).context("the HTTPRoute CRD")?;
    for crd in crate::crd::crds().into_iter().chain([gateway]) {
        crds.create(&PostParams::default(), &crd)
            .await
            .with_context(|| format!("installing CRD {}", crd.name_any()))?;
    }
    println!("▶ installed the Sluice CRDs (and a minimal Gateway API HTTPRoute CRD)");
    Ok(())
}

/// The controller's options: its default metric endpoint is the demo's Prometheus.
fn controller_options(
    client: &kube::Client,
    prometheus: Option<&PrometheusServer>,
) -> anyhow::Result<EmbeddedOptions> {
    let Some(prometheus) = prometheus else {
        return Ok(EmbeddedOptions::default());
    };
    let entry = format!("{PROMETHEUS_NAME}={}", prometheus.url());
    let endpoints = MetricEndpoints::new(EndpointFlags {
        prometheus: vec![entry.parse()?],
        prometheus_default: Some(PROMETHEUS_NAME.into()),
        ..EndpointFlags::default()
    })?;
    let http = reqwest::Client::builder()
        .build()
        .context("building the HTTP client")?;
    Ok(EmbeddedOptions {
        providers: Some(MetricProviders::standard(
            client.clone(),
            Arc::new(endpoints),
            EndpointClients::shared_only(http),
        )),
        ..EmbeddedOptions::default()
    })
}

/// Create every object of a multi-document YAML stream in the demo namespace (as
/// `kubectl create -f` would).
async fn create_all(client: &kube::Client, yaml: &str) -> anyhow::Result<()> {
    let discovery = Discovery::new(client.clone()).run().await?;
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let obj = DynamicObject::deserialize(doc)?;
        let types = obj
            .types
            .clone()
            .context("an object without apiVersion/kind")?;
        let gvk = kube::api::GroupVersionKind::try_from(&types)?;
        let (resource, caps): (ApiResource, _) = discovery
            .resolve_gvk(&gvk)
            .with_context(|| format!("the server does not serve {}", types.kind))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), NAMESPACE, &resource),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        api.create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating {} {}", types.kind, obj.name_any()))?;
    }
    Ok(())
}

async fn set_image(rollouts: &Api<Rollout>, name: &str, image: &str) -> anyhow::Result<()> {
    let rollout = rollouts.get(name).await?;
    let mut template = rollout
        .spec
        .template
        .context("the Rollout has a template")?;
    if let Some(spec) = template.spec.as_mut() {
        for container in &mut spec.containers {
            container.image = Some(image.into());
        }
    }
    patch_template(rollouts, name, serde_json::to_value(template)?).await
}

async fn patch_template(
    rollouts: &Api<Rollout>,
    name: &str,
    template: serde_json::Value,
) -> anyhow::Result<()> {
    rollouts
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"template": template}})),
        )
        .await?;
    Ok(())
}

async fn patch_status(
    rollouts: &Api<Rollout>,
    name: &str,
    patch: serde_json::Value,
) -> anyhow::Result<()> {
    rollouts
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": patch })),
        )
        .await?;
    Ok(())
}
