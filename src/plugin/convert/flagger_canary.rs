//! Flagger `Canary` → a Sluice `Rollout` with a `workloadRef` to the target Deployment, an
//! AnalysisTemplate holding its metric checks, and the Services and routing object Flagger
//! would have generated. `interval`/`stepWeight(s)`/`maxWeight` become `setWeight` + `pause`
//! steps, `threshold` the metrics' `failureLimit`, `iterations` a blue/green pre-promotion
//! analysis (or, with `match`, an A/B header route). Pure.

use super::argo_rollout::finish;
use super::carry::is_empty;
use super::flagger_metrics as metrics;
use super::flagger_routing::{self as routing, Routing, ServiceShape};
use super::report::{Conversion, Findings};
use crate::crd::{AnalysisTemplate, Rollout};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};

/// The other objects of the input a Canary refers to.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    /// Deployments (a target's selector and replicas).
    pub deployments: Vec<&'a Value>,
    /// Flagger MetricTemplates (inlined into the analysis).
    pub metric_templates: Vec<&'a Value>,
}

impl<'a> Inputs<'a> {
    fn deployment(&self, name: &str) -> Option<&'a Value> {
        self.deployments
            .iter()
            .copied()
            .find(|d| d["metadata"]["name"] == name)
    }

    fn metric_template(&self, name: &str, namespace: Option<&str>) -> Option<&'a Value> {
        self.metric_templates.iter().copied().find(|t| {
            t["metadata"]["name"] == name
                && namespace
                    .is_none_or(|ns| t["metadata"]["namespace"].as_str().is_none_or(|n| n == ns))
        })
    }
}

/// How Flagger would run the Canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Canary,
    BlueGreen,
    AbTesting,
}

/// Fields of `spec` this module carries.
const SPEC: [&str; 10] = [
    "provider",
    "targetRef",
    "service",
    "analysis",
    "canaryAnalysis",
    "progressDeadlineSeconds",
    "skipAnalysis",
    "suspend",
    "metricsServer",
    "ingressRef",
];
/// Fields of `spec.analysis` this module carries.
const ANALYSIS: [&str; 9] = [
    "interval",
    "threshold",
    "maxWeight",
    "stepWeight",
    "stepWeights",
    "iterations",
    "match",
    "metrics",
    "canaryReadyThreshold",
];

/// Converts one Flagger `Canary`.
#[must_use]
pub fn convert(source: &Value, inputs: &Inputs<'_>) -> Conversion {
    let mut findings = Findings::default();
    let spec = &source["spec"];
    let target = &spec["targetRef"];
    if is_empty(target) {
        return Conversion::refused(
            "spec.targetRef",
            "missing; a Canary needs a targetRef to convert",
        );
    }
    if target["kind"] != "Deployment" {
        return Conversion::refused(
            "spec.targetRef.kind",
            format!(
                "{} targets cannot be converted: a Rollout's workloadRef names a Deployment",
                target["kind"]
            ),
        );
    }
    let target_name = target["name"].as_str().unwrap_or_default();
    let provider = provider_of(spec, &mut findings);
    unused(spec, "spec", &SPEC, &mut findings, spec_reason);
    let analysis = if is_empty(&spec["analysis"]) {
        &spec["canaryAnalysis"]
    } else {
        &spec["analysis"]
    };
    unused(
        analysis,
        "spec.analysis",
        &ANALYSIS,
        &mut findings,
        analysis_reason,
    );
    let strategy = strategy_of(analysis, &provider, &mut findings);
    let deployment = inputs.deployment(target_name);
    let shape = ServiceShape {
        apex: spec["service"]["name"]
            .as_str()
            .unwrap_or(target_name)
            .to_string(),
        namespace: source["metadata"].get("namespace"),
        selector: routing::selector_of(deployment, target_name),
    };
    let routed = match strategy {
        Strategy::BlueGreen => {
            routing::blue_green_routing(source, &provider, &shape, &mut findings)
        }
        _ => routing::canary_routing(source, &provider, &shape, &mut findings),
    };
    if strategy == Strategy::Canary && !routing::has_router(&provider) && provider != "kubernetes" {
        findings.push(
            "spec.provider",
            format!("Sluice has no {provider} router; the canary weight becomes the share of canary pods"),
        );
    }
    let skip = spec["skipAnalysis"].as_bool() == Some(true) || is_empty(analysis);
    let template = if skip {
        None
    } else {
        analysis_template(source, analysis, strategy, &provider, inputs, &mut findings)
    };
    let rollout = rollout(
        source,
        deployment,
        analysis,
        strategy,
        &routed,
        template.as_ref(),
    );
    let mut out = finish::<Rollout>(&rollout, findings);
    if out.objects.is_empty() {
        return out;
    }
    if let Some((template, _)) = template {
        let converted = finish::<AnalysisTemplate>(&template, Findings::default());
        out.findings.0.extend(converted.findings.0);
        out.objects.extend(converted.objects);
    }
    out.objects.extend(routed.objects);
    out
}

