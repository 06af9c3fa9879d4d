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

// ---- traffic routing ----

fn tr_world() -> World {
    let mut w = World::healthy(Rollout::test().traffic().build());
    w.set_image("nginx:2");
    w
}

#[test]
fn traffic_routed_canary_uses_ceil_and_keeps_stable_full() {
    let mut w = World::healthy(
        Rollout::test()
            .traffic()
            .steps(vec![weight(15), pause()])
            .build(),
    );
    let h1 = hash_of("nginx:1");
    assert_eq!(w.selector_of("web-stable"), Some(h1.clone()));
    assert_eq!(w.selector_of("web-canary"), Some(h1.clone()));
    w.set_image("nginx:2");
    let d = w.step().clone();
    assert_eq!(
        scale(&d, &rs_name("nginx:2")),
        Some(2),
        "ceil(10 × 15 / 100) = 2: {d:#?}"
    );
    assert_eq!(scale(&d, &rs_name("nginx:1")), None, "stable stays at 10");
    // No weight for a canary without available pods.
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::SetWeights(w) if w.canary.weight > 0)),
        "{d:#?}"
    );
    settle(&mut w.observed);
    let d = w.step().clone();
    let h2 = hash_of("nginx:2");
    assert!(
        d.actions.contains(&Action::SetServiceSelector {
            service: "web-canary".into(),
            pod_template_hash: h2.clone()
        }),
        "{d:#?}"
    );
    let weights = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::SetWeights(w) => Some(w.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((weights.canary.weight, weights.stable.weight), (15, 85));
    assert_eq!(
        weights.canary.pod_template_hash.as_deref(),
        Some(h2.as_str())
    );
    assert_eq!(
        d.status
            .canary
            .as_ref()
            .unwrap()
            .weights
            .as_ref()
            .unwrap()
            .canary
            .weight,
        15,
        "{:#?}",
        d.status
    );
    assert!(d.events.iter().any(|e| e.reason == "TrafficWeightUpdated"));
    assert_eq!(d.status.current_step_index, Some(1));
    assert!(w.step().actions.is_empty(), "{:#?}", w.last);
}

#[test]
fn promotion_switches_stable_service_and_delays_old_scale_down() {
    let mut w = tr_world();
    w.run();
    w.update_status(|s| s.promote_full = true);
    w.run();
    let h2 = hash_of("nginx:2");
    assert_eq!(w.status().stable_rs.as_deref(), Some(h2.as_str()));
    assert_eq!(w.selector_of("web-stable"), Some(h2.clone()));
    assert_eq!(w.selector_of("web-canary"), Some(h2.clone()));
    let weights = w.status().canary.as_ref().unwrap().weights.clone().unwrap();
    assert_eq!(
        (weights.canary.weight, weights.stable.weight),
        (0, 100),
        "{weights:?}"
    );
    // The old stable keeps running for scaleDownDelaySeconds (30 s).
    let old = w.rs_of("nginx:1").unwrap();
    assert_eq!(old.desired_replicas, 10);
    assert!(old.scale_down_deadline.is_some(), "{old:#?}");
    assert!(
        w.last
            .requeue_after
            .is_some_and(|d| d <= Duration::from_secs(30)),
        "{:?}",
        w.last.requeue_after
    );
    let deadline = old.scale_down_deadline.unwrap();
    w.now = deadline;
    w.run();
    assert_eq!(w.spec_of("nginx:1"), 0);
    assert_eq!(w.status().phase, Some(RolloutPhase::Healthy));
}

