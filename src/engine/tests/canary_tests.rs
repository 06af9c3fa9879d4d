//! Canary behaviour: steps, pause protocol, promote, promote-full, abort, retry, new revision
//! mid-rollout, rollbacks, traffic routing, analysis.

use super::fixtures::*;
use crate::crd::*;
use crate::engine::*;
use std::time::Duration;

fn scale(d: &Decision, name: &str) -> Option<i32> {
    d.actions.iter().find_map(|a| match a {
        Action::ScaleReplicaSet { name: n, replicas } if n == name => Some(*replicas),
        Action::CreateReplicaSet {
            name: n, replicas, ..
        } if n == name => Some(*replicas),
        _ => None,
    })
}

fn rs_name(image: &str) -> String {
    format!("{NAME}-{}", hash_of(image))
}

#[test]
fn initial_deploy_creates_replicaset_and_is_stable_at_once() {
    let r = Rollout::test().build();
    let d = decide(&r, &ObservedBuilder::new().build(), t0());
    let h = hash_of("nginx:1");
    assert!(
        matches!(&d.actions[..], [Action::CreateReplicaSet { name, pod_template_hash, replicas: 10, revision: 1, .. }] if *name == format!("web-{h}") && *pod_template_hash == h),
        "{d:#?}"
    );
    assert_eq!(
        d.status.stable_rs.as_deref(),
        Some(h.as_str()),
        "{:#?}",
        d.status
    );
    assert_eq!(d.status.current_pod_hash.as_deref(), Some(h.as_str()));
    assert_eq!(
        d.status.current_step_index,
        Some(4),
        "initial deploy skips the steps"
    );
    assert_eq!(d.status.phase, Some(RolloutPhase::Progressing));
    assert!(
        d.events.iter().any(|e| e.reason == "NewReplicaSetCreated"),
        "{:?}",
        d.events
    );
}

#[test]
fn initial_deploy_becomes_healthy_and_a_second_decision_writes_nothing() {
    let mut w = World::healthy(Rollout::test().build());
    assert_eq!(
        w.status().phase,
        Some(RolloutPhase::Healthy),
        "{:#?}",
        w.status()
    );
    for (t, s) in [
        ("Ready", "True"),
        ("Healthy", "True"),
        ("Completed", "True"),
        ("Available", "True"),
        ("Stalled", "False"),
        ("Reconciling", "False"),
    ] {
        assert_eq!(
            w.condition(t).map(|c| c.status.as_str()),
            Some(s),
            "{t}: {:#?}",
            w.status().conditions
        );
    }
    assert_eq!(w.status().observed_generation, Some(1));
    let before = w.status().clone();
    w.advance(3600);
    let d = w.step().clone();
    assert!(d.actions.is_empty(), "{d:#?}");
    assert_eq!(d.status, before, "a no-op reconcile must not change status");
    assert_eq!(d.requeue_after, None);
}

#[test]
fn new_revision_scales_canary_within_surge_and_unavailable_budgets() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    let d = w.step().clone();
    // 10 replicas, 25% surge = 3, 25% unavailable = 2: canary 2 (20%), stable down by 2.
    assert_eq!(scale(&d, &rs_name("nginx:2")), Some(2), "{d:#?}");
    assert_eq!(scale(&d, &rs_name("nginx:1")), Some(8), "{d:#?}");
    assert!(w.reasons().contains(&"RolloutUpdated"), "{:?}", d.events);
    assert_eq!(d.status.current_step_index, Some(0));
    assert_eq!(
        d.status.stable_rs.as_deref(),
        Some(hash_of("nginx:1").as_str())
    );
    // Pods not yet available: deciding again changes nothing.
    let again = w.step();
    assert!(again.actions.is_empty(), "{again:#?}");
}

