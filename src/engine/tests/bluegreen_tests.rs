//! Blue/green behaviour: preview, switch, promotion pause, checkpoint, analysis, abort, fast
//! rollback, scale-down delay.

use super::fixtures::*;
use crate::crd::*;
use crate::engine::*;
use std::time::Duration;

fn bg(f: impl FnOnce(&mut BlueGreenStrategy)) -> World {
    World::healthy(Rollout::test().blue_green(f).build())
}

fn switched(d: &Decision, service: &str, image: &str) -> bool {
    d.actions.contains(&Action::SetServiceSelector {
        service: service.into(),
        pod_template_hash: hash_of(image),
    })
}

#[test]
fn bluegreen_initial_deploy_points_active_and_preview_at_first_revision() {
    let w = bg(|_| {});
    let h1 = hash_of("nginx:1");
    assert_eq!(w.selector_of("web-active"), Some(h1.clone()));
    assert_eq!(w.selector_of("web-preview"), Some(h1.clone()));
    assert_eq!(
        w.status().phase,
        Some(RolloutPhase::Healthy),
        "{:#?}",
        w.status()
    );
    let bgs = w.status().blue_green.clone().unwrap();
    assert_eq!(bgs.active_selector.as_deref(), Some(h1.as_str()));
    assert_eq!(
        w.status().selector.as_deref(),
        Some(format!("app=web,rollouts-pod-template-hash={h1}").as_str())
    );
}

#[test]
fn bluegreen_switches_active_only_when_new_stack_is_fully_available() {
    let mut w = bg(|_| {});
    w.set_image("nginx:2");
    let d = w.step().clone();
    assert!(
        switched(&d, "web-preview", "nginx:2"),
        "preview follows the new ReplicaSet at once: {d:#?}"
    );
    assert!(!switched(&d, "web-active", "nginx:2"), "{d:#?}");
    assert_eq!(w.spec_of("nginx:2"), 10);
    assert_eq!(w.spec_of("nginx:1"), 10);
    assert_eq!(d.status.phase, Some(RolloutPhase::Progressing));
    // 9 of 10 available: still no switch.
    let rs = w
        .observed
        .replica_sets
        .iter_mut()
        .find(|r| r.pod_template_hash.as_deref() == Some(hash_of("nginx:2").as_str()))
        .unwrap();
    rs.available_replicas = 9;
    rs.ready_replicas = 9;
    assert!(!switched(&w.step().clone(), "web-active", "nginx:2"));
    settle(&mut w.observed);
    let d = w.step().clone();
    assert!(switched(&d, "web-active", "nginx:2"), "{d:#?}");
    assert!(
        d.events.iter().any(|e| e.reason == "SwitchService"),
        "{:?}",
        d.events
    );
    assert_eq!(
        d.status.stable_rs.as_deref(),
        Some(hash_of("nginx:2").as_str())
    );
}

#[test]
fn bluegreen_old_active_scaled_down_after_delay() {
    let mut w = bg(|b| b.scale_down_delay_seconds = Some(45));
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.spec_of("nginx:1"), 10, "kept for the delay");
    assert_eq!(
        w.last.requeue_after,
        Some(Duration::from_secs(45)),
        "{:#?}",
        w.last
    );
    w.advance(45);
    w.run();
    assert_eq!(w.spec_of("nginx:1"), 0);
    assert_eq!(w.status().phase, Some(RolloutPhase::Healthy));
}

#[test]
fn bluegreen_manual_promotion_pauses_until_promoted() {
    let mut w = bg(|b| b.auto_promotion_enabled = Some(false));
    w.set_image("nginx:2");
    w.run();
    assert_eq!(
        w.status().phase,
        Some(RolloutPhase::Paused),
        "{:#?}",
        w.status()
    );
    assert_eq!(
        w.status().pause_conditions[0].reason,
        PauseReason::BlueGreenPause
    );
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:1")));
    w.advance(86_400);
    w.run();
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:1")));
    w.update_status(|s| s.pause_conditions.clear());
    w.run();
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:2")));
    assert_eq!(w.status().phase, Some(RolloutPhase::Healthy));
}

#[test]
fn bluegreen_auto_promotion_seconds_requeue_exactly_then_promote() {
    let mut w = bg(|b| b.auto_promotion_seconds = Some(120));
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.status().phase, Some(RolloutPhase::Paused));
    assert_eq!(
        w.last.requeue_after,
        Some(Duration::from_secs(120)),
        "{:#?}",
        w.last
    );
    w.advance(119);
    w.run();
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:1")));
    assert_eq!(w.last.requeue_after, Some(Duration::from_secs(1)));
    w.advance(1);
    w.run();
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:2")));
}

