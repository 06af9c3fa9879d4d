//! The Prometheus metric provider against a real `prometheus` process scraping series the
//! tests set (see `prometheus_support`).

#![allow(clippy::unwrap_used)] // Test helpers panic on bad input by design.

mod prometheus_support;

use prometheus_support::{Prometheus, exporter, shared};
use serde_json::{Value, json};
use sluice::crd::{HttpHeader, Metric, MetricProviderSpec, PrometheusMetric, RangeQuery};
use sluice::providers::prometheus::PrometheusProvider;
use sluice::providers::registry::{EndpointClients, EndpointFlags};
use sluice::providers::{
    Args, MeasureRequest, MetricEndpoints, MetricProvider, Outcome, ProviderError,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A provider knowing the Prometheus servers `NAME=URL`.
fn provider(servers: &[String]) -> PrometheusProvider {
    let endpoints = MetricEndpoints::new(EndpointFlags {
        prometheus: servers.iter().map(|s| s.parse().unwrap()).collect(),
        ..EndpointFlags::default()
    })
    .unwrap();
    PrometheusProvider::new(
        Arc::new(endpoints),
        EndpointClients::shared_only(reqwest::Client::new()),
    )
}

fn shared_provider() -> PrometheusProvider {
    provider(&[format!("main={}", shared().url())])
}

fn metric(spec: PrometheusMetric) -> Metric {
    Metric {
        name: "m".into(),
        provider: MetricProviderSpec {
            prometheus: Some(spec),
            ..MetricProviderSpec::default()
        },
        ..Metric::default()
    }
}

fn query(text: &str) -> PrometheusMetric {
    PrometheusMetric {
        query: text.into(),
        ..PrometheusMetric::default()
    }
}

async fn measure(
    provider: &PrometheusProvider,
    spec: PrometheusMetric,
    args: &Args,
) -> Result<(Value, BTreeMap<String, String>), ProviderError> {
    let metric = metric(spec);
    let req = MeasureRequest {
        namespace: "default",
        run_name: "run",
        run_uid: "uid",
        metric: &metric,
        args,
        index: 0,
        now: jiff::Timestamp::now(),
    };
    match provider.measure(&req).await? {
        Outcome::Value { result, metadata } => Ok((result, metadata)),
        other => panic!("a prometheus measurement gave {other:?}"),
    }
}

fn sorted(value: &Value) -> Vec<f64> {
    let mut numbers: Vec<f64> = value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")))
        .collect();
    numbers.sort_by(f64::total_cmp);
    numbers
}

#[tokio::test]
async fn a_scalar_query_gives_a_number_and_non_finite_values_survive() {
    exporter().set(r#"sluice_scalar_total{code="200"}"#, 42.0);
    shared()
        .wait_for("sluice_scalar_total", |r| {
            r.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    let provider = shared_provider();
    let args = Args::default();
    let (result, metadata) = measure(&provider, query("scalar(sum(sluice_scalar_total))"), &args)
        .await
        .unwrap();
    assert_eq!(result, json!(42.0));
    assert_eq!(metadata["server"], "main");
    assert_eq!(
        metadata["resolvedQuery"],
        "scalar(sum(sluice_scalar_total))"
    );
    for (text, want) in [("0/0", "NaN"), ("1/0", "+Inf"), ("-1/0", "-Inf")] {
        let (result, _) = measure(&provider, query(text), &args).await.unwrap();
        assert_eq!(result, json!(want), "{text}");
    }
}

#[tokio::test]
async fn a_vector_query_gives_one_number_per_series_and_no_match_gives_an_empty_array() {
    exporter().set(r#"sluice_vector{pod="a"}"#, 1.5);
    exporter().set(r#"sluice_vector{pod="b"}"#, 2.5);
    shared()
        .wait_for("sluice_vector", |r| {
            r.as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    let provider = shared_provider();
    let args = Args::default();
    let (result, _) = measure(&provider, query("sluice_vector"), &args)
        .await
        .unwrap();
    assert_eq!(sorted(&result), vec![1.5, 2.5]);
    let (result, _) = measure(&provider, query(r#"sluice_vector{pod="nobody"}"#), &args)
        .await
        .unwrap();
    assert_eq!(result, json!([]));
}

#[tokio::test]
async fn a_range_query_gives_every_sample_of_the_window() {
    exporter().set("sluice_range", 7.0);
    // Three scrapes, so the window holds several samples.
    shared()
        .wait_for("count_over_time(sluice_range[1m])", |r| {
            r[0]["value"][1]
                .as_str()
                .is_some_and(|n| n.parse::<u32>().unwrap_or(0) >= 3)
        })
        .await;
    let provider = shared_provider();
    let spec = PrometheusMetric {
        range_query: Some(RangeQuery {
            start: "30s".into(),
            end: None,
            step: "1s".into(),
        }),
        ..query("sluice_range")
    };
    let (result, metadata) = measure(&provider, spec, &Args::default()).await.unwrap();
    let samples = sorted(&result);
    assert!(samples.len() >= 2, "{result}");
    assert!(samples.iter().all(|v| *v == 7.0), "{result}");
    assert!(
        metadata.contains_key("rangeStart") && metadata["rangeStep"] == "1s",
        "{metadata:?}"
    );
}

#[tokio::test]
async fn an_argument_lands_inside_the_label_matcher_and_a_hostile_one_matches_nothing() {
    exporter().set(r#"sluice_args{service="checkout"}"#, 3.0);
    shared()
        .wait_for("sluice_args", |r| {
            r.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    let provider = shared_provider();
    let spec = || query(r#"sum(sluice_args{service="{{args.svc}}"})"#);
    let mut args = Args::default();
    args.insert("svc", Some("checkout".into()), false);
    let (result, metadata) = measure(&provider, spec(), &args).await.unwrap();
    assert_eq!(result, json!([3.0]));
    assert_eq!(
        metadata["resolvedQuery"],
        r#"sum(sluice_args{service="checkout"})"#
    );

    // Unescaped, this would read `service=""} or vector(1)` and match everything.
    args.insert("svc", Some(r#""} or vector(1) #"#.into()), false);
    let (result, _) = measure(&provider, spec(), &args).await.unwrap();
    assert_eq!(result, json!([]));
}

/// `value` as a label value in the Prometheus text format.
fn exposition_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[tokio::test]
async fn hostile_label_values_round_trip_through_the_promql_parser() {
    let values = ["\"} or vector(1) #", "a\"b\\c\nd", "it's `q`", "ü€ {{x}}"];
    for (i, value) in values.iter().enumerate() {
        let series = format!("sluice_hostile{{v=\"{}\"}}", exposition_escape(value));
        exporter().set(&series, i as f64);
    }
    shared()
        .wait_for("sluice_hostile", |r| {
            r.as_array().is_some_and(|a| a.len() == values.len())
        })
        .await;
    let provider = shared_provider();
    for (i, value) in values.iter().enumerate() {
        let mut args = Args::default();
        args.insert("v", Some((*value).to_string()), false);
        for text in [
            r#"sluice_hostile{v="{{args.v}}"}"#,
            r#"sluice_hostile{v='{{args.v}}'}"#,
        ] {
            let (result, _) = measure(&provider, query(text), &args).await.unwrap();
            assert_eq!(result, json!([i as f64]), "{text} with {value:?}");
        }
    }
}

#[tokio::test]
async fn headers_are_sent_and_secret_values_stay_out_of_metadata() {
    shared();
    let provider = provider(&[format!("proxied={}", exporter().proxy_url())]);
    let mut args = Args::default();
    args.insert("tenant", Some("team-a".into()), false);
    args.insert("token", Some("s3cret-token".into()), true);
    let spec = PrometheusMetric {
        headers: vec![
            HttpHeader {
                key: "X-Scope-OrgID".into(),
                value: "{{args.tenant}}".into(),
            },
            HttpHeader {
                key: "Authorization".into(),
                value: "Bearer {{ args.token }}".into(),
            },
        ],
        ..query(r#"count(absent(up{token="{{args.token}}"}))"#)
    };
    let (result, metadata) = measure(&provider, spec, &args).await.unwrap();
    assert_eq!(result, json!([1.0]));
    assert!(!format!("{metadata:?}").contains("s3cret"), "{metadata:?}");
    assert_eq!(
        metadata["resolvedQuery"],
        r#"count(absent(up{token="<redacted>"}))"#
    );
    let seen = exporter().proxied_headers();
    assert!(
        seen.iter()
            .any(|h| h.get("x-scope-orgid").is_some_and(|v| v == "team-a")
                && h.get("authorization")
                    .is_some_and(|v| v == "Bearer s3cret-token")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_unregistered_address_is_refused_and_nothing_is_contacted() {
    let bystander = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    bystander.set_nonblocking(true).unwrap();
    let address = format!("http://{}", bystander.local_addr().unwrap());
    let provider = shared_provider();
    let spec = PrometheusMetric {
        address: Some(address.clone()),
        ..query("up")
    };
    let err = measure(&provider, spec, &Args::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotRegistered(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("main ({})", shared().url())),
        "{err}"
    );
    // A server named through an argument is looked up like any other.
    let mut args = Args::default();
    args.insert("which", Some("other".into()), false);
    let by_arg = |_: ()| PrometheusMetric {
        server: Some("{{args.which}}".into()),
        ..query("vector(1)")
    };
    let err = measure(&provider, by_arg(()), &args).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Prometheus server \"other\" is not registered"),
        "{err}"
    );
    args.insert("which", Some("main".into()), false);
    assert_eq!(
        measure(&provider, by_arg(()), &args).await.unwrap().0,
        json!([1.0])
    );
    let contacted = bystander.accept();
    assert!(
        contacted.is_err(),
        "the provider connected to an unregistered address"
    );
}

#[tokio::test]
async fn a_query_error_carries_prometheus_own_text() {
    let err = measure(&shared_provider(), query("sum(up"), &Args::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Request(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("400") && message.contains("bad_data") && message.contains("parse error"),
        "{message}"
    );
}

#[tokio::test]
async fn a_stopped_server_is_a_request_error_and_a_restarted_one_answers_again() {
    let own = Prometheus::start(exporter());
    let provider = provider(&[format!("own={}", own.url())]);
    let args = Args::default();
    assert_eq!(
        measure(&provider, query("vector(2)"), &args)
            .await
            .unwrap()
            .0,
        json!([2.0])
    );
    own.stop();
    let err = measure(&provider, query("vector(2)"), &args)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Request(_)), "{err}");
    // The first request may meet the pooled connection the server closed, later ones a
    // refused connection: both name the server.
    assert!(err.to_string().starts_with("prometheus own: "), "{err}");
    let err = measure(&provider, query("vector(2)"), &args)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("prometheus own: cannot connect"),
        "{err}"
    );
    own.restart();
    assert_eq!(
        measure(&provider, query("vector(2)"), &args)
            .await
            .unwrap()
            .0,
        json!([2.0])
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_at_the_metric_timeout() {
    // Connections complete in the kernel's backlog; nothing ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let provider = provider(&[format!("silent=http://{}", silent.local_addr().unwrap())]);
    let spec = PrometheusMetric {
        timeout: Some(1),
        ..query("up")
    };
    let started = Instant::now();
    let err = measure(&provider, spec, &Args::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Request(_)), "{err}");
    assert!(
        err.to_string().contains("did not answer within 1s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_secret_argument_is_read_at_measurement_time_and_never_shown() {
    use k8s_openapi::api::core::v1::Secret;
    use sluice::crd::{Argument, ArgumentSource, SecretKeyRef};
    use sluice::playground::{Playground, PlaygroundOptions, SimulationOptions};
    let playground = Playground::start(PlaygroundOptions {
        simulation: SimulationOptions::disabled(),
        ..PlaygroundOptions::default()
    })
    .await
    .unwrap();
    let secrets: kube::Api<Secret> = kube::Api::namespaced(playground.client(), "default");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "prometheus-auth"},
        "stringData": {"token": "from-the-secret"},
    }))
    .unwrap();
    secrets.create(&Default::default(), &secret).await.unwrap();
    let from_secret = |key: &str| Argument {
        name: "token".into(),
        value: None,
        value_from: Some(ArgumentSource {
            secret_key_ref: Some(SecretKeyRef {
                name: "prometheus-auth".into(),
                key: key.into(),
            }),
        }),
    };

    let args = Args::resolve(&playground.client(), "default", &[from_secret("token")])
        .await
        .unwrap();
    shared();
    let provider = provider(&[format!("proxied={}", exporter().proxy_url())]);
    let spec = PrometheusMetric {
        headers: vec![HttpHeader {
            key: "X-Sluice-Secret-Test".into(),
            value: "{{args.token}}".into(),
        }],
        ..query("vector(5)")
    };
    let (result, metadata) = measure(&provider, spec, &args).await.unwrap();
    assert_eq!(result, json!([5.0]));
    assert!(
        !format!("{metadata:?}").contains("from-the-secret"),
        "{metadata:?}"
    );
    let seen = exporter().proxied_headers();
    assert!(
        seen.iter().any(|h| h
            .get("x-sluice-secret-test")
            .is_some_and(|v| v == "from-the-secret")),
        "{seen:?}"
    );

    let err = Args::resolve(&playground.client(), "default", &[from_secret("nope")])
        .await
        .unwrap_err();
    assert!(
        err.0
            .contains("Secret default/prometheus-auth has no key nope"),
        "{err}"
    );
    let missing = Argument {
        value_from: Some(ArgumentSource {
            secret_key_ref: Some(SecretKeyRef {
                name: "absent".into(),
                key: "token".into(),
            }),
        }),
        ..from_secret("token")
    };
    let err = Args::resolve(&playground.client(), "default", &[missing])
        .await
        .unwrap_err();
    assert!(err.0.contains("cannot read Secret default/absent"), "{err}");
    assert!(!err.0.contains("from-the-secret"), "{err}");
}

#[tokio::test]
async fn https_is_verified_with_the_registered_ca_bundle_and_insecure_only_where_allowed() {
    let (ca_pem, server) = prometheus_support::test_certificates();
    let own = Prometheus::start_tls(exporter(), server);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let endpoints = MetricEndpoints::new(EndpointFlags {
        prometheus: vec![
            format!("trusted={}", own.url()).parse().unwrap(),
            format!("untrusted={}/", own.url()).parse().unwrap(),
            format!("skipped={}//", own.url()).parse().unwrap(),
        ],
        insecure: vec!["skipped".into()],
        ca_bundles: vec![format!("trusted={}", ca_file.display()).parse().unwrap()],
        ..EndpointFlags::default()
    })
    .unwrap();
    let clients = EndpointClients::new(reqwest::Client::new(), &endpoints).unwrap();
    let provider = PrometheusProvider::new(Arc::new(endpoints), clients);
    let on = |server: &str, insecure: bool| PrometheusMetric {
        server: Some(server.into()),
        insecure,
        ..query("vector(3)")
    };
    let args = Args::default();

    // Started means accepting connections; wait until it answers through the trusted client.
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        match measure(&provider, on("trusted", false), &args).await {
            Ok((result, _)) => break result,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("the TLS Prometheus never answered: {err}"),
        }
    };
    assert_eq!(result, json!([3.0]));

    let err = measure(&provider, on("untrusted", false), &args)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Request(_)), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let err = measure(&provider, on("untrusted", true), &args)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)), "{err}");
    assert!(
        err.to_string().contains("--metric-insecure-tls untrusted"),
        "{err}"
    );
    let (result, _) = measure(&provider, on("skipped", true), &args)
        .await
        .unwrap();
    assert_eq!(result, json!([3.0]));
}
