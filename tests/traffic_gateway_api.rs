//! The Gateway API router's transformations, on HTTPRoute and GRPCRoute: the objects it
//! writes at weights 0, 20 and 100, with header and mirror routes, with a baseline and after
//! removing managed routes, each validated against the upstream v1.6.1 schema and asserted
//! field by field; and parent-status verification.

#![allow(clippy::unwrap_used)] // Test helpers and fixtures panic on bad input by design.

mod kubectl_support;
mod traffic_common;

use serde_json::{Value, json};
use sluice::crd::{HeaderRoutingMatch, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch};
use sluice::traffic::gateway_api::{self, RouteKind};
use sluice::traffic::split::{Services, Split};
use traffic_common::{assert_valid, backend_weights, weights, yaml};

const HTTP: &str = "gateway-api-httproute.yaml";
const GRPC: &str = "gateway-api-grpcroute.yaml";

fn svc() -> Services {
    Services {
        canary: "shop-canary".into(),
        stable: "shop-stable".into(),
    }
}

fn http_route() -> Value {
    yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: apps, resourceVersion: "7", generation: 3}
spec:
  parentRefs: [{name: public-gw}]
  hostnames: [shop.example.com]
  rules:
  - name: main
    matches: [{path: {type: PathPrefix, value: /}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-env, value: prod}]}
    backendRefs:
    - {name: shop-stable, port: 8080, weight: 100}
    - {name: shop-canary, port: 8080, weight: 0}
  - name: static
    matches: [{path: {type: PathPrefix, value: /static}}]
    backendRefs: [{name: static, port: 80}]
"#,
    )
}

fn grpc_route() -> Value {
    yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: shop-grpc, namespace: apps}
spec:
  parentRefs: [{name: public-gw}]
  rules:
  - matches: [{method: {service: shop.v1.Cart}}]
    backendRefs:
    - {name: shop-stable, port: 9090, weight: 100}
    - {name: shop-canary, port: 9090, weight: 0}
"#,
    )
}

fn backends(route: &Value, rule: usize) -> Vec<(String, i64)> {
    backend_weights(&route["spec"]["rules"][rule])
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
}

fn header_step(name: &str, matches: &[(&str, StringMatch)]) -> SetHeaderRoute {
    SetHeaderRoute {
        name: name.into(),
        matches: matches
            .iter()
            .map(|(h, v)| HeaderRoutingMatch {
                header_name: (*h).into(),
                header_value: v.clone(),
            })
            .collect(),
    }
}

fn exact(v: &str) -> StringMatch {
    StringMatch {
        exact: Some(v.into()),
        ..Default::default()
    }
}

fn prefix(v: &str) -> StringMatch {
    StringMatch {
        prefix: Some(v.into()),
        ..Default::default()
    }
}

fn managed() -> Vec<String> {
    vec!["canary-header".into(), "canary-mirror".into()]
}

#[test]
fn httproute_weights_0_20_100_change_only_the_split_rule() {
    for (canary, stable) in [(0, 100), (20, 80), (100, 0)] {
        let out = gateway_api::set_weights(
            &http_route(),
            &svc(),
            &Split::new(&weights(canary, &[]), 100),
        )
        .unwrap();
        assert_valid(HTTP, "v1", &out);
        assert_eq!(
            backends(&out, 0),
            pairs(&[("shop-stable", stable), ("shop-canary", i64::from(canary))]),
            "{out:#}"
        );
        assert_eq!(
            out["spec"]["rules"][0]["backendRefs"][0]["port"],
            json!(8080)
        );
        assert_eq!(
            out["spec"]["rules"][1],
            http_route()["spec"]["rules"][1],
            "user rule untouched"
        );
        assert_eq!(
            out["spec"]["parentRefs"],
            http_route()["spec"]["parentRefs"]
        );
        assert_eq!(out["metadata"], http_route()["metadata"]);
    }
}

#[test]
fn max_traffic_weight_is_the_total() {
    let out = gateway_api::set_weights(&http_route(), &svc(), &Split::new(&weights(50, &[]), 1000))
        .unwrap();
    assert_eq!(
        backends(&out, 0),
        pairs(&[("shop-stable", 950), ("shop-canary", 50)])
    );
}

#[test]
fn baseline_is_added_as_a_third_backend_and_removed_when_it_ends() {
    let split = Split::new(&weights(20, &[("shop-baseline", 20)]), 100);
    let out = gateway_api::set_weights(&http_route(), &svc(), &split).unwrap();
    assert_valid(HTTP, "v1", &out);
    assert_eq!(
        backends(&out, 0),
        pairs(&[
            ("shop-stable", 60),
            ("shop-canary", 20),
            ("shop-baseline", 20)
        ]),
        "{out:#}"
    );
    assert_eq!(
        out["spec"]["rules"][0]["backendRefs"][2]["port"],
        json!(8080),
        "baseline on the stable port"
    );
    let back = gateway_api::set_weights(&out, &svc(), &Split::new(&weights(0, &[]), 100)).unwrap();
    assert_eq!(
        backends(&back, 0),
        pairs(&[("shop-stable", 100), ("shop-canary", 0)])
    );
}

