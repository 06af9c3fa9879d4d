//! The `web` metric provider against a real HTTP server the test serves on loopback: what the
//! server receives (method, header, body), what the metric's result is (the JSONPath's value),
//! and every way a measurement fails (non-2xx, timeout, oversized body, redirect, a URL nobody
//! registered) without the provider sending what it must not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice::crd::Metric;
use sluice::providers::registry::{EndpointClients, EndpointFlags, MetricEndpoints};
use sluice::providers::web::WebProvider;
use sluice::providers::{Args, MeasureRequest, MetricProvider, Outcome, ProviderError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server saw.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    token: Option<String>,
    content_type: Option<String>,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn handle(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    log.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_string(),
        token: text("x-token"),
        content_type: text("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    match uri.path() {
        "/api/health" => {
            axum::Json(json!({"data": {"ok": true, "ratio": 0.99, "pods": [{"up": 1}, {"up": 0}]}}))
                .into_response()
        }
        "/api/echo" => {
            let received: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            axum::Json(json!({"received": received})).into_response()
        }
        "/api/fail" => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        "/api/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(json!({"late": true})).into_response()
        }
        // 4 MiB in 64 KiB chunks with no Content-Length: the cap must hold while streaming.
        "/api/big" => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let chunks =
                futures::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Response::new(Body::from_stream(chunks))
        }
        "/api/redirect" => (
            StatusCode::FOUND,
            [(header::LOCATION, "http://sluice.invalid/api/health")],
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no").into_response(),
    }
}

/// Serves `handle` on 127.0.0.1; returns the base URL and the request log.
async fn serve() -> (String, Log) {
    let log: Log = Arc::default();
    let app = Router::new().fallback(handle).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

fn provider(base: &str) -> WebProvider {
    let endpoints = MetricEndpoints::new(EndpointFlags {
        web_allow: vec![format!("{base}/api")],
        ..EndpointFlags::default()
    })
    .unwrap();
    let shared = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    WebProvider::new(Arc::new(endpoints), EndpointClients::shared_only(shared))
}

fn metric(web: Value) -> Metric {
    serde_json::from_value(json!({"name": "health", "provider": {"web": web}})).unwrap()
}

async fn measure(p: &WebProvider, m: &Metric) -> Result<Outcome, ProviderError> {
    let args = Args::default();
    let req = MeasureRequest {
        namespace: "shop",
        run_name: "run-1",
        run_uid: "0b7c6a5e-1111-2222-3333-444455556666",
        metric: m,
        args: &args,
        index: 0,
        now: jiff::Timestamp::UNIX_EPOCH,
    };
    p.measure(&req).await
}

fn value(outcome: Outcome) -> (Value, std::collections::BTreeMap<String, String>) {
    match outcome {
        Outcome::Value { result, metadata } => (result, metadata),
        other => panic!("expected a value, got {other:?}"),
    }
}

#[tokio::test]
async fn get_returns_the_value_at_the_json_path() {
    let (base, log) = serve().await;
    let p = provider(&base);

    let url = format!("{base}/api/health");
    let (ok, metadata) = value(
        measure(&p, &metric(json!({"url": url, "jsonPath": "{$.data.ok}"})))
            .await
            .unwrap(),
    );
    let (whole, _) = value(measure(&p, &metric(json!({"url": url}))).await.unwrap());
    let (ups, _) = value(
        measure(
            &p,
            &metric(json!({"url": url, "jsonPath": "{.data.pods[*].up}"})),
        )
        .await
        .unwrap(),
    );

    assert_eq!(ok, json!(true));
    assert_eq!(
        whole["data"]["ratio"],
        json!(0.99),
        "the default path is the whole document: {whole}"
    );
    assert_eq!(ups, json!([1, 0]), "several matches are an array");
    assert_eq!(metadata.get("url"), Some(&url));
    assert!(log.lock().unwrap().iter().all(|s| s.method == Method::GET));
}

#[tokio::test]
async fn post_sends_the_body_and_headers_the_metric_sets() {
    let (base, log) = serve().await;
    let p = provider(&base);
    let m = metric(json!({
        "url": format!("{base}/api/echo"), "method": "POST",
        "headers": [{"key": "X-Token", "value": "abc"}],
        "body": "{\"canary\": \"v2\"}",
        "jsonPath": "{$.received.canary}",
    }));

    let (echoed, _) = value(measure(&p, &m).await.unwrap());

    assert_eq!(echoed, json!("v2"));
    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.token.as_deref(), Some("abc"));
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/json"),
        "a JSON body is sent as JSON"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen.body).unwrap(),
        json!({"canary": "v2"})
    );
}

#[tokio::test]
async fn a_non_2xx_answer_fails_the_measurement_with_its_status() {
    let (base, _log) = serve().await;
    let err = measure(
        &provider(&base),
        &metric(json!({"url": format!("{base}/api/fail")})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Request(m) if m.contains("503")),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_endpoint_times_out_after_timeout_seconds() {
    let (base, _log) = serve().await;
    let started = std::time::Instant::now();
    let err = measure(
        &provider(&base),
        &metric(json!({"url": format!("{base}/api/slow"), "timeoutSeconds": 1})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Request(m) if m.contains("timed out")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let (base, _log) = serve().await;
    let p = provider(&base).with_max_body(1024 * 1024);
    let err = measure(&p, &metric(json!({"url": format!("{base}/api/big")})))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Response(m) if m.contains("larger than")),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (base, log) = serve().await;
    let err = measure(
        &provider(&base),
        &metric(json!({"url": format!("{base}/api/redirect")})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Request(m) if m.contains("302")),
        "{err}"
    );
    let paths: Vec<String> = log.lock().unwrap().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths,
        ["/api/redirect"],
        "only the registered URL was called"
    );
}

#[tokio::test]
async fn a_url_outside_the_registered_prefixes_is_never_called() {
    let (base, log) = serve().await;
    let err = measure(
        &provider(&base),
        &metric(json!({"url": format!("{base}/private/health")})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ProviderError::NotRegistered(m) if m.contains(&format!("{base}/api"))),
        "the message lists the registered prefixes: {err}"
    );
    assert_eq!(err.category(), "MetricEndpointNotRegistered");
    assert!(log.lock().unwrap().is_empty(), "the server saw a request");
}