#[test]
fn basic_canary_walks_every_step_to_promotion() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    // setWeight 20 reached, then the open pause.
    assert_eq!(w.status().current_step_index, Some(1), "{:#?}", w.status());
    assert_eq!((w.spec_of("nginx:2"), w.spec_of("nginx:1")), (2, 8));
    assert_eq!(w.status().phase, Some(RolloutPhase::Paused));
    assert!(w.status().controller_pause);
    assert_eq!(
        w.status().pause_conditions[0].reason,
        PauseReason::CanaryPauseStep
    );
    // Time alone does not end an open pause.
    w.advance(3600);
    w.run();
    assert_eq!(w.status().current_step_index, Some(1));
    // Promote: a person removes the pause conditions.
    w.update_status(|s| s.pause_conditions.clear());
    w.run();
    assert_eq!(w.status().current_step_index, Some(3), "{:#?}", w.status());
    assert_eq!((w.spec_of("nginx:2"), w.spec_of("nginx:1")), (5, 5));
    assert!(!w.status().controller_pause || !w.status().pause_conditions.is_empty());
    // pause 30s: requeue exactly at the end.
    assert_eq!(
        w.last.requeue_after,
        Some(Duration::from_secs(30)),
        "{:#?}",
        w.last
    );
    w.advance(29);
    w.run();
    assert_eq!(w.status().current_step_index, Some(3));
    assert_eq!(w.last.requeue_after, Some(Duration::from_secs(1)));
    w.advance(1);
    w.run();
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(hash_of("nginx:2").as_str()),
        "{:#?}",
        w.status()
    );
    assert_eq!(w.status().current_step_index, Some(4));
    assert_eq!((w.spec_of("nginx:2"), w.spec_of("nginx:1")), (10, 0));
    assert_eq!(
        w.status().phase,
        Some(RolloutPhase::Healthy),
        "{:#?}",
        w.status()
    );
}

#[test]
fn step_completed_events_name_the_step() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.step();
    settle(&mut w.observed);
    w.step();
    let e = w
        .last
        .events
        .iter()
        .find(|e| e.reason == "RolloutStepCompleted")
        .unwrap();
    assert_eq!(
        e.message, "Rollout step 1/4 completed (setWeight: 20)",
        "{:?}",
        w.last.events
    );
    assert!(
        w.reasons().contains(&"RolloutPaused"),
        "{:?}",
        w.last.events
    );
}

#[test]
fn spec_paused_halts_steps_and_scaling() {
    let mut w = World::healthy(Rollout::test().build());
    w.rollout.spec.paused = true;
    w.set_image("nginx:2");
    let d = w.step().clone();
    // The new ReplicaSet is created (empty) but nothing scales.
    assert_eq!(scale(&d, &rs_name("nginx:2")), Some(0), "{d:#?}");
    assert_eq!(scale(&d, &rs_name("nginx:1")), None, "{d:#?}");
    assert_eq!(d.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(d.status.message.as_deref(), Some("manually paused"));
    w.rollout.spec.paused = false;
    let d = w.step().clone();
    assert_eq!(scale(&d, &rs_name("nginx:2")), Some(2), "{d:#?}");
    assert!(
        d.events.iter().any(|e| e.reason == "RolloutResumed"),
        "{:?}",
        d.events
    );
}

#[test]
fn promote_full_skips_remaining_steps() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.status().current_step_index, Some(1));
    w.update_status(|s| s.promote_full = true);
    w.run();
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(hash_of("nginx:2").as_str()),
        "{:#?}",
        w.status()
    );
    assert!(
        !w.status().promote_full,
        "promoteFull is cleared on promotion"
    );
    assert_eq!(w.status().phase, Some(RolloutPhase::Healthy));
}

