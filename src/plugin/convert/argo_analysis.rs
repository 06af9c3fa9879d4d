//! Argo Rollouts `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun` → ours. The
//! metric shape is the same; metrics of providers we lack are left out with a reason. Pure.

use super::argo_rollout::{drop_status, finish};
use super::carry;
use super::report::{Conversion, Findings};
use crate::crd::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate};
use serde_json::{Value, json};

/// The providers Sluice measures.
const PROVIDERS: [&str; 4] = ["prometheus", "web", "job", "plugin"];

/// Converts one Argo analysis object of `kind`.
#[must_use]
pub fn convert(kind: &str, source: &Value) -> Conversion {
    let mut findings = Findings::default();
    let mut spec = source.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(Value::Array(metrics)) = spec.get_mut("metrics") {
        let kept: Vec<Value> = std::mem::take(metrics)
            .into_iter()
            .enumerate()
            .filter_map(|(i, metric)| keep_metric(i, metric, &mut findings))
            .collect();
        if kept.is_empty() && kind != "AnalysisRun" {
            findings.push(
                "spec.metrics",
                "no metric of a provider Sluice supports is left",
            );
            return Conversion {
                objects: Vec::new(),
                findings,
            };
        }
        *metrics = kept;
    }
    drop_status(source, &mut findings);
    let object = json!({
        "apiVersion": super::API_VERSION,
        "kind": kind,
        "metadata": carry::metadata(&source["metadata"]),
        "spec": spec,
    });
    match kind {
        "AnalysisTemplate" => finish::<AnalysisTemplate>(&object, findings),
        "ClusterAnalysisTemplate" => finish::<ClusterAnalysisTemplate>(&object, findings),
        _ => finish::<AnalysisRun>(&object, findings),
    }
}

/// The metric, unless its provider is one we lack.
fn keep_metric(i: usize, metric: Value, findings: &mut Findings) -> Option<Value> {
    let provider = metric
        .get("provider")
        .and_then(Value::as_object)
        .and_then(|p| p.keys().find(|k| !carry::is_empty(&p[k.as_str()])))
        .cloned()
        .unwrap_or_default();
    if PROVIDERS.contains(&provider.as_str()) {
        return Some(metric);
    }
    findings.push(
        format!("spec.metrics[{i}].provider.{provider}"),
        format!(
            "the {provider} provider is not supported by Sluice (prometheus, web, job, plugin); \
             metric {} is left out",
            metric["name"].as_str().unwrap_or("?")
        ),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(metrics: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
               "metadata": {"name": "t"}, "spec": {"args": [{"name": "svc"}], "metrics": metrics}})
    }

    #[test]
    fn metrics_map_field_for_field_and_unsupported_providers_are_named() {
        let prometheus = json!({"name": "ok", "interval": "5m", "successCondition": "result[0] >= 0.95",
            "failureLimit": 3, "provider": {"prometheus": {"address": "http://p:9090",
            "query": "sum(x{s=\"{{args.svc}}\"})", "authentication": {"sigv4": {"region": "r"}}}}});
        let datadog = json!({"name": "dd", "provider": {"datadog": {"query": "q"}}});
        let c = convert("AnalysisTemplate", &template(json!([prometheus, datadog])));
        let out = &c.objects[0];
        assert_eq!(
            out["spec"]["metrics"].as_array().map(Vec::len),
            Some(1),
            "{out}"
        );
        assert_eq!(
            out["spec"]["metrics"][0]["successCondition"],
            "result[0] >= 0.95"
        );
        assert_eq!(out["spec"]["metrics"][0]["failureLimit"], 3);
        let paths: Vec<_> = c.findings.0.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.metrics[1].provider.datadog",
                "spec.metrics[0].provider.prometheus.authentication"
            ]
        );
    }

    #[test]
    fn a_template_left_without_metrics_is_not_converted() {
        let c = convert(
            "ClusterAnalysisTemplate",
            &template(json!([{"name": "w", "provider": {"wavefront": {"query": "q"}}}])),
        );
        assert!(c.objects.is_empty());
        assert!(c.findings.names("spec.metrics"), "{:?}", c.findings);
    }

    #[test]
    fn an_analysis_run_keeps_its_spec_and_drops_its_status() {
        let mut run = template(json!([{"name": "w", "provider": {"web": {"url": "http://x/"}}}]));
        run["kind"] = json!("AnalysisRun");
        run["status"] = json!({"phase": "Running"});
        let c = convert("AnalysisRun", &run);
        assert_eq!(c.objects[0]["kind"], "AnalysisRun");
        assert_eq!(
            c.objects[0]["spec"]["metrics"][0]["provider"]["web"]["url"],
            "http://x/"
        );
        assert!(c.findings.names("status"));
    }
}
