//! Classification of whole metrics through the JSON input (kayenta-judge.md §2, §3.5), with the
//! cases where Kayenta's behaviour is deliberately changed.

// A test crate: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use sluice_analysis::classify::{Classification, MetricResult};
use sluice_analysis::input::parse;
use sluice_analysis::{Judgement, judge};

fn run(input: serde_json::Value) -> Judgement {
    let request = parse(&input.to_string()).unwrap();
    judge(&request)
}

fn only_metric(input: serde_json::Value) -> MetricResult {
    run(json!({ "metrics": [input] })).metrics.remove(0)
}

fn zero_heavy() -> (Vec<u32>, Vec<u32>) {
    // 120 minutes of error counts: baseline 20 errors, canary 48 (2.4x), mostly zeros. The same
    // data as "zero_inflated" in scripts/judge-reference.R.
    let mut canary = vec![0; 80];
    canary.extend([1; 32]);
    canary.extend([2; 8]);
    let mut baseline = vec![0; 100];
    baseline.extend([1; 20]);
    (canary, baseline)
}

#[test]
fn rank_test_passes_zero_heavy_errors_but_the_rate_ratio_flags_them() {
    let (canary, baseline) = zero_heavy();
    let ranks = only_metric(json!({
        "name": "errors", "direction": "increase",
        "experiment": canary, "control": baseline,
    }));
    // The exact interval is [0, 0]: 0 is not above the band, so Pass (R's root finder gets a
    // lower bound of 1.04e-6 > 0 here, which is how Kayenta invents verdicts on such data).
    assert_eq!(ranks.classification, Classification::Pass, "{ranks:?}");
    let stats = ranks.statistics.unwrap();
    assert_eq!(
        (
            stats.confidence_interval.lower,
            stats.confidence_interval.upper
        ),
        (0.0, 0.0)
    );
    assert!(stats.p_value < 0.01, "the p-value does see it: {stats:?}");

    let requests = vec![1000; 120];
    let rates = only_metric(json!({
        "name": "errors", "direction": "increase", "test": "rateRatio",
        "experiment": {"events": canary, "total": requests},
        "control": {"events": baseline, "total": requests},
    }));
    assert_eq!(rates.classification, Classification::High, "{rates:?}");
    let stats = rates.statistics.unwrap();
    // R: poisson.test(c(48, 20), c(120000, 120000), conf.level = 0.98) -> 2.4, [1.2759, 4.7552]
    assert!((stats.estimate - 2.4).abs() < 1e-12);
    assert!((stats.confidence_interval.lower - 1.275_920_440_167_125).abs() < 1e-9);
    assert!(rates.reason.unwrap().contains("rate ratio 2.4"));
}

#[test]
fn two_different_constants_are_classified_from_their_exact_shift() {
    let high =
        only_metric(json!({"name": "c", "experiment": [10, 10, 10], "control": [1, 1, 1, 1]}));
    assert_eq!(high.classification, Classification::High);
    let low = only_metric(json!({"name": "c", "experiment": [1, 1], "control": [10, 10, 10]}));
    assert_eq!(low.classification, Classification::Low);
    let s = low.statistics.unwrap();
    assert_eq!(
        (
            s.estimate,
            s.confidence_interval.lower,
            s.confidence_interval.upper
        ),
        (-9.0, -9.0, -9.0)
    );
    // Constant 10 against constant 0: the mean ratio is NaN, so the gates are skipped.
    let zero = only_metric(json!({"name": "c", "experiment": [10, 10], "control": [0, 0, 0]}));
    assert_eq!(zero.classification, Classification::High);
    assert!(zero.statistics.unwrap().mean_ratio.is_nan());
}

#[test]
fn identical_and_single_valued_data_pass() {
    let same = only_metric(json!({"name": "m", "experiment": [3, 1, 2], "control": [1, 2, 3]}));
    assert_eq!(same.classification, Classification::Pass);
    assert_eq!(
        same.reason.as_deref(),
        Some("The canary and baseline data are identical")
    );
    let one = only_metric(json!({"name": "m", "experiment": [5, 5, 5], "control": [5, 5]}));
    assert_eq!(one.classification, Classification::Pass);
    assert_eq!(one.reason, None);
}

