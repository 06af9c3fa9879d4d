//! Test fixtures as builders: `Rollout::test()`, `ObservedBuilder`, and a small pure
//! simulator that applies a `Decision` to the observed world the way the controller and the
//! cluster would (pods become available only when `settle` says so).

use crate::crd::*;
use crate::engine::hash::{TemplateDigest, pod_template_hash};
use crate::engine::*;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

pub const NAME: &str = "web";

pub fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

pub fn template(image: &str) -> PodTemplateSpec {
    serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    }))
    .unwrap()
}

pub fn hash_of(image: &str) -> String {
    pod_template_hash(&template(image), None)
}

pub fn weight(w: i32) -> CanaryStep {
    CanaryStep {
        set_weight: Some(w),
        ..Default::default()
    }
}

pub fn pause() -> CanaryStep {
    CanaryStep {
        pause: Some(RolloutPause { duration: None }),
        ..Default::default()
    }
}

pub fn pause_for(duration: &str) -> CanaryStep {
    CanaryStep {
        pause: Some(RolloutPause {
            duration: Some(
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(duration.into()),
            ),
        }),
        ..Default::default()
    }
}

pub fn analysis_of(template: &str) -> RolloutAnalysis {
    RolloutAnalysis {
        templates: vec![AnalysisTemplateRef {
            template_name: template.into(),
            cluster_scope: false,
        }],
        ..Default::default()
    }
}

pub fn analysis(template: &str) -> CanaryStep {
    CanaryStep {
        analysis: Some(analysis_of(template)),
        ..Default::default()
    }
}

pub fn canary_scale(s: SetCanaryScale) -> CanaryStep {
    CanaryStep {
        set_canary_scale: Some(s),
        ..Default::default()
    }
}

pub fn header_route(name: &str, matches: bool) -> CanaryStep {
    CanaryStep {
        set_header_route: Some(SetHeaderRoute {
            name: name.into(),
            matches: if matches {
                vec![HeaderRoutingMatch {
                    header_name: "x-canary".into(),
                    header_value: StringMatch {
                        exact: Some("1".into()),
                        ..Default::default()
                    },
                }]
            } else {
                vec![]
            },
        }),
        ..Default::default()
    }
}

pub fn mirror_route(name: &str) -> CanaryStep {
    CanaryStep {
        set_mirror_route: Some(SetMirrorRoute {
            name: name.into(),
            matches: vec![RouteMatch::default()],
            percentage: Some(50),
        }),
        ..Default::default()
    }
}

/// Builds Rollouts for tests.
#[derive(Clone, Debug)]
pub struct RolloutBuilder(pub Rollout);

impl Rollout {
    /// A basic canary `web` with 10 replicas of `nginx:1`, steps 20% / pause / 50% / pause 30s.
    pub fn test() -> RolloutBuilder {
        let spec = RolloutSpec {
            replicas: Some(10),
            selector: Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                    ..Default::default()
                },
            ),
            template: Some(template("nginx:1")),
            strategy: RolloutStrategy {
                canary: Some(CanaryStrategy {
                    steps: vec![weight(20), pause(), weight(50), pause_for("30s")],
                    ..Default::default()
                }),
                blue_green: None,
            },
            ..Default::default()
        };
        let mut r = Rollout::new(NAME, spec);
        r.metadata = ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some("default".into()),
            generation: Some(1),
            ..Default::default()
        };
        RolloutBuilder(r)
    }
}

impl RolloutBuilder {
    pub fn build(self) -> Rollout {
        self.0
    }
    fn canary(&mut self) -> &mut CanaryStrategy {
        self.0
            .spec
            .strategy
            .canary
            .get_or_insert_with(Default::default)
    }
    fn status(&mut self) -> &mut RolloutStatus {
        self.0.status.get_or_insert_with(Default::default)
    }
    pub fn replicas(mut self, n: i32) -> Self {
        self.0.spec.replicas = Some(n);
        self
    }
    pub fn image(mut self, image: &str) -> Self {
        self.0.spec.template = Some(template(image));
        self.0.metadata.generation = Some(self.0.metadata.generation.unwrap_or(1) + 1);
        self
    }
    pub fn steps(mut self, steps: Vec<CanaryStep>) -> Self {
        self.canary().steps = steps;
        self
    }
    pub fn with_canary(mut self, f: impl FnOnce(&mut CanaryStrategy)) -> Self {
        f(self.canary());
        self
    }
    pub fn with_spec(mut self, f: impl FnOnce(&mut RolloutSpec)) -> Self {
        f(&mut self.0.spec);
        self
    }
    /// Gateway API traffic routing with `web-canary` / `web-stable` and managed routes.
    pub fn traffic(self) -> Self {
        self.with_canary(|c| {
            c.canary_service = Some("web-canary".into());
            c.stable_service = Some("web-stable".into());
            c.traffic_routing = Some(TrafficRouting {
                gateway_api: Some(GatewayApiTrafficRouting {
                    http_route: Some("web".into()),
                    ..Default::default()
                }),
                managed_routes: vec![
                    ManagedRoute { name: "hdr".into() },
                    ManagedRoute {
                        name: "mirror".into(),
                    },
                ],
                ..Default::default()
            });
        })
    }
    /// A baseline selected by `web-baseline`.
    pub fn baseline(self) -> Self {
        self.with_canary(|c| {
            c.baseline = Some(CanaryBaseline {
                service: Some("web-baseline".into()),
                metadata: None,
            });
        })
    }
    /// Blue/green with `web-active` and `web-preview`.
    pub fn blue_green(mut self, f: impl FnOnce(&mut BlueGreenStrategy)) -> Self {
        let mut bg = BlueGreenStrategy {
            active_service: "web-active".into(),
            preview_service: Some("web-preview".into()),
            ..Default::default()
        };
        f(&mut bg);
        self.0.spec.strategy = RolloutStrategy {
            canary: None,
            blue_green: Some(bg),
        };
        self
    }
    pub fn with_status(mut self, f: impl FnOnce(&mut RolloutStatus)) -> Self {
        f(self.status());
        self
    }
    pub fn at_step(self, i: i32) -> Self {
        self.with_status(|s| s.current_step_index = Some(i))
    }
    pub fn paused(mut self) -> Self {
        self.0.spec.paused = true;
        self
    }
    pub fn aborted(self) -> Self {
        self.with_status(|s| s.abort = true)
    }
}

