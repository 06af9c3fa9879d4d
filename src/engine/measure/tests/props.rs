//! Invariants of the measurement loop over random metrics and outcomes: stepping again on its
//! own output changes nothing, counts never decrease, history stays within retention, a
//! completed run never changes, and the next wake-up is never now or in the past.

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    spec: AnalysisRunSpec,
    outcomes: Vec<AnalysisPhase>,
    stop_after: usize,
}

fn phase_strategy() -> impl Strategy<Value = AnalysisPhase> {
    prop_oneof![
        4 => Just(AnalysisPhase::Successful),
        2 => Just(AnalysisPhase::Failed),
        1 => Just(AnalysisPhase::Inconclusive),
        2 => Just(AnalysisPhase::Error),
        1 => Just(AnalysisPhase::Running),
    ]
}

fn metric_strategy(i: usize) -> impl Strategy<Value = Metric> {
    (
        prop::option::of(1..5i32),
        prop::option::of(1..120u32),
        prop::option::of(0..60u32),
        prop::option::of(-1..3i32),
        prop::option::of(0..3i32),
        prop::option::of(0..3i32),
        prop::option::of(0..3i32),
    )
        .prop_map(
            move |(count, interval, delay, failure, inconclusive, errors, successes)| {
                let (count, interval) = match (count, interval) {
                    // count > 1 without an interval is an error; keep most cases runnable.
                    (Some(c), None) if c > 1 => (Some(c), Some(10)),
                    other => other,
                };
                Metric {
                    count: count.map(IntOrString::Int),
                    interval: interval.map(|s| format!("{s}s")),
                    initial_delay: delay.map(|s| format!("{s}s")),
                    failure_limit: failure.map(IntOrString::Int),
                    inconclusive_limit: inconclusive.map(IntOrString::Int),
                    consecutive_error_limit: errors.map(IntOrString::Int),
                    consecutive_success_limit: successes.map(IntOrString::Int),
                    ..metric(&format!("m{i}"))
                }
            },
        )
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1..4usize)
        .prop_flat_map(|n| {
            (
                (0..n).map(metric_strategy).collect::<Vec<_>>(),
                prop::collection::vec(phase_strategy(), 1..12),
                any::<bool>(),
                prop::option::of(1..6i32),
                0..60usize,
            )
        })
        .prop_map(|(metrics, outcomes, dry_first, retention, stop_after)| {
            let spec = AnalysisRunSpec {
                dry_run: if dry_first { vec![dry("m0")] } else { vec![] },
                measurement_retention: retention.map(|l| vec![keep("*", l)]).unwrap_or_default(),
                ..run(metrics)
            };
            Case {
                spec,
                outcomes,
                stop_after,
            }
        })
}

fn retention_of(spec: &AnalysisRunSpec) -> usize {
    spec.measurement_retention
        .last()
        .map_or(DEFAULT_RETENTION, |r| usize::try_from(r.limit).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_loop_keeps_its_invariants(case in case_strategy()) {
        let outcomes = case.outcomes.clone();
        let pick = move |_: &str, n: usize| outcomes[n % outcomes.len()];
        let mut spec = case.spec.clone();
        let mut decisions = drive(&spec, &pick, case.stop_after);
        // Then terminate whatever is left, as the controller does when the step moves on.
        spec.terminate = true;
        let last = decisions.last().unwrap().clone();
        decisions.push(step(&spec, Some(&last.status), &[], at(1_000_000)));

        let keep = retention_of(&spec);
        let mut completed_as: Option<AnalysisPhase> = None;
        for pair in decisions.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            for (b, a) in before.status.metric_results.iter().zip(&after.status.metric_results) {
                prop_assert!(a.count >= b.count && a.error >= b.error && a.failed >= b.failed,
                    "counts went down: {b:#?} → {a:#?}");
                prop_assert!(a.measurements.len() <= keep, "{a:#?}");
            }
            if let Some(p) = completed_as {
                prop_assert_eq!(after.status.phase, Some(p), "a completed run changed phase");
            }
            if after.status.phase.is_some_and(assess::completed) {
                completed_as = after.status.phase;
                prop_assert!(after.due.is_empty() && after.requeue_after.is_none());
            }
        }
        prop_assert!(completed_as.is_some(), "terminate completes every run");
        let end = &decisions.last().unwrap().status;
        prop_assert!(
            end.metric_results.iter().flat_map(|r| &r.measurements).all(|m| m.phase != AnalysisPhase::Running),
            "a completed run lists a running measurement: {end:#?}"
        );
        for d in &decisions {
            prop_assert!(d.due.len() <= d.status.metric_results.len());
            if let Some(wait) = d.requeue_after {
                prop_assert!(wait > Duration::ZERO, "a wake-up now or in the past: {d:#?}");
            }
        }
    }

    #[test]
    fn stepping_again_on_its_own_output_changes_nothing(case in case_strategy()) {
        let outcomes = case.outcomes.clone();
        let pick = move |_: &str, n: usize| outcomes[n % outcomes.len()];
        for (now, d) in drive_timed(&case.spec, &pick, case.stop_after) {
            let again = step(&case.spec, Some(&d.status), &[], now);
            prop_assert_eq!(&again.status, &d.status);
            prop_assert_eq!(&again.due, &d.due);
            prop_assert_eq!(again.requeue_after, d.requeue_after);
            prop_assert!(again.stop.is_empty(), "stopped twice: {:#?}", again.stop);
        }
    }
}
