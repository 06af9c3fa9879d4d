//! The CEL rules of the generated CRDs (`x-kubernetes-validations`), enforced by the playground
//! API server as a real one enforces them: each bad manifest is refused with `422` and the
//! rule's message, and the manifests next to the limit are accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions};

async fn start() -> PlaygroundHandle {
    let playground = Playground::start(PlaygroundOptions::default())
        .await
        .expect("playground starts");
    let crds: Api<CustomResourceDefinition> = Api::all(playground.client());
    for crd in sluice::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    playground
}

fn api(pg: &PlaygroundHandle, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("sluice.dev", "v1alpha1", kind);
    Api::namespaced_with(pg.client(), "default", &ApiResource::from_gvk(&gvk))
}

const TEMPLATE: &str = r#"{"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "example/web:1"}]}}"#;

/// A Rollout named `name` with `strategy` (JSON).
fn rollout(name: &str, strategy: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": serde_json::from_str::<Value>(TEMPLATE).unwrap(),
            "strategy": strategy,
        }
    }))
    .unwrap()
}

fn canary(steps: Value) -> Value {
    json!({"canary": {"steps": steps}})
}

/// Create `obj`; `Ok` or the refusal's code and message.
async fn create(api: &Api<DynamicObject>, obj: &DynamicObject) -> Result<(), (u16, String)> {
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err((status.code, status.message.clone())),
        Err(other) => panic!("expected an API answer, got {other:?}"),
    }
}

async fn refused(api: &Api<DynamicObject>, obj: &DynamicObject, message: &str) {
    let name = obj.metadata.name.clone().unwrap_or_default();
    match create(api, obj).await {
        Ok(()) => panic!("{name} was accepted; expected a refusal with {message:?}"),
        Err((code, got)) => {
            assert_eq!(code, 422, "{name}: {got}");
            assert!(
                got.contains(message),
                "{name}: expected {message:?} in {got}"
            );
        }
    }
}

#[tokio::test]
async fn rollout_rules_refuse_bad_specs_with_their_messages() {
    let pg = start().await;
    let rollouts = api(&pg, "Rollout");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "two-strategies",
            json!({"canary": {}, "blueGreen": {"activeService": "web"}}),
            "exactly one of strategy.canary and strategy.blueGreen must be set",
        ),
        (
            "two-keys-in-a-step",
            canary(json!([{"setWeight": 20, "pause": {}}])),
            "each step sets exactly one of",
        ),
        (
            "weight-over-100",
            canary(json!([{"setWeight": 120}])),
            "setWeight must be between 0 and trafficRouting.maxTrafficWeight",
        ),
        (
            "weight-over-max",
            json!({"canary": {
                "canaryService": "web-canary", "stableService": "web-stable",
                "trafficRouting": {"maxTrafficWeight": 10, "smi": {}},
                "steps": [{"setWeight": 20}],
            }}),
            "setWeight must be between 0 and trafficRouting.maxTrafficWeight",
        ),
        (
            "negative-pause",
            canary(json!([{"pause": {"duration": -5}}])),
            "pause.duration must be a whole number of seconds",
        ),
        (
            "bad-pause-unit",
            canary(json!([{"pause": {"duration": "30x"}}])),
            "pause.duration must be a whole number of seconds",
        ),
        (
            "same-services",
            json!({"canary": {"canaryService": "web", "stableService": "web"}}),
            "canaryService and stableService must differ",
        ),
        (
            "same-bluegreen-services",
            json!({"blueGreen": {"activeService": "web", "previewService": "web"}}),
            "activeService and previewService must differ",
        ),
        (
            "empty-traffic-routing",
            json!({"canary": {
                "canaryService": "web-canary", "stableService": "web-stable",
                "trafficRouting": {},
            }}),
            "trafficRouting needs at least one of",
        ),
        (
            "two-scales",
            canary(json!([{"setCanaryScale": {"replicas": 1, "weight": 20}}])),
            "setCanaryScale sets exactly one of replicas, weight and matchTrafficWeight",
        ),
    ];
    for (name, strategy, message) in cases {
        refused(&rollouts, &rollout(name, strategy), message).await;
    }

    // Both forms of a pause duration, and the weight limit itself, pass.
    let fine = rollout(
        "fine",
        canary(json!([
            {"setWeight": 100},
            {"pause": {"duration": 30}},
            {"pause": {"duration": "1h30m"}},
            {"pause": {"duration": "1.5s"}},
            {"pause": {}},
        ])),
    );
    create(&rollouts, &fine).await.unwrap();
    pg.shutdown().await;
}

