//! Canary analysis: step and background runs, their names and verdicts, retry.

use super::fixtures::*;
use crate::crd::*;
use crate::engine::*;

#[test]
fn analysis_step_creates_run_with_deterministic_name_and_follows_verdicts() {
    let r = Rollout::test()
        .steps(vec![weight(20), analysis("success-rate"), weight(60)])
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    let h2 = hash_of("nginx:2");
    let name = format!("web-{h2}-2-1");
    assert!(
        w.observed
            .analysis_runs
            .iter()
            .any(|r| r.name == name && r.kind == AnalysisKind::Step(1)),
        "{:#?}",
        w.observed.analysis_runs
    );
    assert_eq!(
        w.status()
            .canary
            .as_ref()
            .unwrap()
            .current_step_analysis_run_status
            .as_ref()
            .unwrap()
            .name,
        name
    );
    assert_eq!(w.status().phase, Some(RolloutPhase::Progressing));
    // Running: nothing moves, the progress deadline does not count.
    w.observed.analysis_runs[0].phase = AnalysisPhase::Running;
    w.run();
    assert_eq!(w.status().current_step_index, Some(1));
    assert_eq!(w.last.requeue_after, None, "{:#?}", w.last);
    w.observed.analysis_runs[0].phase = AnalysisPhase::Successful;
    w.run();
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(h2.as_str()),
        "{:#?}",
        w.status()
    );
}

#[test]
fn analysis_verdicts_table() {
    // (phase, expected abort, expected pause)
    let cases = [
        (AnalysisPhase::Failed, true, false),
        (AnalysisPhase::Error, true, false),
        (AnalysisPhase::Inconclusive, false, true),
        (AnalysisPhase::Running, false, false),
        (AnalysisPhase::Pending, false, false),
        (AnalysisPhase::Successful, false, false),
    ];
    for (phase, abort, paused) in cases {
        let r = Rollout::test()
            .steps(vec![weight(20), analysis("t"), pause()])
            .build();
        let mut w = World::healthy(r);
        w.set_image("nginx:2");
        w.run();
        w.observed.analysis_runs[0].phase = phase;
        w.step();
        let s = w.status();
        assert_eq!(s.abort, abort, "{phase:?}: {s:#?}");
        let inconclusive = s
            .pause_conditions
            .iter()
            .any(|c| c.reason == PauseReason::InconclusiveAnalysisRun);
        assert_eq!(inconclusive, paused, "{phase:?}: {s:#?}");
        if phase == AnalysisPhase::Successful {
            assert_eq!(s.current_step_index, Some(2), "{s:#?}");
        }
    }
}

#[test]
fn inconclusive_step_resumed_by_a_person_analyses_the_step_again() {
    let r = Rollout::test()
        .steps(vec![weight(20), analysis("t"), weight(50)])
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    let first = w.observed.analysis_runs[0].name.clone();
    w.observed.analysis_runs[0].phase = AnalysisPhase::Inconclusive;
    w.run();
    assert_eq!(w.status().phase, Some(RolloutPhase::Paused));
    w.update_status(|s| s.pause_conditions.clear());
    w.run();
    assert_eq!(
        w.status().current_step_index,
        Some(1),
        "still at the analysis step"
    );
    assert_ne!(
        w.status().phase,
        Some(RolloutPhase::Paused),
        "{:#?}",
        w.status()
    );
    let second = w
        .observed
        .analysis_runs
        .iter()
        .find(|r| r.name != first)
        .unwrap_or_else(|| panic!("no new run: {:#?}", w.observed.analysis_runs));
    assert_eq!(second.name, format!("{first}.1"));
    let second = second.name.clone();
    w.observed
        .analysis_runs
        .iter_mut()
        .filter(|r| r.name == second)
        .for_each(|r| r.phase = AnalysisPhase::Successful);
    w.run();
    assert_eq!(w.status().current_step_index, Some(3), "{:#?}", w.status());
}

#[test]
fn failed_analysis_aborts_and_terminates_background_run() {
    let r = Rollout::test()
        .steps(vec![weight(20), analysis("t"), pause()])
        .with_canary(|c| {
            c.analysis = Some(BackgroundAnalysis {
                analysis: analysis_of("bg"),
                starting_step: None,
            })
        })
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    let h2 = hash_of("nginx:2");
    let bg = format!("web-{h2}-2");
    assert!(
        w.observed
            .analysis_runs
            .iter()
            .any(|r| r.name == bg && r.kind == AnalysisKind::Background),
        "{:#?}",
        w.observed.analysis_runs
    );
    for r in &mut w.observed.analysis_runs {
        r.phase = AnalysisPhase::Running;
    }
    let step_run = w
        .observed
        .analysis_runs
        .iter_mut()
        .find(|r| r.kind == AnalysisKind::Step(1))
        .unwrap();
    step_run.phase = AnalysisPhase::Failed;
    step_run.message = Some("error rate 12%".into());
    let d = w.step().clone();
    assert!(d.status.abort, "{:#?}", d.status);
    assert!(
        d.status
            .message
            .as_deref()
            .unwrap()
            .contains("error rate 12%"),
        "{:?}",
        d.status.message
    );
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: bg }),
        "{d:#?}"
    );
}

#[test]
fn background_analysis_failure_aborts() {
    let r = Rollout::test()
        .with_canary(|c| {
            c.analysis = Some(BackgroundAnalysis {
                analysis: analysis_of("bg"),
                starting_step: Some(1),
            })
        })
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.step();
    assert!(w.observed.analysis_runs.is_empty(), "starts at step 1");
    w.run();
    assert_eq!(w.observed.analysis_runs.len(), 1);
    w.observed.analysis_runs[0].phase = AnalysisPhase::Error;
    w.step();
    assert!(w.status().abort);
}

#[test]
fn retry_creates_a_new_analysis_run() {
    let r = Rollout::test()
        .steps(vec![weight(20), analysis("t")])
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    w.observed.analysis_runs[0].phase = AnalysisPhase::Failed;
    w.run();
    w.update_status(|s| s.abort = false);
    w.run();
    let names: Vec<_> = w
        .observed
        .analysis_runs
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let base = format!("web-{}-2-1", hash_of("nginx:2"));
    assert_eq!(names, vec![base.clone(), format!("{base}.1")]);
}
