//! Table tests of the endpoint registry: flag parsing, lookups and the TLS rules.

use super::*;

fn flags() -> EndpointFlags {
    EndpointFlags {
        prometheus: vec![
            "main=http://prometheus.monitoring.svc:9090/"
                .parse()
                .unwrap(),
            "thanos = https://thanos.example/prometheus"
                .parse()
                .unwrap(),
        ],
        prometheus_default: None,
        web_allow: vec![
            "http://metrics.example/api".into(),
            "https://other.example:8443/".into(),
        ],
        insecure: vec!["thanos".into()],
        ca_bundles: vec!["https://other.example:8443/=/etc/ca.pem".parse().unwrap()],
    }
}

fn metric(server: Option<&str>, address: Option<&str>) -> PrometheusMetric {
    PrometheusMetric {
        server: server.map(Into::into),
        address: address.map(Into::into),
        query: "up".into(),
        ..PrometheusMetric::default()
    }
}

#[test]
fn prometheus_is_found_by_name_address_or_default() {
    let endpoints = MetricEndpoints::new(flags()).unwrap();
    let table = [
        (Some("thanos"), None, "thanos"),
        (None, Some("http://prometheus.monitoring.svc:9090"), "main"),
        (
            None,
            Some("http://prometheus.monitoring.svc:9090///"),
            "main",
        ),
        (None, Some("HTTP://Prometheus.Monitoring.svc:9090/"), "main"),
        (
            None,
            Some("https://thanos.example:443/prometheus/"),
            "thanos",
        ),
        (None, None, "main"),
    ];
    for (server, address, want) in table {
        let got = endpoints.prometheus_for(&metric(server, address));
        assert_eq!(
            got.map(|p| p.name.as_str()).ok(),
            Some(want),
            "{server:?} {address:?}"
        );
    }
    assert_eq!(
        endpoints.prometheus_for(&metric(None, None)).unwrap().url,
        "http://prometheus.monitoring.svc:9090"
    );
    let named_default = MetricEndpoints::new(EndpointFlags {
        prometheus_default: Some("thanos".into()),
        ..flags()
    })
    .unwrap();
    assert_eq!(named_default.default_prometheus(), Some("thanos"));
}

#[test]
fn anything_unregistered_is_refused_with_what_is_registered() {
    let endpoints = MetricEndpoints::new(flags()).unwrap();
    let table = [
        (Some("other"), None),
        (None, Some("http://evil.example:9090")),
        (None, Some("http://prometheus.monitoring.svc:9091")),
        (None, Some("http://prometheus.monitoring.svc:9090/other")),
        (None, Some("http://prometheus.monitoring.svc:9090/?x=1")),
        (None, Some("https://prometheus.monitoring.svc:9090")),
    ];
    for (server, address) in table {
        let err = endpoints
            .prometheus_for(&metric(server, address))
            .unwrap_err();
        assert!(matches!(err, ProviderError::NotRegistered(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("main (http://prometheus.monitoring.svc:9090)")
                && message.contains("thanos (https://thanos.example/prometheus)")
                && message.contains("--prometheus NAME=URL"),
            "{message}"
        );
    }
    let empty = MetricEndpoints::default();
    let err = empty.prometheus_for(&metric(None, None)).unwrap_err();
    assert!(err.to_string().contains("registered: none"), "{err}");
}

#[test]
fn web_urls_are_allowed_only_under_a_prefix_at_a_path_boundary() {
    let endpoints = MetricEndpoints::new(flags()).unwrap();
    let table = [
        (
            "http://metrics.example/api",
            Some("http://metrics.example/api"),
        ),
        (
            "http://metrics.example/api/v1?q=1",
            Some("http://metrics.example/api"),
        ),
        (
            "http://METRICS.example:80/api/",
            Some("http://metrics.example/api"),
        ),
        ("http://metrics.example/apix", None),
        ("http://metrics.example/api/../admin", None),
        ("http://metrics.example/api/%2e%2e/admin", None),
        ("http://metrics.example.evil/api", None),
        ("http://metrics.example:8080/api", None),
        ("https://metrics.example/api", None),
        ("http://user@metrics.example/api", None),
        (
            "https://other.example:8443/anything",
            Some("https://other.example:8443/"),
        ),
        ("https://other.example/anything", None),
    ];
    for (url, want) in table {
        let got = endpoints.web_allowed(url).ok().map(|w| w.prefix.as_str());
        assert_eq!(got, want, "{url}");
    }
    let err = endpoints.web_allowed("http://evil.example/").unwrap_err();
    assert!(
        err.to_string()
            .contains("registered: http://metrics.example/api, https://other.example:8443/"),
        "{err}"
    );
    let err = endpoints.web_allowed("not a url").unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)), "{err}");
}