#[tokio::test]
async fn analysis_template_rules_refuse_zero_or_two_providers() {
    let pg = start().await;
    let templates = api(&pg, "AnalysisTemplate");
    let template = |name: &str, metric: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": name},
            "spec": {"metrics": [metric]},
        }))
        .unwrap()
    };
    let prometheus = json!({"address": "http://prometheus:9090", "query": "up"});
    refused(
        &templates,
        &template(
            "two-providers",
            json!({"name": "m", "provider": {"prometheus": prometheus, "web": {"url": "http://x"}}}),
        ),
        "a metric provider sets exactly one of prometheus, web, job, plugin",
    )
    .await;
    refused(
        &templates,
        &template("no-provider", json!({"name": "m", "provider": {}})),
        "a metric provider sets exactly one of prometheus, web, job, plugin",
    )
    .await;
    create(
        &templates,
        &template(
            "fine",
            json!({"name": "m", "successCondition": "result[0] < 1", "provider": {"prometheus": prometheus}}),
        ),
    )
    .await
    .unwrap();
    pg.shutdown().await;
}

#[tokio::test]
async fn judge_rules_refuse_bad_judge_configuration_with_their_messages() {
    let pg = start().await;
    let templates = api(&pg, "AnalysisTemplate");
    let template = |name: &str, judge: Value, judgement: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": name},
            "spec": {
                "metrics": [{"name": "m", "interval": "10s",
                             "provider": {"prometheus": {"query": "up"}}, "judge": judge}],
                "judgement": judgement,
            },
        }))
        .unwrap()
    };
    let cases = [
        (
            "rate-without-total",
            json!({"test": "rateRatio"}),
            json!({}),
            "a judge metric sets totalQuery exactly when its test is rateRatio",
        ),
        (
            "total-without-rate",
            json!({"totalQuery": "sum(x)"}),
            json!({}),
            "a judge metric sets totalQuery exactly when its test is rateRatio",
        ),
        (
            "marginal-above-pass",
            json!({}),
            json!({"thresholds": {"pass": 60, "marginal": 80}}),
            "thresholds.marginal must not be above thresholds.pass",
        ),
        (
            "confidence-one",
            json!({}),
            json!({"confidence": 1.0}),
            "confidence must be inside (0, 1)",
        ),
        (
            "negative-weight",
            json!({}),
            json!({"groups": {"latency": -5}}),
            "group weights must be",
        ),
    ];
    for (name, judge, judgement, message) in cases {
        refused(&templates, &template(name, judge, judgement), message).await;
    }
    // Unknown enum values are refused by the schema.
    let direction = create(
        &templates,
        &template("bad-direction", json!({"direction": "up"}), json!({})),
    )
    .await;
    assert_eq!(direction.unwrap_err().0, 422);
    create(
        &templates,
        &template(
            "fine",
            json!({"test": "rateRatio", "totalQuery": "sum(requests)", "direction": "increase",
                   "nanStrategy": "replace", "effectSize": {"measure": "meanRatio", "allowedIncrease": 1.2}}),
            json!({"confidence": 0.95, "thresholds": {"pass": 90, "marginal": 60}, "groups": {"default": 100}}),
        ),
    )
    .await
    .unwrap();
    pg.shutdown().await;
}
