//! Plugin routers over the HTTP+JSON protocol: the example plugin (`examples/plugin_router.rs`)
//! driven through the `TrafficRouter` trait passes the same checks as the built-in Gateway API
//! router (weights 0/20/100, header and mirror routes, baseline, verification, removal, each
//! object validated against the upstream HTTPRoute schema); and the client's request body,
//! retries, timeouts and error mapping.

#![allow(clippy::unwrap_used)] // Test helpers and fixtures panic on bad input by design.

mod controller_support;
mod kubectl_support;
mod traffic_common;

#[allow(dead_code)] // `main` is the example's entry point, unused here.
#[path = "../examples/plugin_router.rs"]
mod plugin_router;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use sluice::crd::{HeaderRoutingMatch, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch};
use sluice::traffic::{PluginRegistry, TrafficError, TrafficRouter, routers_for};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use traffic_common::{
    assert_valid, backend_weights, ctx, offline_client, pairs, rollout, weights, yaml,
};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn seed_route() -> Value {
    yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: apps}
spec:
  parentRefs: [{name: public-gw}]
  rules:
  - name: main
    matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs:
    - {name: shop-stable, port: 8080, weight: 100}
    - {name: shop-canary, port: 8080, weight: 0}
"#,
    )
}

/// The controller's registry with the example plugin served at `address`.
fn registry(address: &str) -> PluginRegistry {
    PluginRegistry::parse(&[format!("example/gateway={address}")]).unwrap()
}

/// The routers of `r` with the example plugin registered at `address`.
fn plugin_routers(r: &sluice::crd::Rollout, address: &str) -> Vec<Box<dyn TrafficRouter>> {
    routers_for(
        r,
        offline_client(),
        reqwest::Client::new(),
        &registry(address),
    )
    .unwrap()
}

fn plugin_rollout() -> sluice::crd::Rollout {
    let routing = json!({
        "managedRoutes": [{"name": "canary-header"}, {"name": "canary-mirror"}],
        "plugins": {"example/gateway": {"timeoutSeconds": 1, "retries": 2}},
    });
    let mut r = rollout(&serde_json::to_string(&routing).unwrap());
    if let Some(plugins) = r
        .spec
        .strategy
        .canary
        .as_mut()
        .unwrap()
        .traffic_routing
        .as_mut()
        .unwrap()
        .plugins
        .as_mut()
    {
        plugins.get_mut("example/gateway").unwrap()["config"] = json!({"route": seed_route()});
    }
    r
}

