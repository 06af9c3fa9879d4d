//! The Istio router's transformations: VirtualService HTTP, TLS and TCP weights with a
//! host-level and a subset-level split, DestinationRule subset hashes, header and mirror
//! routes placed before the user's routes in `managedRoutes` order, a baseline, and removal,
//! each validated against the upstream Istio schema (networking.istio.io/v1beta1) and asserted
//! field by field.

#![allow(clippy::unwrap_used)] // Test helpers and fixtures panic on bad input by design.

mod kubectl_support;
mod traffic_common;

use serde_json::{Value, json};
use sluice::crd::{
    HeaderRoutingMatch, IstioDestinationRule, IstioTcpRoute, IstioTlsRoute, IstioVirtualService,
    RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use sluice::traffic::istio::{self, Mode};
use sluice::traffic::split::{Services, Split};
use traffic_common::{assert_valid, weights, yaml};

const VS: &str = "istio-virtualservice.yaml";
const DR: &str = "istio-destinationrule.yaml";
const V: &str = "v1beta1";

fn host_mode() -> Mode {
    Mode::Host(Services {
        canary: "shop-canary".into(),
        stable: "shop-stable".into(),
    })
}

fn subset_mode() -> Mode {
    Mode::Subset {
        canary: "canary".into(),
        stable: "stable".into(),
    }
}

fn host_vs() -> Value {
    yaml(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: shop-vs, namespace: apps}
spec:
  hosts: [shop.example.com]
  gateways: [shop-gw]
  http:
  - name: primary
    match: [{uri: {prefix: /}}]
    route:
    - destination: {host: shop-stable, port: {number: 8080}}
      weight: 100
    - destination: {host: shop-canary, port: {number: 8080}}
      weight: 0
  - name: legacy
    match: [{uri: {prefix: /old}}]
    route:
    - destination: {host: legacy}
  tls:
  - match: [{port: 443, sniHosts: [shop.example.com]}]
    route:
    - destination: {host: shop-stable, port: {number: 8443}}
      weight: 100
    - destination: {host: shop-canary.apps.svc.cluster.local, port: {number: 8443}}
      weight: 0
  tcp:
  - match: [{port: 5432}]
    route:
    - destination: {host: shop-stable, port: {number: 5432}}
      weight: 100
    - destination: {host: shop-canary, port: {number: 5432}}
      weight: 0
"#,
    )
}

fn host_cfg() -> IstioVirtualService {
    IstioVirtualService {
        name: "shop-vs".into(),
        routes: vec!["primary".into()],
        tls_routes: vec![IstioTlsRoute {
            port: Some(443),
            sni_hosts: vec!["shop.example.com".into()],
        }],
        tcp_routes: vec![IstioTcpRoute { port: Some(5432) }],
    }
}

fn subset_vs() -> Value {
    yaml(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: shop-vs, namespace: apps}
spec:
  hosts: [shop]
  http:
  - route:
    - destination: {host: shop, subset: stable}
      weight: 100
    - destination: {host: shop, subset: canary}
      weight: 0
"#,
    )
}

fn subset_cfg() -> IstioVirtualService {
    IstioVirtualService {
        name: "shop-vs".into(),
        ..Default::default()
    }
}

fn dr() -> Value {
    yaml(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: shop-dr, namespace: apps}
spec:
  host: shop
  subsets:
  - name: canary
    labels: {app: shop}
  - name: stable
    labels: {app: shop}
"#,
    )
}

fn weights_of(route: &Value) -> Vec<(String, i64)> {
    route["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let dest = &d["destination"];
            let name = dest["subset"]
                .as_str()
                .or(dest["host"].as_str())
                .unwrap()
                .to_owned();
            (name, d["weight"].as_i64().unwrap_or(-1))
        })
        .collect()
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
}

fn managed() -> Vec<String> {
    vec!["canary-header".into(), "canary-mirror".into()]
}

#[test]
fn host_split_weights_0_20_100_on_http_tls_and_tcp_routes() {
    for canary in [0i64, 20, 100] {
        let split = Split::new(&weights(i32::try_from(canary).unwrap(), &[]), 100);
        let out =
            istio::set_weights(&host_vs(), &host_cfg(), &host_mode(), &split, &managed()).unwrap();
        assert_valid(VS, V, &out);
        let stable = 100 - canary;
        assert_eq!(
            weights_of(&out["spec"]["http"][0]),
            pairs(&[("shop-stable", stable), ("shop-canary", canary)]),
            "{out:#}"
        );
        assert_eq!(
            weights_of(&out["spec"]["tls"][0]),
            pairs(&[
                ("shop-stable", stable),
                ("shop-canary.apps.svc.cluster.local", canary)
            ])
        );
        assert_eq!(
            weights_of(&out["spec"]["tcp"][0]),
            pairs(&[("shop-stable", stable), ("shop-canary", canary)])
        );
        assert_eq!(
            out["spec"]["http"][1],
            host_vs()["spec"]["http"][1],
            "user route untouched"
        );
        assert_eq!(
            out["spec"]["http"][0]["match"],
            host_vs()["spec"]["http"][0]["match"]
        );
        assert_eq!(out["spec"]["gateways"], json!(["shop-gw"]));
    }
}

