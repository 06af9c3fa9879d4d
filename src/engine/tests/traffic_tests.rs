//! Traffic-routed canary: weights, Services, dynamicStableScale, setCanaryScale, header and
//! mirror routes, verification, promotion and abort delays.

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

/// The weights the decision asks the routers for (it must ask).
fn set_weights(d: &Decision) -> TrafficWeights {
    d.actions
        .iter()
        .find_map(|a| match a {
            Action::SetWeights(w) => Some(w.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SetWeights in {d:#?}"))
}

fn rs_name(image: &str) -> String {
    format!("{NAME}-{}", hash_of(image))
}

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
    let weights = set_weights(&d);
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
    let weights = set_weights(&d);
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
    let d = w.step().clone();
    assert_eq!(w.spec_of("nginx:1"), 10, "abort scales stable back up");
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::SetWeights(_))),
        "traffic waits for the stable's pods: {d:#?}"
    );
    settle(&mut w.observed);
    let d = w.step().clone();
    let weights = set_weights(&d);
    assert_eq!((weights.canary.weight, weights.stable.weight), (0, 100));
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
fn a_router_reported_down_gets_the_routes_the_steps_set_again_once_per_decision() {
    let steps = vec![
        weight(10),
        header_route("hdr", true),
        header_route("mirror", true),
        mirror_route("mirror"),
        header_route("hdr", false),
        pause(),
    ];
    let mut w = World::healthy(Rollout::test().traffic().steps(steps).build());
    w.set_image("nginx:2");
    w.step();
    settle(&mut w.observed);
    w.step();
    assert_eq!(w.status().current_step_index, Some(5), "{:#?}", w.status());
    assert!(w.step().actions.is_empty(), "{:#?}", w.last);

    w.update_status(router_down);
    let d = w.step().clone();
    let routes: Vec<String> = d
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::SetHeaderRoute(r) => Some(format!("header {} {}", r.name, r.matches.len())),
            Action::SetMirrorRoute(r) => Some(format!("mirror {}", r.name)),
            _ => None,
        })
        .collect();
    assert_eq!(
        routes,
        ["mirror mirror", "header hdr 0"],
        "the last setting of each route, in order: {}",
        brief_actions(&d.actions)
    );
    let weights = d
        .actions
        .iter()
        .filter(|a| matches!(a, Action::SetWeights(_)))
        .count();
    assert_eq!(
        weights,
        1,
        "one retry a decision: {}",
        brief_actions(&d.actions)
    );
    assert_eq!(d.status.current_step_index, Some(5));
}

#[test]
fn an_abort_with_a_router_down_retries_once_and_sends_no_routes() {
    let mut w = World::healthy(
        Rollout::test()
            .traffic()
            .steps(vec![weight(10), header_route("hdr", true), pause()])
            .build(),
    );
    w.set_image("nginx:2");
    w.run();
    w.update_status(|s| s.abort = true);
    w.run();
    w.update_status(router_down);
    let d = w.step().clone();
    let count = |f: fn(&Action) -> bool| d.actions.iter().filter(|a| f(a)).count();
    assert_eq!(
        count(|a| matches!(a, Action::SetWeights(_))),
        1,
        "{}",
        brief_actions(&d.actions)
    );
    assert_eq!(count(|a| matches!(a, Action::RemoveManagedRoutes)), 1);
    assert_eq!(count(|a| matches!(a, Action::SetHeaderRoute(_))), 0);
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
    let weights = set_weights(&d);
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

#[test]
fn replica_progress_threshold_lets_a_step_complete_early() {
    let r = Rollout::test()
        .traffic()
        .steps(vec![weight(40), pause()])
        .with_canary(|c| {
            c.replica_progress_threshold = Some(ReplicaProgressThreshold {
                kind: ProgressThresholdType::Pods,
                value: 2,
            })
        })
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.step();
    assert_eq!(w.spec_of("nginx:2"), 4);
    let rs = w
        .observed
        .replica_sets
        .iter_mut()
        .find(|r| r.pod_template_hash.as_deref() == Some(hash_of("nginx:2").as_str()))
        .unwrap();
    rs.available_replicas = 1;
    assert_eq!(w.step().status.current_step_index, Some(0));
    let rs = w
        .observed
        .replica_sets
        .iter_mut()
        .find(|r| r.pod_template_hash.as_deref() == Some(hash_of("nginx:2").as_str()))
        .unwrap();
    rs.available_replicas = 2;
    let d = w.step().clone();
    assert_eq!(d.status.current_step_index, Some(1), "{:#?}", d.status);
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
        40
    );
}

/// The controller reports a router down in `status.canary.routers`.
fn router_down(s: &mut RolloutStatus) {
    s.canary.get_or_insert_with(Default::default).routers = vec![RouterStatus {
        name: "acme/router".into(),
        last_error: Some("plugin acme/router: connection refused".into()),
        ..RouterStatus::default()
    }];
}

