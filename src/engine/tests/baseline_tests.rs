//! The canary's baseline: created from the stable ReplicaSet, sized like the canary at every
//! step (setWeight, setCanaryScale, without traffic routing), given the canary's weight only
//! with available pods, selected by its own Service, removed on abort, promotion and a new
//! revision, and refused up front where it cannot work. `check_baseline` holds the invariants
//! the random walks of `props` assert after every decision.

use super::fixtures::*;
use crate::crd::*;
use crate::engine::baseline::baseline_hash;
use crate::engine::*;
use proptest::prelude::*;

fn baseline_rs(o: &Observed) -> Vec<&ObservedReplicaSet> {
    o.replica_sets.iter().filter(|r| r.baseline).collect()
}

fn baseline_spec(w: &World) -> i32 {
    baseline_rs(&w.observed)
        .iter()
        .map(|r| r.desired_replicas)
        .sum()
}

fn weights(w: &World) -> TrafficWeights {
    w.status()
        .canary
        .as_ref()
        .and_then(|c| c.weights.clone())
        .unwrap_or_else(|| panic!("no weights in {:#?}", w.status()))
}

/// `(canary, baseline, stable)` from status.
fn split(w: &World) -> (i32, i32, i32) {
    let t = weights(w);
    let b = t.additional.iter().map(|d| d.weight).sum();
    (t.canary.weight, b, t.stable.weight)
}

fn resume(w: &mut World) {
    w.update_status(|s| s.pause_conditions.clear());
    w.run();
}

fn traffic_world(steps: Vec<CanaryStep>) -> World {
    let mut w = World::healthy(Rollout::test().traffic().baseline().steps(steps).build());
    w.set_image("nginx:2");
    w
}

#[test]
fn baseline_is_made_from_stable_sized_like_the_canary_and_weighted_like_it() {
    let mut w = traffic_world(vec![weight(20), pause(), weight(40), pause()]);
    let (h1, h2) = (hash_of("nginx:1"), hash_of("nginx:2"));
    let b = baseline_hash(&h1);
    let d = w.step().clone();
    let create = d.actions.iter().find_map(|a| match a {
        Action::CreateBaselineReplicaSet {
            name,
            pod_template_hash,
            stable_replica_set,
            replicas,
            revision,
            ..
        } => Some((
            name.clone(),
            pod_template_hash.clone(),
            stable_replica_set.clone(),
            *replicas,
            *revision,
        )),
        _ => None,
    });
    assert_eq!(
        create,
        Some((format!("web-{b}"), b.clone(), format!("web-{h1}"), 2, 2)),
        "{}",
        brief_actions(&d.actions)
    );
    w.run();
    assert_eq!(w.status().current_step_index, Some(1));
    assert_eq!(split(&w), (20, 20, 60), "{:#?}", w.status());
    let additional = &weights(&w).additional[0];
    assert_eq!(additional.service_name.as_deref(), Some("web-baseline"));
    assert_eq!(additional.pod_template_hash.as_deref(), Some(b.as_str()));
    assert_eq!(w.selector_of("web-baseline"), Some(b.clone()));
    assert_eq!(w.selector_of("web-stable"), Some(h1.clone()));
    assert_eq!(w.selector_of("web-canary"), Some(h2));
    assert_eq!(
        w.status().canary.as_ref().and_then(|c| c.baseline.clone()),
        Some(BaselineStatus {
            pod_template_hash: b.clone(),
            replicas: 2,
            available_replicas: 2
        })
    );
    assert_eq!(
        w.status().replicas,
        Some(12),
        "baseline pods are not counted"
    );
    resume(&mut w);
    assert_eq!(w.status().current_step_index, Some(3));
    assert_eq!(split(&w), (40, 40, 20));
    assert_eq!((w.spec_of("nginx:2"), baseline_spec(&w)), (4, 4));
}

#[test]
fn abort_takes_the_weight_back_before_removing_the_baseline() {
    let mut w = traffic_world(vec![weight(20), pause()]);
    let h1 = hash_of("nginx:1");
    w.run();
    w.update_status(|s| s.abort = true);
    let d = w.step().clone();
    let at = |f: &dyn Fn(&Action) -> bool| d.actions.iter().position(f);
    let set = at(
        &|a| matches!(a, Action::SetWeights(w) if w.additional.is_empty() && w.stable.weight == 100),
    );
    let down = at(
        &|a| matches!(a, Action::ScaleReplicaSet { name, replicas: 0 } if name == &format!("web-{}", baseline_hash(&h1))),
    );
    assert!(
        set.is_some() && down.is_some() && set < down,
        "{}",
        brief_actions(&d.actions)
    );
    w.run();
    assert!(
        baseline_rs(&w.observed).is_empty(),
        "{}",
        brief(&w.rollout, &w.observed)
    );
    assert_eq!(split(&w), (0, 0, 100));
    assert_eq!(w.selector_of("web-baseline"), Some(h1));
    assert_eq!(w.status().canary.as_ref().unwrap().baseline, None);
}

