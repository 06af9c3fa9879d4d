//! An example out-of-process traffic router speaking Sluice's HTTP+JSON plugin protocol
//! (`docs/plugins.md`). It keeps one Gateway API HTTPRoute per Rollout in memory, seeded from
//! the plugin configuration's `route`, and applies the calls to it with the same pure
//! transformations as the built-in Gateway API router; `GET /v1/routes/{namespace}/{rollout}`
//! shows the result. A real plugin would write to its mesh or load balancer instead.
//!
//! Run: `cargo run --example plugin_router -- 127.0.0.1:8181`, and register it with the
//! controller: `sluice controller --traffic-plugin example/gateway=http://127.0.0.1:8181`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice::crd::{Rollout, SetHeaderRoute, SetMirrorRoute, TrafficWeights};
use sluice::traffic::gateway_api::{self, RouteKind};
use sluice::traffic::split::{self, Split};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Routes by `namespace/rollout`.
type Routes = Arc<Mutex<HashMap<String, Value>>>;

/// The body of every call.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Call {
    rollout: Rollout,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    weights: Option<TrafficWeights>,
    #[serde(default)]
    header_route: Option<SetHeaderRoute>,
    #[serde(default)]
    mirror_route: Option<SetMirrorRoute>,
}

type Answer = (StatusCode, Json<Value>);

fn fail(status: StatusCode, error: impl Into<String>) -> Answer {
    (status, Json(json!({"error": error.into()})))
}

fn key(r: &Rollout) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or("default"),
        r.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Applies `f` to the Rollout's route (seeded from `config.route`) and stores the result.
fn apply(
    routes: &Routes,
    call: &Call,
    f: impl FnOnce(&Value, &split::Services, &[String]) -> Result<Value, String>,
) -> Answer {
    let services = match split::services(&call.rollout, "example") {
        Ok(s) => s,
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let managed = split::managed_routes(&call.rollout);
    let mut routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
    let current = match routes.get(&key(&call.rollout)) {
        Some(route) => route.clone(),
        None => match call.config.get("route") {
            Some(seed) => seed.clone(),
            None => {
                return fail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "config.route (an HTTPRoute) is required",
                );
            }
        },
    };
    match f(&current, &services, &managed) {
        Ok(next) => {
            routes.insert(key(&call.rollout), next);
            (StatusCode::OK, Json(json!({})))
        }
        Err(reason) => fail(StatusCode::UNPROCESSABLE_ENTITY, reason),
    }
}

async fn set_weight(State(routes): State<Routes>, Json(call): Json<Call>) -> Answer {
    let Some(weights) = call.weights.clone() else {
        return fail(StatusCode::BAD_REQUEST, "weights is required");
    };
    let split = Split::new(&weights, split::max_weight(&call.rollout));
    apply(&routes, &call, |route, svc, _| {
        gateway_api::set_weights(route, svc, &split)
    })
}

async fn set_header_route(State(routes): State<Routes>, Json(call): Json<Call>) -> Answer {
    let Some(step) = call.header_route.clone() else {
        return fail(StatusCode::BAD_REQUEST, "headerRoute is required");
    };
    apply(&routes, &call, |route, svc, managed| {
        gateway_api::set_header_route(route, svc, &step, managed)
    })
}

async fn set_mirror_route(State(routes): State<Routes>, Json(call): Json<Call>) -> Answer {
    let Some(step) = call.mirror_route.clone() else {
        return fail(StatusCode::BAD_REQUEST, "mirrorRoute is required");
    };
    apply(&routes, &call, |route, svc, managed| {
        gateway_api::set_mirror_route(route, RouteKind::Http, svc, &step, managed)
    })
}

async fn verify_weight(State(routes): State<Routes>, Json(call): Json<Call>) -> Answer {
    let (Some(weights), Ok(svc)) = (&call.weights, split::services(&call.rollout, "example"))
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "weights and the Rollout's Services are required",
        );
    };
    let split = Split::new(weights, split::max_weight(&call.rollout));
    let routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
    let verified = routes
        .get(&key(&call.rollout))
        .map(|route| gateway_api::set_weights(route, &svc, &split).is_ok_and(|d| &d == route));
    (
        StatusCode::OK,
        Json(json!({"verified": verified.unwrap_or(false)})),
    )
}

async fn remove_managed_routes(State(routes): State<Routes>, Json(call): Json<Call>) -> Answer {
    if !routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(&key(&call.rollout))
    {
        return (StatusCode::OK, Json(json!({})));
    }
    apply(&routes, &call, |route, _, managed| {
        gateway_api::remove_managed_routes(route, managed)
    })
}

async fn show(
    State(routes): State<Routes>,
    Path((namespace, rollout)): Path<(String, String)>,
) -> Answer {
    match routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&format!("{namespace}/{rollout}"))
    {
        Some(route) => (StatusCode::OK, Json(route.clone())),
        None => fail(StatusCode::NOT_FOUND, "no route for this Rollout yet"),
    }
}

/// The plugin's HTTP API.
pub fn app() -> Router {
    Router::new()
        .route("/v1/setWeight", post(set_weight))
        .route("/v1/setHeaderRoute", post(set_header_route))
        .route("/v1/setMirrorRoute", post(set_mirror_route))
        .route("/v1/verifyWeight", post(verify_weight))
        .route("/v1/removeManagedRoutes", post(remove_managed_routes))
        .route("/v1/routes/{namespace}/{rollout}", get(show))
        .with_state(Routes::default())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8181".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("plugin router listening on http://{addr}");
    axum::serve(listener, app()).await?;
    Ok(())
}