#[test]
fn tls_settings_land_on_the_named_endpoint() {
    let endpoints = MetricEndpoints::new(flags()).unwrap();
    let thanos = endpoints
        .prometheus_for(&metric(Some("thanos"), None))
        .unwrap();
    assert!(thanos.tls.insecure_allowed);
    let main = endpoints
        .prometheus_for(&metric(Some("main"), None))
        .unwrap();
    assert_eq!(main.tls, EndpointTls::default());
    let other = endpoints
        .web_allowed("https://other.example:8443/x")
        .unwrap();
    assert_eq!(other.tls.ca_bundle, Some(PathBuf::from("/etc/ca.pem")));
}

#[test]
fn malformed_flags_say_what_is_expected() {
    for bad in [
        "main",
        "=http://x",
        "main=",
        "main=ftp://x",
        "main=http://u:p@x",
        "m=http://x/?q=1",
    ] {
        let err = bad.parse::<PrometheusEntry>().unwrap_err();
        assert!(err.0.starts_with("prometheus "), "{bad}: {err}");
    }
    assert!("main".parse::<CaBundleEntry>().is_err());
    assert!("http://a.b/x=".parse::<CaBundleEntry>().is_err());
    let cases = [
        (
            EndpointFlags {
                prometheus: vec!["a=http://x".parse().unwrap(), "a=http://y".parse().unwrap()],
                ..EndpointFlags::default()
            },
            "registered twice",
        ),
        (
            EndpointFlags {
                prometheus_default: Some("nope".into()),
                ..flags()
            },
            "prometheus default \"nope\" is not registered",
        ),
        (
            EndpointFlags {
                insecure: vec!["nope".into()],
                ..flags()
            },
            "metric insecure TLS \"nope\"",
        ),
        (
            EndpointFlags {
                ca_bundles: vec!["http://metrics.example/other=/ca.pem".parse().unwrap()],
                ..flags()
            },
            "metric CA bundle \"http://metrics.example/other\"",
        ),
        (
            EndpointFlags {
                web_allow: vec!["http://a.b/x?y=1".into()],
                ..EndpointFlags::default()
            },
            "must not have a query",
        ),
        (
            EndpointFlags {
                web_allow: vec!["file:///etc".into()],
                ..EndpointFlags::default()
            },
            "http:// or https://",
        ),
    ];
    for (flags, want) in cases {
        let err = MetricEndpoints::new(flags).unwrap_err();
        assert!(err.0.contains(want), "{err}");
        assert_eq!(err.category(), "InvalidMetricEndpointRegistry");
    }
    // The same entry twice (flag and environment both set) is harmless.
    let twice = EndpointFlags {
        prometheus: vec![
            "a=http://x".parse().unwrap(),
            "a=http://x/".parse().unwrap(),
        ],
        ..EndpointFlags::default()
    };
    assert!(MetricEndpoints::new(twice).is_ok());
}

#[test]
fn insecure_is_honoured_only_where_the_administrator_allowed_it() {
    let endpoints = MetricEndpoints::new(EndpointFlags {
        ca_bundles: vec![],
        ..flags()
    })
    .unwrap();
    let clients = EndpointClients::new(reqwest::Client::new(), &endpoints).unwrap();
    let thanos = endpoints
        .prometheus_for(&metric(Some("thanos"), None))
        .unwrap();
    assert!(clients.client("thanos", &thanos.tls, true).is_ok());
    let main = endpoints
        .prometheus_for(&metric(Some("main"), None))
        .unwrap();
    assert!(clients.client("main", &main.tls, false).is_ok());
    let err = clients.client("main", &main.tls, true).unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)), "{err}");
    assert!(
        err.to_string().contains("--metric-insecure-tls main"),
        "{err}"
    );
}

#[test]
fn an_unreadable_or_empty_ca_bundle_stops_the_controller_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for (path, want) in [
        (dir.path().join("missing.pem"), "missing.pem"),
        (empty, "no PEM certificate"),
    ] {
        let endpoints = MetricEndpoints::new(EndpointFlags {
            ca_bundles: vec![CaBundleEntry {
                endpoint: "main".into(),
                path,
            }],
            ..flags()
        })
        .unwrap();
        let err = EndpointClients::new(reqwest::Client::new(), &endpoints).unwrap_err();
        assert!(err.0.contains(want), "{err}");
    }
}