#[test]
fn weights_are_percentages_even_with_another_max_traffic_weight() {
    let split = Split::new(&weights(250, &[]), 1000);
    let out =
        istio::set_weights(&host_vs(), &host_cfg(), &host_mode(), &split, &managed()).unwrap();
    assert_eq!(
        weights_of(&out["spec"]["http"][0]),
        pairs(&[("shop-stable", 75), ("shop-canary", 25)])
    );
}

#[test]
fn several_http_routes_need_names() {
    let err = istio::set_weights(
        &host_vs(),
        &subset_cfg(),
        &host_mode(),
        &Split::new(&weights(20, &[]), 100),
        &managed(),
    )
    .unwrap_err();
    assert!(err.contains("virtualService.routes"), "{err}");
}

#[test]
fn subset_split_weights_and_destination_rule_hashes() {
    for canary in [0i64, 20, 100] {
        let split = Split::new(&weights(i32::try_from(canary).unwrap(), &[]), 100);
        let out = istio::set_weights(
            &subset_vs(),
            &subset_cfg(),
            &subset_mode(),
            &split,
            &managed(),
        )
        .unwrap();
        assert_valid(VS, V, &out);
        assert_eq!(
            weights_of(&out["spec"]["http"][0]),
            pairs(&[("stable", 100 - canary), ("canary", canary)])
        );
    }
    let cfg = IstioDestinationRule {
        name: "shop-dr".into(),
        canary_subset_name: "canary".into(),
        stable_subset_name: "stable".into(),
    };
    let out = istio::set_subset_hashes(&dr(), &cfg, Some("c4n4ry"), Some("s74b1e"), &[]).unwrap();
    assert_valid(DR, V, &out);
    assert_eq!(
        out["spec"]["subsets"][0]["labels"],
        json!({"app": "shop", "rollouts-pod-template-hash": "c4n4ry"})
    );
    assert_eq!(
        out["spec"]["subsets"][1]["labels"],
        json!({"app": "shop", "rollouts-pod-template-hash": "s74b1e"})
    );
    let mut missing = dr();
    missing["spec"]["subsets"] = json!([{"name": "stable", "labels": {"app": "shop"}}]);
    assert!(istio::set_subset_hashes(&missing, &cfg, Some("c4n4ry"), Some("s74b1e"), &[]).is_err());
}

#[test]
fn baseline_destination_in_host_and_subset_mode() {
    let split = Split::new(&weights(20, &[("shop-baseline", 20)]), 100);
    let out =
        istio::set_weights(&host_vs(), &host_cfg(), &host_mode(), &split, &managed()).unwrap();
    assert_valid(VS, V, &out);
    assert_eq!(
        weights_of(&out["spec"]["http"][0]),
        pairs(&[
            ("shop-stable", 60),
            ("shop-canary", 20),
            ("shop-baseline", 20)
        ])
    );
    assert_eq!(
        out["spec"]["http"][0]["route"][2]["destination"],
        json!({"host": "shop-baseline", "port": {"number": 8080}})
    );
    let back = istio::set_weights(
        &out,
        &host_cfg(),
        &host_mode(),
        &Split::new(&weights(0, &[]), 100),
        &managed(),
    )
    .unwrap();
    assert_eq!(
        back,
        host_vs(),
        "weight 0 without a baseline restores the original object"
    );

    let split = Split::new(&weights(20, &[("baseline", 20)]), 100);
    let out = istio::set_weights(
        &subset_vs(),
        &subset_cfg(),
        &subset_mode(),
        &split,
        &managed(),
    )
    .unwrap();
    assert_valid(VS, V, &out);
    assert_eq!(
        out["spec"]["http"][0]["route"][2],
        json!({"destination": {"host": "shop", "subset": "baseline"}, "weight": 20})
    );
    let cfg = IstioDestinationRule {
        name: "shop-dr".into(),
        canary_subset_name: "canary".into(),
        stable_subset_name: "stable".into(),
    };
    let dr_out = istio::set_subset_hashes(
        &dr(),
        &cfg,
        Some("c4n4ry"),
        Some("s74b1e"),
        &split.additional,
    )
    .unwrap();
    assert_valid(DR, V, &dr_out);
    assert_eq!(
        dr_out["spec"]["subsets"][2],
        json!({"name": "baseline", "labels": {"rollouts-pod-template-hash": "b4s3l1"}})
    );
}