#[test]
fn majority_ties_with_a_spike_flip_at_the_exact_order_statistic() {
    // spinnaker/spinnaker#6278: seven 100s and three 1s against ten 1s pass; eight 100s fail.
    let mut canary = vec![100; 7];
    canary.extend([1; 3]);
    let seven = only_metric(json!({"name": "m", "experiment": canary, "control": vec![1; 10]}));
    assert_eq!(seven.classification, Classification::Pass, "{seven:?}");
    let mut canary = vec![100; 8];
    canary.extend([1; 2]);
    let eight = only_metric(json!({"name": "m", "experiment": canary, "control": vec![1; 10]}));
    assert_eq!(eight.classification, Classification::High, "{eight:?}");
}

#[test]
fn direction_suppresses_the_other_side() {
    let rise = json!({"experiment": [20, 21, 22, 23, 24, 25], "control": [10, 11, 12, 13, 14, 15]});
    let mut m = rise.clone();
    m["name"] = json!("m");
    m["direction"] = json!("decrease");
    assert_eq!(only_metric(m).classification, Classification::Pass);
    let mut m = rise;
    m["name"] = json!("m");
    m["direction"] = json!("increase");
    assert_eq!(only_metric(m).classification, Classification::High);
}

#[test]
fn effect_size_gates() {
    // Shifted by about 10 %: significant, but below an allowed increase of 1.5.
    let base = json!({"name": "m", "experiment": [110, 111, 112, 113, 114, 115, 116, 117],
                      "control": [100, 101, 102, 103, 104, 105, 106, 107]});
    let mut gated = base.clone();
    gated["effectSize"] = json!({"allowedIncrease": 1.5});
    assert_eq!(only_metric(gated).classification, Classification::Pass);
    assert_eq!(
        only_metric(base.clone()).classification,
        Classification::High
    );
    // CLES is 1.0 here; a critical gate at 0.9 makes it critical.
    let mut cles = base;
    cles["critical"] = json!(true);
    cles["effectSize"] =
        json!({"measure": "cles", "allowedIncrease": 0.6, "criticalIncrease": 0.9});
    let r = only_metric(cles);
    assert_eq!((r.classification, r.critical), (Classification::High, true));
    assert!(
        r.reason
            .unwrap()
            .starts_with("The metric m was classified as High (Critical)")
    );
}

#[test]
fn missing_data_rules() {
    let all_nan = json!({"name": "m", "experiment": [null, "NaN"], "control": [1, 2]});
    let r = only_metric(all_nan.clone());
    assert_eq!(
        (r.classification, r.critical),
        (Classification::NoData, false)
    );
    assert!(r.reason.unwrap().starts_with("Missing data for m"));
    // replace turns NaN into 0 instead.
    let mut replaced = all_nan.clone();
    replaced["nanStrategy"] = json!("replace");
    let r = only_metric(replaced);
    assert_eq!(r.classification, Classification::Low, "{r:?}");
    // critical NoData fails the canary.
    let mut crit = all_nan.clone();
    crit["critical"] = json!(true);
    let j = run(json!({"metrics": [crit, {"name": "ok", "experiment": [1], "control": [1]}]}));
    assert!(j.metrics[0].critical);
    assert_eq!(j.score, 0.0);
    // An empty side is NoData even with replace (Kayenta passes it).
    let empty = only_metric(
        json!({"name": "m", "experiment": [], "control": [1], "nanStrategy": "replace"}),
    );
    assert_eq!(empty.classification, Classification::NoData);
}

#[test]
fn nan_points_are_removed_before_the_test() {
    // Same as "nan_removed" in scripts/judge-reference.R: W=19, exact p=0.031746031746031744.
    let r = only_metric(json!({"name": "m",
        "experiment": [1.2, "NaN", 2.4, 3.1, null, 2.2, 2.9],
        "control": [0.9, 1.1, null, 1.5, 1.0]}));
    let s = r.statistics.unwrap();
    assert_eq!(s.u, Some(19.0));
    assert!((s.p_value - 0.031_746_031_746_031_744).abs() < 1e-15);
}

