//! Validation table tests for tenancy (cross-namespace routes, claims, the API server's
//! Service), the pod template (what a real API server would reject in the ReplicaSet) and Argo
//! compatibility of traffic routing (an Istio subset split needs no canary or stable Service).

use super::fixtures::*;
use crate::crd::*;
use crate::engine::validate::claims;
use crate::engine::*;

fn check(cases: Vec<(&str, Rollout, Observed, Option<&str>)>) {
    for (what, rollout, observed, want) in cases {
        match (validate(&rollout, &observed), want) {
            (Ok(_), None) => {}
            (Err(err), Some(want)) => {
                let err = err.to_string();
                assert!(err.starts_with(want), "{what}: got {err:?}, want {want:?}");
            }
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}

fn istio(vs: &str, dr: Option<&str>) -> Rollout {
    Rollout::test()
        .traffic()
        .with_canary(|c| {
            let t = c.traffic_routing.as_mut().unwrap();
            t.gateway_api = None;
            t.istio = Some(IstioTrafficRouting {
                virtual_service: Some(IstioVirtualService {
                    name: vs.into(),
                    ..Default::default()
                }),
                destination_rule: dr.map(|name| IstioDestinationRule {
                    name: name.into(),
                    canary_subset_name: "canary".into(),
                    stable_subset_name: "stable".into(),
                }),
                ..Default::default()
            });
        })
        .build()
}

fn gateway_in(namespace: &str) -> Rollout {
    Rollout::test()
        .traffic()
        .with_canary(|c| {
            let t = c.traffic_routing.as_mut().unwrap();
            t.gateway_api.as_mut().unwrap().namespace = Some(namespace.into());
        })
        .build()
}

fn allowing_cross_namespace() -> Observed {
    let mut o = ObservedBuilder::new().build();
    o.tenancy.allow_cross_namespace_routing = true;
    o
}

fn claimed(key: &str, by: &str) -> Observed {
    let mut o = ObservedBuilder::new().build();
    o.tenancy.claimed_by.insert(key.into(), by.into());
    o
}

#[test]
fn routes_in_other_namespaces_need_the_controller_flag() {
    let o = || ObservedBuilder::new().build();
    check(vec![
        (
            "gatewayAPI.namespace elsewhere",
            gateway_in("prod"),
            o(),
            Some(
                "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute: HTTPRoute \"web\" is in namespace \"prod\", not the Rollout's \"default\"; routing objects in other namespaces need the controller flag --allow-cross-namespace-routing",
            ),
        ),
        (
            "gatewayAPI.namespace is its own",
            gateway_in("default"),
            o(),
            None,
        ),
        (
            "istio ns/name elsewhere",
            istio("mesh/web-vs", None),
            o(),
            Some(
                "spec.strategy.canary.trafficRouting.istio.virtualService.name: VirtualService \"web-vs\" is in namespace \"mesh\"",
            ),
        ),
        (
            "istio destination rule elsewhere",
            istio("web-vs", Some("mesh/web-dr")),
            o(),
            Some(
                "spec.strategy.canary.trafficRouting.istio.destinationRule.name: DestinationRule \"web-dr\" is in namespace \"mesh\"",
            ),
        ),
        (
            "istio ns/name of its own",
            istio("default/web-vs", None),
            o(),
            None,
        ),
        (
            "allowed by the flag",
            gateway_in("prod"),
            allowing_cross_namespace(),
            None,
        ),
        (
            "istio allowed",
            istio("mesh/web-vs", Some("mesh/web-dr")),
            allowing_cross_namespace(),
            None,
        ),
    ]);
}

#[test]
fn what_another_rollout_claimed_first_is_refused_naming_it() {
    let workload = Rollout::test()
        .with_spec(|s| {
            s.template = None;
            s.workload_ref = Some(WorkloadRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "web-deploy".into(),
                scale_down: None,
            });
        })
        .build();
    let mut with_deploy = claimed("Deployment/default/web-deploy", "older");
    with_deploy.workload = Some(ObservedWorkload {
        template: template("nginx:1"),
        generation: 1,
        replicas: 1,
    });
    check(vec![
        (
            "stable Service",
            Rollout::test().traffic().build(),
            claimed("Service/default/web-stable", "older"),
            Some(
                "spec.strategy.canary.stableService: Service \"web-stable\" is already claimed by Rollout \"older\", which named it first",
            ),
        ),
        (
            "active Service",
            Rollout::test().blue_green(|_| {}).build(),
            claimed("Service/default/web-active", "older"),
            Some(
                "spec.strategy.blueGreen.activeService: Service \"web-active\" is already claimed by Rollout \"older\"",
            ),
        ),
        (
            "workloadRef Deployment",
            workload,
            with_deploy,
            Some(
                "spec.workloadRef.name: Deployment \"web-deploy\" is already claimed by Rollout \"older\"",
            ),
        ),
        (
            "HTTPRoute",
            Rollout::test().traffic().build(),
            claimed("HTTPRoute/default/web", "older"),
            Some(
                "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute: HTTPRoute \"web\" is already claimed by Rollout \"older\"",
            ),
        ),
        (
            "VirtualService",
            istio("web-vs", None),
            claimed("VirtualService/default/web-vs", "older"),
            Some(
                "spec.strategy.canary.trafficRouting.istio.virtualService.name: VirtualService \"web-vs\" is already claimed by Rollout \"older\"",
            ),
        ),
        (
            "a claim elsewhere does not matter",
            Rollout::test().traffic().build(),
            claimed("Service/other/web-stable", "older"),
            None,
        ),
    ]);
}

#[test]
fn the_api_servers_service_is_never_managed() {
    let kubernetes = Rollout::test()
        .traffic()
        .with_canary(|c| c.stable_service = Some("kubernetes".into()))
        .build();
    let mut o = ObservedBuilder::new().build();
    o.services
        .insert("kubernetes".into(), Some(ObservedService::default()));
    let mut labelled = o.clone();
    labelled
        .tenancy
        .api_server_services
        .insert("web-stable".into());
    let mut elsewhere = kubernetes.clone();
    elsewhere.metadata.namespace = Some("apps".into());
    check(vec![
        (
            "kubernetes in default",
            kubernetes,
            o.clone(),
            Some(
                "spec.strategy.canary.stableService: Service \"kubernetes\" fronts the Kubernetes API server; a Rollout cannot manage it",
            ),
        ),
        (
            "labelled component=apiserver",
            Rollout::test().traffic().build(),
            labelled,
            Some(
                "spec.strategy.canary.stableService: Service \"web-stable\" fronts the Kubernetes API server",
            ),
        ),
        (
            "a Service named kubernetes in another namespace",
            elsewhere,
            o,
            None,
        ),
    ]);
}

#[test]
fn claims_list_every_object_a_spec_would_act_on() {
    let keys: Vec<String> = claims(&istio("mesh/web-vs", Some("web-dr")))
        .iter()
        .map(|c| c.key())
        .collect();
    assert_eq!(
        keys,
        [
            "Service/default/web-canary",
            "Service/default/web-stable",
            "VirtualService/mesh/web-vs",
            "DestinationRule/default/web-dr",
        ]
    );
}

fn with_template(f: impl FnOnce(&mut serde_json::Value)) -> Rollout {
    let mut t = serde_json::to_value(template("nginx:1")).unwrap();
    f(&mut t);
    Rollout::test()
        .with_spec(|s| s.template = Some(serde_json::from_value(t).unwrap()))
        .build()
}

#[test]
fn a_template_the_api_server_would_reject_is_invalid_before_any_replica_set() {
    let o = || ObservedBuilder::new().build();
    let c = "spec.template.spec.containers[0]";
    let cases = vec![
        (
            "memory: invalid",
            with_template(|t| t["spec"]["containers"][0]["resources"] = serde_json::json!({"limits": {"memory": "invalid"}})),
            o(),
            Some(format!("{c}.resources.limits[memory]: \"invalid\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")),
        ),
        (
            "negative cpu request",
            with_template(|t| t["spec"]["containers"][0]["resources"] = serde_json::json!({"requests": {"cpu": "-1"}})),
            o(),
            Some(format!("{c}.resources.requests[cpu]: \"-1\": must be greater than or equal to 0")),
        ),
        (
            "emptyDir sizeLimit",
            with_template(|t| t["spec"]["volumes"] = serde_json::json!([{"name": "tmp", "emptyDir": {"sizeLimit": "lots"}}])),
            o(),
            Some("spec.template.spec.volumes[0].emptyDir.sizeLimit: \"lots\": quantities must match".into()),
        ),
        (
            "container name",
            with_template(|t| t["spec"]["containers"][0]["name"] = "Web_1".into()),
            o(),
            Some(format!("{c}.name: \"Web_1\": a lowercase RFC 1123 label")),
        ),
        (
            "port out of range",
            with_template(|t| t["spec"]["containers"][0]["ports"] = serde_json::json!([{"containerPort": 70000}])),
            o(),
            Some(format!("{c}.ports[0].containerPort: 70000: must be between 1 and 65535, inclusive")),
        ),
        (
            "label value",
            with_template(|t| t["metadata"]["labels"]["tier"] = "front end".into()),
            o(),
            Some("spec.template.metadata.labels: \"front end\": a valid label must be an empty string or consist of".into()),
        ),
        (
            "no containers",
            with_template(|t| t["spec"]["containers"] = serde_json::json!([])),
            o(),
            Some("spec.template.spec.containers: at least one container is required".into()),
        ),
        (
            "valid quantities and ports",
            with_template(|t| {
                t["spec"]["containers"][0]["resources"] = serde_json::json!({"limits": {"memory": "128Mi", "cpu": "500m"}});
                t["spec"]["containers"][0]["ports"] = serde_json::json!([{"containerPort": 8080, "name": "http"}]);
            }),
            o(),
            None,
        ),
    ];
    for (what, rollout, observed, want) in cases {
        check(vec![(what, rollout.clone(), observed, want.as_deref())]);
        if want.is_some() {
            let d = decide(&rollout, &ObservedBuilder::new().build(), t0());
            assert!(
                d.actions.is_empty(),
                "{what}: no ReplicaSet for a bad template: {d:#?}"
            );
        }
    }
}

#[test]
fn an_istio_subset_split_needs_no_canary_or_stable_service() {
    let without_services = |dr: Option<&str>| {
        let mut r = istio("web-vs", dr);
        let c = r.spec.strategy.canary.as_mut().unwrap();
        c.canary_service = None;
        c.stable_service = None;
        r
    };
    let mut beside_gateway = without_services(Some("web-dr"));
    let t = beside_gateway.spec.strategy.canary.as_mut().unwrap();
    t.traffic_routing.as_mut().unwrap().gateway_api = Some(GatewayApiTrafficRouting {
        http_route: Some("web".into()),
        ..Default::default()
    });
    let o = || ObservedBuilder::new().build();
    check(vec![
        ("subset split", without_services(Some("web-dr")), o(), None),
        (
            "host split",
            without_services(None),
            o(),
            Some(
                "spec.strategy.canary.canaryService: trafficRouting requires both canaryService and stableService (the istio router splits between them",
            ),
        ),
        (
            "subset split beside a Gateway API route",
            beside_gateway,
            o(),
            Some(
                "spec.strategy.canary.canaryService: trafficRouting requires both canaryService and stableService (the gatewayAPI router",
            ),
        ),
    ]);
}
