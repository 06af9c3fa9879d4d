use super::*;
use serde_json::json;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn service(name: &str, selector: &[(&str, &str)]) -> ServiceView {
    ServiceView {
        name: name.into(),
        selector: labels(selector),
    }
}

fn pod(name: &str, hash: &str, ready: bool) -> PodView {
    PodView {
        name: name.into(),
        labels: labels(&[("app", "demo"), ("rollouts-pod-template-hash", hash)]),
        ready,
    }
}

/// stable (hash s: pods s1, s2), canary (hash c: pod c1), baseline (hash b: pod b1).
fn world() -> (Vec<ServiceView>, Vec<PodView>) {
    let hash = |h: &'static str| [("app", "demo"), ("rollouts-pod-template-hash", h)];
    (
        vec![
            service("stable", &hash("s")),
            service("canary", &hash("c")),
            service("baseline", &hash("b")),
        ],
        vec![
            pod("s1", "s", true),
            pod("s2", "s", true),
            pod("c1", "c", true),
            pod("b1", "b", true),
        ],
    )
}

fn rounded(shares: BTreeMap<String, f64>) -> Vec<(String, f64)> {
    shares
        .into_iter()
        .map(|(k, v)| (k, (v * 1000.0).round() / 1000.0))
        .collect()
}