#[test]
fn promotion_removes_the_baseline() {
    let mut w = traffic_world(vec![weight(20), pause()]);
    w.run();
    resume(&mut w);
    let h2 = hash_of("nginx:2");
    assert_eq!(w.status().stable_rs, Some(h2.clone()));
    assert!(baseline_rs(&w.observed).is_empty());
    assert_eq!(split(&w), (0, 0, 100));
    assert_eq!(w.selector_of("web-baseline"), Some(h2));
}

#[test]
fn a_new_revision_replaces_the_baseline_with_fresh_pods() {
    let mut w = traffic_world(vec![weight(20), pause()]);
    w.run();
    let old = baseline_rs(&w.observed)[0].clone();
    assert_eq!(old.revision, Some(2));
    w.set_image("nginx:3");
    let d = w.step().clone();
    assert!(
        d.actions.iter().any(
            |a| matches!(a, Action::ScaleReplicaSet { name, replicas: 0 } if name == &old.name)
        ),
        "{}",
        brief_actions(&d.actions)
    );
    assert!(
        weights(&w).additional.is_empty(),
        "no weight to the old baseline"
    );
    w.run();
    let now: Vec<_> = baseline_rs(&w.observed);
    assert_eq!(now.len(), 1, "{}", brief(&w.rollout, &w.observed));
    assert_eq!(
        (now[0].revision, now[0].desired_replicas),
        (Some(3), 2),
        "same hash, the new canary's revision"
    );
    assert_eq!(split(&w), (20, 20, 60));
}

#[test]
fn set_canary_scale_sizes_the_baseline_too() {
    let scale = |s: SetCanaryScale| canary_scale(s);
    let mut w = traffic_world(vec![
        scale(SetCanaryScale {
            replicas: Some(3),
            ..Default::default()
        }),
        pause(),
        weight(10),
        scale(SetCanaryScale {
            weight: Some(50),
            ..Default::default()
        }),
        pause(),
    ]);
    w.run();
    assert_eq!((w.spec_of("nginx:2"), baseline_spec(&w)), (3, 3));
    resume(&mut w);
    assert_eq!((w.spec_of("nginx:2"), baseline_spec(&w)), (5, 5));
    assert_eq!(split(&w), (10, 10, 80));
}

#[test]
fn no_weight_moves_before_the_baseline_has_available_pods() {
    let mut w = traffic_world(vec![weight(20), pause()]);
    w.step();
    let canary = format!("web-{}", hash_of("nginx:2"));
    for rs in w
        .observed
        .replica_sets
        .iter_mut()
        .filter(|r| r.name == canary)
    {
        rs.available_replicas = rs.desired_replicas;
        rs.ready_replicas = rs.desired_replicas;
    }
    let d = w.step().clone();
    let moved = d
        .actions
        .iter()
        .any(|a| matches!(a, Action::SetWeights(t) if t.canary.weight > 0));
    assert!(
        !moved,
        "canary weight before the baseline is ready: {}",
        brief_actions(&d.actions)
    );
    assert_eq!(w.status().current_step_index, Some(0));
}

#[test]
fn without_traffic_routing_the_baseline_is_sized_like_the_canary() {
    let mut w = World::healthy(
        Rollout::test()
            .baseline()
            .steps(vec![weight(20), pause(), weight(50), pause()])
            .build(),
    );
    w.set_image("nginx:2");
    w.run();
    assert_eq!((w.spec_of("nginx:2"), baseline_spec(&w)), (2, 2));
    assert_eq!(
        w.selector_of("web-baseline"),
        Some(baseline_hash(&hash_of("nginx:1")))
    );
    resume(&mut w);
    assert_eq!((w.spec_of("nginx:2"), baseline_spec(&w)), (5, 5));
    w.update_status(|s| s.abort = true);
    w.run();
    assert!(baseline_rs(&w.observed).is_empty());
}

