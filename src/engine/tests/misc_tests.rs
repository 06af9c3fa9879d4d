//! Validation, InvalidSpec, progress deadline, conditions, history clean-up and
//! workloadRef.

use super::fixtures::*;
use crate::crd::*;
use crate::engine::*;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;

#[test]
fn validation_rejects_bad_specs_naming_field_and_problem() {
    let tr = || Rollout::test().traffic();
    let cases: Vec<(&str, Rollout, &str)> = vec![
        (
            "weight above max",
            Rollout::test()
                .steps(vec![weight(10), pause(), weight(120)])
                .build(),
            "spec.strategy.canary.steps[2].setWeight: 120 exceeds maxTrafficWeight 100",
        ),
        (
            "two kinds in one step",
            Rollout::test()
                .steps(vec![CanaryStep {
                    set_weight: Some(10),
                    pause: Some(RolloutPause::default()),
                    ..Default::default()
                }])
                .build(),
            "spec.strategy.canary.steps[0]: sets 2 of setWeight, pause, setCanaryScale, analysis, setHeaderRoute, setMirrorRoute; exactly one is required",
        ),
        (
            "bad pause duration",
            Rollout::test().steps(vec![pause_for("10 minutes")]).build(),
            "spec.strategy.canary.steps[0].pause.duration: \"10 minutes\": missing unit after 10",
        ),
        (
            "setCanaryScale without traffic routing",
            Rollout::test()
                .steps(vec![canary_scale(SetCanaryScale {
                    replicas: Some(1),
                    ..Default::default()
                })])
                .build(),
            "spec.strategy.canary.steps[0].setCanaryScale: requires spec.strategy.canary.trafficRouting",
        ),
        (
            "header route not managed",
            tr().steps(vec![header_route("other", true)]).build(),
            "spec.strategy.canary.steps[0].setHeaderRoute.name: route \"other\" is not listed in trafficRouting.managedRoutes",
        ),
        (
            "traffic routing without services",
            tr().with_canary(|c| c.stable_service = None).build(),
            "spec.strategy.canary.canaryService: trafficRouting requires both canaryService and stableService",
        ),
        (
            "dynamicStableScale with scaleDownDelaySeconds",
            tr().with_canary(|c| {
                c.dynamic_stable_scale = true;
                c.scale_down_delay_seconds = Some(5);
            })
            .build(),
            "spec.strategy.canary.scaleDownDelaySeconds: cannot be combined with dynamicStableScale",
        ),
        (
            "scaleDownDelaySeconds without traffic routing",
            Rollout::test()
                .with_canary(|c| c.scale_down_delay_seconds = Some(5))
                .build(),
            "spec.strategy.canary.scaleDownDelaySeconds: requires trafficRouting",
        ),
        (
            "surge and unavailable both zero",
            Rollout::test()
                .with_canary(|c| {
                    c.max_surge = Some(IntOrString::Int(0));
                    c.max_unavailable = Some(IntOrString::String("0%".into()));
                })
                .build(),
            "spec.strategy.canary.maxUnavailable: maxSurge and maxUnavailable cannot both be 0",
        ),
        (
            "selector does not match template",
            Rollout::test()
                .with_spec(|s| {
                    s.selector.as_mut().unwrap().match_labels =
                        Some([("app".to_string(), "api".to_string())].into())
                })
                .build(),
            "spec.selector.matchLabels: app=api does not match the template's labels",
        ),
        (
            "both strategies",
            Rollout::test()
                .with_spec(|s| {
                    s.strategy.blue_green = Some(BlueGreenStrategy {
                        active_service: "web-active".into(),
                        ..Default::default()
                    })
                })
                .build(),
            "spec.strategy: exactly one of canary and blueGreen must be set",
        ),
        (
            "blue/green active equals preview",
            Rollout::test()
                .blue_green(|b| b.preview_service = Some("web-active".into()))
                .build(),
            "spec.strategy.blueGreen.previewService: must differ from activeService",
        ),
        (
            "missing Service",
            Rollout::test()
                .blue_green(|b| b.active_service = "nope".into())
                .build(),
            "spec.strategy.blueGreen.activeService: Service \"nope\" not found",
        ),
        (
            "history limit below delay limit",
            tr().with_spec(|s| s.revision_history_limit = Some(1))
                .with_canary(|c| c.scale_down_delay_revision_limit = Some(2))
                .build(),
            "spec.strategy.canary.scaleDownDelayRevisionLimit: 2 exceeds revisionHistoryLimit 1",
        ),
        (
            "analysis without templates",
            Rollout::test()
                .steps(vec![CanaryStep {
                    analysis: Some(RolloutAnalysis::default()),
                    ..Default::default()
                }])
                .build(),
            "spec.strategy.canary.steps[0].analysis.templates: at least one template is required",
        ),
    ];
    let observed = ObservedBuilder::new().build();
    for (what, rollout, want) in cases {
        let err = validate(&rollout, &observed).expect_err(what).to_string();
        assert!(err.starts_with(want), "{what}: got {err:?}, want {want:?}");
    }
}

