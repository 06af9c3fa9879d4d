//! The Services and routing object a Flagger `Canary` had Flagger generate, written out for
//! Sluice (which points Services and routers at ReplicaSets but does not create them): the apex
//! Service, `<apex>-primary` (stable) and `<apex>-canary`, and per provider a VirtualService,
//! HTTPRoute or TraefikService, or the `trafficRouting` block for SMI and NGINX. Pure.

use super::carry::{self, is_empty};
use super::report::Findings;
use serde_json::{Map, Value, json};

/// Where the canary's traffic goes, and the objects to create for it.
#[derive(Debug, Default)]
pub struct Routing {
    /// The stable Service's name.
    pub stable: String,
    /// The canary Service's name.
    pub canary: String,
    /// The Rollout's `trafficRouting`, when a router carries the weight.
    pub traffic_routing: Option<Value>,
    /// Services and routing objects, in the order to apply them.
    pub objects: Vec<Value>,
}

/// The shape of the generated Services.
pub struct ServiceShape<'a> {
    /// The apex Service's name.
    pub apex: String,
    /// The namespace of the Canary, if it names one.
    pub namespace: Option<&'a Value>,
    /// The pods' selector labels.
    pub selector: Value,
}

/// The provider with Flagger's version suffixes removed (`gatewayapi:v1` → `gatewayapi`,
/// `smi:v1alpha2:osm` and `osm` → `smi`).
#[must_use]
pub fn router_of(provider: &str) -> &str {
    match provider.split(':').next().unwrap_or(provider) {
        "osm" | "smi" => "smi",
        other => other,
    }
}

/// Whether Sluice has a router for the provider.
#[must_use]
pub fn has_router(provider: &str) -> bool {
    matches!(
        router_of(provider),
        "istio" | "gatewayapi" | "linkerd" | "smi" | "nginx" | "traefik"
    )
}

/// The Services and routing for a canary (or A/B) strategy through `provider`.
#[must_use]
pub fn canary_routing(
    canary: &Value,
    provider: &str,
    shape: &ServiceShape<'_>,
    findings: &mut Findings,
) -> Routing {
    let service = &canary["spec"]["service"];
    let apex = &shape.apex;
    let router = router_of(provider);
    let (stable, used): (String, &[&str]) = match router {
        "istio" => (
            format!("{apex}-primary"),
            &[
                "gateways",
                "hosts",
                "match",
                "rewrite",
                "retries",
                "headers",
                "corsPolicy",
                "timeout",
                "delegation",
            ],
        ),
        "gatewayapi" => (
            format!("{apex}-primary"),
            &["gatewayRefs", "hosts", "timeout"],
        ),
        "nginx" => (apex.clone(), &[]),
        _ => (format!("{apex}-primary"), &[]),
    };
    let canary_svc = format!("{apex}-canary");
    unused_service_fields(service, used, provider, findings);
    let mut objects = vec![service_object(shape, apex, service, "apex")];
    if stable != *apex {
        objects.push(service_object(shape, &stable, service, "primary"));
    }
    objects.push(service_object(shape, &canary_svc, service, "canary"));
    let port = service["port"].clone();
    let traffic_routing = match router {
        "istio" => {
            objects.push(virtual_service(shape, service, &stable, &canary_svc));
            Some(json!({"istio": {"virtualService": {"name": apex}}}))
        }
        "gatewayapi" => {
            objects.push(http_route(shape, service, &stable, &canary_svc, &port));
            Some(json!({"gatewayAPI": {"httpRoute": apex}}))
        }
        "traefik" => {
            objects.push(traefik_service(shape, &stable, &canary_svc, &port));
            Some(json!({"traefik": {"weightedTraefikServiceName": apex}}))
        }
        "linkerd" | "smi" => Some(json!({"smi": {"rootService": apex, "trafficSplitName": apex}})),
        "nginx" => match canary["spec"]["ingressRef"]["name"].as_str() {
            Some(ingress) => Some(json!({"nginx": {"stableIngress": ingress}})),
            None => {
                findings.push(
                    "spec.ingressRef",
                    "the nginx provider needs an ingressRef; no traffic routing is carried",
                );
                None
            }
        },
        _ => None,
    };
    Routing {
        stable,
        canary: canary_svc,
        traffic_routing,
        objects,
    }
}

