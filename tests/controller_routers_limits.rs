//! The controller bounds every traffic plugin call, whatever the Rollout asks: a Rollout's
//! `timeoutSeconds` and `retries` are lowered to `--plugin-timeout-max` and
//! `--plugin-retries-max`, an answer larger than `--plugin-body-max` is refused, and a redirect
//! is never followed. Real plugin servers over HTTP, through `routers_for` as the controller
//! builds them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kubectl_support;
mod traffic_common;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::json;
use sluice::traffic::plugin::call_deadline;
use sluice::traffic::{PluginLimits, PluginRegistry, TrafficError, TrafficRouter, routers_for};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use traffic_common::{ctx, offline_client, rollout, weights};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The controller's own HTTP client: no redirects.
fn controller_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The plugin router of a Rollout asking for `settings`, with the controller's `limits`.
fn router(address: &str, settings: &str, limits: PluginLimits) -> Box<dyn TrafficRouter> {
    let registry = PluginRegistry::parse(&[format!("acme/router={address}")])
        .unwrap()
        .with_limits(limits);
    let r = rollout(&format!(r#"plugins: {{"acme/router": {settings}}}"#));
    routers_for(&r, offline_client(), controller_http(), &registry)
        .unwrap()
        .pop()
        .unwrap()
}

fn message(error: &TrafficError) -> String {
    assert!(matches!(error, TrafficError::Plugin { .. }), "{error}");
    error.to_string()
}

#[tokio::test]
async fn a_rollout_cannot_raise_the_timeout_or_the_retries_past_the_controller_caps() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let app = axum::Router::new().route(
        "/v1/setWeight",
        post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Json(json!({}))
            }
        }),
    );
    let address = serve(app).await;
    let limits = PluginLimits {
        timeout_max: Duration::from_secs(1),
        retries_max: 1,
        ..PluginLimits::default()
    };
    let r = router(&address, "{timeoutSeconds: 60, retries: 5}", limits);
    let c = ctx(rollout(r#"plugins: {"acme/router": {}}"#));
    let err = r.set_weight(&c, &weights(20, &[])).await.unwrap_err();
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one attempt and one retry, not six: {err}"
    );
    let text = message(&err);
    assert!(
        text.contains("timed out") || text.contains("no answer"),
        "{text}"
    );
}

#[test]
fn the_whole_call_is_bounded_by_the_caps() {
    // Defaults: 3 attempts of 10 s and back-offs of 0.2 s and 0.4 s.
    assert_eq!(
        call_deadline(Duration::from_secs(10), 2),
        Duration::from_millis(30_600)
    );
    assert_eq!(
        call_deadline(Duration::from_secs(1), 0),
        Duration::from_secs(1)
    );
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused() {
    let big = format!("{{\"padding\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let app = axum::Router::new().route(
        "/v1/setWeight",
        post(move || {
            let big = big.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], big) }
        }),
    );
    let address = serve(app).await;
    let r = router(&address, "{}", PluginLimits::default());
    let c = ctx(rollout(r#"plugins: {"acme/router": {}}"#));
    let err = r.set_weight(&c, &weights(20, &[])).await.unwrap_err();
    let text = message(&err);
    assert!(
        text.contains("larger than the limit of 1048576 bytes"),
        "{text}"
    );
}

#[tokio::test]
async fn a_redirect_is_refused_and_never_followed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let elsewhere = serve(axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Json(json!({})) }
    }))
    .await;
    let target = format!("{elsewhere}/v1/setWeight");
    let app =
        axum::Router::new().route(
            "/v1/setWeight",
            post(move || {
                let target = target.clone();
                async move {
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response()
                }
            }),
        );
    let address = serve(app).await;
    let r = router(&address, "{}", PluginLimits::default());
    let c = ctx(rollout(r#"plugins: {"acme/router": {}}"#));
    let err = r.set_weight(&c, &weights(20, &[])).await.unwrap_err();
    let text = message(&err);
    assert!(
        text.contains("HTTP 307") && text.contains("redirect"),
        "{text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
}