#[test]
fn a_route_without_both_services_is_refused() {
    let mut route = http_route();
    route["spec"]["rules"][0]["backendRefs"] = json!([{"name": "shop-stable", "port": 8080}]);
    let err =
        gateway_api::set_weights(&route, &svc(), &Split::new(&weights(20, &[]), 100)).unwrap_err();
    assert!(err.contains("shop-canary"), "{err}");
}

#[test]
fn header_route_rule_comes_first_and_sends_matches_to_the_canary() {
    let step = header_step(
        "canary-header",
        &[("x-canary", exact("yes")), ("x-user", prefix("beta."))],
    );
    let route =
        gateway_api::set_weights(&http_route(), &svc(), &Split::new(&weights(20, &[]), 100))
            .unwrap();
    let out = gateway_api::set_header_route(&route, &svc(), &step, &managed()).unwrap();
    assert_valid(HTTP, "v1", &out);
    let rules = out["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3, "{out:#}");
    assert_eq!(rules[0]["name"], json!("canary-header"));
    assert_eq!(
        rules[0]["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/"}, "headers": [
            {"name": "x-canary", "type": "Exact", "value": "yes"},
            {"name": "x-user", "type": "RegularExpression", "value": "^beta\\..*"},
        ]}])
    );
    assert_eq!(
        rules[0]["backendRefs"],
        json!([{"name": "shop-canary", "port": 8080, "weight": 1}])
    );
    assert_eq!(
        rules[0]["filters"], route["spec"]["rules"][0]["filters"],
        "filters copied"
    );
    assert_eq!(rules[1], route["spec"]["rules"][0]);
    // Setting weights later leaves the header rule alone.
    let later =
        gateway_api::set_weights(&out, &svc(), &Split::new(&weights(40, &[]), 100)).unwrap();
    assert_eq!(later["spec"]["rules"][0], rules[0]);
    assert_eq!(
        backends(&later, 1),
        pairs(&[("shop-stable", 60), ("shop-canary", 40)])
    );
    // Upsert: the same step again changes nothing; no matches removes it.
    assert_eq!(
        gateway_api::set_header_route(&out, &svc(), &step, &managed()).unwrap(),
        out
    );
    let removed =
        gateway_api::set_header_route(&out, &svc(), &header_step("canary-header", &[]), &managed())
            .unwrap();
    assert_eq!(removed, route);
}

