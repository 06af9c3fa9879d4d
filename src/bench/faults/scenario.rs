//! The fault campaign's scenarios: what each Rollout is (its Services, HTTPRoute and canary
//! steps), what the campaign does to it once its first revision is Healthy (an update, then
//! perhaps an abort, a promotion or a second update, as `kubectl sluice` does them) and how it
//! must end. Talks to the API server through the campaign's own client, never the controller's.

use super::NAMESPACE;
use super::checker::Shared;
use crate::crd::Rollout;
use crate::plugin::context::Ctx;
use anyhow::Context as _;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;

/// What happens to one Rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Update; timed pauses; promoted on its own.
    Promote,
    /// Update; an analysis that passes; promoted on its own.
    AnalysisPass,
    /// Update; an analysis that fails; aborted by the controller.
    AnalysisFail,
    /// Update; aborted by a person (`kubectl sluice abort`) in an indefinite pause.
    ManualAbort,
    /// Update; `kubectl sluice promote --full` in an indefinite pause.
    PromoteFull,
    /// Update; `kubectl sluice promote` past an indefinite pause; promoted.
    PromoteByHand,
    /// Update; a second update once the first is under way; the second is promoted.
    SecondUpdate,
}

/// Every kind, in the order Rollouts are assigned them.
pub const KINDS: [Kind; 7] = [
    Kind::Promote,
    Kind::AnalysisPass,
    Kind::AnalysisFail,
    Kind::ManualAbort,
    Kind::PromoteFull,
    Kind::PromoteByHand,
    Kind::SecondUpdate,
];

/// How a Rollout must end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Healthy, fully promoted to this image.
    Healthy(&'static str),
    /// Aborted: the update undone, stable still the first revision.
    Aborted,
}

/// The image of each revision.
pub const V1: &str = "example/app:1";
pub const V2: &str = "example/app:2";
pub const V3: &str = "example/app:3";

/// The analysis templates the steps name.
pub const PASSING: &str = "campaign-pass";
pub const FAILING: &str = "campaign-fail";

impl Kind {
    /// A short name, for figures and Rollout names.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Promote => "promote",
            Kind::AnalysisPass => "analysis-pass",
            Kind::AnalysisFail => "analysis-fail",
            Kind::ManualAbort => "manual-abort",
            Kind::PromoteFull => "promote-full",
            Kind::PromoteByHand => "promote-by-hand",
            Kind::SecondUpdate => "second-update",
        }
    }

    /// How it must end.
    pub fn end(self) -> End {
        match self {
            Kind::AnalysisFail | Kind::ManualAbort => End::Aborted,
            Kind::SecondUpdate => End::Healthy(V3),
            _ => End::Healthy(V2),
        }
    }

    /// The steps of its update (and of its first revision, which does not walk them).
    fn steps(self) -> Value {
        let analysis =
            |template: &str| json!({"analysis": {"templates": [{"templateName": template}]}});
        match self {
            Kind::Promote | Kind::SecondUpdate => json!([
                {"setWeight": 20}, {"pause": {"duration": "2s"}},
                {"setWeight": 60}, {"pause": {"duration": "2s"}}
            ]),
            Kind::AnalysisPass => json!([{"setWeight": 30}, analysis(PASSING), {"setWeight": 70}]),
            Kind::AnalysisFail => json!([{"setWeight": 30}, analysis(FAILING), {"setWeight": 70}]),
            Kind::ManualAbort | Kind::PromoteByHand => json!([
                {"setWeight": 40}, {"pause": {}}, {"setWeight": 80}
            ]),
            Kind::PromoteFull => json!([
                {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}
            ]),
        }
    }
}

/// The steps of a second update: other weights, so its step Events read differently.
fn second_steps() -> Value {
    json!([{"setWeight": 25}, {"pause": {"duration": "2s"}}, {"setWeight": 75}])
}

/// The name of the `i`-th Rollout of `kind`.
pub fn name(i: usize, kind: Kind) -> String {
    format!("r{i:04}-{}", kind.label())
}

fn template(name: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image}]}
    })
}