#[test]
fn abort_basic_canary_rolls_back_and_is_degraded() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.abort = true);
    let d = w.step().clone();
    assert!(
        d.status.abort && d.status.aborted_at.is_some(),
        "{:#?}",
        d.status
    );
    assert!(d.status.pause_conditions.is_empty());
    assert_eq!(d.status.phase, Some(RolloutPhase::Degraded));
    assert!(
        d.status
            .message
            .as_deref()
            .unwrap()
            .starts_with("RolloutAborted: Rollout aborted update to revision 2"),
        "{:?}",
        d.status.message
    );
    let p = d
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (p.status.as_str(), p.reason.as_deref()),
        ("False", Some("RolloutAborted"))
    );
    assert!(d.events.iter().any(|e| e.reason == "RolloutAborted"));
    w.run();
    assert_eq!(
        (w.spec_of("nginx:2"), w.spec_of("nginx:1")),
        (0, 10),
        "{:#?}",
        w.observed
    );
    assert_eq!(
        w.status().aborted_at,
        d.status.aborted_at,
        "abortedAt is kept"
    );
    assert_eq!(w.condition("Stalled").unwrap().status, "True");
}

#[test]
fn retry_after_abort_restarts_from_step_zero() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.abort = true);
    w.run();
    w.update_status(|s| s.abort = false);
    let d = w.step().clone();
    assert_eq!(d.status.aborted_at, None);
    assert!(
        d.events.iter().any(|e| e.reason == "RolloutRetry"),
        "{:?}",
        d.events
    );
    assert_eq!(scale(&d, &rs_name("nginx:2")), Some(2), "{d:#?}");
    w.run();
    assert_eq!(w.status().current_step_index, Some(1));
    assert_eq!(w.status().phase, Some(RolloutPhase::Paused));
}

#[test]
fn new_revision_mid_rollout_resets_steps_and_keeps_stable() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.pause_conditions.clear());
    w.run();
    assert_eq!(w.status().current_step_index, Some(3));
    w.set_image("nginx:3");
    let d = w.step().clone();
    assert_eq!(d.status.current_step_index, Some(0));
    assert!(
        d.status.pause_conditions.is_empty() && !d.status.controller_pause,
        "{:#?}",
        d.status
    );
    assert_eq!(
        d.status.stable_rs.as_deref(),
        Some(hash_of("nginx:1").as_str())
    );
    assert_eq!(
        d.status.current_pod_hash.as_deref(),
        Some(hash_of("nginx:3").as_str())
    );
    w.run();
    // The intermediate revision is drained; v1 stays stable at 80 %, v3 at 20 %.
    assert_eq!(
        (
            w.spec_of("nginx:3"),
            w.spec_of("nginx:2"),
            w.spec_of("nginx:1")
        ),
        (2, 0, 8),
        "{:#?}",
        w.observed
    );
}

#[test]
fn rollback_to_stable_skips_steps() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    w.set_image("nginx:1");
    let d = w.step().clone();
    assert!(
        d.events.iter().any(|e| e.reason == "SkipSteps"),
        "{:?}",
        d.events
    );
    assert_eq!(d.status.current_step_index, Some(4));
    w.run();
    assert_eq!((w.spec_of("nginx:1"), w.spec_of("nginx:2")), (10, 0));
    assert_eq!(
        w.status().phase,
        Some(RolloutPhase::Healthy),
        "{:#?}",
        w.status()
    );
    // The reused ReplicaSet becomes the newest revision.
    assert_eq!(w.rs_of("nginx:1").unwrap().revision, Some(3));
}

#[test]
fn rollback_within_window_skips_steps() {
    let r = Rollout::test()
        .with_spec(|s| s.rollback_window = Some(RollbackWindow { revisions: 2 }))
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.promote_full = true);
    w.run();
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(hash_of("nginx:2").as_str())
    );
    w.set_image("nginx:1");
    let d = w.step().clone();
    assert!(
        d.events.iter().any(|e| e.reason == "SkipSteps"),
        "{:?}",
        d.events
    );
    assert_eq!(d.status.current_step_index, Some(4), "{:#?}", d.status);
    w.run();
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(hash_of("nginx:1").as_str())
    );
    assert_eq!(w.status().phase, Some(RolloutPhase::Healthy));
}