/// Argo's rule: a header or mirror step on a router that cannot carry it is an InvalidSpec
/// naming the step and the router, found before the update starts, not mid-rollout.
#[test]
fn header_and_mirror_steps_need_routers_that_support_them() {
    let header = CanaryStep {
        set_header_route: Some(SetHeaderRoute {
            name: "hdr".into(),
            matches: vec![HeaderRoutingMatch {
                header_name: "x-canary".into(),
                header_value: StringMatch {
                    exact: Some("yes".into()),
                    ..Default::default()
                },
            }],
        }),
        ..Default::default()
    };
    let mirror = CanaryStep {
        set_mirror_route: Some(SetMirrorRoute {
            name: "mirror".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let with = |step: &CanaryStep, f: fn(&mut TrafficRouting)| {
        Rollout::test()
            .traffic()
            .with_canary(|c| {
                c.steps = vec![weight(10), step.clone(), pause()];
                f(c.traffic_routing.as_mut().unwrap());
            })
            .build()
    };
    let smi = |t: &mut TrafficRouting| {
        t.gateway_api = None;
        t.smi = Some(SmiTrafficRouting::default());
    };
    let traefik = |t: &mut TrafficRouting| {
        t.gateway_api = None;
        t.traefik = Some(TraefikTrafficRouting {
            weighted_traefik_service_name: "web".into(),
        });
    };
    // NGINX beside Gateway API: both route by header, only Gateway API mirrors.
    let nginx = |t: &mut TrafficRouting| {
        t.nginx = Some(NginxTrafficRouting {
            stable_ingress: Some("web".into()),
            ..Default::default()
        });
    };
    let istio = |t: &mut TrafficRouting| {
        t.gateway_api = None;
        t.istio = Some(IstioTrafficRouting::default());
    };
    let plugin = |t: &mut TrafficRouting| {
        t.gateway_api = None;
        t.plugins = Some([("acme/router".to_owned(), serde_json::json!({}))].into());
    };
    let observed = ObservedBuilder::new().build();
    let cases: Vec<(&str, Rollout, Option<&str>)> = vec![
        (
            "header on smi",
            with(&header, smi),
            Some(
                "spec.strategy.canary.steps[1].setHeaderRoute: the smi router cannot apply setHeaderRoute (supported by gatewayAPI, istio, nginx and plugins)",
            ),
        ),
        (
            "mirror on smi",
            with(&mirror, smi),
            Some(
                "spec.strategy.canary.steps[1].setMirrorRoute: the smi router cannot apply setMirrorRoute",
            ),
        ),
        (
            "header on traefik",
            with(&header, traefik),
            Some(
                "spec.strategy.canary.steps[1].setHeaderRoute: the traefik router cannot apply setHeaderRoute",
            ),
        ),
        (
            "mirror on traefik",
            with(&mirror, traefik),
            Some(
                "spec.strategy.canary.steps[1].setMirrorRoute: the traefik router cannot apply setMirrorRoute",
            ),
        ),
        (
            "mirror on nginx beside gatewayAPI",
            with(&mirror, nginx),
            Some(
                "spec.strategy.canary.steps[1].setMirrorRoute: the nginx router cannot apply setMirrorRoute (supported by gatewayAPI, istio and plugins)",
            ),
        ),
        (
            "header on nginx beside gatewayAPI",
            with(&header, nginx),
            None,
        ),
        ("header on gatewayAPI", with(&header, |_| {}), None),
        ("mirror on gatewayAPI", with(&mirror, |_| {}), None),
        ("header on istio", with(&header, istio), None),
        ("mirror on istio", with(&mirror, istio), None),
        ("header on a plugin", with(&header, plugin), None),
        ("mirror on a plugin", with(&mirror, plugin), None),
        ("weights only on smi", with(&pause(), smi), None),
    ];
    for (what, rollout, want) in cases {
        match (validate(&rollout, &observed), want) {
            (Ok(_), None) => {}
            (Err(err), Some(want)) => {
                let err = err.to_string();
                assert!(err.starts_with(want), "{what}: got {err:?}, want {want:?}");
            }
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn service_managed_by_another_rollout_is_invalid() {
    let r = Rollout::test().traffic().build();
    let mut o = ObservedBuilder::new().build();
    o.services.insert(
        "web-stable".into(),
        Some(ObservedService {
            selector: Default::default(),
            managed_by: Some("api".into()),
        }),
    );
    let err = validate(&r, &o).unwrap_err().to_string();
    assert_eq!(
        err,
        "spec.strategy.canary.stableService: Service \"web-stable\" is managed by Rollout \"api\""
    );
}

#[test]
fn invalid_spec_is_degraded_and_stalled_with_no_actions_and_one_event() {
    let mut w = World::healthy(Rollout::test().build());
    w.rollout.spec.strategy.canary.as_mut().unwrap().steps = vec![weight(120)];
    w.set_image("nginx:2");
    let d = w.step().clone();
    assert!(d.actions.is_empty(), "{d:#?}");
    assert_eq!(d.requeue_after, None, "an invalid spec waits for a change");
    assert_eq!(d.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        d.status.message.as_deref(),
        Some(
            "InvalidSpec: spec.strategy.canary.steps[0].setWeight: 120 exceeds maxTrafficWeight 100"
        )
    );
    let cond = |t: &str| {
        d.status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(cond("InvalidSpec"), "True");
    assert_eq!(cond("Stalled"), "True");
    assert_eq!(cond("Ready"), "False");
    assert_eq!(d.status.observed_generation, Some(2));
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, "InvalidSpec");
    let again = w.step().clone();
    assert!(
        again.events.is_empty() && again.actions.is_empty(),
        "{again:#?}"
    );
    assert_eq!(again.status, d.status);
    // Fixing the spec clears InvalidSpec.
    w.rollout.spec.strategy.canary.as_mut().unwrap().steps = vec![weight(20), pause()];
    let d = w.step().clone();
    assert!(
        !d.status.conditions.iter().any(|c| c.type_ == "InvalidSpec"),
        "{:#?}",
        d.status.conditions
    );
    assert!(!d.actions.is_empty());
}

#[test]
fn progress_deadline_exceeded_degrades_and_requeues_exactly() {
    let r = Rollout::test()
        .with_spec(|s| s.progress_deadline_seconds = Some(60))
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.step();
    // The new ReplicaSet's pods appearing is progress: the clock starts again, same instant.
    let d = w.step().clone();
    assert!(d.actions.is_empty(), "{d:#?}");
    assert_eq!(d.requeue_after, Some(Duration::from_secs(60)), "{d:#?}");
    w.advance(59);
    let d = w.step().clone();
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1)));
    w.advance(1);
    let d = w.step().clone();
    assert_eq!(
        d.status.phase,
        Some(RolloutPhase::Degraded),
        "{:#?}",
        d.status
    );
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == "ProgressDeadlineExceeded")
    );
    assert!(
        !d.status.abort,
        "without progressDeadlineAbort the update goes on"
    );
    // Progress (pods became available) clears it.
    settle(&mut w.observed);
    let d = w.step().clone();
    assert_ne!(
        d.status.phase,
        Some(RolloutPhase::Degraded),
        "{:#?}",
        d.status
    );
}

#[test]
fn progress_deadline_abort_aborts_the_update() {
    let r = Rollout::test().with_spec(|s| {
        s.progress_deadline_seconds = Some(60);
        s.progress_deadline_abort = true;
    });
    let mut w = World::healthy(r.build());
    w.set_image("nginx:2");
    w.step();
    w.step();
    w.advance(60);
    let d = w.step().clone();
    assert!(d.status.abort, "{:#?}", d.status);
    assert!(
        d.status
            .message
            .as_deref()
            .unwrap()
            .contains("progress deadline exceeded"),
        "{:?}",
        d.status.message
    );
}

#[test]
fn progress_deadline_not_counted_on_pause_steps_or_when_paused() {
    let r = Rollout::test()
        .with_spec(|s| s.progress_deadline_seconds = Some(60))
        .build();
    let mut w = World::healthy(r);
    w.set_image("nginx:2");
    w.run();
    assert_eq!(w.status().current_step_index, Some(1));
    w.advance(3600);
    w.run();
    assert_eq!(w.status().phase, Some(RolloutPhase::Paused));
    // spec.paused mid-update: no deadline either, and no requeue for it.
    w.update_status(|s| s.pause_conditions.clear());
    w.rollout.spec.paused = true;
    w.run();
    w.advance(3600);
    let d = w.step().clone();
    assert_eq!(
        d.status.phase,
        Some(RolloutPhase::Paused),
        "{:#?}",
        d.status
    );
    assert_eq!(d.requeue_after, None);
}

#[test]
fn last_transition_time_moves_only_when_status_changes() {
    let mut w = World::healthy(
        Rollout::test()
            .steps(vec![weight(20), weight(40), pause()])
            .build(),
    );
    let ready = w.condition("Ready").unwrap().clone();
    w.advance(100);
    w.set_image("nginx:2");
    w.step();
    let progressing_t = w
        .condition("Progressing")
        .unwrap()
        .last_transition_time
        .clone();
    let ready2 = w.condition("Ready").unwrap().clone();
    assert_ne!(
        ready2.last_transition_time, ready.last_transition_time,
        "Ready went True → False"
    );
    w.advance(100);
    settle(&mut w.observed);
    w.step();
    // Progressing stays True (different message or not): its transition time stays.
    assert_eq!(
        w.condition("Progressing").unwrap().last_transition_time,
        progressing_t
    );
    assert_eq!(
        w.condition("Ready").unwrap().last_transition_time,
        ready2.last_transition_time
    );
}

#[test]
fn revision_history_limit_deletes_oldest_scaled_down_replicasets() {
    let r = Rollout::test()
        .with_spec(|s| s.revision_history_limit = Some(1))
        .build();
    let mut observed = ObservedBuilder::new()
        .rs(rs("nginx:a", 0, 1))
        .rs(rs("nginx:b", 0, 2))
        .rs(rs("nginx:c", 0, 3))
        .rs(rs("nginx:1", 10, 4))
        .build();
    let h1 = hash_of("nginx:1");
    let mut r = r;
    r.status = Some(RolloutStatus {
        stable_rs: Some(h1.clone()),
        current_pod_hash: Some(h1),
        ..Default::default()
    });
    let d = decide(&r, &observed, t0());
    let deleted: Vec<_> = d
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteReplicaSet { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleted,
        vec![
            format!("web-{}", hash_of("nginx:a")),
            format!("web-{}", hash_of("nginx:b"))
        ],
        "{d:#?}"
    );
    apply(&mut observed, &d);
    r.status = Some(d.status);
    assert!(decide(&r, &observed, t0()).actions.is_empty());
}

#[test]
fn workload_ref_takes_template_from_deployment_and_scales_it_down_on_success() {
    let r = Rollout::test().with_spec(|s| {
        s.template = None;
        s.workload_ref = Some(WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            scale_down: Some(WorkloadScaleDown::Onsuccess),
        });
    });
    let mut w = World::new(r.build(), ObservedBuilder::new().build());
    let d = w.step().clone();
    assert_eq!(
        d.status.phase,
        Some(RolloutPhase::Degraded),
        "missing Deployment: {:#?}",
        d.status
    );
    w.observed.workload = Some(ObservedWorkload {
        template: template("nginx:1"),
        generation: 3,
        replicas: 10,
    });
    w.run();
    assert_eq!(w.spec_of("nginx:1"), 10);
    assert_eq!(
        w.status().workload_observed_generation.as_deref(),
        Some("3")
    );
    assert_eq!(
        w.observed.workload.as_ref().unwrap().replicas,
        0,
        "{:#?}",
        w.last
    );
}