/// A ReplicaSet of `image` with `replicas` pods, all available.
pub fn rs(image: &str, replicas: i32, revision: i64) -> ObservedReplicaSet {
    let hash = hash_of(image);
    ObservedReplicaSet {
        name: format!("{NAME}-{hash}"),
        pod_template_hash: Some(hash),
        template: TemplateDigest::of(&template(image)),
        desired_replicas: replicas,
        replicas,
        ready_replicas: replicas,
        available_replicas: replicas,
        revision: Some(revision),
        scale_down_deadline: None,
        created_at: None,
        deleting: false,
        baseline: false,
    }
}

/// Builds `Observed` for tests.
#[derive(Clone, Debug, Default)]
pub struct ObservedBuilder(pub Observed);

impl ObservedBuilder {
    /// Every Service the test rollouts name, existing, with no hash selector yet.
    pub fn new() -> Self {
        let mut o = Observed::default();
        for s in [
            "web-canary",
            "web-stable",
            "web-active",
            "web-preview",
            "web-baseline",
        ] {
            o.services
                .insert(s.into(), Some(ObservedService::default()));
        }
        ObservedBuilder(o)
    }
    pub fn rs(mut self, rs: ObservedReplicaSet) -> Self {
        self.0.replica_sets.push(rs);
        self
    }
    pub fn selector(mut self, service: &str, hash: &str) -> Self {
        let svc = ObservedService {
            selector: BTreeMap::from([(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string())]),
            managed_by: Some(NAME.into()),
        };
        self.0.services.insert(service.into(), Some(svc));
        self
    }
    pub fn run(mut self, name: &str, kind: AnalysisKind, hash: &str, phase: AnalysisPhase) -> Self {
        self.0.analysis_runs.push(ObservedAnalysisRun {
            name: name.into(),
            kind,
            pod_template_hash: hash.into(),
            phase,
            message: None,
            terminating: false,
        });
        self
    }
    pub fn build(self) -> Observed {
        self.0
    }
}

/// Applies a decision's actions to the observed world as the controller and the API server
/// would, without any pod becoming available (that is `settle`).
pub fn apply(observed: &mut Observed, decision: &Decision) {
    crate::engine::simulate::apply_actions(observed, &decision.actions);
}

/// Every pod the ReplicaSets want becomes available.
pub fn settle(observed: &mut Observed) {
    for rs in &mut observed.replica_sets {
        rs.replicas = rs.desired_replicas;
        rs.ready_replicas = rs.desired_replicas;
        rs.available_replicas = rs.desired_replicas;
    }
}

/// A Rollout, its world and a clock, stepped decision by decision.
pub struct World {
    pub rollout: Rollout,
    pub observed: Observed,
    pub now: Timestamp,
    pub last: Decision,
}

