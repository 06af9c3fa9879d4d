//! Which pods receive which share of a namespace's demo traffic. Every entry point (a routing
//! object, or a Service that no routing object names) receives the configured request rate; a
//! routing object splits it over its backend Services by the weights the router wrote (Gateway
//! API HTTPRoute and GRPCRoute backendRefs, Istio VirtualService destinations by host or
//! DestinationRule subset, SMI TrafficSplit backends, Traefik TraefikService weighted services),
//! and a Service spreads its part evenly over its ready pods. Pure: JSON objects in, shares out.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A destination: a Service, narrowed to the pods with `labels` (an Istio subset), and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// The Service's name (in the routing object's namespace).
    pub service: String,
    /// Extra labels the pods must carry (a DestinationRule subset's); usually empty.
    pub labels: BTreeMap<String, String>,
    /// The relative weight.
    pub weight: f64,
}

/// One entry point of traffic and its weighted destinations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    /// The destinations; requests split by their weights.
    pub backends: Vec<Backend>,
}

/// The routing object kinds demo traffic follows, by API group and plural resource name.
pub const ROUTE_RESOURCES: [(&str, &str); 6] = [
    ("gateway.networking.k8s.io", "httproutes"),
    ("gateway.networking.k8s.io", "grpcroutes"),
    ("networking.istio.io", "virtualservices"),
    ("split.smi-spec.io", "trafficsplits"),
    ("traefik.io", "traefikservices"),
    ("traefik.containo.us", "traefikservices"),
];

/// A Service as the traffic sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceView {
    /// Its name.
    pub name: String,
    /// Its selector (a Service without one is never a destination).
    pub selector: BTreeMap<String, String>,
}

/// A serving pod as the traffic sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Whether it is Ready (only ready pods are endpoints).
    pub ready: bool,
}

/// The entry point a routing object of `resource` (plural name) defines, if it routes anything.
/// `destination_rules` resolve Istio subsets.
pub fn entry_of(resource: &str, route: &Value, destination_rules: &[Value]) -> Option<Entry> {
    let backends = match resource {
        "httproutes" | "grpcroutes" => gateway_backends(route),
        "virtualservices" => istio_backends(route, destination_rules),
        "trafficsplits" => weighted(route.pointer("/spec/backends"), "service", 0.0),
        "traefikservices" => weighted(route.pointer("/spec/weighted/services"), "name", 1.0),
        _ => None,
    }?;
    Some(Entry { backends })
}

/// The first rule that plain requests (no header, no query parameter) match.
fn gateway_backends(route: &Value) -> Option<Vec<Backend>> {
    let rule = route
        .pointer("/spec/rules")?
        .as_array()?
        .iter()
        .find(|rule| plain_match(rule.get("matches"), &["headers", "queryParams"]))?;
    let refs = rule.get("backendRefs")?.as_array()?;
    let services = refs
        .iter()
        .filter(|r| r.get("kind").is_none_or(|k| k == "Service"))
        .filter_map(|r| {
            Some(backend(
                r.get("name")?.as_str()?,
                BTreeMap::new(),
                number(r.get("weight")).unwrap_or(1.0),
            ))
        })
        .collect();
    Some(services)
}

/// Whether a request without headers or query parameters matches `matches` (none means all).
fn plain_match(matches: Option<&Value>, conditions: &[&str]) -> bool {
    match matches.and_then(Value::as_array) {
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list
            .iter()
            .any(|m| conditions.iter().all(|c| m.get(*c).is_none())),
    }
}

fn istio_backends(route: &Value, destination_rules: &[Value]) -> Option<Vec<Backend>> {
    let http = route
        .pointer("/spec/http")?
        .as_array()?
        .iter()
        .find(|h| plain_match(h.get("match"), &["headers", "queryParams"]))?;
    let routes = http.get("route")?.as_array()?;
    let lone = routes.len() == 1;
    let services = routes
        .iter()
        .filter_map(|r| {
            let host = service_of_host(r.pointer("/destination/host")?.as_str()?);
            let labels = match r.pointer("/destination/subset").and_then(Value::as_str) {
                Some(subset) => subset_labels(destination_rules, host, subset)?,
                None => BTreeMap::new(),
            };
            let default = if lone { 100.0 } else { 0.0 };
            Some(backend(
                host,
                labels,
                number(r.get("weight")).unwrap_or(default),
            ))
        })
        .collect();
    Some(services)
}