#[test]
fn a_router_reported_down_gets_the_weights_again_and_holds_the_step() {
    let mut w = tr_world();
    w.run();
    let steady = w.step().clone();
    assert!(
        !steady
            .actions
            .iter()
            .any(|a| matches!(a, Action::SetWeights(_))),
        "nothing to send when every router took the weights: {steady:#?}"
    );
    let index = steady.status.current_step_index;
    w.update_status(router_down);
    let d = w.step().clone();
    assert_eq!(
        Some(set_weights(&d)),
        steady
            .status
            .canary
            .as_ref()
            .and_then(|c| c.weights.clone()),
        "the same weights again: {d:#?}"
    );
    assert!(
        !d.events.iter().any(|e| e.reason == "TrafficWeightUpdated"),
        "a retry is not a new weight: {:#?}",
        d.events
    );
    assert_eq!(d.status.current_step_index, index, "{:#?}", d.status);
}

#[test]
fn an_abort_with_a_router_down_sends_stable_weights_and_removes_routes_again() {
    let mut w = tr_world();
    w.run();
    w.update_status(|s| s.abort = true);
    w.run();
    let after = w.step().clone();
    assert!(after.actions.is_empty(), "{after:#?}");
    w.update_status(router_down);
    let d = w.step().clone();
    assert_eq!(set_weights(&d).canary.weight, 0, "{d:#?}");
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::RemoveManagedRoutes)),
        "{d:#?}"
    );
}

#[test]
fn the_decision_reports_the_weight_the_step_asks_for() {
    let mut w = World::healthy(
        Rollout::test()
            .traffic()
            .steps(vec![weight(15), pause(), weight(40), pause()])
            .build(),
    );
    w.set_image("nginx:2");
    let d = w.run().clone();
    assert_eq!(d.status.current_step_index, Some(1), "{:#?}", d.status);
    assert_eq!(d.desired_weight, Some(15));
    w.update_status(|s| s.pause_conditions.clear());
    let d = w.run().clone();
    assert_eq!(d.status.current_step_index, Some(3), "{:#?}", d.status);
    assert_eq!(d.desired_weight, Some(40));
    w.update_status(|s| s.abort = true);
    assert_eq!(w.run().desired_weight, Some(0), "aborted");

    let mut w = tr_world();
    w.run();
    w.update_status(|s| s.promote_full = true);
    let d = w.run().clone();
    assert_eq!(
        d.desired_weight,
        Some(100),
        "promoted fully: {:#?}",
        d.status
    );

    let blue_green = World::healthy(Rollout::test().blue_green(|_| {}).build())
        .run()
        .clone();
    assert_eq!(blue_green.desired_weight, None);
}

#[test]
fn a_header_route_set_by_the_last_step_is_removed_by_the_promotion() {
    // Scaled to zero (as an autoscaler may leave it), an update runs its steps and is promoted
    // in one decision: the route its last step sets must not outlive it.
    let steps = vec![weight(10), header_route("hdr", true)];
    let mut w = World::healthy(Rollout::test().replicas(0).traffic().steps(steps).build());
    w.set_image("nginx:2");
    let d = w.step().clone();
    assert_eq!(
        w.status().stable_rs,
        Some(hash_of("nginx:2")),
        "{}",
        brief_actions(&d.actions)
    );
    let last_route = d.actions.iter().rposition(|a| {
        matches!(
            a,
            Action::SetHeaderRoute(_) | Action::SetMirrorRoute(_) | Action::RemoveManagedRoutes
        )
    });
    assert!(
        matches!(
            last_route.map(|i| &d.actions[i]),
            Some(Action::RemoveManagedRoutes)
        ),
        "the routes end removed: {}",
        brief_actions(&d.actions)
    );
}

#[test]
fn dynamic_stable_scale_keeps_the_canary_pods_for_the_weight_it_still_carries() {
    let mut w = World::healthy(
        Rollout::test()
            .replicas(3)
            .traffic()
            .steps(vec![weight(67), pause(), weight(34), pause()])
            .with_canary(|c| c.dynamic_stable_scale = true)
            .build(),
    );
    w.set_image("nginx:2");
    let carried = |w: &World| {
        w.status()
            .canary
            .as_ref()
            .and_then(|c| c.weights.as_ref())
            .map(|x| x.canary.weight)
    };
    w.run();
    assert_eq!(w.status().current_step_index, Some(1), "{:#?}", w.status());
    assert_eq!(carried(&w), Some(67));
    assert_eq!((w.spec_of("nginx:1"), w.spec_of("nginx:2")), (1, 3));

    // Promoted past the pause: 34 % needs 2 stable pods, which are not up yet. Until the
    // weight moves, the canary keeps the 3 pods of the 67 % it carries.
    w.update_status(|s| s.pause_conditions.clear());
    w.step();
    assert_eq!(w.status().current_step_index, Some(2), "{:#?}", w.status());
    assert_eq!(carried(&w), Some(67), "34 % waits for the stable pods");
    assert_eq!(w.spec_of("nginx:1"), 2, "the stable scales up first");
    assert_eq!(
        w.spec_of("nginx:2"),
        3,
        "{}",
        brief_actions(&w.last.actions)
    );

    settle(&mut w.observed);
    w.run();
    assert_eq!(carried(&w), Some(34));
    assert_eq!(w.spec_of("nginx:2"), 2, "scaled down once the weight moved");
}