/// The Services for blue/green: the apex is the active Service, `<apex>-canary` the preview.
#[must_use]
pub fn blue_green_routing(
    canary: &Value,
    provider: &str,
    shape: &ServiceShape<'_>,
    findings: &mut Findings,
) -> Routing {
    let service = &canary["spec"]["service"];
    unused_service_fields(service, &[], provider, findings);
    if has_router(provider) {
        findings.push(
            "spec.provider",
            format!("blue/green switches the active Service's selector; no {provider} routing object is needed"),
        );
    }
    let preview = format!("{}-canary", shape.apex);
    Routing {
        stable: shape.apex.clone(),
        canary: preview.clone(),
        traffic_routing: None,
        objects: vec![
            service_object(shape, &shape.apex, service, "apex"),
            service_object(shape, &preview, service, "canary"),
        ],
    }
}

/// Records the `spec.service` fields neither the Services nor the routing object carry.
fn unused_service_fields(service: &Value, used: &[&str], provider: &str, findings: &mut Findings) {
    const SERVICE: [&str; 8] = [
        "name",
        "port",
        "portName",
        "targetPort",
        "appProtocol",
        "apex",
        "primary",
        "canary",
    ];
    for (key, value) in service.as_object().into_iter().flatten() {
        if is_empty(value) || SERVICE.contains(&key.as_str()) || used.contains(&key.as_str()) {
            continue;
        }
        findings.push(
            format!("spec.service.{key}"),
            format!("not carried with provider {provider}; set it on the routing object or Service yourself"),
        );
    }
}

fn object_metadata(shape: &ServiceShape<'_>, name: &str, extra: &Value) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if let Some(ns) = shape.namespace {
        meta.insert("namespace".into(), ns.clone());
    }
    for key in ["labels", "annotations"] {
        if let Some(v) = extra.get(key).filter(|v| !is_empty(v)) {
            meta.insert(key.into(), v.clone());
        }
    }
    Value::Object(meta)
}

/// A Service `name` for the pods of the Canary, with `service.<role>` metadata.
fn service_object(shape: &ServiceShape<'_>, name: &str, service: &Value, role: &str) -> Value {
    let port = &service["port"];
    let mut spec_port = json!({
        "name": service["portName"].as_str().unwrap_or("http"),
        "port": port,
        "protocol": "TCP",
        "targetPort": if is_empty(&service["targetPort"]) { port.clone() } else { service["targetPort"].clone() },
    });
    if let Some(protocol) = service["appProtocol"].as_str() {
        spec_port["appProtocol"] = json!(protocol);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(shape, name, &service[role]),
        "spec": {"selector": shape.selector, "ports": [spec_port]},
    })
}

fn virtual_service(shape: &ServiceShape<'_>, service: &Value, stable: &str, canary: &str) -> Value {
    let delegation = service["delegation"].as_bool() == Some(true);
    let mut hosts: Vec<Value> = service["hosts"].as_array().cloned().unwrap_or_default();
    if !hosts.iter().any(|h| h == "*") && !hosts.iter().any(|h| h == shape.apex.as_str()) {
        hosts.push(json!(shape.apex));
    }
    let gateways = match service["gateways"].as_array() {
        Some(g) if !g.is_empty() => json!(g),
        _ => json!(["mesh"]),
    };
    let mut route = Map::new();
    for key in [
        "match",
        "rewrite",
        "retries",
        "headers",
        "corsPolicy",
        "timeout",
    ] {
        if let Some(v) = service.get(key).filter(|v| !is_empty(v)) {
            route.insert(key.into(), v.clone());
        }
    }
    route.insert(
        "route".into(),
        json!([{"destination": {"host": stable}, "weight": 100}, {"destination": {"host": canary}, "weight": 0}]),
    );
    let mut spec = json!({"http": [route]});
    if !delegation {
        spec["hosts"] = json!(hosts);
        spec["gateways"] = gateways;
    }
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": object_metadata(shape, &shape.apex, &service["apex"]),
        "spec": spec,
    })
}

fn http_route(
    shape: &ServiceShape<'_>,
    service: &Value,
    stable: &str,
    canary: &str,
    port: &Value,
) -> Value {
    let mut rule = json!({
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {"group": "", "kind": "Service", "name": stable, "port": port, "weight": 100},
            {"group": "", "kind": "Service", "name": canary, "port": port, "weight": 0},
        ],
    });
    if let Some(timeout) = service["timeout"].as_str() {
        rule["timeouts"] = json!({"request": timeout});
    }
    let mut spec = json!({"parentRefs": service["gatewayRefs"].as_array().cloned().unwrap_or_default(), "rules": [rule]});
    if let Some(hosts) = service["hosts"].as_array().filter(|h| !h.is_empty()) {
        spec["hostnames"] = json!(hosts);
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": object_metadata(shape, &shape.apex, &service["apex"]),
        "spec": spec,
    })
}

