//! What the fault campaign's Rollouts live in: the playground with the Sluice and HTTPRoute
//! CRDs, the campaign namespace, a small HTTP server the analysis templates' `web` metrics
//! read (one path passes, one fails), and the controller's own client (its User-Agent is how
//! the playground's faults find it) with the options every controller of the campaign gets.

use super::NAMESPACE;
use super::scenario::{FAILING, PASSING};
use crate::controller::Settings;
use crate::controller::embedded::EmbeddedOptions;
use crate::controller::failpoint::Failpoint;
use crate::crd::AnalysisTemplate;
use crate::providers::MetricProviders;
use crate::providers::registry::{EndpointClients, EndpointFlags, MetricEndpoints};
use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The User-Agent of the campaign's controllers; the playground's faults match it.
pub const CONTROLLER_AGENT: &str = "sluice-fault-campaign-controller";

/// The HTTPRoutes of the campaign namespace.
pub fn routes(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(client.clone(), NAMESPACE, &ApiResource::from_gvk(&gvk))
}

/// A schemaless HTTPRoute CRD: the router reads and writes the route as JSON.
fn httproute_crd() -> anyhow::Result<CustomResourceDefinition> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "httproutes.gateway.networking.k8s.io"},
        "spec": {
            "group": "gateway.networking.k8s.io",
            "scope": "Namespaced",
            "names": {"plural": "httproutes", "singular": "httproute", "kind": "HTTPRoute",
                      "listKind": "HTTPRouteList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true
                }}
            }]
        }
    }))?)
}

fn template(name: &str, url: &str) -> anyhow::Result<AnalysisTemplate> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"metrics": [{
            "name": "ok",
            "provider": {"web": {"url": url, "jsonPath": "{$.ok}"}},
            "successCondition": "result == true"
        }]}
    }))?)
}

/// Install the CRDs, the namespace and the two analysis templates reading `web_base`.
///
/// # Errors
/// When the API server refuses one of them.
pub async fn install(client: &kube::Client, web_base: &str) -> anyhow::Result<()> {
    let post = PostParams::default();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::crd::crds().into_iter().chain([httproute_crd()?]) {
        crds.create(&post, &crd).await.context("installing a CRD")?;
    }
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&post, &namespace)
        .await?;
    let templates: Api<AnalysisTemplate> = Api::namespaced(client.clone(), NAMESPACE);
    templates
        .create(&post, &template(PASSING, &format!("{web_base}/pass"))?)
        .await?;
    templates
        .create(&post, &template(FAILING, &format!("{web_base}/fail"))?)
        .await?;
    Ok(())
}

/// Serve the analysis answers on loopback: `/pass` says ok, `/fail` says not. Returns the
/// base URL and the server task.
///
/// # Errors
/// When no loopback port can be bound.
pub async fn serve_analysis() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let app = axum::Router::new()
        .route(
            "/pass",
            axum::routing::get(|| async { axum::Json(json!({"ok": true})) }),
        )
        .route(
            "/fail",
            axum::routing::get(|| async { axum::Json(json!({"ok": false})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the campaign's analysis server stopped");
        }
    });
    Ok((format!("http://{addr}"), task))
}

/// The controllers' client: the playground at `base_url`, with the campaign's User-Agent.
///
/// # Errors
/// When kube cannot build the client.
pub fn controller_client(base_url: &str) -> anyhow::Result<kube::Client> {
    let mut config = kube::Config::new(base_url.parse()?);
    config.default_namespace = NAMESPACE.into();
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(CONTROLLER_AGENT),
    ));
    Ok(kube::Client::try_from(config)?)
}

/// How every controller of the campaign is built.
#[derive(Clone)]
pub struct ControllerRecipe {
    /// Its client.
    pub client: kube::Client,
    /// Its metric providers (web metrics may read the analysis server).
    pub providers: MetricProviders,
}

impl ControllerRecipe {
    /// The recipe for a controller reading analyses from `web_base`.
    ///
    /// # Errors
    /// When the client or the endpoint registry cannot be built.
    pub fn new(base_url: &str, web_base: &str) -> anyhow::Result<Self> {
        let client = controller_client(base_url)?;
        let endpoints = MetricEndpoints::new(EndpointFlags {
            web_allow: vec![web_base.to_string()],
            ..EndpointFlags::default()
        })?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let providers = MetricProviders::standard(
            client.clone(),
            Arc::new(endpoints),
            EndpointClients::shared_only(http),
        );
        Ok(Self { client, providers })
    }

    /// The options of one controller: back-off capped at 2 s, so a Rollout whose requests
    /// failed a few times in a row is not left waiting a minute, and this failpoint.
    pub fn options(&self, failpoint: Failpoint) -> EmbeddedOptions {
        EmbeddedOptions {
            settings: Settings {
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(2),
                ..Settings::default()
            },
            providers: Some(self.providers.clone()),
            failpoint: Some(failpoint),
            ..EmbeddedOptions::default()
        }
    }
}