/// The Canary's provider; without one, what its fields imply (Flagger's global
/// `-mesh-provider` decides, default istio).
fn provider_of(spec: &Value, findings: &mut Findings) -> String {
    if let Some(provider) = spec["provider"].as_str() {
        return provider.to_string();
    }
    let (provider, why) = if !is_empty(&spec["service"]["gatewayRefs"]) {
        ("gatewayapi", "inferred gatewayapi from service.gatewayRefs")
    } else if !is_empty(&spec["ingressRef"]) {
        ("nginx", "inferred nginx from ingressRef")
    } else {
        ("istio", "assumed istio, Flagger's default mesh provider")
    };
    findings.push("spec.provider", format!("not set; {why}"));
    provider.to_string()
}

fn spec_reason(key: &str) -> String {
    match key {
        "autoscalerRef" => "not carried; point the HorizontalPodAutoscaler at the Rollout (it has a scale subresource)".into(),
        "revertOnDeletion" => "not carried; deleting a Rollout leaves its ReplicaSets to garbage collection".into(),
        _ => format!("{} (Flagger-only field)", super::carry::NO_EQUIVALENT),
    }
}

fn analysis_reason(key: &str) -> String {
    match key {
        "webhooks" => "not carried: Sluice has no webhooks; use an analysis step with a web or job metric, or a pause step for a manual gate".into(),
        "alerts" => "not carried: Sluice emits Kubernetes Events and metrics; route them with your alerting".into(),
        "mirror" | "mirrorWeight" => "not carried: use a setMirrorRoute step with managedRoutes".into(),
        "sessionAffinity" => "not carried: Sluice has no cookie-based session affinity".into(),
        "stepWeightPromotion" => "not carried: promotion moves all traffic to the new stable at once".into(),
        "primaryReadyThreshold" => "not carried: the stable ReplicaSet must be fully available".into(),
        _ => format!("{} (Flagger-only field)", super::carry::NO_EQUIVALENT),
    }
}

/// Records every set field of `object` not in `known`, with `reason(key)`.
fn unused(
    object: &Value,
    path: &str,
    known: &[&str],
    findings: &mut Findings,
    reason: fn(&str) -> String,
) {
    for (key, value) in object.as_object().into_iter().flatten() {
        if is_empty(value) || known.contains(&key.as_str()) {
            continue;
        }
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                let what = item["type"]
                    .as_str()
                    .or(item["name"].as_str())
                    .unwrap_or("");
                findings.push(
                    format!("{path}.{key}[{i}]"),
                    format!("{what}: {}", reason(key))
                        .trim_start_matches(": ")
                        .to_string(),
                );
            }
        } else {
            findings.push(format!("{path}.{key}"), reason(key));
        }
    }
}

fn strategy_of(analysis: &Value, provider: &str, findings: &mut Findings) -> Strategy {
    let iterations = !is_empty(&analysis["iterations"]);
    let matches = !is_empty(&analysis["match"]);
    match (iterations, matches) {
        (true, true) if routing::has_router(provider) => Strategy::AbTesting,
        (true, true) => {
            findings.push(
                "spec.analysis.match",
                format!(
                    "Sluice has no {provider} router for header routes; converted as blue/green"
                ),
            );
            Strategy::BlueGreen
        }
        (true, false) => Strategy::BlueGreen,
        (false, _) if provider == "kubernetes" => Strategy::BlueGreen,
        (false, _) => Strategy::Canary,
    }
}

/// The analysis interval (Flagger's tick), default 60s, at least 10s as Flagger clamps it.
fn interval(analysis: &Value) -> String {
    let text = analysis["interval"].as_str().unwrap_or("60s");
    let parsed = crate::engine::duration::parse_pause_duration(&IntOrString::String(text.into()));
    match parsed {
        Ok(d) if d < std::time::Duration::from_secs(10) => "10s".into(),
        _ => text.to_string(),
    }
}

/// The canary weights Flagger walks: `stepWeights`, or `stepWeight` increments until
/// `maxWeight` is reached (the last may overshoot it, capped at 100, as in Flagger).
fn weights(analysis: &Value) -> Vec<i64> {
    if let Some(steps) = analysis["stepWeights"].as_array().filter(|s| !s.is_empty()) {
        return steps
            .iter()
            .filter_map(Value::as_i64)
            .map(|w| w.min(100))
            .collect();
    }
    let step = analysis["stepWeight"].as_i64().unwrap_or(0);
    let max = analysis["maxWeight"].as_i64().unwrap_or(100).min(100);
    if step <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut weight = 0;
    while weight < max {
        weight = (weight + step).min(100);
        out.push(weight);
    }
    out
}