fn header_step() -> SetHeaderRoute {
    SetHeaderRoute {
        name: "canary-header".into(),
        matches: vec![
            HeaderRoutingMatch {
                header_name: "x-canary".into(),
                header_value: StringMatch {
                    exact: Some("yes".into()),
                    ..Default::default()
                },
            },
            HeaderRoutingMatch {
                header_name: "x-user".into(),
                header_value: StringMatch {
                    regex: Some("^beta-.*".into()),
                    ..Default::default()
                },
            },
        ],
    }
}

fn mirror_step() -> SetMirrorRoute {
    SetMirrorRoute {
        name: "canary-mirror".into(),
        matches: vec![RouteMatch {
            method: Some(StringMatch {
                exact: Some("GET".into()),
                ..Default::default()
            }),
            path: Some(StringMatch {
                prefix: Some("/api".into()),
                ..Default::default()
            }),
            headers: Default::default(),
        }],
        percentage: Some(40),
    }
}

#[test]
fn header_route_goes_first_and_sends_matches_to_the_canary() {
    let vs = istio::set_weights(
        &host_vs(),
        &host_cfg(),
        &host_mode(),
        &Split::new(&weights(20, &[]), 100),
        &managed(),
    )
    .unwrap();
    let out = istio::set_header_route(&vs, &host_cfg(), &host_mode(), &header_step(), &managed())
        .unwrap();
    assert_valid(VS, V, &out);
    assert_eq!(
        out["spec"]["http"][0],
        json!({"name": "canary-header",
               "match": [{"headers": {"x-canary": {"exact": "yes"}, "x-user": {"regex": "^beta-.*"}}}],
               "route": [{"destination": {"host": "shop-canary", "port": {"number": 8080}}, "weight": 100}]}),
        "{out:#}"
    );
    assert_eq!(out["spec"]["http"][1], vs["spec"]["http"][0]);
    // Weights change underneath without touching the header route.
    let later = istio::set_weights(
        &out,
        &host_cfg(),
        &host_mode(),
        &Split::new(&weights(50, &[]), 100),
        &managed(),
    )
    .unwrap();
    assert_eq!(later["spec"]["http"][0], out["spec"]["http"][0]);
    assert_eq!(
        weights_of(&later["spec"]["http"][1]),
        pairs(&[("shop-stable", 50), ("shop-canary", 50)])
    );
    // Subset mode routes to the canary subset.
    let out = istio::set_header_route(
        &subset_vs(),
        &subset_cfg(),
        &subset_mode(),
        &header_step(),
        &managed(),
    )
    .unwrap();
    assert_valid(VS, V, &out);
    assert_eq!(
        out["spec"]["http"][0]["route"],
        json!([{"destination": {"host": "shop", "subset": "canary"}, "weight": 100}])
    );
}

#[test]
fn mirror_route_keeps_the_split_and_mirrors_to_the_canary() {
    let vs = istio::set_weights(
        &host_vs(),
        &host_cfg(),
        &host_mode(),
        &Split::new(&weights(20, &[]), 100),
        &managed(),
    )
    .unwrap();
    let out = istio::set_mirror_route(&vs, &host_cfg(), &host_mode(), &mirror_step(), &managed())
        .unwrap();
    assert_valid(VS, V, &out);
    let m = &out["spec"]["http"][0];
    assert_eq!(m["name"], json!("canary-mirror"), "{out:#}");
    assert_eq!(
        m["match"],
        json!([{"method": {"exact": "GET"}, "uri": {"prefix": "/api"}}])
    );
    assert_eq!(
        m["mirror"],
        json!({"host": "shop-canary", "port": {"number": 8080}})
    );
    assert_eq!(m["mirrorPercentage"], json!({"value": 40.0}));
    assert_eq!(
        weights_of(m),
        pairs(&[("shop-stable", 80), ("shop-canary", 20)])
    );
    let later = istio::set_weights(
        &out,
        &host_cfg(),
        &host_mode(),
        &Split::new(&weights(60, &[]), 100),
        &managed(),
    )
    .unwrap();
    assert_eq!(
        weights_of(&later["spec"]["http"][0]),
        pairs(&[("shop-stable", 40), ("shop-canary", 60)]),
        "mirror route follows the weight"
    );
}

#[test]
fn managed_routes_are_ordered_and_removed() {
    let vs = host_vs();
    let out = istio::set_mirror_route(&vs, &host_cfg(), &host_mode(), &mirror_step(), &managed())
        .unwrap();
    let out = istio::set_header_route(&out, &host_cfg(), &host_mode(), &header_step(), &managed())
        .unwrap();
    assert_valid(VS, V, &out);
    let names: Vec<&str> = out["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["canary-header", "canary-mirror", "primary", "legacy"]
    );
    let empty = SetHeaderRoute {
        name: "canary-header".into(),
        matches: vec![],
    };
    let without_header =
        istio::set_header_route(&out, &host_cfg(), &host_mode(), &empty, &managed()).unwrap();
    assert_eq!(without_header["spec"]["http"].as_array().unwrap().len(), 3);
    let clean = istio::remove_managed_routes(&out, &managed());
    assert_valid(VS, V, &clean);
    assert_eq!(clean, vs);
}