#[test]
fn a_baseline_that_cannot_work_is_invalid_spec_and_nothing_moves() {
    fn nginx(c: &mut CanaryStrategy) {
        let t = c.traffic_routing.as_mut().unwrap();
        t.gateway_api = None;
        t.nginx = Some(NginxTrafficRouting {
            stable_ingress: Some("web".into()),
            ..Default::default()
        });
    }
    fn service(c: &mut CanaryStrategy, name: Option<&str>) {
        c.baseline.as_mut().unwrap().service = name.map(Into::into);
    }
    type Edit = fn(&mut CanaryStrategy);
    let cases: [(&str, Edit, &str); 4] = [
        ("nginx", nginx, "nginx router cannot"),
        ("no service", |c| service(c, None), "baseline.service"),
        (
            "shared service",
            |c| service(c, Some("web-stable")),
            "must differ",
        ),
        (
            "missing service",
            |c| service(c, Some("nope")),
            "\"nope\" not found",
        ),
    ];
    for (case, edit, want) in cases {
        let mut w = World::healthy(Rollout::test().traffic().baseline().build());
        edit(w.rollout.spec.strategy.canary.as_mut().unwrap());
        w.set_image("nginx:2");
        let d = w.step().clone();
        let c = w.condition(condition_names::INVALID_SPEC);
        assert!(
            c.is_some_and(|c| c.message.as_deref().is_some_and(|m| m.contains(want))),
            "{case}: {:#?}",
            w.status().conditions
        );
        assert!(
            d.actions.is_empty(),
            "{case}: {}",
            brief_actions(&d.actions)
        );
    }
}

/// The baseline invariants over one decision: `observed` before it, `after` the world it
/// produces.
pub fn check_baseline(
    observed: &Observed,
    after: &Observed,
    d: &Decision,
) -> Result<(), TestCaseError> {
    let ctx = || brief_actions(&d.actions);
    let baselines: Vec<&ObservedReplicaSet> = baseline_rs(observed)
        .into_iter()
        .chain(baseline_rs(after))
        .collect();
    // Never traffic without available pods: neither asked of the routers nor left in place.
    let kept = d.status.canary.as_ref().and_then(|c| c.weights.clone());
    let asked = d.actions.iter().filter_map(|a| match a {
        Action::SetWeights(w) => Some(w.clone()),
        _ => None,
    });
    for w in asked.chain(kept) {
        {
            for dest in w.additional.iter().filter(|x| x.weight > 0) {
                let rs = baseline_rs(observed)
                    .into_iter()
                    .find(|r| r.pod_template_hash == dest.pod_template_hash);
                prop_assert!(
                    rs.is_some_and(|r| r.available_replicas > 0),
                    "baseline weight without available pods: {}",
                    ctx()
                );
                prop_assert!(dest.weight <= w.canary.weight, "{}", ctx());
            }
        }
    }
    // The stable Service never selects baseline pods.
    let stable = after
        .services
        .get("web-stable")
        .cloned()
        .flatten()
        .and_then(|s| s.selector.get(POD_TEMPLATE_HASH_LABEL).cloned());
    prop_assert!(
        !baselines
            .iter()
            .any(|b| b.pod_template_hash.is_some() && b.pod_template_hash == stable),
        "stable Service selects baseline pods: {}",
        ctx()
    );
    // Never outlives the canary, never bigger than it; a stale one serves nothing.
    let promoted = d.status.stable_rs == d.status.current_pod_hash;
    let weighted: Vec<Option<String>> = d
        .status
        .canary
        .as_ref()
        .and_then(|c| c.weights.as_ref())
        .map(|w| {
            w.additional
                .iter()
                .filter(|x| x.weight > 0)
                .map(|x| x.pod_template_hash.clone())
                .collect()
        })
        .unwrap_or_default();
    let (canary, revision) = after
        .replica_sets
        .iter()
        .find(|r| !r.baseline && r.pod_template_hash == d.status.current_pod_hash)
        .map_or((0, None), |r| (r.desired_replicas, r.revision));
    let current = d.status.stable_rs.as_deref().map(baseline_hash);
    for b in baseline_rs(after)
        .into_iter()
        .filter(|b| b.desired_replicas > 0)
    {
        if weighted.contains(&b.pod_template_hash) {
            continue;
        }
        prop_assert!(
            !promoted && !d.status.abort,
            "baseline outlives the canary: {}",
            ctx()
        );
        prop_assert!(
            b.pod_template_hash == current
                && b.revision == revision
                && b.desired_replicas <= canary,
            "stale or oversized baseline ({} > canary {canary}): {}",
            b.desired_replicas,
            ctx()
        );
    }
    Ok(())
}