fn rollout(
    source: &Value,
    deployment: Option<&Value>,
    analysis: &Value,
    strategy: Strategy,
    routed: &Routing,
    template: Option<&(Value, Vec<Value>)>,
) -> Value {
    let spec = &source["spec"];
    let name = source["metadata"]["name"].as_str().unwrap_or_default();
    let reference = template.map(
        |(_, args)| json!({"templates": [{"templateName": template_name(name)}], "args": args}),
    );
    let mut out = Map::new();
    if let Some(replicas) = deployment.and_then(|d| d["spec"]["replicas"].as_i64()) {
        out.insert("replicas".into(), json!(replicas));
    }
    out.insert("selector".into(), json!({"matchLabels": routing::selector_of(deployment, spec["targetRef"]["name"].as_str().unwrap_or_default())}));
    out.insert(
        "workloadRef".into(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": spec["targetRef"]["name"], "scaleDown": "onsuccess"}),
    );
    for (from, to) in [
        ("progressDeadlineSeconds", "progressDeadlineSeconds"),
        ("suspend", "paused"),
    ] {
        if !is_empty(&spec[from]) {
            out.insert(to.into(), spec[from].clone());
        }
    }
    out.insert(
        "strategy".into(),
        strategy_block(analysis, strategy, routed, reference),
    );
    json!({
        "apiVersion": super::API_VERSION,
        "kind": "Rollout",
        "metadata": super::carry::metadata(&source["metadata"]),
        "spec": out,
    })
}

fn strategy_block(
    analysis: &Value,
    strategy: Strategy,
    routed: &Routing,
    reference: Option<Value>,
) -> Value {
    if strategy == Strategy::BlueGreen {
        let mut bg = json!({"activeService": routed.stable, "previewService": routed.canary});
        if let Some(reference) = reference {
            bg["prePromotionAnalysis"] = reference;
        }
        return json!({"blueGreen": bg});
    }
    let mut canary = json!({"stableService": routed.stable, "canaryService": routed.canary});
    if let Some(tr) = &routed.traffic_routing {
        canary["trafficRouting"] = tr.clone();
    }
    if let Some(percent) = analysis["canaryReadyThreshold"].as_i64() {
        canary["replicaProgressThreshold"] = json!({"type": "Percent", "value": percent});
    }
    let mut steps = Vec::new();
    if strategy == Strategy::AbTesting {
        let (routes, header_steps) = header_routes(analysis);
        canary["trafficRouting"]["managedRoutes"] = json!(routes);
        steps.extend(header_steps);
        if let Some(reference) = reference {
            steps.push(json!({"analysis": reference}));
        }
    } else {
        let pause = interval(analysis);
        for weight in weights(analysis) {
            steps.push(json!({"setWeight": weight}));
            steps.push(json!({"pause": {"duration": pause}}));
        }
        if let Some(reference) = reference {
            canary["analysis"] = reference;
        }
    }
    canary["steps"] = json!(steps);
    json!({"canary": canary})
}

/// One managed header route per `match` entry that has headers, and its `setHeaderRoute` step.
fn header_routes(analysis: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut routes = Vec::new();
    let mut steps = Vec::new();
    for (i, entry) in analysis["match"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let matches: Vec<Value> = entry["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, value)| json!({"headerName": name, "headerValue": value}))
            .collect();
        if matches.is_empty() {
            continue;
        }
        let name = format!("ab-{i}");
        routes.push(json!({"name": name}));
        steps.push(json!({"setHeaderRoute": {"name": name, "match": matches}}));
    }
    (routes, steps)
}

/// The AnalysisTemplate of the Canary's metrics and the arguments the Rollout passes it;
/// `None` when no metric could be carried.
fn analysis_template(
    source: &Value,
    analysis: &Value,
    strategy: Strategy,
    provider: &str,
    inputs: &Inputs<'_>,
    findings: &mut Findings,
) -> Option<(Value, Vec<Value>)> {
    let tick = interval(analysis);
    let threshold = analysis["threshold"].as_i64().unwrap_or(1).max(1);
    let count =
        (strategy != Strategy::Canary).then(|| analysis["iterations"].as_i64().unwrap_or(1).max(1));
    let mut variables = Map::new();
    let mut converted = Vec::new();
    for (i, metric) in analysis["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("spec.analysis.metrics[{i}]");
        let Some(mut m) = metric_of(source, metric, provider, inputs, &path, findings) else {
            continue;
        };
        m["interval"] = json!(tick);
        if threshold > 1 {
            m["failureLimit"] = json!(threshold - 1);
        }
        if let Some(count) = count {
            m["count"] = json!(count);
        }
        for (k, v) in metric["templateVariables"]
            .as_object()
            .into_iter()
            .flatten()
        {
            variables.insert(k.clone(), v.clone());
        }
        converted.push(m);
    }
    if converted.is_empty() {
        return None;
    }
    let used: Vec<String> =
        metrics::args_of(&serde_json::to_string(&converted).unwrap_or_default());
    let args = used
        .iter()
        .map(|a| argument(a, source, &variables))
        .collect();
    let template = json!({
        "apiVersion": super::API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": template_metadata(source),
        "spec": {"args": used.iter().map(|a| json!({"name": a})).collect::<Vec<_>>(), "metrics": converted},
    });
    Some((template, args))
}

/// The name of the AnalysisTemplate made from a Canary's metrics.
fn template_name(canary: &str) -> String {
    format!("{canary}-analysis")
}

fn template_metadata(source: &Value) -> Value {
    let mut meta = super::carry::metadata(&source["metadata"]);
    meta["name"] = json!(template_name(
        source["metadata"]["name"].as_str().unwrap_or_default()
    ));
    meta
}

/// The Rollout's value for a template argument.
fn argument(name: &str, source: &Value, variables: &Map<String, Value>) -> Value {
    let spec = &source["spec"];
    match name {
        "namespace" => {
            json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}})
        }
        "target" => {
            json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        }
        "canaryHash" => json!({"name": name, "valueFrom": {"podTemplateHashValue": "Latest"}}),
        "service" => {
            json!({"name": name, "value": spec["service"]["name"].as_str().or(spec["targetRef"]["name"].as_str())})
        }
        "ingress" => {
            json!({"name": name, "value": spec["ingressRef"]["name"].as_str().unwrap_or_default()})
        }
        other => {
            json!({"name": name, "value": variables.get(other).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))})
        }
    }
}

