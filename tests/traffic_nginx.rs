//! The NGINX router's transformation: the canary Ingress it generates from the stable one at
//! weights 0, 20 and 100, with `canary-weight-total`, with header routes, and after removing
//! managed routes, validated against the `networking.k8s.io/v1` Ingress schema and asserted
//! field by field; and the clear errors for a baseline and for mirroring.

#![allow(clippy::unwrap_used)] // Test helpers and fixtures panic on bad input by design.

mod kubectl_support;
mod traffic_common;

use serde_json::{Value, json};
use sluice::crd::{
    HeaderRoutingMatch, NginxTrafficRouting, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use sluice::traffic::TrafficError;
use sluice::traffic::nginx::{self, Desired};
use sluice::traffic::split::Services;
use traffic_common::{assert_valid_ingress, ctx, rollout, weights, yaml};

fn svc() -> Services {
    Services {
        canary: "shop-canary".into(),
        stable: "shop-stable".into(),
    }
}

fn stable_ingress() -> Value {
    yaml(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: apps
  annotations: {kubernetes.io/ingress.class: nginx, team: payments}
spec:
  ingressClassName: nginx
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop-stable, port: {number: 80}}}}
      - {path: /static, pathType: Prefix, backend: {service: {name: static, port: {number: 80}}}}
  - host: other.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}
"#,
    )
}

fn config() -> NginxTrafficRouting {
    NginxTrafficRouting {
        stable_ingress: Some("shop".into()),
        additional_ingress_annotations: [("canary-by-cookie".to_owned(), "shop-canary".to_owned())]
            .into(),
        ..Default::default()
    }
}

fn canary(current: Option<&Value>, max: i32, want: &Desired) -> Value {
    let r = rollout("nginx: {stableIngress: shop}");
    let out = nginx::desired_canary(&stable_ingress(), current, &r, &config(), &svc(), max, want)
        .unwrap();
    assert_valid_ingress(&out);
    out
}

#[test]
fn canary_ingress_at_0_20_100() {
    for w in [0, 20, 100] {
        let out = canary(
            None,
            100,
            &Desired {
                weight: Some(w),
                header: None,
            },
        );
        assert_eq!(out["metadata"]["name"], json!("shop-shop-canary"));
        assert_eq!(out["metadata"]["namespace"], json!("apps"));
        assert_eq!(out["metadata"]["ownerReferences"][0]["name"], json!("shop"));
        assert_eq!(
            out["metadata"]["ownerReferences"][0]["controller"],
            json!(true)
        );
        assert_eq!(
            out["metadata"]["annotations"],
            json!({
                "kubernetes.io/ingress.class": "nginx",
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": w.to_string(),
                "nginx.ingress.kubernetes.io/canary-by-cookie": "shop-canary",
            }),
            "{out:#}"
        );
        assert_eq!(out["spec"]["ingressClassName"], json!("nginx"));
        assert_eq!(out["spec"]["tls"], stable_ingress()["spec"]["tls"]);
        assert_eq!(
            out["spec"]["rules"],
            json!([{"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop-canary", "port": {"number": 80}}}}
            ]}}]),
            "only the stable Service's paths, rewritten to the canary"
        );
    }
}