#[test]
fn outliers_are_removed_per_side() {
    let r = only_metric(json!({"name": "m", "outliers": {"strategy": "remove"},
        "experiment": [10, 11, 12, 10, 11, 12, 100, 11, 10, 12],
        "control": [10, 11, 12, 10, 11, 12, 11, 10, 12, 11]}));
    let out = serde_json::to_value(&r).unwrap();
    assert_eq!(out["experiment"]["count"], 9, "{out}");
    assert_eq!(out["experiment"]["max"], 12.0);
}

#[test]
fn invalid_input_names_the_field() {
    let cases = [
        (
            json!({"metrics": [{"name": "lat", "control": [1], "experiment": [1, "+Inf"]}]}),
            "metrics[0].experiment[1]",
        ),
        (
            json!({"metrics": [{"name": "lat", "control": [1], "experiment": [1], "direction": "up"}]}),
            "metrics[0].direction",
        ),
        (
            json!({"groups": {"a": 70, "b": 40}, "metrics": [{"name": "m", "control": [1], "experiment": [1]}]}),
            "groups",
        ),
        (
            json!({"confidence": 1.5, "metrics": [{"name": "m", "control": [1], "experiment": [1]}]}),
            "confidence",
        ),
        (
            json!({"metrics": [{"name": "m", "control": [1]}]}),
            "metrics[0]",
        ),
        (
            json!({"metrics": [{"name": "m", "control": [1], "experiment": [1], "nanStrategey": "remove"}]}),
            "metrics[0]",
        ),
        (
            json!({"metrics": [{"name": "m", "test": "rateRatio", "control": {"events": 1.5, "total": 10},
                             "experiment": {"events": 1, "total": 10}}]}),
            "metrics[0].control.events",
        ),
    ];
    for (input, field) in cases {
        let err = parse(&input.to_string()).unwrap_err();
        assert!(
            err.field().starts_with(field),
            "{input}: {err} (field {})",
            err.field()
        );
    }
    let err = parse(
        &json!({"metrics": [{"name": "lat", "control": [1], "experiment": ["-Inf"]}]}).to_string(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("\"lat\"") && err.contains("experiment side") && err.contains("-Infinity"),
        "{err}"
    );
}

#[test]
fn rate_ratio_inputs() {
    let rates = |control: serde_json::Value, experiment: serde_json::Value| json!({"metrics": [{"name": "e", "test": "rateRatio", "control": control, "experiment": experiment}]});
    // Events without exposure are rejected; no points at all is NoData.
    let err = parse(
        &rates(
            json!({"events": 3, "total": 0}),
            json!({"events": 1, "total": 10}),
        )
        .to_string(),
    )
    .unwrap_err();
    assert_eq!(err.field(), "metrics[0].control.total", "{err}");
    let err = parse(
        &rates(
            json!({"events": -1, "total": 5}),
            json!({"events": 1, "total": 10}),
        )
        .to_string(),
    )
    .unwrap_err();
    assert_eq!(err.field(), "metrics[0].control.events", "{err}");
    let j = run(rates(
        json!({"events": [null, null], "total": [null, null]}),
        json!({"events": 1, "total": 10}),
    ));
    assert_eq!(j.metrics[0].classification, Classification::NoData);
    // No events anywhere: nothing to flag.
    let j = run(rates(
        json!({"events": 0, "total": 100}),
        json!({"events": [0, 0], "total": [50, 50]}),
    ));
    assert_eq!(j.metrics[0].classification, Classification::Pass);
    // cles makes no sense for counts.
    let bad = json!({"metrics": [{"name": "e", "test": "rateRatio", "effectSize": {"measure": "cles"},
        "control": {"events": 1, "total": 1}, "experiment": {"events": 1, "total": 1}}]});
    assert_eq!(
        parse(&bad.to_string()).unwrap_err().field(),
        "metrics[0].effectSize.measure"
    );
}
