//! `POST /api/rollouts/{namespace}/{name}/actions/{promote|promote-full|abort|retry}`: the
//! dashboard's buttons, through the same functions as `kubectl sluice promote|abort|retry`. They
//! act with the user's credentials, so a request must carry the `X-Sluice-Dashboard` header (a
//! page on another origin cannot send it without a CORS preflight, which is never granted) and,
//! when the browser names its origin, come from this server's own.

use super::server::{App, error};
use crate::plugin::context::Ctx;
use crate::plugin::steer::Steered;
use crate::plugin::{abort, promote, retry};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use std::sync::Arc;

/// The header the page's script sends with every action.
pub const CSRF_HEADER: &str = "x-sluice-dashboard";

/// An action of the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Promote,
    PromoteFull,
    Abort,
    Retry,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        match text {
            "promote" => Some(Action::Promote),
            "promote-full" => Some(Action::PromoteFull),
            "abort" => Some(Action::Abort),
            "retry" => Some(Action::Retry),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::PromoteFull => "promote-full",
            Action::Abort => "abort",
            Action::Retry => "retry",
        }
    }
}

/// The handler.
pub async fn act(
    State(app): State<Arc<App>>,
    Path((namespace, name, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if app.options.read_only {
        return error(
            StatusCode::FORBIDDEN,
            "this dashboard is read-only (--read-only): use kubectl sluice to act",
        );
    }
    if let Err(why) = same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, why);
    }
    let Some(action) = Action::parse(&action) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("unknown action {action:?}: promote, promote-full, abort or retry"),
        );
    };
    if app.store.ready().await.is_err() || !app.store.has_rollout(&namespace, &name) {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "rollout {name:?} not found in namespace {namespace:?} (or outside this dashboard's scope)"
            ),
        );
    }
    let ctx = Ctx {
        client: app.client.clone(),
        namespace: namespace.clone(),
        all_namespaces: false,
        output: None,
        color: false,
    };
    tracing::info!(%namespace, rollout = %name, action = action.name(), "dashboard action");
    match run(&ctx, &name, action).await {
        Ok(done) => Json(serde_json::json!({ "message": done.line })).into_response(),
        Err(e) => error(StatusCode::CONFLICT, &format!("{e:#}")),
    }
}

async fn run(ctx: &Ctx, name: &str, action: Action) -> anyhow::Result<Steered> {
    match action {
        Action::Promote => promote::promote(ctx, name, false).await,
        Action::PromoteFull => promote::promote(ctx, name, true).await,
        Action::Abort => abort::abort(ctx, name).await,
        Action::Retry => retry::retry(ctx, name).await,
    }
}

/// The CSRF guard: the custom header is present, and an `Origin`, when sent, is this host's.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if !headers.contains_key(CSRF_HEADER) {
        return Err("actions need the X-Sluice-Dashboard header (sent by the dashboard's page)");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok();
    let expected = host.map(|h| format!("http://{h}"));
    match (origin, expected) {
        (Some(o), Some(e)) if o == e || o == e.replacen("http://", "https://", 1) => Ok(()),
        _ => Err("actions are accepted only from the dashboard's own page (Origin differs)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn actions_need_the_header_and_the_dashboards_own_origin() {
        let host = ("host", "127.0.0.1:3100");
        assert!(same_origin(&headers(&[host])).is_err());
        assert!(same_origin(&headers(&[host, (CSRF_HEADER, "1")])).is_ok());
        let own = ("origin", "http://127.0.0.1:3100");
        assert!(same_origin(&headers(&[host, (CSRF_HEADER, "1"), own])).is_ok());
        let other = ("origin", "http://evil.example");
        assert!(same_origin(&headers(&[host, (CSRF_HEADER, "1"), other])).is_err());
    }

    #[test]
    fn action_names_are_the_verbs() {
        for a in [
            Action::Promote,
            Action::PromoteFull,
            Action::Abort,
            Action::Retry,
        ] {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        assert_eq!(Action::parse("delete"), None);
    }
}