/// The Rollout, its two Services and its HTTPRoute (all traffic on stable).
pub fn objects(name: &str, kind: Kind) -> anyhow::Result<(Rollout, Vec<Value>, DynamicObject)> {
    let (stable, canary) = (format!("{name}-stable"), format!("{name}-canary"));
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name, V1),
            "strategy": {"canary": {
                "canaryService": canary, "stableService": stable,
                "trafficRouting": {"gatewayAPI": {"httpRoute": name}},
                "maxSurge": 1, "maxUnavailable": 0,
                "steps": kind.steps()
            }}
        }
    }))?;
    let services = [&stable, &canary]
        .iter()
        .map(|service| {
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": service, "namespace": NAMESPACE},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
            })
        })
        .collect();
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "parentRefs": [{"name": "public-gw"}],
            "rules": [{"backendRefs": [
                {"name": stable, "port": 80, "weight": 100},
                {"name": canary, "port": 80, "weight": 0}
            ]}]
        }
    }))?;
    Ok((rollout, services, route))
}

/// Create one Rollout with its Services and HTTPRoute.
///
/// # Errors
/// When the API server refuses one of them.
pub async fn create(client: &kube::Client, name: &str, kind: Kind) -> anyhow::Result<()> {
    let (rollout, services, route) = objects(name, kind)?;
    let post = PostParams::default();
    let service_api: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), NAMESPACE);
    for service in services {
        service_api
            .create(&post, &serde_json::from_value(service)?)
            .await?;
    }
    super::world::routes(client)
        .create(&post, &route)
        .await
        .with_context(|| format!("creating the HTTPRoute {name}"))?;
    Api::<Rollout>::namespaced(client.clone(), NAMESPACE)
        .create(&post, &rollout)
        .await
        .with_context(|| format!("creating the Rollout {name}"))?;
    Ok(())
}

async fn update(
    client: &kube::Client,
    name: &str,
    image: &str,
    steps: Value,
) -> anyhow::Result<()> {
    let patch = json!({"spec": {
        "template": template(name, image),
        "strategy": {"canary": {"steps": steps}}
    }});
    Api::<Rollout>::namespaced(client.clone(), NAMESPACE)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .with_context(|| format!("updating {name} to {image}"))?;
    Ok(())
}

/// Whether the Rollout is paused in a step of its update to a revision other than `v1_hash`.
fn paused_in_update(r: &Rollout, v1_hash: &str) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.current_pod_hash.as_deref().is_some_and(|h| h != v1_hash)
            && s.current_step_index == Some(1)
            && !s.pause_conditions.is_empty()
    })
}

/// Whether the update to a revision other than `v1_hash` has passed its first step.
fn under_way(r: &Rollout, v1_hash: &str) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.current_pod_hash.as_deref().is_some_and(|h| h != v1_hash)
            && s.current_step_index.unwrap_or(0) >= 1
    })
}

/// Take one Rollout (Healthy on its first revision, `v1_hash`) through its scenario's
/// actions; how it ends is checked afterwards.
///
/// # Errors
/// When a write of the campaign fails or the Rollout never gets where an action needs it.
pub async fn drive(
    shared: &Shared,
    ctx: &Ctx,
    name: &str,
    kind: Kind,
    v1_hash: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    update(&ctx.client, name, V2, kind.steps()).await?;
    match kind {
        Kind::Promote | Kind::AnalysisPass | Kind::AnalysisFail => {}
        Kind::ManualAbort => {
            shared
                .wait(name, limit, |r| paused_in_update(r, v1_hash))
                .await?;
            crate::plugin::abort::abort(ctx, name).await?;
        }
        Kind::PromoteFull | Kind::PromoteByHand => {
            shared
                .wait(name, limit, |r| paused_in_update(r, v1_hash))
                .await?;
            shared.promoted(name);
            crate::plugin::promote::promote(ctx, name, kind == Kind::PromoteFull).await?;
        }
        Kind::SecondUpdate => {
            shared.wait(name, limit, |r| under_way(r, v1_hash)).await?;
            update(&ctx.client, name, V3, second_steps()).await?;
        }
    }
    Ok(())
}
