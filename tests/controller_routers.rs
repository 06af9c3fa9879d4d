//! A failing traffic router never freezes a Rollout: with the Gateway API router working and a
//! plugin router down, an abort still sends all traffic back to stable on the HTTPRoute, points
//! the canary Service at stable, keeps the canary's pods while the plugin may still send them
//! traffic, reports the plugin in `status.canary.routers[]` and as `TrafficRouting=False`, and
//! finishes once the plugin answers; a first revision with a router down gets a status; and
//! deleting a Rollout with a router down hands its Services back at once and keeps the
//! finalizer until the router answers. The real controller against the playground, with a
//! plugin served over HTTP by the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use controller_support::*;
use kube::ResourceExt;
use serde_json::{Value, json};
use sluice::controller::Settings;
use sluice::controller::embedded::{Embedded, EmbeddedOptions};
use sluice::crd::{Rollout, RouterStatus};
use sluice::traffic::{PluginLimits, PluginRegistry};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A plugin router that can be taken down: it remembers the last canary weight it was given
/// and the header routes it took.
#[derive(Default)]
struct Plugin {
    down: AtomicBool,
    /// Refuse only header routes (its mesh lacks the header filter for a while).
    refuse_header_routes: AtomicBool,
    canary_weight: Mutex<Option<i64>>,
    header_routes: Mutex<Vec<String>>,
    /// Calls refused while down.
    refused: AtomicUsize,
}

async fn answer(
    State(plugin): State<Arc<Plugin>>,
    Path(method): Path<String>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let refused = plugin.down.load(Ordering::SeqCst)
        || (method == "setHeaderRoute" && plugin.refuse_header_routes.load(Ordering::SeqCst));
    if refused {
        plugin.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "the mesh is down"})),
        );
    }
    if method == "setWeight" {
        *plugin.canary_weight.lock().unwrap() = body["weights"]["canary"]["weight"].as_i64();
    }
    if method == "setHeaderRoute" {
        let name = body["headerRoute"]["name"].as_str().unwrap_or_default();
        plugin.header_routes.lock().unwrap().push(name.to_owned());
    }
    (StatusCode::OK, Json(json!({})))
}

async fn serve(plugin: Arc<Plugin>) -> String {
    let app = axum::Router::new()
        .route("/v1/{method}", post(answer))
        .with_state(plugin);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A controller with the plugin `test/mesh` registered at `address`; no retries, so a call to
/// a plugin that is down fails at once.
fn controller(h: &Harness, address: &str) -> Embedded {
    let registry = PluginRegistry::parse(&[format!("test/mesh={address}")])
        .unwrap()
        .with_limits(PluginLimits {
            retries_max: 0,
            ..PluginLimits::default()
        });
    h.controller_with(EmbeddedOptions {
        settings: Settings {
            traffic_plugins: registry,
            ..Settings::default()
        },
        ..EmbeddedOptions::default()
    })
}

/// `shop` routed through the HTTPRoute and the plugin, the canary scaled down 1 s after an abort.
fn yaml(steps: &str) -> String {
    let yaml = gateway_canary_yaml(2, steps).replace(
        "        gatewayAPI:\n",
        "        plugins:\n          test/mesh: {}\n        gatewayAPI:\n",
    );
    let yaml = yaml.replace(
        "      maxSurge: 1\n",
        "      abortScaleDownDelaySeconds: 1\n      maxSurge: 1\n",
    );
    assert!(
        yaml.contains("test/mesh") && yaml.contains("abortScaleDown"),
        "{yaml}"
    );
    yaml
}

fn router<'r>(r: &'r Rollout, name: &str) -> Option<&'r RouterStatus> {
    r.status
        .as_ref()?
        .canary
        .as_ref()?
        .routers
        .iter()
        .find(|s| s.name == name)
}

fn plugin_failing(r: &Rollout) -> bool {
    router(r, "test/mesh").is_some_and(|s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("the mesh is down"))
    })
}

fn traffic_routing_false(r: &Rollout) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "TrafficRouting" && c.status == "False")
    })
}

async fn canary_weight_on_route(h: &Harness, ns: &str) -> i64 {
    let route = shop_route_api(h, ns).get("shop").await.unwrap();
    route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "shop-canary")
        .and_then(|b| b["weight"].as_i64())
        .unwrap()
}

