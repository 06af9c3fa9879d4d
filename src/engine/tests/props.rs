//! Property tests of the engine's invariants over random specs and observed states:
//! weights never exceed the step's, an abort asks for no canary pods and no canary weight,
//! availability stays above `replicas − maxUnavailable`, deciding again on the state a
//! decision produces asks for nothing more, and nothing still serving is scaled to zero.

use super::fixtures::*;
use crate::crd::*;
use crate::engine::hash::steps_hash;
use crate::engine::replicas::weights_around;
use crate::engine::validate::Strategy as VStrategy;
use crate::engine::*;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use proptest::strategy::Strategy;

#[derive(Clone, Debug)]
enum Kind {
    Basic,
    Traffic { dynamic: bool },
    BlueGreen { preview: Option<i32>, auto: bool },
}

#[derive(Clone, Debug)]
struct Case {
    rollout: Rollout,
    observed: Observed,
}

fn step_strategy(traffic: bool) -> BoxedStrategy<CanaryStep> {
    let mut options: Vec<BoxedStrategy<CanaryStep>> = vec![
        (0..=100i32).prop_map(weight).boxed(),
        Just(pause()).boxed(),
        (0..3i32).prop_map(|s| pause_for(&format!("{s}s"))).boxed(),
        Just(analysis("t")).boxed(),
    ];
    if traffic {
        options.push(
            (0..5i32)
                .prop_map(|r| {
                    canary_scale(SetCanaryScale {
                        replicas: Some(r),
                        ..Default::default()
                    })
                })
                .boxed(),
        );
        options.push(
            Just(canary_scale(SetCanaryScale {
                match_traffic_weight: true,
                ..Default::default()
            }))
            .boxed(),
        );
        options.push(Just(header_route("hdr", true)).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Basic),
        any::<bool>().prop_map(|dynamic| Kind::Traffic { dynamic }),
        (proptest::option::of(0..4i32), any::<bool>())
            .prop_map(|(preview, auto)| Kind::BlueGreen { preview, auto }),
    ]
}

fn rs_state(
    image: &'static str,
    revision: i64,
) -> impl Strategy<Value = Option<ObservedReplicaSet>> {
    proptest::option::of((0..8i32, 0..8i32, any::<bool>())).prop_map(move |o| {
        o.map(|(spec, avail, deadline)| {
            let mut r = rs(image, spec, revision);
            r.available_replicas = avail.min(spec);
            r.ready_replicas = r.available_replicas;
            if deadline {
                r.scale_down_deadline = Some(
                    t0().checked_add(jiff::SignedDuration::from_secs(15))
                        .unwrap(),
                );
            }
            r
        })
    })
}