async fn fetch(address: &str) -> Value {
    reqwest::get(format!("{address}/v1/routes/apps/shop"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn example_plugin_passes_the_router_checks() {
    const HTTP: &str = "gateway-api-httproute.yaml";
    let address = serve(plugin_router::app()).await;
    let r = plugin_rollout();
    let routers = plugin_routers(&r, &address);
    assert_eq!(routers.len(), 1);
    assert_eq!(routers[0].name(), "example/gateway");
    let router = &routers[0];
    let c = ctx(r);

    for canary in [0i64, 20, 100] {
        let w = weights(i32::try_from(canary).unwrap(), &[]);
        router.set_weight(&c, &w).await.unwrap();
        let route = fetch(&address).await;
        assert_valid(HTTP, "v1", &route);
        assert_eq!(
            backend_weights(&route["spec"]["rules"][0]),
            pairs(&[("shop-stable", 100 - canary), ("shop-canary", canary)])
        );
        assert_eq!(router.verify_weight(&c, &w).await.unwrap(), Some(true));
    }
    assert_eq!(
        router.verify_weight(&c, &weights(30, &[])).await.unwrap(),
        Some(false)
    );

    router
        .set_weight(&c, &weights(20, &[("shop-baseline", 20)]))
        .await
        .unwrap();
    let route = fetch(&address).await;
    assert_valid(HTTP, "v1", &route);
    assert_eq!(
        backend_weights(&route["spec"]["rules"][0]),
        pairs(&[
            ("shop-stable", 60),
            ("shop-canary", 20),
            ("shop-baseline", 20)
        ])
    );
    router.set_weight(&c, &weights(20, &[])).await.unwrap();

    let header = SetHeaderRoute {
        name: "canary-header".into(),
        matches: vec![HeaderRoutingMatch {
            header_name: "x-canary".into(),
            header_value: StringMatch {
                exact: Some("yes".into()),
                ..Default::default()
            },
        }],
    };
    router.set_header_route(&c, &header).await.unwrap();
    let mirror = SetMirrorRoute {
        name: "canary-mirror".into(),
        matches: vec![RouteMatch {
            path: Some(StringMatch {
                prefix: Some("/api".into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        percentage: Some(25),
    };
    router.set_mirror_route(&c, &mirror).await.unwrap();
    let route = fetch(&address).await;
    assert_valid(HTTP, "v1", &route);
    let names: Vec<&str> = route["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["canary-header", "canary-mirror", "main"]);
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"],
        json!([{"name": "shop-canary", "port": 8080, "weight": 1}])
    );
    assert_eq!(
        route["spec"]["rules"][1]["filters"][0]["requestMirror"]["percent"],
        json!(25)
    );

    sluice::traffic::restore_stable(&routers, &c).await.unwrap();
    let route = fetch(&address).await;
    assert_valid(HTTP, "v1", &route);
    assert_eq!(
        route,
        seed_route(),
        "restore_stable leaves the user's route with all traffic on stable"
    );
}

#[tokio::test]
async fn every_call_carries_the_rollout_config_hashes_and_arguments() {
    let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
    let app = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/v1/{call}",
            post(move |Json(body): Json<Value>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(body);
                    Json(json!({"verified": null}))
                }
            }),
        )
    };
    let address = serve(app).await;
    let r = plugin_rollout();
    let routers = plugin_routers(&r, &address);
    let c = ctx(r);
    routers[0].set_weight(&c, &weights(20, &[])).await.unwrap();
    assert_eq!(
        routers[0]
            .verify_weight(&c, &weights(20, &[]))
            .await
            .unwrap(),
        None
    );
    routers[0].remove_managed_routes(&c).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let body = &seen[0];
    assert_eq!(body["rollout"]["metadata"]["name"], json!("shop"));
    assert_eq!(
        body["rollout"]["spec"]["strategy"]["canary"]["canaryService"],
        json!("shop-canary")
    );
    assert_eq!(body["config"]["route"]["metadata"]["name"], json!("shop"));
    assert_eq!(body["canaryHash"], json!("c4n4ry"));
    assert_eq!(body["stableHash"], json!("s74b1e"));
    assert_eq!(body["weights"]["canary"]["weight"], json!(20));
    assert_eq!(body["weights"]["stable"]["weight"], json!(80));
    assert!(seen[2].get("weights").is_none());
}

#[tokio::test]
async fn transient_failures_are_retried_and_client_errors_are_not() {
    let hits = Arc::new(AtomicUsize::new(0));
    let mirror_attempts = Arc::new(AtomicUsize::new(0));
    let app = {
        let hits = hits.clone();
        let mirror_attempts = mirror_attempts.clone();
        axum::Router::new()
            .route(
                "/v1/setWeight",
                post(move || {
                    let n = hits.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n < 2 {
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                Json(json!({"error": "warming up"})),
                            )
                        } else {
                            (StatusCode::OK, Json(json!({})))
                        }
                    }
                }),
            )
            .route(
                "/v1/setHeaderRoute",
                post(|| async {
                    (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"error": "no such route"})),
                    )
                }),
            )
            .route(
                "/v1/setMirrorRoute",
                post(move || {
                    mirror_attempts.fetch_add(1, Ordering::SeqCst);
                    async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Json(json!({}))
                    }
                }),
            )
    };
    let address = serve(app).await;
    let r = plugin_rollout();
    let routers = plugin_routers(&r, &address);
    let c = ctx(r);
    routers[0].set_weight(&c, &weights(20, &[])).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "two 503s retried, then success"
    );

    let step = SetHeaderRoute {
        name: "canary-header".into(),
        matches: vec![],
    };
    let err = routers[0].set_header_route(&c, &step).await.unwrap_err();
    assert!(
        matches!(&err, TrafficError::Plugin { plugin, .. } if plugin == "example/gateway"),
        "{err}"
    );
    assert_eq!(err.category(), "TrafficPluginError");
    assert!(err.to_string().contains("HTTP 400: no such route"), "{err}");

    let mirror = SetMirrorRoute {
        name: "canary-mirror".into(),
        matches: vec![],
        percentage: None,
    };
    let err = routers[0].set_mirror_route(&c, &mirror).await.unwrap_err();
    assert!(matches!(err, TrafficError::Plugin { .. }), "{err}");
    // Each attempt times out (the plugin answers after 5 s, the call allows 1 s) and a timeout
    // is retried: the first attempt and two retries, then the error.
    assert_eq!(
        mirror_attempts.load(Ordering::SeqCst),
        3,
        "a timed-out call is retried twice: {err}"
    );

    let gone = plugin_rollout();
    let routers = plugin_routers(&gone, "http://127.0.0.1:9");
    let err = routers[0]
        .set_weight(&ctx(gone), &weights(20, &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, TrafficError::Plugin { .. }), "{err}");
}

