//! The dashboard's HTTP server: the axum router, its shared state, and the guards every request
//! passes (a Host allow-list on loopback against DNS rebinding, and headers that keep the page
//! out of frames and off other origins' scripts).

use super::store::Store;
use super::{actions, assets, sse, view};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use kube::Client;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the dashboard serves.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The namespace to show, or None for every namespace.
    pub namespace: Option<String>,
    /// Refuse actions (403) and offer no buttons.
    pub read_only: bool,
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the dashboard server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by every handler.
pub struct App {
    pub client: Client,
    pub store: Store,
    pub options: Options,
    /// Serving on a loopback address: only loopback Host names are accepted.
    pub loopback: bool,
}

/// Serves the dashboard on `listener` until the future is dropped.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    client: Client,
    listener: TcpListener,
    options: Options,
) -> Result<(), ServeError> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    axum::serve(listener, router(client, options, loopback)).await?;
    Ok(())
}

/// The router, with its watches started (needs a Tokio runtime).
pub fn router(client: Client, options: Options, loopback: bool) -> Router {
    let store = Store::start(&client, options.namespace.as_deref());
    let app = Arc::new(App {
        client,
        store,
        options,
        loopback,
    });
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/api/overview", get(overview))
        .route("/api/rollouts/{namespace}/{name}", get(detail))
        .route("/api/stream", get(sse::stream))
        .route(
            "/api/rollouts/{namespace}/{name}/actions/{action}",
            post(actions::act),
        )
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .with_state(app)
}

async fn overview(State(app): State<Arc<App>>) -> Response {
    if app.store.ready().await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let world = app.store.world();
    Json(view::overview(
        &world,
        app.options.namespace.as_deref(),
        app.options.read_only,
    ))
    .into_response()
}

async fn detail(
    State(app): State<Arc<App>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if app.store.ready().await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let world = app.store.world();
    match view::detail(&world, &namespace, &name, app.options.read_only) {
        Some(detail) => Json(detail).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &format!(
                "rollout {name:?} not found in namespace {namespace:?} (or outside this dashboard's scope)"
            ),
        ),
    }
}

/// A JSON error body `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Refuses a Host that is not a loopback name when serving on loopback (a page on another site
/// that re-resolves its own name to 127.0.0.1 must not read or act), then adds the headers that
/// keep the page in its own origin.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if app.loopback {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !loopback_host(host) {
            return error(
                StatusCode::FORBIDDEN,
                "this dashboard serves loopback only: open it as http://127.0.0.1:PORT/ or http://localhost:PORT/",
            );
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_host_names_pass_on_loopback() {
        for ok in [
            "127.0.0.1:3100",
            "localhost:3100",
            "LOCALHOST",
            "[::1]:3100",
            "127.0.0.2",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:3100",
            "",
            "10.0.0.1:3100",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }
}