#[test]
fn abort_traffic_routed_sends_all_traffic_to_stable_then_scales_canary_down_after_delay() {
    let mut w = tr_world();
    w.run();
    assert_eq!(w.spec_of("nginx:2"), 2);
    w.update_status(|s| s.abort = true);
    let d = w.step().clone();
    let h1 = hash_of("nginx:1");
    assert!(d.actions.contains(&Action::RemoveManagedRoutes), "{d:#?}");
    assert!(
        d.actions.contains(&Action::SetServiceSelector {
            service: "web-canary".into(),
            pod_template_hash: h1.clone()
        }),
        "{d:#?}"
    );
    let weights = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::SetWeights(w) => Some(w.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((weights.canary.weight, weights.stable.weight), (0, 100));
    // The canary keeps its pods for abortScaleDownDelaySeconds (30 s), then goes to 0.
    assert_eq!(scale(&d, &rs_name("nginx:2")), None, "{d:#?}");
    assert!(
        d.actions.iter().any(|a| matches!(
            a,
            Action::SetScaleDownDeadline {
                deadline: Some(_),
                ..
            }
        )),
        "{d:#?}"
    );
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
    assert!(w.step().actions.is_empty(), "{:#?}", w.last);
    w.advance(30);
    let d = w.step().clone();
    assert_eq!(scale(&d, &rs_name("nginx:2")), Some(0), "{d:#?}");
    assert_eq!(d.status.phase, Some(RolloutPhase::Degraded));
}

#[test]
fn abort_scale_down_delay_zero_keeps_canary() {
    let mut w = World::healthy(
        Rollout::test()
            .traffic()
            .with_canary(|c| c.abort_scale_down_delay_seconds = Some(0))
            .build(),
    );
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.abort = true);
    w.run();
    w.advance(3600);
    w.run();
    assert_eq!(w.spec_of("nginx:2"), 2, "{:#?}", w.observed);
}

#[test]
fn dynamic_stable_scale_shrinks_stable_with_weight() {
    let r = Rollout::test()
        .traffic()
        .with_canary(|c| c.dynamic_stable_scale = true)
        .steps(vec![weight(40), pause()])
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    // Canary 4 pods at 40 %; stable down to 6 once the weights moved.
    assert_eq!(
        (w.spec_of("nginx:2"), w.spec_of("nginx:1")),
        (4, 6),
        "{:#?}",
        w.observed
    );
    w.update_status(|s| s.abort = true);
    w.run();
    assert_eq!(w.spec_of("nginx:1"), 10, "abort scales stable back up");
}

#[test]
fn set_canary_scale_sticks_until_match_traffic_weight() {
    let steps = vec![
        canary_scale(SetCanaryScale {
            replicas: Some(3),
            ..Default::default()
        }),
        weight(10),
        pause(),
        canary_scale(SetCanaryScale {
            match_traffic_weight: true,
            ..Default::default()
        }),
        pause(),
    ];
    let mut w = World::healthy(Rollout::test().traffic().steps(steps).build());
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.status().current_step_index, Some(2));
    assert_eq!(
        w.spec_of("nginx:2"),
        3,
        "setCanaryScale replicas: 3 sticks past setWeight 10"
    );
    let weights = w.status().canary.as_ref().unwrap().weights.clone().unwrap();
    assert_eq!(weights.canary.weight, 10);
    w.update_status(|s| s.pause_conditions.clear());
    w.run();
    assert_eq!(w.status().current_step_index, Some(4));
    assert_eq!(
        w.spec_of("nginx:2"),
        1,
        "matchTrafficWeight: ceil(10 × 10%) = 1"
    );
}

#[test]
fn min_pods_per_replica_set_raises_small_canaries() {
    let r = Rollout::test()
        .traffic()
        .with_canary(|c| c.min_pods_per_replica_set = Some(3))
        .steps(vec![weight(5), pause()])
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.spec_of("nginx:2"), 3);
}

