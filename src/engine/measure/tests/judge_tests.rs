//! Judge metrics in the loop: their settings and validation, the sides a run compares, the
//! window, turning fetched data into the judge's request, and the verdict into measurements and
//! a bounded history.

use super::*;
use crate::crd::{JudgeControl, JudgeMetric, PrometheusMetric, RunScope};
use crate::engine::measure::judge::{self, Fetched, Role, SideData};
use sluice_analysis::score::Verdict;
use sluice_analysis::spec::{JudgementSpec, MetricSpec, Test, ThresholdsSpec};

fn judge_metric(name: &str, test: Test) -> Metric {
    Metric {
        name: name.into(),
        interval: Some("10s".into()),
        count: int(3),
        provider: MetricProviderSpec {
            prometheus: Some(PrometheusMetric {
                query: "q".into(),
                ..PrometheusMetric::default()
            }),
            ..MetricProviderSpec::default()
        },
        judge: Some(JudgeMetric {
            spec: MetricSpec {
                test: Some(test),
                ..MetricSpec::default()
            },
            total_query: (test == Test::RateRatio).then(|| "t".into()),
            ..JudgeMetric::default()
        }),
        ..Metric::default()
    }
}

/// A change to a metric.
type Change = Box<dyn Fn(&mut Metric)>;

fn scope(baseline: bool) -> RunScope {
    RunScope {
        rollout: Some("web".into()),
        canary_pod_template_hash: Some("c".into()),
        stable_pod_template_hash: Some("s".into()),
        baseline_pod_template_hash: baseline.then(|| "b".into()),
    }
}

#[test]
fn a_judge_metric_is_refused_with_the_field_named() {
    let ok = judge_metric("latency", Test::MannWhitney);
    assert!(validate_metric(&ok).is_ok());
    let cases: Vec<(&str, Change)> = vec![
        ("interval", Box::new(|m| m.interval = None)),
        (
            "prometheus provider",
            Box::new(|m| m.provider.prometheus = None),
        ),
        (
            "judge.step",
            Box::new(|m| m.judge.as_mut().unwrap().step = Some("soon".into())),
        ),
        (
            "judge.window",
            Box::new(|m| m.judge.as_mut().unwrap().window = Some("0s".into())),
        ),
        (
            "totalQuery",
            Box::new(|m| m.judge.as_mut().unwrap().total_query = Some("t".into())),
        ),
        (
            "outliers.factor",
            Box::new(|m| {
                m.judge.as_mut().unwrap().spec.outliers = Some(sluice_analysis::spec::Outliers {
                    strategy: None,
                    factor: Some(-1.0),
                })
            }),
        ),
    ];
    for (needle, change) in cases {
        let mut m = ok.clone();
        change(&mut m);
        let error = validate_metric(&m).expect_err(needle).to_string();
        assert!(error.contains(needle), "{needle}: {error}");
    }
    let mut rate = judge_metric("errors", Test::RateRatio);
    assert!(validate_metric(&rate).is_ok());
    rate.judge.as_mut().unwrap().total_query = None;
    assert!(
        validate_metric(&rate)
            .unwrap_err()
            .to_string()
            .contains("totalQuery")
    );
}

#[test]
fn judge_metrics_of_a_run_share_one_schedule_and_a_valid_judgement() {
    let a = judge_metric("a", Test::MannWhitney);
    let mut b = judge_metric("b", Test::MannWhitney);
    assert!(judge::validate_run(&[a.clone(), b.clone(), metric("plain")], None).is_ok());
    b.interval = Some("20s".into());
    let e = judge::validate_run(&[a.clone(), b], None).unwrap_err();
    assert_eq!(e.metric, "b");
    let bad = JudgementSpec {
        thresholds: Some(ThresholdsSpec {
            pass: Some(50.0),
            marginal: Some(80.0),
        }),
        ..JudgementSpec::default()
    };
    let e = judge::validate_run(&[a], Some(&bad)).unwrap_err();
    assert!(
        e.problem.contains("judgement.thresholds.marginal"),
        "{}",
        e.problem
    );
}

#[test]
fn the_first_judgement_comes_an_interval_after_the_start() {
    let spec = AnalysisRunSpec {
        metrics: vec![judge_metric("latency", Test::MannWhitney)],
        ..AnalysisRunSpec::default()
    };
    let d = step(&spec, None, &[], at(0));
    assert!(d.due.is_empty());
    assert_eq!(d.requeue_after, Some(Duration::from_secs(10)));
    let status = d.status;
    let d = step(&spec, Some(&status), &[], at(10));
    assert_eq!(d.due.len(), 1);
}

#[test]
fn the_control_is_the_baseline_when_there_is_one_unless_the_metric_says_stable() {
    let roles = |scope: Option<&RunScope>, control| {
        judge::sides(scope, control)
            .map(|[c, k]| (c.role, c.pod_template_hash, k.role, k.pod_template_hash))
    };
    assert_eq!(
        roles(Some(&scope(true)), None),
        Ok((Role::Canary, "c".into(), Role::Baseline, "b".into()))
    );
    assert_eq!(
        roles(Some(&scope(false)), None),
        Ok((Role::Canary, "c".into(), Role::Stable, "s".into()))
    );
    assert_eq!(
        roles(Some(&scope(true)), Some(JudgeControl::Stable)),
        Ok((Role::Canary, "c".into(), Role::Stable, "s".into()))
    );
    assert!(
        roles(Some(&scope(false)), Some(JudgeControl::Baseline))
            .unwrap_err()
            .contains("no baseline")
    );
    assert!(roles(None, None).unwrap_err().contains("spec.scope"));
}

