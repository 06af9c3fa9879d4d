//! The scoring scenarios of kayenta-judge.md §4 (Kayenta's ScorerSuite, in our own words),
//! plus our deliberate changes: Error fails, mustHaveData NoData fails, explanations.

// A test crate: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use sluice_analysis::classify::{Classification, MetricResult};
use sluice_analysis::config::Thresholds;
use sluice_analysis::score::{Verdict, score};

use Classification::{Error, High, Low, NoData, Pass};

fn result(group: &str, classification: Classification) -> MetricResult {
    MetricResult {
        name: format!("{group}-{classification:?}"),
        group: group.to_owned(),
        muted: false,
        classification,
        critical: false,
        reason: (classification != Pass).then(|| format!("{group} was {classification:?}")),
        statistics: None,
        control: None,
        experiment: None,
        must_have_data: false,
    }
}

fn critical(mut r: MetricResult) -> MetricResult {
    r.critical = true;
    r
}

fn weights(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(g, w)| ((*g).to_owned(), *w)).collect()
}

fn total(results: &[MetricResult], w: &[(&str, f64)]) -> f64 {
    score(results, &weights(w), Thresholds::default()).score
}

#[test]
fn single_metric_scores() {
    assert_eq!(total(&[result("a", Pass)], &[]), 100.0);
    assert_eq!(total(&[result("a", High)], &[]), 0.0);
    // A lone NoData trips the 50 % rule.
    let s = score(
        &[result("a", NoData)],
        &BTreeMap::new(),
        Thresholds::default(),
    );
    assert_eq!(s.score, 0.0);
    assert_eq!(
        s.reason.as_deref(),
        Some("Canary Failed: 50% or more metrics returned NODATA")
    );
}

#[test]
fn a_group_of_only_nodata_counts_as_full_marks() {
    let results = [result("a", Pass), result("a", Pass), result("b", NoData)];
    let s = score(&results, &BTreeMap::new(), Thresholds::default());
    assert_eq!(s.score, 100.0);
    assert_eq!(s.groups[1].score, None, "{s:?}");
}

#[test]
fn group_fractions_and_rounding() {
    assert_eq!(total(&[result("a", Pass), result("a", High)], &[]), 50.0);
    assert_eq!(
        total(
            &[result("a", Pass), result("a", High), result("a", Low)],
            &[]
        ),
        33.33
    );
}

#[test]
fn weighted_groups() {
    let a_pass_b_high = [result("a", Pass), result("a", Pass), result("b", High)];
    assert_eq!(total(&a_pass_b_high, &[("a", 75.0), ("b", 25.0)]), 75.0);
    let halves = [(("a"), 50.0), ("b", 50.0)];
    assert_eq!(
        total(
            &[result("a", Pass), result("a", High), result("b", High)],
            &halves
        ),
        25.0
    );
    assert_eq!(
        total(
            &[result("a", Pass), result("a", NoData), result("b", High)],
            &halves
        ),
        50.0
    );
    let g = [
        result("g1", High),
        result("g1", Low),
        result("g1", Pass),
        result("g2", High),
    ];
    assert_eq!(total(&g, &[("g1", 15.0), ("g2", 85.0)]), 5.0);
}

#[test]
fn critical_results_override_the_score() {
    let s = score(
        &[result("a", Pass), critical(result("b", High))],
        &BTreeMap::new(),
        Thresholds::default(),
    );
    assert_eq!((s.score, s.result), (0.0, Verdict::Fail));
    assert_eq!(s.reason.as_deref(), Some("Canary Failed: b was High"));
    // A critical metric that passes does not override.
    assert_eq!(
        total(&[critical(result("a", Pass)), result("a", Low)], &[]),
        50.0
    );
    assert_eq!(
        total(&[result("a", Pass), critical(result("b", NoData))], &[]),
        0.0
    );
}

#[test]
fn errors_fail_instead_of_vanishing() {
    // Kayenta scores an all-Error canary 100; we score it 0.
    assert_eq!(total(&[result("a", Error), result("b", Error)], &[]), 0.0);
    assert_eq!(total(&[result("a", Pass), result("a", Error)], &[]), 50.0);
}

#[test]
fn must_have_data_nodata_is_a_failing_metric() {
    let mut missing = result("a", NoData);
    missing.must_have_data = true;
    let s = score(
        &[result("a", Pass), missing],
        &BTreeMap::new(),
        Thresholds::default(),
    );
    assert_eq!(s.score, 50.0);
    assert_eq!(s.reason, None, "not counted by the NODATA rule");
}

#[test]
fn muted_metrics_are_reported_but_not_scored() {
    let mut muted = result("a", High);
    muted.muted = true;
    assert_eq!(total(&[result("a", Pass), muted.clone()], &[]), 100.0);
    let s = score(&[muted], &BTreeMap::new(), Thresholds::default());
    assert_eq!((s.score, s.result), (0.0, Verdict::Fail));
    assert!(s.reason.unwrap().contains("no unmuted metric"));
}

#[test]
fn missing_weighted_groups_are_explained() {
    let s = score(
        &[result("a", Pass)],
        &weights(&[("a", 50.0), ("b", 50.0)]),
        Thresholds::default(),
    );
    assert_eq!((s.score, s.result), (50.0, Verdict::Fail));
    let reason = s.reason.unwrap();
    assert!(reason.contains("group b (weight 50)"), "{reason}");
}

#[test]
fn thresholds_give_pass_marginal_fail() {
    let t = Thresholds {
        pass: 90.0,
        marginal: 50.0,
    };
    let v = |r: &[MetricResult]| score(r, &BTreeMap::new(), t).result;
    assert_eq!(v(&[result("a", Pass)]), Verdict::Pass);
    assert_eq!(
        v(&[result("a", Pass), result("a", High)]),
        Verdict::Marginal
    );
    assert_eq!(
        v(&[result("a", Pass), result("a", High), result("a", Low)]),
        Verdict::Fail
    );
}