#[test]
fn examples_load_and_reach_healthy() {
    for file in [
        "canary.yaml",
        "bluegreen.yaml",
        "traffic-routed-canary.yaml",
    ] {
        let path = format!("{}/examples/rollouts/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let rollout: Rollout = serde_yaml::from_str(&text).unwrap();
        let mut observed = ObservedBuilder::new().build();
        for svc in [
            "podinfo-canary",
            "podinfo-stable",
            "podinfo-active",
            "podinfo-preview",
        ] {
            observed
                .services
                .insert(svc.into(), Some(Default::default()));
        }
        validate(&rollout, &observed).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut w = World::new(rollout.clone(), observed);
        w.run();
        assert_eq!(
            w.status().phase,
            Some(RolloutPhase::Healthy),
            "{file}: {:#?}",
            w.status()
        );
        // Then an update, driven to the end: analyses pass, a person promotes, time passes.
        let mut template = rollout.spec.template.clone().unwrap();
        template.spec.as_mut().unwrap().containers[0].image =
            Some("ghcr.io/stefanprodan/podinfo:6.8.0".into());
        w.rollout.spec.template = Some(template);
        for _ in 0..20 {
            w.run();
            for run in &mut w.observed.analysis_runs {
                run.phase = AnalysisPhase::Successful;
            }
            w.update_status(|s| s.pause_conditions.clear());
            w.advance(600);
        }
        w.run();
        assert_eq!(
            w.status().phase,
            Some(RolloutPhase::Healthy),
            "{file}: {:#?}",
            w.status()
        );
        assert_eq!(w.status().stable_rs, w.status().current_pod_hash, "{file}");
    }
}

#[test]
fn analysis_kind_labels_round_trip() {
    for kind in [
        AnalysisKind::Step(3),
        AnalysisKind::Background,
        AnalysisKind::PrePromotion,
        AnalysisKind::PostPromotion,
    ] {
        assert_eq!(
            AnalysisKind::from_labels(&kind.labels()),
            Some(kind),
            "{:?}",
            kind.labels()
        );
    }
    assert_eq!(AnalysisKind::from_labels(&Default::default()), None);
}