fn expect(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn routing_objects_become_weighted_entries() {
    let subsets = vec![json!({"spec": {"host": "demo", "subsets": [
        {"name": "stable", "labels": {"rollouts-pod-template-hash": "s"}},
        {"name": "canary", "labels": {"rollouts-pod-template-hash": "c"}}]}})];
    let table = [
        (
            "HTTPRoute: the plain rule's backendRefs; a header rule before it is skipped",
            "httproutes",
            json!({"spec": {"rules": [
                {"matches": [{"headers": [{"name": "x-canary", "value": "1"}]}], "backendRefs": [{"name": "canary", "weight": 100}]},
                {"backendRefs": [{"name": "stable", "weight": 80}, {"name": "canary", "weight": 20}]}]}}),
            vec![("stable", 80.0, vec![]), ("canary", 20.0, vec![])],
        ),
        (
            "HTTPRoute: a backendRef without weight weighs 1; non-Service kinds are skipped",
            "httproutes",
            json!({"spec": {"rules": [{"matches": [{"path": {"value": "/"}}], "backendRefs": [
                {"name": "stable"}, {"name": "bucket", "kind": "Backend", "weight": 5}]}]}}),
            vec![("stable", 1.0, vec![])],
        ),
        (
            "VirtualService by host (FQDN hosts name the Service)",
            "virtualservices",
            json!({"spec": {"http": [{"route": [
                {"destination": {"host": "stable.default.svc.cluster.local"}, "weight": 70},
                {"destination": {"host": "canary"}, "weight": 30}]}]}}),
            vec![("stable", 70.0, vec![]), ("canary", 30.0, vec![])],
        ),
        (
            "VirtualService by subset: the DestinationRule's labels narrow the Service",
            "virtualservices",
            json!({"spec": {"http": [{"route": [
                {"destination": {"host": "demo", "subset": "stable"}, "weight": 90},
                {"destination": {"host": "demo", "subset": "canary"}, "weight": 10}]}]}}),
            vec![
                ("demo", 90.0, vec![("rollouts-pod-template-hash", "s")]),
                ("demo", 10.0, vec![("rollouts-pod-template-hash", "c")]),
            ],
        ),
        (
            "VirtualService: a lone destination without weight takes everything",
            "virtualservices",
            json!({"spec": {"http": [{"route": [{"destination": {"host": "stable"}}]}]}}),
            vec![("stable", 100.0, vec![])],
        ),
        (
            "SMI TrafficSplit (numbers and quantities)",
            "trafficsplits",
            json!({"spec": {"service": "root", "backends": [
                {"service": "stable", "weight": 750}, {"service": "canary", "weight": "250m"}]}}),
            vec![("stable", 750.0, vec![]), ("canary", 0.25, vec![])],
        ),
        (
            "TraefikService weighted services",
            "traefikservices",
            json!({"spec": {"weighted": {"services": [
                {"name": "stable", "port": 80, "weight": 3}, {"name": "canary", "port": 80, "weight": 1}]}}}),
            vec![("stable", 3.0, vec![]), ("canary", 1.0, vec![])],
        ),
    ];
    for (why, resource, route, want) in table {
        let got = entry_of(resource, &route, &subsets).expect(why);
        let want: Vec<Backend> = want
            .into_iter()
            .map(|(s, w, l)| Backend {
                service: s.into(),
                labels: labels(&l),
                weight: w,
            })
            .collect();
        assert_eq!(got.backends, want, "{why}: {route}");
    }
}

#[test]
fn an_unknown_subset_or_a_route_without_plain_rules_routes_nothing() {
    let vs = json!({"spec": {"http": [{"route": [{"destination": {"host": "demo", "subset": "gone"}, "weight": 100}]}]}});
    assert_eq!(
        entry_of("virtualservices", &vs, &[]).unwrap().backends,
        vec![]
    );
    let only_headers = json!({"spec": {"rules": [{"matches": [{"headers": [{"name": "a", "value": "b"}]}], "backendRefs": [{"name": "canary"}]}]}});
    assert_eq!(entry_of("httproutes", &only_headers, &[]), None);
}

#[test]
fn shares_follow_weights_and_spread_over_ready_pods() {
    let (services, pods) = world();
    let entry = |pairs: &[(&str, f64)]| Entry {
        backends: pairs
            .iter()
            .map(|(s, w)| backend(s, BTreeMap::new(), *w))
            .collect(),
    };
    let mut not_ready = pods.clone();
    not_ready[1].ready = false;
    let table = [
        (
            "80/20: stable's part halves over its two pods",
            entry(&[("stable", 80.0), ("canary", 20.0)]),
            pods.clone(),
            expect(&[("c1", 0.2), ("s1", 0.4), ("s2", 0.4)]),
        ),
        (
            "baseline with the canary's weight",
            entry(&[("stable", 60.0), ("canary", 20.0), ("baseline", 20.0)]),
            pods.clone(),
            expect(&[("b1", 0.2), ("c1", 0.2), ("s1", 0.3), ("s2", 0.3)]),
        ),
        (
            "a pod that is not ready gets nothing; the other takes its Service's part",
            entry(&[("stable", 50.0), ("canary", 50.0)]),
            not_ready,
            expect(&[("c1", 0.5), ("s1", 0.5)]),
        ),
        (
            "weight 0 and unknown Services get nothing; shares are relative to the total",
            entry(&[("stable", 1.0), ("canary", 0.0), ("missing", 1.0)]),
            pods.clone(),
            expect(&[("s1", 0.25), ("s2", 0.25)]),
        ),
        (
            "all weights 0: no traffic",
            entry(&[("stable", 0.0), ("canary", 0.0)]),
            pods.clone(),
            expect(&[]),
        ),
    ];
    for (why, entry, pods, want) in table {
        // The baseline Service is named by the entry or not: unrouted Services get their own
        // traffic, so the tables keep to the routed ones.
        let routed: Vec<ServiceView> = services
            .iter()
            .filter(|s| entry.backends.iter().any(|b| b.service == s.name))
            .cloned()
            .collect();
        let got = rounded(shares(&[entry], &routed, &pods));
        assert_eq!(got, want, "{why}");
    }
}

#[test]
fn a_service_no_route_names_spreads_its_own_traffic_over_its_ready_pods() {
    let (services, mut pods) = world();
    pods[0].ready = false;
    let got = rounded(shares(&[], &services[..1], &pods));
    assert_eq!(got, expect(&[("s2", 1.0)]));
    let selectorless = vec![service("external", &[])];
    assert!(shares(&[], &selectorless, &pods).is_empty());
}

#[test]
fn subsets_narrow_a_service_to_their_labels() {
    let (_, pods) = world();
    let demo = vec![service("demo", &[("app", "demo")])];
    let entry = Entry {
        backends: vec![
            backend("demo", labels(&[("rollouts-pod-template-hash", "s")]), 75.0),
            backend("demo", labels(&[("rollouts-pod-template-hash", "c")]), 25.0),
        ],
    };
    let got = rounded(shares(&[entry], &demo, &pods));
    assert_eq!(got, expect(&[("c1", 0.25), ("s1", 0.375), ("s2", 0.375)]));
}