/// `svc`, `svc.ns`, `svc.ns.svc.cluster.local` → `svc`.
fn service_of_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The labels of `subset` in the DestinationRule for `service`; `None` when there is none (the
/// proxy would reject the route, so no pod gets its share).
fn subset_labels(rules: &[Value], service: &str, subset: &str) -> Option<BTreeMap<String, String>> {
    rules
        .iter()
        .filter(|r| {
            r.pointer("/spec/host")
                .and_then(Value::as_str)
                .is_some_and(|h| service_of_host(h) == service)
        })
        .flat_map(|r| r.pointer("/spec/subsets").and_then(Value::as_array))
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(subset))
        .map(|s| string_map(s.get("labels")))
}

/// A list of `{<name_field>: NAME, weight: W}` (SMI backends, Traefik weighted services).
fn weighted(list: Option<&Value>, name_field: &str, default: f64) -> Option<Vec<Backend>> {
    let services = list?
        .as_array()?
        .iter()
        .filter(|s| s.get("kind").is_none_or(|k| k == "Service"))
        .filter_map(|s| {
            Some(backend(
                s.get(name_field)?.as_str()?,
                BTreeMap::new(),
                number(s.get("weight")).unwrap_or(default),
            ))
        })
        .collect();
    Some(services)
}

fn backend(service: &str, labels: BTreeMap<String, String>, weight: f64) -> Backend {
    Backend {
        service: service.to_string(),
        labels,
        weight: weight.max(0.0),
    }
}

/// A weight: a JSON number, or a string such as `"20"` or SMI's quantity `"500m"`.
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.strip_suffix('m') {
            Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

/// A JSON object of strings as a map (other values are skipped).
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// A Service's view from its object.
pub fn service_view(service: &Value) -> ServiceView {
    ServiceView {
        name: service
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        selector: string_map(service.pointer("/spec/selector")),
    }
}

/// Each pod's share of the traffic (one entry point's whole rate is 1.0; a pod reached through
/// several entry points adds their shares). Services that no entry names and that select at
/// least one of `pods` are entry points of their own. A destination without ready pods gets
/// its share but passes it to no pod: those requests fail at the proxy.
pub fn shares(
    entries: &[Entry],
    services: &[ServiceView],
    pods: &[PodView],
) -> BTreeMap<String, f64> {
    let named: BTreeSet<&str> = entries
        .iter()
        .flat_map(|e| e.backends.iter().map(|b| b.service.as_str()))
        .collect();
    let unrouted = services
        .iter()
        .filter(|s| !named.contains(s.name.as_str()))
        .filter(|s| pods.iter().any(|p| selects(s, &BTreeMap::new(), p)))
        .map(|s| Entry {
            backends: vec![backend(&s.name, BTreeMap::new(), 1.0)],
        });
    let all: Vec<Entry> = entries.iter().cloned().chain(unrouted).collect();
    let mut out = BTreeMap::new();
    for entry in &all {
        spread(entry, services, pods, &mut out);
    }
    out
}

fn spread(
    entry: &Entry,
    services: &[ServiceView],
    pods: &[PodView],
    out: &mut BTreeMap<String, f64>,
) {
    let total: f64 = entry.backends.iter().map(|b| b.weight).sum();
    if total <= 0.0 {
        return;
    }
    for b in entry.backends.iter().filter(|b| b.weight > 0.0) {
        let Some(service) = services.iter().find(|s| s.name == b.service) else {
            continue;
        };
        let ready: Vec<&PodView> = pods
            .iter()
            .filter(|p| p.ready && selects(service, &b.labels, p))
            .collect();
        let each = b.weight / total / ready.len().max(1) as f64;
        for pod in ready {
            *out.entry(pod.name.clone()).or_insert(0.0) += each;
        }
    }
}

fn selects(service: &ServiceView, extra: &BTreeMap<String, String>, pod: &PodView) -> bool {
    !service.selector.is_empty()
        && service
            .selector
            .iter()
            .chain(extra)
            .all(|(k, v)| pod.labels.get(k) == Some(v))
}

#[cfg(test)]
#[path = "shares_tests.rs"]
mod tests;