#[test]
fn the_window_starts_at_the_run_or_the_look_back_whichever_is_later() {
    assert_eq!(judge::window(at(0), None, at(60)), (at(0), at(60)));
    assert_eq!(
        judge::window(at(0), Some(Duration::from_secs(20)), at(60)),
        (at(40), at(60))
    );
    assert_eq!(
        judge::window(at(50), Some(Duration::from_secs(20)), at(60)),
        (at(50), at(60))
    );
    assert_eq!(judge::window_text(at(0), at(60)), "60s");
    assert_eq!(judge::window_text(at(0), at(0)), "1s");
}

fn fetched<'a>(m: &'a Metric, canary: SideData, control: SideData) -> Fetched<'a> {
    Fetched {
        metric: m,
        canary,
        control,
    }
}

#[test]
fn fetched_data_becomes_the_judges_request_and_its_verdict_the_phase() {
    let latency = judge_metric("latency", Test::MannWhitney);
    let errors = judge_metric("errors", Test::RateRatio);
    let same: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i % 7)).collect();
    let slower: Vec<f64> = same.iter().map(|v| v * 1.3).collect();
    let counts = |events, total| SideData::Counts {
        events: Some(events),
        total: Some(total),
    };
    let good = [
        fetched(
            &latency,
            SideData::Values(same.clone()),
            SideData::Values(same.clone()),
        ),
        fetched(&errors, counts(10.2, 10_000.0), counts(9.8, 10_000.0)),
    ];
    let j = sluice_analysis::judge(&judge::request(&good, None).unwrap());
    assert_eq!((j.score, j.result), (100.0, Verdict::Pass), "{j:#?}");
    assert_eq!(judge::phase(j.result), AnalysisPhase::Successful);
    let m = judge::measurement(&j, "latency", at(0), at(1));
    assert_eq!(m.value.as_deref(), Some("Pass"));
    assert!(m.message.unwrap().contains("canary score 100"));

    let bad = [
        fetched(
            &latency,
            SideData::Values(slower),
            SideData::Values(same.clone()),
        ),
        fetched(&errors, counts(60.0, 10_000.0), counts(10.0, 10_000.0)),
    ];
    let j = sluice_analysis::judge(&judge::request(&bad, None).unwrap());
    assert_eq!((j.score, j.result), (0.0, Verdict::Fail), "{j:#?}");
    assert_eq!(judge::phase(j.result), AnalysisPhase::Failed);
    assert_eq!(judge::failing(&j), ["latency (High)", "errors (High)"]);
    assert!(judge::summary(&j).contains("not passing: latency (High), errors (High)"));

    // One of two failing is 50: marginal under thresholds that make it so.
    let half = [
        fetched(
            &latency,
            SideData::Values(same.clone()),
            SideData::Values(same.clone()),
        ),
        fetched(&errors, counts(60.0, 10_000.0), counts(10.0, 10_000.0)),
    ];
    let scoring = JudgementSpec {
        thresholds: Some(ThresholdsSpec {
            pass: Some(90.0),
            marginal: Some(40.0),
        }),
        ..JudgementSpec::default()
    };
    let j = sluice_analysis::judge(&judge::request(&half, Some(&scoring)).unwrap());
    assert_eq!((j.score, j.result), (50.0, Verdict::Marginal));
    assert_eq!(judge::phase(j.result), AnalysisPhase::Inconclusive);
}

#[test]
fn missing_infinite_and_empty_data_are_no_data_never_a_panic() {
    let latency = judge_metric("latency", Test::MannWhitney);
    let errors = judge_metric("errors", Test::RateRatio);
    let data = [
        fetched(
            &latency,
            SideData::Values(vec![f64::NAN, f64::INFINITY]),
            SideData::Values(vec![]),
        ),
        fetched(
            &errors,
            SideData::Counts {
                events: None,
                total: Some(0.0),
            },
            SideData::Counts {
                events: Some(3.0),
                total: Some(0.0),
            },
        ),
    ];
    let j = sluice_analysis::judge(&judge::request(&data, None).unwrap());
    assert!(
        j.metrics
            .iter()
            .all(|m| m.classification == sluice_analysis::classify::Classification::NoData),
        "{j:#?}"
    );
    assert_eq!(j.result, Verdict::Fail);
}

#[test]
fn the_history_keeps_the_latest_scores_only() {
    let latency = judge_metric("latency", Test::MannWhitney);
    let same: Vec<f64> = (0..10).map(f64::from).collect();
    let data = [fetched(
        &latency,
        SideData::Values(same.clone()),
        SideData::Values(same),
    )];
    let j = sluice_analysis::judge(&judge::request(&data, None).unwrap());
    let mut record = None;
    for i in 0..(judge::HISTORY as i64 + 5) {
        record = Some(judge::record(
            record.as_ref(),
            j.clone(),
            JudgeControl::Baseline,
            (at(0), at(i)),
            at(i),
        ));
    }
    let record = record.unwrap();
    assert_eq!(record.history.len(), judge::HISTORY);
    assert_eq!(
        record.history.last().unwrap().judged_at.0,
        at(judge::HISTORY as i64 + 4)
    );
    assert_eq!(record.judged_at.0, at(judge::HISTORY as i64 + 4));
    // The typed status survives the API's JSON, NaN statistics included.
    let text = serde_json::to_string(&record).unwrap();
    let back: crate::crd::RunJudgement = serde_json::from_str(&text).unwrap();
    assert_eq!(back.history.len(), judge::HISTORY);
    assert_eq!(back.latest.score, record.latest.score);
}
