//! The Services and routing objects of a lint file against the Rollout that names them: the
//! canary and stable (or active and preview) Services expose the same ports, and a named
//! HTTPRoute, VirtualService or TraefikService has a backend for both. Objects absent from the
//! file are not checked (they may live elsewhere). Pure.

use serde_json::Value;

/// The problems, one `field: problem` each.
#[must_use]
pub fn check(rollout: &Value, docs: &[Value]) -> Vec<String> {
    let find = |kind: &str, name: &str| {
        let name = name.rsplit('/').next().unwrap_or(name);
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    };
    let strategy = &rollout["spec"]["strategy"];
    let (path, first, second) = if strategy["canary"].is_object() {
        ("spec.strategy.canary", "canaryService", "stableService")
    } else {
        ("spec.strategy.blueGreen", "previewService", "activeService")
    };
    let block = &strategy[if path.ends_with("canary") {
        "canary"
    } else {
        "blueGreen"
    }];
    let (Some(a), Some(b)) = (block[first].as_str(), block[second].as_str()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let (Some(sa), Some(sb)) = (find("Service", a), find("Service", b)) {
        let (pa, pb) = (ports(sa), ports(sb));
        if pa != pb {
            out.push(format!(
                "{path}.{first}: Service {a} exposes ports {pa:?} but Service {b} exposes {pb:?}; both sides serve the same ports"
            ));
        }
    }
    let routing = &block["trafficRouting"];
    let services = [a, b];
    if let Some(name) = routing["gatewayAPI"]["httpRoute"].as_str()
        && let Some(route) = find("HTTPRoute", name)
    {
        let backends = values(route, "/spec/rules", |rule| {
            names(&rule["backendRefs"], "name")
        });
        out.extend(missing(
            &format!("{path}.trafficRouting.gatewayAPI.httpRoute"),
            "HTTPRoute",
            name,
            &backends,
            &services,
        ));
        out.extend(backend_ports(route, a, find("Service", a)));
    }
    let mut vss: Vec<&Value> = routing["istio"]["virtualServices"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    vss.push(&routing["istio"]["virtualService"]);
    for vs in vss
        .into_iter()
        .filter(|v| v.is_object() && routing["istio"]["destinationRule"].is_null())
    {
        let name = vs["name"].as_str().unwrap_or_default();
        if let Some(object) = find("VirtualService", name) {
            let hosts: Vec<String> = values(object, "/spec/http", |route| {
                route["route"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["destination"]["host"].as_str())
                    .map(short_host)
                    .collect()
            });
            out.extend(missing(
                &format!("{path}.trafficRouting.istio"),
                "VirtualService",
                name,
                &hosts,
                &services,
            ));
        }
    }
    if let Some(name) = routing["traefik"]["weightedTraefikServiceName"].as_str()
        && let Some(ts) = find("TraefikService", name)
    {
        let backends = names(&ts["spec"]["weighted"]["services"], "name");
        out.extend(missing(
            &format!("{path}.trafficRouting.traefik"),
            "TraefikService",
            name,
            &backends,
            &services,
        ));
    }
    out
}

/// `svc.ns.svc.cluster.local` → `svc`.
fn short_host(host: &str) -> String {
    host.split('.').next().unwrap_or(host).to_string()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e[key].as_str())
        .map(str::to_string)
        .collect()
}

fn values(object: &Value, pointer: &str, each: impl Fn(&Value) -> Vec<String>) -> Vec<String> {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(each)
        .collect()
}

fn missing(
    path: &str,
    kind: &str,
    name: &str,
    backends: &[String],
    services: &[&str],
) -> Vec<String> {
    services
        .iter()
        .filter(|s| !backends.iter().any(|b| b == *s))
        .map(|s| format!("{path}: {kind} {name} has no backend for Service {s}"))
        .collect()
}

/// An HTTPRoute backendRef port the Service does not expose.
fn backend_ports(route: &Value, service_name: &str, service: Option<&Value>) -> Vec<String> {
    let Some(service) = service else {
        return Vec::new();
    };
    let exposed = ports(service);
    let refs = route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    refs.flat_map(|rule| rule["backendRefs"].as_array().into_iter().flatten())
        .filter(|b| b["name"] == service_name)
        .filter_map(|b| b["port"].as_i64())
        .filter(|port| !exposed.contains(port))
        .map(|port| format!("HTTPRoute backendRef to {service_name} uses port {port}, which the Service does not expose ({exposed:?})"))
        .collect()
}

fn ports(service: &Value) -> Vec<i64> {
    let mut ports: Vec<i64> = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    ports.sort_unstable();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(name: &str, port: i64) -> Value {
        json!({"kind": "Service", "metadata": {"name": name}, "spec": {"ports": [{"port": port}]}})
    }

    fn rollout(routing: Value) -> Value {
        json!({"spec": {"strategy": {"canary": {"canaryService": "c", "stableService": "s", "trafficRouting": routing}}}})
    }

    #[test]
    fn routing_findings() {
        let route = |backends: Value| json!({"kind": "HTTPRoute", "metadata": {"name": "r"}, "spec": {"rules": [{"backendRefs": backends}]}});
        let vs = |hosts: &[&str]| {
            json!({"kind": "VirtualService", "metadata": {"name": "vs"}, "spec": {"http": [{"route":
            hosts.iter().map(|h| json!({"destination": {"host": h}})).collect::<Vec<_>>()}]}})
        };
        let gateway = json!({"gatewayAPI": {"httpRoute": "r"}});
        let istio = json!({"istio": {"virtualService": {"name": "vs"}}});
        // (trafficRouting, the file's other objects, expected problems)
        let cases = [
            (
                gateway.clone(),
                vec![
                    service("c", 80),
                    service("s", 80),
                    route(json!([{"name": "c", "port": 80}, {"name": "s", "port": 80}])),
                ],
                vec![],
            ),
            (gateway.clone(), vec![], vec![]),
            (
                gateway.clone(),
                vec![route(json!([{"name": "s"}]))],
                vec![
                    "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute: HTTPRoute r has no backend for Service c",
                ],
            ),
            (
                gateway,
                vec![
                    service("c", 80),
                    route(json!([{"name": "c", "port": 8080}, {"name": "s"}])),
                ],
                vec![
                    "HTTPRoute backendRef to c uses port 8080, which the Service does not expose ([80])",
                ],
            ),
            (
                istio.clone(),
                vec![vs(&["c.ns.svc.cluster.local", "s"])],
                vec![],
            ),
            (
                istio,
                vec![vs(&["s"])],
                vec![
                    "spec.strategy.canary.trafficRouting.istio: VirtualService vs has no backend for Service c",
                ],
            ),
            (
                json!({"smi": {}}),
                vec![service("c", 80), service("s", 8080)],
                vec![
                    "spec.strategy.canary.canaryService: Service c exposes ports [80] but Service s exposes [8080]; both sides serve the same ports",
                ],
            ),
        ];
        for (routing, docs, expected) in cases {
            assert_eq!(
                check(&rollout(routing.clone()), &docs),
                expected,
                "{routing} with {docs:?}"
            );
        }
    }
}