#[test]
fn bluegreen_preview_replica_count_scales_up_before_switch() {
    let mut w = bg(|b| {
        b.preview_replica_count = Some(2);
        b.auto_promotion_enabled = Some(false);
    });
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.spec_of("nginx:2"), 2);
    assert_eq!(w.status().phase, Some(RolloutPhase::Paused));
    w.update_status(|s| s.pause_conditions.clear());
    let d = w.step().clone();
    assert_eq!(w.spec_of("nginx:2"), 10, "{d:#?}");
    assert!(
        d.status
            .blue_green
            .as_ref()
            .unwrap()
            .scale_up_preview_check_point
    );
    assert!(
        !switched(&d, "web-active", "nginx:2"),
        "switch waits for the full stack"
    );
    w.run();
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:2")));
    assert!(
        !w.status()
            .blue_green
            .as_ref()
            .unwrap()
            .scale_up_preview_check_point
    );
}

#[test]
fn bluegreen_pre_promotion_analysis_gates_the_switch() {
    for (phase, switches, aborts) in [
        (AnalysisPhase::Running, false, false),
        (AnalysisPhase::Successful, true, false),
        (AnalysisPhase::Failed, false, true),
    ] {
        let mut w = bg(|b| b.pre_promotion_analysis = Some(analysis_of("smoke")));
        w.set_image("nginx:2");
        w.run();
        let name = format!("web-{}-2-pre", hash_of("nginx:2"));
        assert_eq!(
            w.observed.analysis_runs.len(),
            1,
            "{:#?}",
            w.observed.analysis_runs
        );
        assert_eq!(w.observed.analysis_runs[0].name, name);
        assert_eq!(w.observed.analysis_runs[0].kind, AnalysisKind::PrePromotion);
        w.observed.analysis_runs[0].phase = phase;
        w.run();
        assert_eq!(
            w.selector_of("web-active") == Some(hash_of("nginx:2")),
            switches,
            "{phase:?}: {:#?}",
            w.status()
        );
        assert_eq!(w.status().abort, aborts, "{phase:?}");
    }
}

#[test]
fn bluegreen_post_promotion_failure_switches_back() {
    let mut w = bg(|b| b.post_promotion_analysis = Some(analysis_of("smoke")));
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:2")));
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(hash_of("nginx:1").as_str()),
        "stable waits for post-promotion analysis"
    );
    assert_eq!(
        w.status().message.as_deref(),
        Some("waiting for post-promotion verification to complete")
    );
    assert_eq!(w.spec_of("nginx:1"), 10);
    w.observed.analysis_runs[0].phase = AnalysisPhase::Failed;
    let d = w.step().clone();
    assert!(switched(&d, "web-active", "nginx:1"), "{d:#?}");
    assert_eq!(d.status.phase, Some(RolloutPhase::Degraded));
}

#[test]
fn bluegreen_abort_scales_preview_down_after_delay() {
    let mut w = bg(|b| b.auto_promotion_enabled = Some(false));
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.abort = true);
    let d = w.step().clone();
    assert_eq!(d.status.phase, Some(RolloutPhase::Degraded));
    assert!(d.status.pause_conditions.is_empty());
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)), "{d:#?}");
    assert_eq!(w.spec_of("nginx:2"), 10);
    w.advance(30);
    w.run();
    assert_eq!(w.spec_of("nginx:2"), 0);
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:1")));
}

#[test]
fn bluegreen_fast_rollback_switches_back_immediately() {
    let mut w = bg(|b| b.pre_promotion_analysis = Some(analysis_of("smoke")));
    w.set_image("nginx:2");
    w.run();
    w.observed.analysis_runs[0].phase = AnalysisPhase::Successful;
    w.run();
    assert_eq!(w.selector_of("web-active"), Some(hash_of("nginx:2")));
    assert!(w.rs_of("nginx:1").unwrap().scale_down_deadline.is_some());
    // Undo within the scale-down delay: v1 is still up.
    w.advance(10);
    w.set_image("nginx:1");
    let d = w.step().clone();
    assert!(
        switched(&d, "web-active", "nginx:1"),
        "no analysis, no pause: {d:#?}"
    );
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::SetScaleDownDeadline { deadline: None, .. })),
        "{d:#?}"
    );
    assert_eq!(
        d.status.stable_rs.as_deref(),
        Some(hash_of("nginx:1").as_str())
    );
    assert_eq!(w.observed.analysis_runs.len(), 1, "no new analysis run");
}