#[test]
fn reconciled_status_covers_the_current_generation() {
    let mut vs = host_vs();
    assert_eq!(
        istio::reconciled(&vs),
        None,
        "no status: Istio status reporting is off"
    );
    vs["metadata"]["generation"] = json!(4);
    vs["status"] =
        json!({"observedGeneration": 4, "conditions": [{"type": "Reconciled", "status": "True"}]});
    assert_valid(VS, V, &vs);
    assert_eq!(istio::reconciled(&vs), Some(true));
    vs["status"]["observedGeneration"] = json!(3);
    assert_eq!(
        istio::reconciled(&vs),
        Some(false),
        "status of an older generation"
    );
    vs["status"] =
        json!({"observedGeneration": 4, "conditions": [{"type": "Reconciled", "status": "False"}]});
    assert_eq!(istio::reconciled(&vs), Some(false));
}

/// A TLS-only VirtualService (no `spec.http`) whose Rollout still names an HTTP route in
/// `routes`: as in Argo Rollouts, the HTTP routes are skipped and the TLS route is split.
#[test]
fn tls_only_virtual_service_skips_the_named_http_routes() {
    let vs = yaml(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: shop-vs, namespace: apps}
spec:
  hosts: [shop.example.com]
  tls:
  - match: [{port: 443, sniHosts: [shop.example.com]}]
    route:
    - destination: {host: shop-stable}
      weight: 100
    - destination: {host: shop-canary}
      weight: 0
"#,
    );
    let cfg = IstioVirtualService {
        name: "shop-vs".into(),
        routes: vec!["primary".into()],
        tls_routes: vec![IstioTlsRoute {
            port: Some(443),
            sni_hosts: vec!["shop.example.com".into()],
        }],
        ..Default::default()
    };
    let split = Split::new(&weights(30, &[]), 100);
    let out = istio::set_weights(&vs, &cfg, &host_mode(), &split, &managed()).unwrap();
    assert_valid(VS, V, &out);
    assert_eq!(
        weights_of(&out["spec"]["tls"][0]),
        pairs(&[("shop-stable", 70), ("shop-canary", 30)]),
        "{out:#}"
    );
    assert!(
        out["spec"].get("http").is_none(),
        "no HTTP section invented: {out:#}"
    );
}

/// Argo Rollouts' own subset-split example (`examples/istio/istio-subset-split.yaml`), with only
/// the apiVersion changed: its Rollout names no canaryService or stableService, passes
/// validation, and its VirtualService and DestinationRule take a 10 % step.
#[test]
fn argo_subset_split_example_needs_no_canary_or_stable_service() {
    let path = traffic_common::upstream_dir()
        .join("../manifests/argo-rollouts/examples__istio__istio-subset-split.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let text = text.replace("argoproj.io/v1alpha1", "sluice.dev/v1alpha1");
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap().clone();
    let mut rollout: sluice::crd::Rollout = serde_json::from_value(of("Rollout")).unwrap();
    rollout.metadata.namespace = Some("default".into());
    let validated = sluice::engine::validate(&rollout, &sluice::engine::Observed::default());
    assert!(validated.is_ok(), "{validated:?}");

    let istio_cfg = rollout.spec.strategy.canary.as_ref().unwrap();
    let istio_cfg = istio_cfg
        .traffic_routing
        .as_ref()
        .unwrap()
        .istio
        .as_ref()
        .unwrap();
    let vs_cfg = istio_cfg.virtual_service.clone().unwrap();
    let dr_cfg = istio_cfg.destination_rule.clone().unwrap();
    let split = Split::new(&weights(10, &[]), 100);
    let out =
        istio::set_weights(&of("VirtualService"), &vs_cfg, &subset_mode(), &split, &[]).unwrap();
    assert_eq!(
        weights_of(&out["spec"]["http"][0]),
        pairs(&[("stable", 90), ("canary", 10)]),
        "{out:#}"
    );
    let dr = istio::set_subset_hashes(
        &of("DestinationRule"),
        &dr_cfg,
        Some("c4n"),
        Some("s7b"),
        &[],
    )
    .unwrap();
    assert_valid(DR, V, &dr);
    assert_eq!(
        dr["spec"]["subsets"][1]["labels"]["rollouts-pod-template-hash"], "c4n",
        "{dr:#}"
    );
}
