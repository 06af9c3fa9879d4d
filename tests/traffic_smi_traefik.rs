//! The SMI and Traefik routers' transformations: the TrafficSplit (every served version of the
//! linkerd-smi and smi-sdk-go CRDs) and the weighted TraefikService they write at weights 0,
//! 20 and 100 and with a baseline, validated against the upstream schemas and asserted field by
//! field; and the clear errors both give for header and mirror routes.

#![allow(clippy::unwrap_used)] // Test helpers and fixtures panic on bad input by design.

mod kubectl_support;
mod traffic_common;

use serde_json::{Value, json};
use sluice::crd::{SetHeaderRoute, SetMirrorRoute, SmiApiVersion, SmiTrafficRouting};
use sluice::traffic::split::{Services, Split};
use sluice::traffic::{TrafficError, smi, traefik};
use traffic_common::{assert_valid, ctx, rollout, weights, yaml};

fn svc() -> Services {
    Services {
        canary: "shop-canary".into(),
        stable: "shop-stable".into(),
    }
}

fn backends(ts: &Value) -> Vec<(String, i64)> {
    ts["spec"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["service"].as_str().unwrap().to_owned(),
                b["weight"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
}

#[test]
fn traffic_split_at_0_20_100_and_with_a_baseline_in_every_served_version() {
    let r = rollout("smi: {}");
    for (version, file, schema_version) in [
        (
            SmiApiVersion::V1alpha1,
            "smi-trafficsplit-linkerd-smi.yaml",
            "v1alpha1",
        ),
        (
            SmiApiVersion::V1alpha2,
            "smi-trafficsplit-linkerd-smi.yaml",
            "v1alpha2",
        ),
        (SmiApiVersion::V1alpha4, "smi-trafficsplit.yaml", "v1alpha4"),
    ] {
        let config = SmiTrafficRouting {
            api_version: Some(version),
            ..Default::default()
        };
        for canary in [0i64, 20, 100] {
            let split = Split::new(&weights(i32::try_from(canary).unwrap(), &[]), 100);
            let out = smi::desired_split(None, &r, &config, &svc(), &split).unwrap();
            assert_valid(file, schema_version, &out);
            assert_eq!(
                out["apiVersion"],
                json!(format!("split.smi-spec.io/{schema_version}"))
            );
            assert_eq!(out["metadata"]["name"], json!("shop"));
            assert_eq!(out["metadata"]["namespace"], json!("apps"));
            assert_eq!(
                out["metadata"]["ownerReferences"][0]["kind"],
                json!("Rollout")
            );
            assert_eq!(
                out["metadata"]["ownerReferences"][0]["uid"],
                json!("0d6c0f0e-1111-4222-8333-944455556666")
            );
            assert_eq!(
                out["metadata"]["ownerReferences"][0]["controller"],
                json!(true)
            );
            assert_eq!(
                out["spec"]["service"],
                json!("shop-stable"),
                "root defaults to the stable Service"
            );
            assert_eq!(
                backends(&out),
                pairs(&[("shop-canary", canary), ("shop-stable", 100 - canary)])
            );
        }
        let split = Split::new(&weights(20, &[("shop-baseline", 20)]), 100);
        let out = smi::desired_split(None, &r, &config, &svc(), &split).unwrap();
        assert_valid(file, schema_version, &out);
        assert_eq!(
            backends(&out),
            pairs(&[
                ("shop-canary", 20),
                ("shop-baseline", 20),
                ("shop-stable", 60)
            ])
        );
        // An update keeps the existing object's metadata and replaces the backends.
        let mut existing = out.clone();
        existing["metadata"]["resourceVersion"] = json!("42");
        let back = smi::desired_split(
            Some(&existing),
            &r,
            &config,
            &svc(),
            &Split::new(&weights(0, &[]), 100),
        )
        .unwrap();
        assert_valid(file, schema_version, &back);
        assert_eq!(back["metadata"]["resourceVersion"], json!("42"));
        assert_eq!(
            backends(&back),
            pairs(&[("shop-canary", 0), ("shop-stable", 100)])
        );
    }
}

#[test]
fn traffic_split_root_service_and_name_are_configurable_and_foreign_splits_refused() {
    let r = rollout("smi: {rootService: shop, trafficSplitName: shop-split}");
    let config = SmiTrafficRouting {
        root_service: Some("shop".into()),
        traffic_split_name: Some("shop-split".into()),
        api_version: None,
    };
    let out = smi::desired_split(
        None,
        &r,
        &config,
        &svc(),
        &Split::new(&weights(20, &[]), 100),
    )
    .unwrap();
    assert_eq!(
        out["apiVersion"],
        json!("split.smi-spec.io/v1alpha1"),
        "Linkerd's stored version by default"
    );
    assert_eq!(out["metadata"]["name"], json!("shop-split"));
    assert_eq!(out["spec"]["service"], json!("shop"));
    let mut foreign = out.clone();
    foreign["metadata"]["ownerReferences"] = json!([]);
    let err = smi::desired_split(
        Some(&foreign),
        &r,
        &config,
        &svc(),
        &Split::new(&weights(20, &[]), 100),
    )
    .unwrap_err();
    assert!(err.contains("not owned"), "{err}");
}

fn traefik_service() -> Value {
    yaml(
        r#"
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: shop-weighted, namespace: apps}
spec:
  weighted:
    sticky: {cookie: {name: shop-lb}}
    services:
    - {name: shop-stable, port: 80, weight: 100}
    - {name: shop-canary, port: 80, weight: 0}
"#,
    )
}

fn traefik_weights(ts: &Value) -> Vec<(String, i64)> {
    ts["spec"]["weighted"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["weight"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn traefik_service_at_0_20_100_with_a_baseline_and_back() {
    const FILE: &str = "traefik-traefikservice.yaml";
    for canary in [0i64, 20, 100] {
        let split = Split::new(&weights(i32::try_from(canary).unwrap(), &[]), 100);
        let out = traefik::set_weights(&traefik_service(), &svc(), &split).unwrap();
        assert_valid(FILE, "v1alpha1", &out);
        assert_eq!(
            traefik_weights(&out),
            pairs(&[("shop-stable", 100 - canary), ("shop-canary", canary)])
        );
        assert_eq!(
            out["spec"]["weighted"]["sticky"],
            traefik_service()["spec"]["weighted"]["sticky"]
        );
    }
    let split = Split::new(&weights(20, &[("shop-baseline", 20)]), 100);
    let out = traefik::set_weights(&traefik_service(), &svc(), &split).unwrap();
    assert_valid(FILE, "v1alpha1", &out);
    assert_eq!(
        traefik_weights(&out),
        pairs(&[
            ("shop-stable", 60),
            ("shop-canary", 20),
            ("shop-baseline", 20)
        ])
    );
    assert_eq!(out["spec"]["weighted"]["services"][2]["port"], json!(80));
    let back = traefik::set_weights(&out, &svc(), &Split::new(&weights(0, &[]), 100)).unwrap();
    assert_eq!(
        back,
        traefik_service(),
        "weight 0 without a baseline restores the original object"
    );
    let mut missing = traefik_service();
    missing["spec"]["weighted"]["services"] = json!([{"name": "shop-stable", "port": 80}]);
    assert!(traefik::set_weights(&missing, &svc(), &split).is_err());
}

#[tokio::test]
async fn smi_and_traefik_refuse_header_and_mirror_routes_and_removal_is_a_no_op() {
    let r = rollout(
        "managedRoutes: [{name: hdr}]\nsmi: {}\ntraefik: {weightedTraefikServiceName: shop-weighted}",
    );
    let routers = traffic_common::offline_routers(&r);
    let names: Vec<&str> = routers.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["smi", "traefik"]);
    let c = ctx(r);
    for router in &routers {
        let header = SetHeaderRoute {
            name: "hdr".into(),
            matches: vec![],
        };
        let err = router.set_header_route(&c, &header).await.unwrap_err();
        assert!(matches!(err, TrafficError::Unusable { .. }), "{err}");
        assert_eq!(err.category(), "RoutingObjectInvalid");
        let mirror = SetMirrorRoute {
            name: "hdr".into(),
            matches: vec![],
            percentage: None,
        };
        let err = router.set_mirror_route(&c, &mirror).await.unwrap_err();
        assert!(err.to_string().contains("mirror"), "{err}");
        router.remove_managed_routes(&c).await.unwrap();
        assert_eq!(
            router.verify_weight(&c, &weights(20, &[])).await.unwrap(),
            None
        );
    }
}