/// One Flagger metric check as a Sluice metric, or `None` with a finding.
fn metric_of(
    source: &Value,
    metric: &Value,
    provider: &str,
    inputs: &Inputs<'_>,
    path: &str,
    findings: &mut Findings,
) -> Option<Value> {
    let name = metric["name"].as_str().unwrap_or("metric");
    let window = metric["interval"].as_str().unwrap_or("1m");
    let router = routing::router_of(provider);
    let (query, mut prometheus, lower_is_ok) = if !is_empty(&metric["templateRef"]) {
        let reference = &metric["templateRef"];
        let template_name = reference["name"].as_str().unwrap_or_default();
        let Some(template) = inputs.metric_template(template_name, reference["namespace"].as_str())
        else {
            findings.push(format!("{path}.templateRef"), format!("MetricTemplate {template_name} is not in the input; convert it together with the Canary"));
            return None;
        };
        let provider = match metrics::template_provider(template, findings) {
            Ok(p) => p,
            Err((_, reason)) => {
                findings.push(format!("{path}.templateRef"), reason);
                return None;
            }
        };
        (
            template["spec"]["query"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            provider,
            false,
        )
    } else if let Some(query) = metric["query"].as_str() {
        (query.to_string(), Map::new(), false)
    } else {
        let builtin = match name {
            "request-success-rate" => metrics::success_rate_query(router, window),
            "request-duration" => metrics::duration_query(router, window),
            _ => {
                findings.push(
                    path,
                    format!("metric {name} is neither built in nor a templateRef"),
                );
                return None;
            }
        };
        let Some(query) = builtin else {
            findings.push(path, format!("Sluice has no built-in {name} query for provider {provider}; write an AnalysisTemplate"));
            return None;
        };
        let mut p = Map::new();
        if let Some(server) = source["spec"]["metricsServer"].as_str() {
            p.insert("address".into(), json!(server));
        }
        (query, p, name == "request-duration")
    };
    let (query, unknown) = metrics::translate_query(&query, window);
    for placeholder in unknown {
        findings.push(
            format!("{path}.query"),
            format!("placeholder {{{{ {placeholder} }}}} has no Sluice argument"),
        );
    }
    prometheus.insert("query".into(), json!(query));
    let mut out = json!({"name": name, "provider": {"prometheus": prometheus}});
    let range = match metric["threshold"].as_f64() {
        Some(t)
            if is_empty(&metric["thresholdRange"])
                && (lower_is_ok || name != "request-success-rate") =>
        {
            json!({"max": t})
        }
        Some(t) if is_empty(&metric["thresholdRange"]) => json!({"min": t}),
        _ => metric["thresholdRange"].clone(),
    };
    if let Some(condition) = metrics::threshold_condition(&range) {
        out["successCondition"] = json!(condition);
    }
    Some(out)
}

#[cfg(test)]
#[path = "flagger_canary_tests.rs"]
mod tests;