fn traefik_service(shape: &ServiceShape<'_>, stable: &str, canary: &str, port: &Value) -> Value {
    json!({
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "TraefikService",
        "metadata": object_metadata(shape, &shape.apex, &Value::Null),
        "spec": {"weighted": {"services": [
            {"name": stable, "port": port, "weight": 100},
            {"name": canary, "port": port, "weight": 0},
        ]}},
    })
}

/// The selector labels of the target: the Deployment's `matchLabels` when the input has it,
/// else Flagger's default `app: <target>`.
#[must_use]
pub fn selector_of(deployment: Option<&Value>, target: &str) -> Value {
    deployment
        .map(|d| d["spec"]["selector"]["matchLabels"].clone())
        .filter(|labels| !carry::is_empty(labels))
        .unwrap_or_else(|| json!({"app": target}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(provider: &str, service: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"provider": provider, "service": service,
               "ingressRef": {"name": "web-ingress"}}})
    }

    fn shape() -> ServiceShape<'static> {
        ServiceShape {
            apex: "web".into(),
            namespace: None,
            selector: json!({"app": "web"}),
        }
    }

    #[test]
    fn each_router_gets_its_services_and_routing() {
        // (provider, stable, kinds of the objects, trafficRouting)
        let cases = [
            (
                "istio",
                "web-primary",
                vec!["Service", "Service", "Service", "VirtualService"],
                json!({"istio": {"virtualService": {"name": "web"}}}),
            ),
            (
                "gatewayapi:v1",
                "web-primary",
                vec!["Service", "Service", "Service", "HTTPRoute"],
                json!({"gatewayAPI": {"httpRoute": "web"}}),
            ),
            (
                "linkerd",
                "web-primary",
                vec!["Service", "Service", "Service"],
                json!({"smi": {"rootService": "web", "trafficSplitName": "web"}}),
            ),
            (
                "nginx",
                "web",
                vec!["Service", "Service"],
                json!({"nginx": {"stableIngress": "web-ingress"}}),
            ),
            (
                "traefik",
                "web-primary",
                vec!["Service", "Service", "Service", "TraefikService"],
                json!({"traefik": {"weightedTraefikServiceName": "web"}}),
            ),
            (
                "contour",
                "web-primary",
                vec!["Service", "Service", "Service"],
                Value::Null,
            ),
        ];
        for (provider, stable, kinds, routing) in cases {
            let mut findings = Findings::default();
            let r = canary_routing(
                &canary(provider, json!({"port": 80})),
                provider,
                &shape(),
                &mut findings,
            );
            assert_eq!(r.stable, stable, "{provider}");
            assert_eq!(r.canary, "web-canary");
            let got: Vec<_> = r
                .objects
                .iter()
                .map(|o| o["kind"].as_str().unwrap_or(""))
                .collect();
            assert_eq!(got, kinds, "{provider}");
            assert_eq!(
                r.traffic_routing.unwrap_or(Value::Null),
                routing,
                "{provider}"
            );
        }
    }

    #[test]
    fn istio_service_fields_land_on_the_virtual_service_and_others_are_named() {
        let service = json!({"port": 9898, "targetPort": 8080, "gateways": ["public"], "hosts": ["app.example.com"],
            "retries": {"attempts": 3}, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
            "apex": {"labels": {"a": "b"}}});
        let mut findings = Findings::default();
        let r = canary_routing(&canary("istio", service), "istio", &shape(), &mut findings);
        let vs = &r.objects[3];
        assert_eq!(vs["spec"]["hosts"], json!(["app.example.com", "web"]));
        assert_eq!(vs["spec"]["gateways"], json!(["public"]));
        assert_eq!(vs["spec"]["http"][0]["retries"], json!({"attempts": 3}));
        assert_eq!(
            vs["spec"]["http"][0]["route"][1],
            json!({"destination": {"host": "web-canary"}, "weight": 0})
        );
        assert_eq!(r.objects[0]["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(r.objects[0]["spec"]["ports"][0]["targetPort"], 8080);
        let paths: Vec<_> = findings.0.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["spec.service.trafficPolicy"]);
    }

    #[test]
    fn provider_names_lose_their_versions() {
        for (provider, router) in [
            ("gatewayapi:v1beta1", "gatewayapi"),
            ("smi:v1alpha3:osm", "smi"),
            ("osm", "smi"),
            ("istio", "istio"),
        ] {
            assert_eq!(router_of(provider), router);
        }
        assert!(!has_router("kubernetes"));
        assert!(!has_router("appmesh:v1beta2"));
    }
}