#[test]
fn canary_weight_total_when_max_traffic_weight_is_not_100() {
    let out = canary(
        None,
        1000,
        &Desired {
            weight: Some(250),
            header: None,
        },
    );
    assert_eq!(
        out["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
        json!("250")
    );
    assert_eq!(
        out["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight-total"],
        json!("1000")
    );
}

fn header(v: StringMatch) -> SetHeaderRoute {
    SetHeaderRoute {
        name: "hdr".into(),
        matches: vec![HeaderRoutingMatch {
            header_name: "x-canary".into(),
            header_value: v,
        }],
    }
}

#[test]
fn header_routes_become_canary_by_header_annotations_and_survive_weight_changes() {
    let cases = [
        (
            StringMatch {
                exact: Some("yes".into()),
                ..Default::default()
            },
            "canary-by-header-value",
            "yes",
        ),
        (
            StringMatch {
                prefix: Some("beta.".into()),
                ..Default::default()
            },
            "canary-by-header-pattern",
            "^beta\\..*",
        ),
        (
            StringMatch {
                regex: Some("^b[0-9]+$".into()),
                ..Default::default()
            },
            "canary-by-header-pattern",
            "^b[0-9]+$",
        ),
    ];
    for (m, key, value) in cases {
        let h = nginx::header_annotations(&header(m)).unwrap();
        let with_weight = canary(
            None,
            100,
            &Desired {
                weight: Some(20),
                header: None,
            },
        );
        let out = canary(
            Some(&with_weight),
            100,
            &Desired {
                weight: None,
                header: Some(h),
            },
        );
        let ann = &out["metadata"]["annotations"];
        assert_eq!(
            ann["nginx.ingress.kubernetes.io/canary-by-header"],
            json!("x-canary"),
            "{out:#}"
        );
        assert_eq!(
            ann[format!("nginx.ingress.kubernetes.io/{key}")],
            json!(value)
        );
        assert_eq!(
            ann["nginx.ingress.kubernetes.io/canary-weight"],
            json!("20"),
            "weight kept"
        );
        let later = canary(
            Some(&out),
            100,
            &Desired {
                weight: Some(40),
                header: None,
            },
        );
        assert_eq!(
            later["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-by-header"],
            json!("x-canary")
        );
        assert_eq!(
            later["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
            json!("40")
        );
        // remove_managed_routes clears the header annotations and keeps the weight.
        let removed = canary(
            Some(&later),
            100,
            &Desired {
                weight: None,
                header: Some(vec![]),
            },
        );
        assert_eq!(
            removed,
            canary(
                Some(&later),
                100,
                &Desired {
                    weight: Some(40),
                    header: Some(vec![])
                }
            )
        );
        let keys: Vec<&String> = removed["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert!(
            !keys.iter().any(|k| k.contains("canary-by-header")),
            "{keys:?}"
        );
    }
    let two = SetHeaderRoute {
        name: "hdr".into(),
        matches: vec![
            header(StringMatch {
                exact: Some("a".into()),
                ..Default::default()
            })
            .matches[0]
                .clone();
            2
        ],
    };
    assert!(
        nginx::header_annotations(&two).is_err(),
        "NGINX matches one header"
    );
}

#[test]
fn foreign_canary_ingress_and_missing_stable_backend_are_refused() {
    let r = rollout("nginx: {stableIngress: shop}");
    let mut foreign = canary(
        None,
        100,
        &Desired {
            weight: Some(0),
            header: None,
        },
    );
    foreign["metadata"]["ownerReferences"] = json!([]);
    let want = Desired {
        weight: Some(0),
        header: None,
    };
    assert!(
        nginx::desired_canary(
            &stable_ingress(),
            Some(&foreign),
            &r,
            &config(),
            &svc(),
            100,
            &want
        )
        .is_err()
    );
    let mut no_stable = stable_ingress();
    no_stable["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
        json!("elsewhere");
    let err =
        nginx::desired_canary(&no_stable, None, &r, &config(), &svc(), 100, &want).unwrap_err();
    assert!(err.contains("shop-stable"), "{err}");
    assert_eq!(
        nginx::canary_ingress_name(&"r".repeat(200), &"i".repeat(200)).len(),
        253
    );
}

#[tokio::test]
async fn baseline_and_mirror_are_clear_errors() {
    let r = rollout("managedRoutes: [{name: m}]\nnginx: {stableIngress: shop}");
    let routers = traffic_common::offline_routers(&r);
    let c = ctx(r);
    let err = routers[0]
        .set_weight(&c, &weights(20, &[("shop-baseline", 20)]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrafficError::Unusable { .. }) && err.to_string().contains("baseline"),
        "{err}"
    );
    let mirror = SetMirrorRoute {
        name: "m".into(),
        matches: vec![],
        percentage: None,
    };
    let err = routers[0].set_mirror_route(&c, &mirror).await.unwrap_err();
    assert!(err.to_string().contains("cannot mirror"), "{err}");
    assert_eq!(
        routers[0]
            .verify_weight(&c, &weights(20, &[]))
            .await
            .unwrap(),
        None,
        "ingress-nginx reports nothing to verify against"
    );
}