#[test]
fn rollback_outside_window_walks_the_steps() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.promote_full = true);
    w.run();
    w.set_image("nginx:1");
    w.run();
    assert_eq!(w.status().current_step_index, Some(1), "{:#?}", w.status());
}

#[test]
fn name_collision_bumps_collision_count() {
    let r = Rollout::test().build();
    // Someone else's template under our name.
    let mut squatter = rs("busybox", 0, 1);
    squatter.name = format!("{NAME}-{}", hash_of("nginx:1"));
    let observed = ObservedBuilder::new().rs(squatter).build();
    let d = decide(&r, &observed, t0());
    assert_eq!(d.status.collision_count, Some(1), "{:#?}", d.status);
    let expected = hash::pod_template_hash(&template("nginx:1"), Some(1));
    assert!(
        d.actions.iter().any(|a| matches!(a, Action::CreateReplicaSet { pod_template_hash, .. } if *pod_template_hash == expected)),
        "{d:#?}"
    );
}

#[test]
fn steps_change_resets_the_cursor() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.status().current_step_index, Some(1));
    w.rollout.spec.strategy.canary.as_mut().unwrap().steps = vec![weight(30), pause()];
    let d = w.step().clone();
    assert_eq!(d.status.current_step_index, Some(0), "{:#?}", d.status);
    assert_ne!(d.status.current_step_hash, None);
    w.run();
    assert_eq!((w.spec_of("nginx:2"), w.spec_of("nginx:1")), (3, 7));
}

#[test]
fn missing_stable_replicaset_promotes_the_desired_revision() {
    let mut w = World::healthy(Rollout::test().build());
    w.set_image("nginx:2");
    w.run();
    w.observed
        .replica_sets
        .retain(|r| r.pod_template_hash.as_deref() != Some(hash_of("nginx:1").as_str()));
    let d = w.step().clone();
    assert_eq!(
        d.status.stable_rs.as_deref(),
        Some(hash_of("nginx:2").as_str()),
        "{:#?}",
        d.status
    );
    assert!(
        d.events.iter().any(|e| e.reason == "SkipSteps"),
        "{:?}",
        d.events
    );
    w.run();
    assert_eq!(w.spec_of("nginx:2"), 10, "full capacity at once");
    assert_eq!(w.status().phase, Some(RolloutPhase::Healthy));
}

#[test]
fn basic_canary_step_completes_while_the_serving_stable_is_held_at_one_pod() {
    // The engine keeps one pod of a ReplicaSet the stable hash still points at, so a step
    // whose target leaves the stable no pods must complete on that floor instead of waiting
    // for a zero it never reaches. Cases: (replicas, weight, pause, canary and stable pods at
    // the pause).
    let cases = [
        // One pod cannot be split in half: canary 1 beside the held stable pod.
        (1, 50, "10s", (1, 1)),
        // setWeight 100 before a last pause: the stable keeps one pod until promotion.
        (3, 100, "5s", (3, 1)),
    ];
    for (replicas, set_weight, pause, at_pause) in cases {
        let mut w = World::healthy(
            Rollout::test()
                .replicas(replicas)
                .steps(vec![weight(set_weight), pause_for(pause)])
                .build(),
        );
        w.set_image("nginx:2");
        w.run();
        let case = format!("{replicas} replicas at setWeight {set_weight}");
        assert_eq!(
            w.status().current_step_index,
            Some(1),
            "{case}: {:#?}",
            w.status()
        );
        assert_eq!(
            (w.spec_of("nginx:2"), w.spec_of("nginx:1")),
            at_pause,
            "{case}"
        );
        let secs: i64 = pause.trim_end_matches('s').parse().unwrap();
        w.advance(secs);
        w.run();
        assert_eq!(
            w.status().stable_rs.as_deref(),
            Some(hash_of("nginx:2").as_str()),
            "{case}: {:#?}",
            w.status()
        );
        assert_eq!(
            (w.spec_of("nginx:2"), w.spec_of("nginx:1")),
            (replicas, 0),
            "{case}"
        );
    }
}