impl World {
    pub fn new(rollout: Rollout, observed: Observed) -> Self {
        World {
            rollout,
            observed,
            now: t0(),
            last: Decision::default(),
        }
    }
    /// Decides once and applies the decision.
    pub fn step(&mut self) -> &Decision {
        let d = decide(&self.rollout, &self.observed, self.now);
        apply(&mut self.observed, &d);
        self.rollout.status = Some(d.status.clone());
        self.last = d;
        &self.last
    }
    /// Decides, applies and lets pods become available until nothing changes (at most 50).
    pub fn run(&mut self) -> &Decision {
        for _ in 0..50 {
            self.step();
            let before = self.observed.clone();
            settle(&mut self.observed);
            if self.last.actions.is_empty() && before == self.observed {
                break;
            }
        }
        &self.last
    }
    pub fn advance(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap();
    }
    pub fn status(&self) -> &RolloutStatus {
        self.rollout.status.as_ref().unwrap()
    }
    pub fn update_status(&mut self, f: impl FnOnce(&mut RolloutStatus)) {
        f(self.rollout.status.get_or_insert_with(Default::default));
    }
    pub fn rs_of(&self, image: &str) -> Option<&ObservedReplicaSet> {
        let h = hash_of(image);
        self.observed
            .replica_sets
            .iter()
            .find(|r| r.pod_template_hash.as_deref() == Some(h.as_str()))
    }
    pub fn spec_of(&self, image: &str) -> i32 {
        self.rs_of(image).map_or(0, |r| r.desired_replicas)
    }
    pub fn selector_of(&self, service: &str) -> Option<String> {
        self.observed
            .services
            .get(service)?
            .as_ref()?
            .selector
            .get(POD_TEMPLATE_HASH_LABEL)
            .cloned()
    }
    pub fn condition(&self, type_: &str) -> Option<&RolloutCondition> {
        self.status().conditions.iter().find(|c| c.type_ == type_)
    }
    /// A world where `nginx:1` is deployed, stable and healthy.
    pub fn healthy(rollout: Rollout) -> Self {
        let mut w = World::new(rollout, ObservedBuilder::new().build());
        w.run();
        w
    }
    /// Changes the image (a new revision).
    pub fn set_image(&mut self, image: &str) {
        self.rollout.spec.template = Some(template(image));
        self.rollout.metadata.generation = Some(self.rollout.metadata.generation.unwrap_or(1) + 1);
    }
    pub fn reasons(&self) -> Vec<&'static str> {
        self.last.events.iter().map(|e| e.reason).collect()
    }
}

/// A short account of actions for assertion messages (templates elided).
pub fn brief_actions(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| match a {
            Action::CreateReplicaSet {
                name,
                replicas,
                revision,
                ..
            } => format!("Create({name}, {replicas}, rev {revision})"),
            Action::CreateAnalysisRun { name, kind, .. } => format!("CreateRun({name}, {kind:?})"),
            Action::CreateBaselineReplicaSet {
                name,
                replicas,
                revision,
                ..
            } => format!("CreateBaseline({name}, {replicas}, rev {revision})"),
            Action::SetWeights(w) => format!(
                "SetWeights({}→{:?}, {}→{:?}, additional {:?})",
                w.canary.weight,
                w.canary.pod_template_hash,
                w.stable.weight,
                w.stable.pod_template_hash,
                w.additional
                    .iter()
                    .map(|a| (a.weight, a.pod_template_hash.clone()))
                    .collect::<Vec<_>>()
            ),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// A short account of a Rollout and its world for assertion messages.
pub fn brief(rollout: &Rollout, observed: &Observed) -> String {
    let s = rollout.status.clone().unwrap_or_default();
    let strategy = match (
        &rollout.spec.strategy.canary,
        &rollout.spec.strategy.blue_green,
    ) {
        (Some(c), _) => format!(
            "canary traffic={} dynamic={} surge={:?} unavail={:?} steps={}",
            c.traffic_routing.is_some(),
            c.dynamic_stable_scale,
            c.max_surge,
            c.max_unavailable,
            serde_json::to_string(&c.steps).unwrap()
        ),
        (None, Some(b)) => format!(
            "blueGreen preview={:?} auto={:?}",
            b.preview_replica_count, b.auto_promotion_enabled
        ),
        (None, None) => "none".into(),
    };
    let image = rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers[0].image.clone());
    let rss: Vec<String> = observed
        .replica_sets
        .iter()
        .map(|r| {
            format!(
                "{}{:?} spec={} avail={} rev={:?} deadline={:?}",
                if r.baseline { "baseline " } else { "" },
                r.pod_template_hash,
                r.desired_replicas,
                r.available_replicas,
                r.revision,
                r.scale_down_deadline
            )
        })
        .collect();
    let svcs: Vec<String> = observed
        .services
        .iter()
        .map(|(n, s)| {
            format!(
                "{n}={:?}",
                s.as_ref()
                    .and_then(|s| s.selector.get(POD_TEMPLATE_HASH_LABEL))
            )
        })
        .collect();
    format!(
        "replicas={:?} paused={} image={image:?} {strategy}\nstatus: current={:?} stable={:?} index={:?} stepHash={:?} abort={} abortedAt={} promoteFull={} ctrlPause={} pauses={:?} weights={:?}\nRS: {}\nsvc: {}\nruns: {:?}",
        rollout.spec.replicas,
        rollout.spec.paused,
        s.current_pod_hash,
        s.stable_rs,
        s.current_step_index,
        s.current_step_hash,
        s.abort,
        s.aborted_at.is_some(),
        s.promote_full,
        s.controller_pause,
        s.pause_conditions
            .iter()
            .map(|c| c.reason)
            .collect::<Vec<_>>(),
        s.canary
            .as_ref()
            .and_then(|c| c.weights.as_ref())
            .map(|w| (w.canary.weight, w.canary.pod_template_hash.clone())),
        rss.join("; "),
        svcs.join(" "),
        observed
            .analysis_runs
            .iter()
            .map(|r| (&r.name, r.phase, r.terminating))
            .collect::<Vec<_>>()
    )
}
