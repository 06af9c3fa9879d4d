use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn malformed_annotations_are_named_with_what_they_must_be() {
    let table = [
        (
            LATENCY_MEDIAN_ANNOTATION,
            "fast",
            "a number of milliseconds above 0",
        ),
        (
            LATENCY_MEDIAN_ANNOTATION,
            "0",
            "a number of milliseconds above 0",
        ),
        (
            LATENCY_SPREAD_ANNOTATION,
            "-1",
            "a log-normal sigma of 0 or more",
        ),
        (ERROR_RATE_ANNOTATION, "1.5", "a fraction from 0 to 1"),
        (ERROR_RATE_ANNOTATION, "NaN", "a fraction from 0 to 1"),
    ];
    for (annotation, value, expected) in table {
        let error = Behaviour::from_annotations(&annotations(&[(annotation, value)])).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("annotation {annotation}: {value:?} is not {expected}")
        );
    }
}

fn served(pairs: &[(&str, &str)], n: u64) -> Counters {
    let behaviour = Behaviour::from_annotations(&annotations(pairs)).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut counters = Counters::default();
    counters.record(&behaviour, n, &mut rng);
    counters
}

/// The latency below which `q` of the requests fell, read from the buckets' upper bounds.
fn bucket_quantile(c: &Counters, q: f64) -> f64 {
    let mut seen = 0;
    for (i, count) in c.buckets.iter().enumerate() {
        seen += count;
        if seen as f64 >= q * c.requests as f64 {
            return BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
        }
    }
    f64::INFINITY
}

#[test]
fn defaults_serve_100_ms_median_and_one_error_in_a_thousand() {
    let c = served(&[], 100_000);
    assert_eq!(c.requests, 100_000);
    assert_eq!(c.buckets.iter().sum::<u64>(), 100_000);
    assert!((50..=150).contains(&c.errors), "{} errors", c.errors);
    assert_eq!(bucket_quantile(&c, 0.5), 0.1, "{c:?}");
    // p90 of LogNormal(ln 0.1, 0.25) is 0.1·e^(1.2816·0.25) ≈ 0.138.
    assert_eq!(bucket_quantile(&c, 0.9), 0.14, "{c:?}");
    let mean = c.latency_sum / c.requests as f64;
    assert!((0.100..0.106).contains(&mean), "mean {mean}");
}

#[test]
fn annotations_set_latency_and_errors() {
    let c = served(
        &[
            (LATENCY_MEDIAN_ANNOTATION, "135"),
            (LATENCY_SPREAD_ANNOTATION, "0"),
            (ERROR_RATE_ANNOTATION, "0.1"),
        ],
        10_000,
    );
    // Sigma 0: every request takes the median.
    assert_eq!(c.buckets[BUCKETS.partition_point(|le| *le < 0.135)], 10_000);
    assert!((900..=1100).contains(&c.errors), "{} errors", c.errors);
}

#[test]
fn arrivals_follow_the_rate() {
    let behaviour = Behaviour::from_annotations(&BTreeMap::new()).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut c = Counters::default();
    for _ in 0..100 {
        c.serve(&behaviour, 200.0, 0.1, &mut rng);
    }
    assert!(
        (1800..=2200).contains(&c.requests),
        "{} requests in 10 s at 200/s",
        c.requests
    );
    let before = c.clone();
    c.serve(&behaviour, 0.0, 0.1, &mut rng);
    assert_eq!(c, before, "no rate, no requests");
}

#[test]
fn the_exposition_has_one_family_each_with_cumulative_buckets() {
    let labels = PodLabels {
        namespace: "default".into(),
        pod: "demo-\"x\"".into(),
        app: Some("demo".into()),
        hash: Some("abc".into()),
    };
    let c = served(
        &[
            (LATENCY_MEDIAN_ANNOTATION, "95"),
            (LATENCY_SPREAD_ANNOTATION, "0"),
        ],
        3,
    );
    let text = render([(&labels, &c)]);
    let l = r#"namespace="default",pod="demo-\"x\"",app="demo",rollouts_pod_template_hash="abc""#;
    for line in [
        "# TYPE demo_requests_total counter".to_string(),
        "# TYPE demo_request_errors_total counter".to_string(),
        "# TYPE demo_request_duration_seconds histogram".to_string(),
        format!("demo_requests_total{{{l}}} 3"),
        format!("demo_request_duration_seconds_bucket{{{l},le=\"0.09\"}} 0"),
        format!("demo_request_duration_seconds_bucket{{{l},le=\"0.1\"}} 3"),
        format!("demo_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 3"),
        format!("demo_request_duration_seconds_count{{{l}}} 3"),
    ] {
        assert!(
            text.lines().any(|x| x == line),
            "no line {line:?} in\n{text}"
        );
    }
}