#[test]
fn header_and_mirror_route_steps_apply_and_advance() {
    let steps = vec![
        weight(10),
        header_route("hdr", true),
        mirror_route("mirror"),
        pause(),
        header_route("hdr", false),
    ];
    let mut w = World::healthy(Rollout::test().traffic().steps(steps).build());
    w.set_image("nginx:2");
    w.step();
    settle(&mut w.observed);
    let d = w.step().clone();
    assert!(
        d.actions.iter().any(
            |a| matches!(a, Action::SetHeaderRoute(r) if r.name == "hdr" && !r.matches.is_empty())
        ),
        "{d:#?}"
    );
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::SetMirrorRoute(r) if r.name == "mirror")),
        "{d:#?}"
    );
    assert_eq!(d.status.current_step_index, Some(3));
    assert!(
        w.step().actions.is_empty(),
        "routes are applied once: {:#?}",
        w.last
    );
    w.update_status(|s| s.pause_conditions.clear());
    let d = w.step().clone();
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::SetHeaderRoute(r) if r.matches.is_empty())),
        "{d:#?}"
    );
}

#[test]
fn weights_wait_for_router_verification() {
    let mut w = tr_world();
    w.step();
    settle(&mut w.observed);
    w.observed.weights_verified = Some(false);
    let d = w.step().clone();
    assert_eq!(
        d.status.current_step_index,
        Some(0),
        "unverified weights hold the step: {:#?}",
        d.status
    );
    w.observed.weights_verified = Some(false);
    let d = w.step().clone();
    assert_eq!(d.requeue_after, Some(Duration::from_secs(10)), "{d:#?}");
    w.observed.weights_verified = Some(true);
    let d = w.step().clone();
    assert_eq!(d.status.current_step_index, Some(1));
}

#[test]
fn scale_down_delay_revision_limit_caps_old_replicasets_kept_up() {
    let r = Rollout::test()
        .traffic()
        .with_canary(|c| c.scale_down_delay_revision_limit = Some(0))
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.promote_full = true);
    w.run();
    assert_eq!(
        w.spec_of("nginx:1"),
        0,
        "limit 0: no old ReplicaSet waits: {:#?}",
        w.observed
    );
}

// ---- analysis ----

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
fn inconclusive_step_resumed_by_a_person_completes_the_step() {
    let r = Rollout::test()
        .steps(vec![weight(20), analysis("t"), weight(50)])
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    w.observed.analysis_runs[0].phase = AnalysisPhase::Inconclusive;
    w.run();
    assert_eq!(w.status().phase, Some(RolloutPhase::Paused));
    w.update_status(|s| s.pause_conditions.clear());
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

#[test]
fn traffic_routed_new_revision_mid_rollout_resets_weight_before_moving_canary_service() {
    let mut w = World::healthy(Rollout::test().traffic().build());
    w.set_image("nginx:2");
    w.run();
    let h2 = hash_of("nginx:2");
    assert_eq!(
        w.status()
            .canary
            .as_ref()
            .unwrap()
            .weights
            .as_ref()
            .unwrap()
            .canary
            .weight,
        20
    );
    w.set_image("nginx:3");
    let d = w.step().clone();
    // v3 has no pods yet: traffic leaves v2 first; the canary Service stays on v2 meanwhile.
    let weights = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::SetWeights(w) => Some(w.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(weights.canary.weight, 0, "{d:#?}");
    assert_eq!(w.selector_of("web-canary"), Some(h2.clone()));
    assert_eq!(
        w.spec_of("nginx:2"),
        1,
        "v2 keeps a pod while the canary Service selects it"
    );
    assert!(d.actions.contains(&Action::RemoveManagedRoutes), "{d:#?}");
    settle(&mut w.observed);
    w.run();
    let h3 = hash_of("nginx:3");
    assert_eq!(w.selector_of("web-canary"), Some(h3.clone()));
    assert_eq!(w.spec_of("nginx:2"), 0);
    assert_eq!(w.spec_of("nginx:3"), 2);
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(hash_of("nginx:1").as_str())
    );
}

#[test]
fn pod_template_hash_is_pinned() {
    // Changing the hashing algorithm would redeploy every Rollout everywhere.
    assert_eq!(hash_of("nginx:1"), "rbx6qjl");
    assert_eq!(hash_of("nginx:2"), "9jjrnbl");
}