#[tokio::test]
async fn malformed_plugin_configuration_is_a_plugin_error() {
    let build = |r: &sluice::crd::Rollout| {
        routers_for(
            r,
            offline_client(),
            reqwest::Client::new(),
            &PluginRegistry::parse(&["acme/router=http://127.0.0.1:9"]).unwrap(),
        )
    };
    let typo = rollout(r#"plugins: {"acme/router": {timeoutSecond: 3}}"#);
    let err = build(&typo).err().unwrap();
    assert_eq!(err.category(), "TrafficPluginError");
    assert!(err.to_string().contains("timeoutSecond"), "{err}");
    let bare = rollout(r#"plugins: {"acme/router": {}}"#);
    assert_eq!(build(&bare).unwrap().len(), 1, "every setting is optional");
}

/// A Rollout cannot choose where the controller sends requests: an address in the Rollout is
/// refused, and an unregistered name is a spec error that names the registered plugins. No
/// request is made in either case (the counting server stays at zero hits).
#[tokio::test]
async fn rollouts_name_registered_plugins_only_and_never_choose_an_address() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Json(json!({})) }
    });
    let attacker = serve(app).await;
    let registered = PluginRegistry::parse(&["example/gateway=http://127.0.0.1:9"]).unwrap();
    let build = |r: &sluice::crd::Rollout, registry: &PluginRegistry| {
        routers_for(r, offline_client(), reqwest::Client::new(), registry)
    };

    let with_address = rollout(&format!(
        r#"plugins: {{"example/gateway": {{address: "{attacker}"}}}}"#
    ));
    let err = build(&with_address, &registered).err().unwrap();
    assert_eq!(err.category(), "TrafficPluginError");
    assert!(err.to_string().contains("must not set `address`"), "{err}");

    let unknown = rollout(r#"plugins: {"acme/router": {}}"#);
    let err = build(&unknown, &registered).err().unwrap();
    assert!(
        matches!(&err, TrafficError::UnregisteredPlugin { plugin, .. } if plugin == "acme/router"),
        "{err}"
    );
    assert_eq!(err.category(), "InvalidSpec");
    let message = err.to_string();
    assert!(message.contains("acme/router"), "{message}");
    assert!(message.contains("registered: example/gateway"), "{message}");
    assert!(
        message.contains("--traffic-plugin acme/router=URL"),
        "{message}"
    );
    let err = build(&unknown, &PluginRegistry::default()).err().unwrap();
    assert!(err.to_string().contains("registered: none"), "{err}");

    // A Rollout being deleted skips the unregistered plugin so its finalizer can finish.
    let mut deleting = unknown.clone();
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
    );
    assert!(build(&deleting, &registered).unwrap().is_empty());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no request ever reaches the named address"
    );
}

/// `--traffic-plugin NAME=URL` is repeatable and takes comma-separated lists (the form
/// `SLUICE_TRAFFIC_PLUGINS` uses); a malformed entry is refused when the flags are parsed.
#[test]
fn the_controller_flag_registers_plugins_by_name() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: sluice::controller::cli::ControllerArgs,
    }
    let cli = Cli::try_parse_from([
        "sluice",
        "--traffic-plugin",
        "acme/router=http://acme.sluice-system.svc:8181",
        "--traffic-plugin",
        "example/gateway=http://gw:8181,other=https://other:443/",
    ])
    .unwrap();
    let registry = PluginRegistry::new(cli.args.traffic_plugins).unwrap();
    assert_eq!(registry.to_string(), "acme/router, example/gateway, other");
    assert_eq!(registry.address("other"), Some("https://other:443"));
    let err = Cli::try_parse_from(["sluice", "--traffic-plugin", "acme"])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("NAME=URL"), "{err}");

    // The environment variable is split on commas too: two entries for one name are refused
    // at start-up, before any connection is attempted.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["controller", "--kubeconfig", "/nonexistent"])
        .env("SLUICE_TRAFFIC_PLUGINS", "a=http://x:1,a=http://y:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("traffic plugin a is registered twice"),
        "{stderr}"
    );
}

/// Under the controller: a Rollout naming an unregistered plugin gets a Warning Event of
/// reason `InvalidSpec` naming the plugin and the registered ones, and deleting it still
/// completes (the finalizer skips the plugin rather than wait for a router it cannot build).
#[tokio::test]
async fn an_unregistered_plugin_is_an_invalid_spec_event_and_deletion_still_completes() {
    use controller_support::*;
    let ns = "unregistered-plugin";
    let h = Harness::start().await;
    let settings = sluice::controller::Settings {
        traffic_plugins: PluginRegistry::parse(&["example/gateway=http://127.0.0.1:9"]).unwrap(),
        ..Default::default()
    };
    let controller = h.controller_with(sluice::controller::embedded::EmbeddedOptions {
        settings,
        ..Default::default()
    });
    h.namespace(ns).await;
    // The finalizer is there from the start, as when the plugin was registered once and the
    // controller has since been restarted without it.
    let yaml = canary_yaml("web", 1, "        - setWeight: 20\n        - pause: {}\n")
        .replace(
            "      steps:\n",
            "      trafficRouting:\n        plugins:\n          acme/router: {}\n      steps:\n",
        )
        .replace(
            "metadata: {name: web}\nspec:",
            &format!(
                "metadata: {{name: web, finalizers: [{}]}}\nspec:",
                sluice::controller::cleanup::FINALIZER
            ),
        );
    assert!(yaml.contains("finalizers"), "{yaml}");
    h.apply_yaml(ns, &yaml).await;
    eventually("an InvalidSpec Event naming the plugin", || async {
        events(&h, ns).await.iter().any(|(reason, note)| {
            reason == "InvalidSpec"
                && note.contains("plugin acme/router is not registered")
                && note.contains("registered: example/gateway")
        })
    })
    .await;
    h.rollouts(ns)
        .delete("web", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually("the Rollout is deleted", || async {
        h.rollouts(ns).get_opt("web").await.unwrap().is_none()
    })
    .await;
    controller.stop().await;
}