/// Whether the ReplicaSet of `hash` carries a scale-down deadline that has passed.
async fn scale_down_due(h: &Harness, ns: &str, hash: &str) -> bool {
    let now = jiff::Timestamp::now();
    h.replica_sets(ns).await.iter().any(|rs| {
        rs.labels()
            .get(sluice::crd::POD_TEMPLATE_HASH_LABEL)
            .map(String::as_str)
            == Some(hash)
            && rs
                .annotations()
                .get(sluice::engine::SCALE_DOWN_DEADLINE_ANNOTATION)
                .and_then(|d| d.parse::<jiff::Timestamp>().ok())
                .is_some_and(|d| d <= now)
    })
}

async fn start(ns: &str) -> (Harness, Arc<Plugin>, Embedded) {
    let h = Harness::start().await;
    h.install_httproute_crd().await;
    h.namespace(ns).await;
    h.create_shop_route(ns).await;
    let plugin = Arc::new(Plugin::default());
    let address = serve(plugin.clone()).await;
    let controller = controller(&h, &address);
    (h, plugin, controller)
}

#[tokio::test]
async fn an_abort_with_a_plugin_down_restores_stable_elsewhere_and_keeps_the_canary_until_it_answers()
 {
    let ns = "routers-abort";
    let (h, plugin, controller) = start(ns).await;
    h.apply_yaml(ns, &yaml("        - setWeight: 50\n        - pause: {}\n"))
        .await;
    let v1 = h.first_revision_healthy(ns, "shop").await;
    h.set_image(ns, "shop", "example/app:2").await;
    let r = h
        .wait_rollout(ns, "shop", "paused at 50 %", |r| {
            paused_on_step(r) && current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    let v2 = current_hash(&r).unwrap();
    eventually("both routers at 50 %", || async {
        canary_weight_on_route(&h, ns).await == 50
            && *plugin.canary_weight.lock().unwrap() == Some(50)
    })
    .await;
    assert!(h.rs_replicas(ns, &v2).await > 0);

    plugin.down.store(true, Ordering::SeqCst);
    h.patch_status(ns, "shop", json!({"abort": true})).await;
    let r = h
        .wait_rollout(
            ns,
            "shop",
            "the abort acted on with the plugin reported down",
            |r| {
                plugin_failing(r)
                    && traffic_routing_false(r)
                    && r.status.as_ref().unwrap().aborted_at.is_some()
            },
        )
        .await;
    // The status is written after acting, in the same reconcile: the abort was acted on.
    assert_eq!(
        canary_weight_on_route(&h, ns).await,
        0,
        "the HTTPRoute answers and sends everything to stable: {r:?}"
    );
    assert_eq!(
        router(&r, "gatewayAPI").and_then(|s| s.weight),
        Some(0),
        "{r:?}"
    );
    assert_eq!(router(&r, "gatewayAPI").unwrap().last_error, None, "{r:?}");
    assert_eq!(
        h.service_hash(ns, "shop-canary").await.as_deref(),
        Some(v1.as_str()),
        "the canary Service selects stable"
    );
    eventually("the canary's scale-down deadline passed", || async {
        scale_down_due(&h, ns, &v2).await
    })
    .await;
    // Two more reconciles, each of which would scale the canary down were it not held.
    let seen = plugin.refused.load(Ordering::SeqCst);
    eventually("two more reconciles", || async {
        plugin.refused.load(Ordering::SeqCst) >= seen + 2
    })
    .await;
    assert!(
        h.rs_replicas(ns, &v2).await > 0,
        "the plugin may still send traffic to the canary: its pods stay"
    );
    assert_eq!(*plugin.canary_weight.lock().unwrap(), Some(50));
    let notes = events(&h, ns).await;
    assert!(
        notes
            .iter()
            .any(|(reason, note)| reason == "TrafficPluginError"
                && note.contains("test/mesh")
                && note.contains("the mesh is down")),
        "{notes:?}"
    );

    plugin.down.store(false, Ordering::SeqCst);
    h.wait_rollout(ns, "shop", "the plugin recovered", |r| {
        router(r, "test/mesh").is_some_and(|s| s.last_error.is_none() && s.weight == Some(0))
            && !traffic_routing_false(r)
    })
    .await;
    assert_eq!(*plugin.canary_weight.lock().unwrap(), Some(0));
    eventually("the canary scaled down", || async {
        h.rs_replicas(ns, &v2).await == 0
    })
    .await;
    controller.stop().await;
}

/// A header route a router refused when its step ran is sent again once the router answers,
/// and the Rollout stays at the step after it.
#[tokio::test]
async fn a_header_route_a_router_missed_is_sent_again_once_it_answers() {
    let ns = "routers-header";
    let (h, plugin, controller) = start(ns).await;
    let steps = "        - setWeight: 20\n        - setHeaderRoute: {name: hdr, match: [{headerName: x-canary, headerValue: {exact: \"1\"}}]}\n        - pause: {}\n";
    let yaml = yaml(steps).replace(
        "        plugins:\n",
        "        managedRoutes: [{name: hdr}]\n        plugins:\n",
    );
    h.apply_yaml(ns, &yaml).await;
    h.first_revision_healthy(ns, "shop").await;
    plugin.refuse_header_routes.store(true, Ordering::SeqCst);
    h.set_image(ns, "shop", "example/app:2").await;
    eventually("the plugin refused the header route", || async {
        plugin.refused.load(Ordering::SeqCst) > 0
    })
    .await;
    h.wait_rollout(ns, "shop", "paused after the header route step", |r| {
        step(r) == Some(2) && paused_on_step(r)
    })
    .await;
    assert!(plugin.header_routes.lock().unwrap().is_empty());

    plugin.refuse_header_routes.store(false, Ordering::SeqCst);
    eventually("the plugin got the header route it missed", || async {
        !plugin.header_routes.lock().unwrap().is_empty()
    })
    .await;
    let r = h
        .wait_rollout(ns, "shop", "the router answering again", |r| {
            router(r, "test/mesh").is_some_and(|s| s.last_error.is_none())
        })
        .await;
    assert_eq!(plugin.header_routes.lock().unwrap().as_slice(), ["hdr"]);
    assert_eq!(step(&r), Some(2), "still paused after the header route");
    controller.stop().await;
}

#[tokio::test]
async fn a_first_revision_with_a_router_down_gets_a_status() {
    let ns = "routers-first";
    let (h, plugin, controller) = start(ns).await;
    plugin.down.store(true, Ordering::SeqCst);
    h.apply_yaml(ns, &yaml("        - setWeight: 50\n        - pause: {}\n"))
        .await;
    let r = h
        .wait_rollout(ns, "shop", "a status naming the failing router", |r| {
            plugin_failing(r) && traffic_routing_false(r) && stable_hash(r).is_some()
        })
        .await;
    assert_ne!(
        phase(&r),
        Some(sluice::crd::RolloutPhase::Healthy),
        "not healthy while a router fails: {r:?}"
    );
    plugin.down.store(false, Ordering::SeqCst);
    h.first_revision_healthy(ns, "shop").await;
    controller.stop().await;
}

#[tokio::test]
async fn deleting_with_a_router_down_releases_the_services_and_keeps_the_finalizer_until_it_answers()
 {
    let ns = "routers-delete";
    let (h, plugin, controller) = start(ns).await;
    h.apply_yaml(ns, &yaml("        - setWeight: 50\n        - pause: {}\n"))
        .await;
    h.first_revision_healthy(ns, "shop").await;
    plugin.down.store(true, Ordering::SeqCst);
    h.rollouts(ns)
        .delete("shop", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually("a Warning Event for the incomplete clean-up", || async {
        events(&h, ns).await.iter().any(|(reason, note)| {
            reason == "TrafficPluginError"
                && note.contains("clean-up incomplete")
                && note.contains("test/mesh")
        })
    })
    .await;
    eventually(
        "the Services handed back while the plugin is down",
        || async {
            h.service_hash(ns, "shop-stable").await.is_none()
                && h.service_hash(ns, "shop-canary").await.is_none()
        },
    )
    .await;
    let r = h.rollouts(ns).get_opt("shop").await.unwrap();
    assert!(
        r.is_some_and(|r| r.finalizers().iter().any(|f| f == "sluice.dev/cleanup")),
        "the finalizer stays while the plugin is down"
    );
    plugin.down.store(false, Ordering::SeqCst);
    eventually("the Rollout is deleted", || async {
        h.rollouts(ns).get_opt("shop").await.unwrap().is_none()
    })
    .await;
    assert_eq!(*plugin.canary_weight.lock().unwrap(), Some(0));
    controller.stop().await;
}