prop_compose! {
    fn case()(
        kind in kind_strategy(),
        replicas in 0..7i32,
        surge in 0..3i32,
        unavailable in 0..3i32,
        steps in proptest::collection::vec(step_strategy(true), 0..5),
        desired_v2 in any::<bool>(),
        old in rs_state("nginx:0", 1),
        stable in rs_state("nginx:1", 2),
        new in rs_state("nginx:2", 3),
        index in 0..6i32,
        same_steps in any::<bool>(),
        current_is_v2 in any::<bool>(),
        abort in any::<bool>(),
        aborted_before in any::<bool>(),
        promote_full in any::<bool>(),
        paused in any::<bool>(),
        pause_cond in proptest::option::of(prop_oneof![Just(PauseReason::CanaryPauseStep), Just(PauseReason::BlueGreenPause), Just(PauseReason::InconclusiveAnalysisRun)]),
        controller_pause in any::<bool>(),
        prev_weight in proptest::option::of(0..=100i32),
        canary_sel in 0..4usize,
        stable_sel in 0..4usize,
        run_phase in proptest::option::of(prop_oneof![Just(AnalysisPhase::Running), Just(AnalysisPhase::Successful), Just(AnalysisPhase::Failed), Just(AnalysisPhase::Inconclusive)]),
        router_down in any::<bool>(),
    ) -> Case {
        let traffic = matches!(kind, Kind::Traffic { .. });
        let steps: Vec<CanaryStep> = if traffic {
            steps
        } else {
            steps.into_iter().filter(|s| s.set_canary_scale.is_none() && s.set_header_route.is_none()).collect()
        };
        let mut b = Rollout::test().replicas(replicas).steps(steps.clone()).with_canary(|c| {
            c.max_surge = Some(IntOrString::Int(surge));
            c.max_unavailable = Some(IntOrString::Int(if surge == 0 { unavailable.max(1) } else { unavailable }));
        });
        if traffic {
            b = b.traffic();
            if let Kind::Traffic { dynamic: true } = kind {
                b = b.with_canary(|c| c.dynamic_stable_scale = true);
            }
        }
        if let Kind::BlueGreen { preview, auto } = kind {
            b = b.blue_green(|g| {
                g.preview_replica_count = preview;
                g.auto_promotion_enabled = Some(auto);
                g.max_unavailable = Some(IntOrString::Int(unavailable));
            });
        }
        if desired_v2 {
            b = b.image("nginx:2");
        }
        let h1 = hash_of("nginx:1");
        let hashes = [hash_of("nginx:0"), h1.clone(), hash_of("nginx:2")];
        let current = if current_is_v2 { hashes[2].clone() } else { h1.clone() };
        let mut status = RolloutStatus {
            stable_rs: Some(h1.clone()),
            current_pod_hash: Some(current.clone()),
            current_step_hash: if same_steps { Some(steps_hash(&steps)) } else { None },
            current_step_index: Some(index.min(i32::try_from(steps.len()).unwrap())),
            abort,
            aborted_at: (abort && aborted_before).then(|| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0())),
            promote_full,
            controller_pause,
            ..Default::default()
        };
        if let Some(reason) = pause_cond {
            status.pause_conditions.push(PauseCondition { reason, start_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0()) });
        }
        if let (Some(w), true) = (prev_weight, traffic) {
            status.canary = Some(CanaryStatus {
                weights: Some(TrafficWeights {
                    canary: WeightDestination { weight: w, service_name: Some("web-canary".into()), pod_template_hash: Some(current.clone()) },
                    stable: WeightDestination { weight: 100 - w, service_name: Some("web-stable".into()), pod_template_hash: Some(h1.clone()) },
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        if traffic && router_down {
            status.canary.get_or_insert_with(Default::default).routers = vec![RouterStatus {
                name: "gatewayAPI".into(),
                last_error: Some("HTTPRoute web: connection refused".into()),
                ..Default::default()
            }];
        }
        b = b.with_status(|s| *s = status);
        if paused {
            b = b.paused();
        }
        let mut o = ObservedBuilder::new();
        for r in [old, stable, new].into_iter().flatten() {
            o = o.rs(r);
        }
        let pick = |i: usize| hashes.get(i).cloned();
        for (svc, i) in [("web-canary", canary_sel), ("web-stable", stable_sel), ("web-active", stable_sel), ("web-preview", canary_sel)] {
            if let Some(h) = pick(i) {
                o = o.selector(svc, &h);
            }
        }
        if let Some(phase) = run_phase {
            let idx = usize::try_from(index).unwrap();
            if steps.get(idx).is_some_and(|s| s.analysis.is_some()) {
                let name = format!("web-{}-3-{idx}", hashes[2]);
                o = o.run(&name, AnalysisKind::Step(index), &hashes[2], phase);
            }
        }
        Case { rollout: b.build(), observed: o.build() }
    }
}

/// The Rollout's available pods; a baseline's run beside them and go with the canary.
fn total_available(o: &Observed) -> i32 {
    o.replica_sets
        .iter()
        .filter(|r| !r.baseline)
        .map(|r| r.available_replicas)
        .sum()
}

fn config() -> ProptestConfig {
    // Modest by default so the suite stays fast on small machines; PROPTEST_CASES digs deeper.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    // Failing seeds are kept beside this file (props.regressions), where the engine lives.
    let persistence = proptest::test_runner::FileFailurePersistence::WithSource("regressions");
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(persistence)),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn weight_never_exceeds_current_step_weight(c in case()) {
        let d = decide(&c.rollout, &c.observed, t0());
        let Some(canary) = &c.rollout.spec.strategy.canary else { return Ok(()) };
        let max = 100;
        let v = match validate(&c.rollout, &c.observed) { Ok(v) => v, Err(_) => return Ok(()) };
        let VStrategy::Canary(vc) = &v.strategy else { return Ok(()) };
        let idx = usize::try_from(d.status.current_step_index.unwrap_or(0)).unwrap();
        let promoted = d.status.stable_rs == d.status.current_pod_hash;
        // A decision may complete steps: what it sends may be the weight of any step from
        // where it started (the start of the steps for a new revision) to where it ends.
        let new_revision = c.rollout.status.as_ref().and_then(|s| s.current_pod_hash.clone()) != d.status.current_pod_hash;
        let start = if new_revision { 0 } else { usize::try_from(c.rollout.status.as_ref().and_then(|s| s.current_step_index).unwrap_or(0)).unwrap().min(idx) };
        let bound = if promoted || d.status.promote_full || idx >= canary.steps.len() { max } else { (start..=idx).map(|i| weights_around(&vc.steps, i).0).max().unwrap_or(0) };
        for a in &d.actions {
            if let Action::SetWeights(w) = a {
                prop_assert!(w.canary.weight <= bound, "weight {} > step weight {bound}:\n  {}\n{}", w.canary.weight, brief_actions(&d.actions), brief(&c.rollout, &c.observed));
                prop_assert_eq!(w.canary.weight + w.stable.weight, max);
            }
        }
    }

    #[test]
    fn abort_asks_for_no_canary_weight_and_no_canary_pods(c in case()) {
        let d = decide(&c.rollout, &c.observed, t0());
        if !d.status.abort { return Ok(()) }
        let current = d.status.current_pod_hash.clone().unwrap();
        let new_rs = c.observed.replica_sets.iter().find(|r| r.pod_template_hash.as_deref() == Some(current.as_str()));
        for a in &d.actions {
            match a {
                Action::SetWeights(w) => prop_assert_eq!(w.canary.weight, 0, "{}\n{}", brief_actions(&d.actions), brief(&c.rollout, &c.observed)),
                Action::CreateReplicaSet { replicas, .. } => prop_assert_eq!(*replicas, 0, "{}\n{}", brief_actions(&d.actions), brief(&c.rollout, &c.observed)),
                Action::ScaleReplicaSet { name, replicas } => {
                    if let Some(rs) = new_rs.filter(|r| &r.name == name) {
                        prop_assert!(*replicas <= rs.desired_replicas, "canary scaled up after abort: {}\n{}", brief_actions(&d.actions), brief(&c.rollout, &c.observed));
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn availability_never_drops_below_replicas_minus_max_unavailable(c in case()) {
        let Ok(v) = validate(&c.rollout, &c.observed) else { return Ok(()) };
        let mu = match &v.strategy { VStrategy::Canary(x) => x.max_unavailable, VStrategy::BlueGreen(x) => x.max_unavailable };
        let d = decide(&c.rollout, &c.observed, t0());
        let before = total_available(&c.observed);
        let mut after = c.observed.clone();
        apply(&mut after, &d);
        let floor = before.min(v.replicas - mu);
        prop_assert!(total_available(&after) >= floor, "available {} < {floor} (before {before}):\n  {}\n{}", total_available(&after), brief_actions(&d.actions), brief(&c.rollout, &c.observed));
    }

    #[test]
    fn deciding_again_on_the_result_asks_for_nothing(c in case()) {
        let d = decide(&c.rollout, &c.observed, t0());
        let mut observed = c.observed.clone();
        apply(&mut observed, &d);
        // A router reported down is sent everything again by every decision until the
        // controller reports it took it: no fixpoint to check.
        if c.rollout.status.as_ref().is_some_and(super::super::canary::routers_failing) {
            return Ok(());
        }
        let mut rollout = c.rollout.clone();
        rollout.status = Some(d.status.clone());
        let again = decide(&rollout, &observed, t0());
        prop_assert!(again.actions.is_empty(), "first:\n  {}\nsecond:\n  {}\nbefore: {}\nafter: {}", brief_actions(&d.actions), brief_actions(&again.actions), brief(&c.rollout, &c.observed), brief(&rollout, &observed));
    }

    /// One decision never asks for the same write twice (a retry is sent once, not once a
    /// planning pass); a ReplicaSet scaled more than once changes size with each scale.
    #[test]
    fn a_decision_never_repeats_an_action(c in case()) {
        let d = decide(&c.rollout, &c.observed, t0());
        for (i, a) in d.actions.iter().enumerate() {
            let rest = &d.actions[i + 1..];
            let repeated = match a {
                Action::ScaleReplicaSet { name, .. } => rest
                    .iter()
                    .find(|b| matches!(b, Action::ScaleReplicaSet { name: n, .. } if n == name))
                    .is_some_and(|b| b == a),
                _ => rest.contains(a),
            };
            prop_assert!(!repeated, "{a:?} twice:\n  {}\n{}", brief_actions(&d.actions), brief(&c.rollout, &c.observed));
        }
    }

    #[test]
    fn nothing_still_serving_is_scaled_to_zero(c in case()) {
        if c.rollout.spec.replicas == Some(0) { return Ok(()) }
        let d = decide(&c.rollout, &c.observed, t0());
        let mut after = c.observed.clone();
        apply(&mut after, &d);
        let mut serving: Vec<String> = ["web-canary", "web-stable", "web-active"]
            .iter()
            .filter(|s| {
                let canary = c.rollout.spec.strategy.canary.as_ref();
                match **s {
                    "web-active" => c.rollout.spec.strategy.blue_green.is_some(),
                    "web-canary" => canary.is_some_and(|x| x.canary_service.is_some()),
                    _ => canary.is_some_and(|x| x.stable_service.is_some()),
                }
            })
            .filter_map(|s| after.services.get(*s).cloned().flatten())
            .filter_map(|svc| svc.selector.get(POD_TEMPLATE_HASH_LABEL).cloned())
            .collect();
        serving.extend(d.status.stable_rs.clone());
        for a in &d.actions {
            if let Action::ScaleReplicaSet { name, replicas: 0 } | Action::DeleteReplicaSet { name } = a {
                let rs = c.observed.replica_sets.iter().find(|r| &r.name == name).unwrap();
                let hash = rs.pod_template_hash.clone().unwrap();
                prop_assert!(!serving.contains(&hash), "{name} still serves:\n  {}\n{}", brief_actions(&d.actions), brief(&c.rollout, &c.observed));
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Settle,
    SettleOne,
    /// The pods of the `n`-th ReplicaSet (modulo their number) stop being available.
    LosePods(usize),
    Promote,
    PromoteFull,
    Abort,
    Retry,
    TogglePause,
    Advance(i64),
    Runs(AnalysisPhase),
    NewImage(u8),
    Verified(Option<bool>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Settle),
        2 => Just(Op::SettleOne),
        1 => (0..4usize).prop_map(Op::LosePods),
        2 => Just(Op::Promote),
        1 => Just(Op::PromoteFull),
        1 => Just(Op::Abort),
        1 => Just(Op::Retry),
        1 => Just(Op::TogglePause),
        2 => (1..120i64).prop_map(Op::Advance),
        2 => prop_oneof![Just(AnalysisPhase::Running), Just(AnalysisPhase::Successful), Just(AnalysisPhase::Failed), Just(AnalysisPhase::Inconclusive)].prop_map(Op::Runs),
        1 => (0..3u8).prop_map(Op::NewImage),
        1 => prop_oneof![Just(None), Just(Some(true)), Just(Some(false))].prop_map(Op::Verified),
    ]
}

prop_compose! {
    fn walk_rollout()(
        kind in kind_strategy(),
        replicas in 1..6i32,
        steps in proptest::collection::vec(step_strategy(true), 0..5),
        background in any::<bool>(),
        pre in any::<bool>(),
        post in any::<bool>(),
        baseline in any::<bool>(),
    ) -> Rollout {
        let traffic = matches!(kind, Kind::Traffic { .. });
        let steps: Vec<CanaryStep> = if traffic {
            steps
        } else {
            steps.into_iter().filter(|s| s.set_canary_scale.is_none() && s.set_header_route.is_none()).collect()
        };
        let mut b = Rollout::test().replicas(replicas).steps(steps);
        if baseline && !matches!(kind, Kind::BlueGreen { .. }) {
            b = b.baseline();
        }
        if background {
            b = b.with_canary(|c| c.analysis = Some(BackgroundAnalysis { analysis: analysis_of("bg"), starting_step: Some(1) }));
        }
        if traffic {
            b = b.traffic();
            if let Kind::Traffic { dynamic: true } = kind {
                b = b.with_canary(|c| c.dynamic_stable_scale = true);
            }
        }
        if let Kind::BlueGreen { preview, auto } = kind {
            b = b.blue_green(|g| {
                g.preview_replica_count = preview;
                g.auto_promotion_enabled = Some(auto);
                g.pre_promotion_analysis = pre.then(|| analysis_of("pre"));
                g.post_promotion_analysis = post.then(|| analysis_of("post"));
            });
        }
        b.build()
    }
}

fn check(rollout: &Rollout, observed: &Observed, d: &Decision) -> Result<(), TestCaseError> {
    let ctx = || {
        format!(
            "{}\n{}",
            brief_actions(&d.actions),
            brief(rollout, observed)
        )
    };
    let Ok(v) = validate(rollout, observed) else {
        return Ok(());
    };
    let mu = match &v.strategy {
        VStrategy::Canary(x) => x.max_unavailable,
        VStrategy::BlueGreen(x) => x.max_unavailable,
    };
    let mut after = observed.clone();
    apply(&mut after, d);
    let floor = total_available(observed).min(v.replicas - mu);
    prop_assert!(total_available(&after) >= floor, "availability: {}", ctx());
    if let VStrategy::Canary(vc) = &v.strategy {
        let idx = usize::try_from(d.status.current_step_index.unwrap_or(0)).unwrap();
        let promoted = d.status.stable_rs == d.status.current_pod_hash;
        let bound = if d.status.abort {
            0
        } else if promoted || d.status.promote_full || idx >= vc.steps.len() {
            100
        } else {
            weights_around(&vc.steps, idx).0
        };
        for a in &d.actions {
            if let Action::SetWeights(w) = a {
                prop_assert!(
                    w.canary.weight <= bound,
                    "weight {} > {bound}: {}",
                    w.canary.weight,
                    ctx()
                );
            }
        }
    }
    let serving: Vec<String> = ["web-canary", "web-stable", "web-active"]
        .iter()
        .filter(|name| match (**name, &rollout.spec.strategy.canary) {
            ("web-active", _) => rollout.spec.strategy.blue_green.is_some(),
            ("web-canary", Some(c)) => c.canary_service.is_some(),
            ("web-stable", Some(c)) => c.stable_service.is_some(),
            (_, _) => false,
        })
        .filter_map(|name| after.services.get(*name).cloned().flatten())
        .filter_map(|svc| svc.selector.get(POD_TEMPLATE_HASH_LABEL).cloned())
        .chain(d.status.stable_rs.clone())
        .collect();
    let new_hash = d.status.current_pod_hash.clone();
    for a in &d.actions {
        match a {
            Action::ScaleReplicaSet { name, replicas } => {
                let rs = observed
                    .replica_sets
                    .iter()
                    .find(|r| &r.name == name)
                    .unwrap();
                if *replicas == 0 && v.replicas > 0 {
                    prop_assert!(
                        !serving.contains(rs.pod_template_hash.as_ref().unwrap()),
                        "{name} still serves: {}",
                        ctx()
                    );
                }
                if d.status.abort && rs.pod_template_hash == new_hash {
                    prop_assert!(
                        *replicas <= rs.desired_replicas,
                        "canary scaled up after abort: {}",
                        ctx()
                    );
                }
            }
            Action::CreateReplicaSet { replicas, .. } if d.status.abort => {
                prop_assert_eq!(
                    *replicas,
                    0,
                    "canary created with pods after abort: {}",
                    ctx()
                );
            }
            _ => {}
        }
    }
    super::baseline_tests::check_baseline(observed, &after, d)?;
    let mut again_rollout = rollout.clone();
    again_rollout.status = Some(d.status.clone());
    let again = decide(&again_rollout, &after, observed_now(d));
    prop_assert!(
        again.actions.is_empty(),
        "not idempotent:\n  {}\nthen\n  {}",
        ctx(),
        brief_actions(&again.actions)
    );
    prop_assert_eq!(&again.status, &d.status, "status not settled: {}", ctx());
    Ok(())
}

thread_local! {
    static NOW: std::cell::Cell<Option<jiff::Timestamp>> = const { std::cell::Cell::new(None) };
}

fn observed_now(_: &Decision) -> jiff::Timestamp {
    NOW.with(|n| n.get()).unwrap_or_else(t0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: config().cases / 3 + 1, ..config() })]

    #[test]
    fn random_walks_keep_every_invariant(rollout in walk_rollout(), ops in proptest::collection::vec(op(), 1..25)) {
        let mut w = World::healthy(rollout);
        w.set_image("nginx:2");
        for op in ops {
            match op {
                Op::Settle => settle(&mut w.observed),
                Op::SettleOne => {
                    if let Some(rs) = w.observed.replica_sets.iter_mut().find(|r| r.available_replicas < r.desired_replicas) {
                        rs.available_replicas += 1;
                        rs.ready_replicas = rs.available_replicas;
                        rs.replicas = rs.desired_replicas;
                    }
                }
                Op::LosePods(n) => {
                    let count = w.observed.replica_sets.len().max(1);
                    if let Some(rs) = w.observed.replica_sets.get_mut(n % count) {
                        rs.available_replicas = 0;
                        rs.ready_replicas = 0;
                    }
                }
                Op::Promote => w.update_status(|s| s.pause_conditions.clear()),
                Op::PromoteFull => w.update_status(|s| s.promote_full = true),
                Op::Abort => w.update_status(|s| s.abort = true),
                Op::Retry => w.update_status(|s| s.abort = false),
                Op::TogglePause => w.rollout.spec.paused = !w.rollout.spec.paused,
                Op::Advance(s) => w.advance(s),
                Op::Runs(phase) => {
                    for r in w.observed.analysis_runs.iter_mut().filter(|r| !r.terminating) {
                        r.phase = phase;
                    }
                }
                Op::NewImage(i) => w.set_image(["nginx:1", "nginx:2", "nginx:3"][usize::from(i)]),
                Op::Verified(v) => w.observed.weights_verified = v,
            }
            NOW.with(|n| n.set(Some(w.now)));
            let d = decide(&w.rollout, &w.observed, w.now);
            check(&w.rollout, &w.observed, &d)?;
            w.step();
        }
    }
}