#[test]
fn mirror_rule_keeps_the_split_and_mirrors_a_percentage() {
    let step = SetMirrorRoute {
        name: "canary-mirror".into(),
        matches: vec![RouteMatch {
            method: Some(exact("get")),
            path: Some(prefix("/api")),
            headers: [("x-debug".to_owned(), exact("1"))].into(),
        }],
        percentage: Some(35),
    };
    let route =
        gateway_api::set_weights(&http_route(), &svc(), &Split::new(&weights(20, &[]), 100))
            .unwrap();
    let out =
        gateway_api::set_mirror_route(&route, RouteKind::Http, &svc(), &step, &managed()).unwrap();
    assert_valid(HTTP, "v1", &out);
    let rule = &out["spec"]["rules"][0];
    assert_eq!(rule["name"], json!("canary-mirror"), "{out:#}");
    assert_eq!(
        rule["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET",
                "headers": [{"name": "x-debug", "type": "Exact", "value": "1"}]}])
    );
    assert_eq!(
        backends(&out, 0),
        pairs(&[("shop-stable", 80), ("shop-canary", 20)])
    );
    let filters = rule["filters"].as_array().unwrap();
    assert_eq!(filters[0]["type"], json!("RequestHeaderModifier"));
    assert_eq!(
        filters[1],
        json!({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shop-canary", "port": 8080}, "percent": 35}})
    );
    // Weight changes reach the mirror rule too, since it splits like the primary rule.
    let later =
        gateway_api::set_weights(&out, &svc(), &Split::new(&weights(50, &[]), 100)).unwrap();
    assert_eq!(
        backends(&later, 0),
        pairs(&[("shop-stable", 50), ("shop-canary", 50)])
    );
}

#[test]
fn managed_rules_follow_managed_routes_order_and_are_all_removed() {
    let route = http_route();
    let mirror = SetMirrorRoute {
        name: "canary-mirror".into(),
        matches: vec![RouteMatch {
            path: Some(exact("/checkout")),
            ..Default::default()
        }],
        percentage: None,
    };
    let out = gateway_api::set_mirror_route(&route, RouteKind::Http, &svc(), &mirror, &managed())
        .unwrap();
    let out = gateway_api::set_header_route(
        &out,
        &svc(),
        &header_step("canary-header", &[("x-canary", exact("1"))]),
        &managed(),
    )
    .unwrap();
    assert_valid(HTTP, "v1", &out);
    let names: Vec<&str> = out["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["canary-header", "canary-mirror", "main", "static"]);
    assert_eq!(
        out["spec"]["rules"][1]["filters"][1]["requestMirror"]["percent"],
        json!(100)
    );
    let clean = gateway_api::remove_managed_routes(&out, &managed()).unwrap();
    assert_valid(HTTP, "v1", &clean);
    assert_eq!(
        clean, route,
        "after remove_managed_routes only the user's rules are left"
    );
}

#[test]
fn grpcroute_weights_header_and_mirror() {
    for (canary, stable) in [(0, 100), (20, 80), (100, 0)] {
        let out = gateway_api::set_weights(
            &grpc_route(),
            &svc(),
            &Split::new(&weights(canary, &[]), 100),
        )
        .unwrap();
        assert_valid(GRPC, "v1", &out);
        assert_eq!(
            backends(&out, 0),
            pairs(&[("shop-stable", stable), ("shop-canary", i64::from(canary))])
        );
    }
    let base = gateway_api::set_weights(
        &grpc_route(),
        &svc(),
        &Split::new(&weights(20, &[("shop-baseline", 20)]), 100),
    )
    .unwrap();
    assert_valid(GRPC, "v1", &base);
    assert_eq!(
        backends(&base, 0),
        pairs(&[
            ("shop-stable", 60),
            ("shop-canary", 20),
            ("shop-baseline", 20)
        ])
    );

    let managed = managed();
    let out = gateway_api::set_header_route(
        &grpc_route(),
        &svc(),
        &header_step("canary-header", &[("x-canary", exact("1"))]),
        &managed,
    )
    .unwrap();
    assert_valid(GRPC, "v1", &out);
    assert_eq!(
        out["spec"]["rules"][0],
        json!({"name": "canary-header",
               "matches": [{"method": {"service": "shop.v1.Cart"}, "headers": [{"name": "x-canary", "type": "Exact", "value": "1"}]}],
               "backendRefs": [{"name": "shop-canary", "port": 9090, "weight": 1}]})
    );
    let mirror = SetMirrorRoute {
        name: "canary-mirror".into(),
        matches: vec![RouteMatch {
            headers: [("x-debug".to_owned(), exact("1"))].into(),
            ..Default::default()
        }],
        percentage: Some(10),
    };
    let out =
        gateway_api::set_mirror_route(&out, RouteKind::Grpc, &svc(), &mirror, &managed).unwrap();
    assert_valid(GRPC, "v1", &out);
    assert_eq!(
        out["spec"]["rules"][1]["filters"][0]["requestMirror"]["percent"],
        json!(10),
        "{out:#}"
    );
    let path_mirror = SetMirrorRoute {
        matches: vec![RouteMatch {
            path: Some(exact("/x")),
            ..Default::default()
        }],
        ..mirror
    };
    assert!(
        gateway_api::set_mirror_route(
            &grpc_route(),
            RouteKind::Grpc,
            &svc(),
            &path_mirror,
            &managed
        )
        .is_err()
    );
    let clean = gateway_api::remove_managed_routes(&out, &managed).unwrap();
    assert_eq!(clean, grpc_route());
}

#[test]
fn verification_needs_every_parent_accepted_at_the_current_generation() {
    let mut route = http_route();
    assert!(!gateway_api::accepted(&route), "no status yet");
    let parent = |status: &str, generation: i64| {
        json!({"parentRef": {"name": "public-gw"}, "controllerName": "example.com/gw",
               "conditions": [{"type": "Accepted", "status": status, "reason": "Accepted", "message": "",
                               "observedGeneration": generation, "lastTransitionTime": "2026-11-22T14:00:00Z"}]})
    };
    route["status"] = json!({"parents": [parent("True", 3)]});
    assert_valid(HTTP, "v1", &route);
    assert!(gateway_api::accepted(&route));
    route["status"] = json!({"parents": [parent("True", 3), parent("True", 2)]});
    assert!(
        !gateway_api::accepted(&route),
        "one parent has not seen generation 3"
    );
    route["status"] = json!({"parents": [parent("False", 3)]});
    assert!(!gateway_api::accepted(&route));
}

#[test]
fn the_schema_check_rejects_unknown_fields_wrong_types_and_out_of_range_weights() {
    let mut unknown = http_route();
    unknown["spec"]["rules"][0]["backendRefs"][0]["wieght"] = json!(5);
    let mut wrong_type = http_route();
    wrong_type["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!("20");
    let mut too_big = http_route();
    too_big["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(1_000_001);
    for bad in [unknown, wrong_type, too_big] {
        let result = std::panic::catch_unwind(|| assert_valid(HTTP, "v1", &bad));
        assert!(result.is_err(), "accepted an invalid route: {bad:#}");
    }
}
