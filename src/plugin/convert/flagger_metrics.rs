//! Flagger's metric checks → Sluice metrics: the built-in `request-success-rate` and
//! `request-duration` become Prometheus queries per provider, `templateRef`s inline the
//! referenced `MetricTemplate`'s query, and `thresholdRange` becomes a `successCondition`.
//! A standalone `MetricTemplate` becomes an AnalysisTemplate with its placeholders as args.
//! Pure.

use super::argo_rollout::finish;
use super::carry;
use super::report::{Conversion, Findings};
use crate::crd::AnalysisTemplate;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The arguments every converted query may use: the namespace, the target workload (the
/// Rollout), the canary's pod-template hash, the apex Service and the Ingress.
pub const ARGS: [&str; 5] = ["namespace", "target", "canaryHash", "service", "ingress"];

/// A pod of the canary, by name (`<rollout>-<hash>-<suffix>`).
const CANARY_POD: &str = "{{args.target}}-{{args.canaryHash}}-[0-9a-z]+";

/// Flagger's built-in success-rate query for `provider`, as Flagger documents it, with the
/// canary's pods selected by name instead of Flagger's `<target>` workload (under Sluice canary
/// and stable pods belong to one workload, the Rollout). `None` for providers without one here.
#[must_use]
pub fn success_rate_query(provider: &str, window: &str) -> Option<String> {
    let (total, ok) = match provider {
        "istio" => (
            format!(r#"istio_requests_total{{reporter="destination",destination_workload_namespace="{{{{args.namespace}}}}",pod=~"{CANARY_POD}"}}"#),
            r#",response_code!~"5.*""#,
        ),
        "linkerd" => (
            format!(r#"response_total{{namespace="{{{{args.namespace}}}}",pod=~"{CANARY_POD}",direction="inbound"}}"#),
            r#",classification!="failure""#,
        ),
        "nginx" => (
            r#"nginx_ingress_controller_requests{namespace="{{args.namespace}}",ingress="{{args.ingress}}",canary!=""}"#.to_string(),
            r#",status!~"5.*""#,
        ),
        "traefik" => (
            r#"traefik_service_request_duration_seconds_bucket{service=~"{{args.namespace}}-{{args.service}}-canary-[0-9a-zA-Z-]+@kubernetescrd",le="+Inf"}"#.to_string(),
            r#",code!~"5..""#,
        ),
        "kubernetes" | "gatewayapi" => (
            format!(r#"http_request_duration_seconds_count{{kubernetes_namespace="{{{{args.namespace}}}}",kubernetes_pod_name=~"{CANARY_POD}"}}"#),
            r#",status!~"5.*""#,
        ),
        _ => return None,
    };
    // The selector ends with its closing brace; the "not an error" matcher goes before it.
    let with_ok = format!("{}{ok}}}", total.strip_suffix('}').unwrap_or(&total));
    Some(format!(
        "sum(rate({with_ok}[{window}])) / sum(rate({total}[{window}])) * 100"
    ))
}

/// Flagger's built-in request-duration query for `provider` in milliseconds (P99; NGINX's is
/// the mean, as in Flagger). `None` for providers without one here.
#[must_use]
pub fn duration_query(provider: &str, window: &str) -> Option<String> {
    let p99 = |bucket: String, scale: &str| {
        format!("histogram_quantile(0.99, sum(rate({bucket}[{window}])) by (le)){scale}")
    };
    Some(match provider {
        "istio" => p99(
            format!(r#"istio_request_duration_milliseconds_bucket{{reporter="destination",destination_workload_namespace="{{{{args.namespace}}}}",pod=~"{CANARY_POD}"}}"#),
            "",
        ),
        "linkerd" => p99(
            format!(r#"response_latency_ms_bucket{{namespace="{{{{args.namespace}}}}",pod=~"{CANARY_POD}",direction="inbound"}}"#),
            "",
        ),
        "nginx" => {
            let labels = r#"{namespace="{{args.namespace}}",ingress="{{args.ingress}}",canary!=""}"#;
            format!(
                "sum(rate(nginx_ingress_controller_response_duration_seconds_sum{labels}[{window}])) / \
                 sum(rate(nginx_ingress_controller_response_duration_seconds_count{labels}[{window}])) * 1000"
            )
        }
        "traefik" => p99(
            r#"traefik_service_request_duration_seconds_bucket{service=~"{{args.namespace}}-{{args.service}}-canary-[0-9a-zA-Z-]+@kubernetescrd"}"#.to_string(),
            " * 1000",
        ),
        "kubernetes" | "gatewayapi" => p99(
            format!(r#"http_request_duration_seconds_bucket{{kubernetes_namespace="{{{{args.namespace}}}}",kubernetes_pod_name=~"{CANARY_POD}"}}"#),
            " * 1000",
        ),
        _ => return None,
    })
}

/// A Flagger query template with its placeholders as Sluice arguments: `{{ namespace }}`,
/// `{{ target }}`, `{{ service }}`, `{{ ingress }}` and `{{ variables.K }}` become
/// `{{args.…}}`, `{{ interval }}` the metric's window. Unknown placeholders are returned.
#[must_use]
pub fn translate_query(query: &str, window: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(query.len());
    let mut unknown = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + end].trim();
        match inner {
            "interval" => out.push_str(window),
            "namespace" | "target" | "service" | "ingress" => {
                out.push_str(&format!("{{{{args.{inner}}}}}"));
            }
            "name" => out.push_str("{{args.target}}"),
            _ if inner.starts_with("args.") => out.push_str(&rest[start..start + end + 2]),
            _ => match inner.strip_prefix("variables.") {
                Some(key) => out.push_str(&format!("{{{{args.{key}}}}}")),
                None => {
                    unknown.push(inner.to_string());
                    out.push_str(&rest[start..start + end + 2]);
                }
            },
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    (out, unknown)
}

/// The `successCondition` for a Flagger `thresholdRange` (both ends inclusive and optional;
/// no data fails, as in Flagger).
#[must_use]
pub fn threshold_condition(range: &Value) -> Option<String> {
    let mut parts = vec!["len(result) > 0".to_string()];
    if let Some(min) = range.get("min").and_then(Value::as_f64) {
        parts.push(format!("result[0] >= {}", number(min)));
    }
    if let Some(max) = range.get("max").and_then(Value::as_f64) {
        parts.push(format!("result[0] <= {}", number(max)));
    }
    (parts.len() > 1).then(|| parts.join(" && "))
}

/// A number as CEL reads it: always a double (`99.0`), so comparisons never mix types.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.1}")
    } else {
        format!("{n}")
    }
}

/// The Prometheus provider of a MetricTemplate, or why it has none we can carry.
///
/// # Errors
/// The field and reason when the template is not a Prometheus one.
pub fn template_provider(
    template: &Value,
    findings: &mut Findings,
) -> Result<serde_json::Map<String, Value>, (String, String)> {
    let provider = &template["spec"]["provider"];
    let kind = provider["type"].as_str().unwrap_or("prometheus");
    if kind != "prometheus" {
        return Err((
            "spec.provider.type".to_string(),
            format!(
                "the {kind} provider is not supported by Sluice (prometheus only for Flagger templates)"
            ),
        ));
    }
    let mut out = serde_json::Map::new();
    if let Some(address) = provider["address"].as_str() {
        out.insert("address".into(), json!(address));
    }
    if provider["insecureSkipVerify"].as_bool() == Some(true) {
        out.insert("insecure".into(), json!(true));
    }
    let headers: Vec<Value> = provider["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(k, v)| {
            let values = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
            values
                .into_iter()
                .map(move |v| json!({"key": k, "value": v}))
        })
        .collect();
    if !headers.is_empty() {
        out.insert("headers".into(), json!(headers));
    }
    if !carry::is_empty(&provider["secretRef"]) {
        findings.push(
            "spec.provider.secretRef",
            "credentials are registered with the controller's Prometheus endpoint (--prometheus), not referenced by templates",
        );
    }
    if !carry::is_empty(&provider["region"]) {
        findings.push("spec.provider.region", carry::NO_EQUIVALENT);
    }
    Ok(out)
}

/// Converts a standalone Flagger `MetricTemplate` to an AnalysisTemplate of one metric, named
/// like the template; the Canary's `thresholdRange` lives in the Canary, so it has no condition.
#[must_use]
pub fn convert_template(source: &Value) -> Conversion {
    let mut findings = Findings::default();
    let name = source["metadata"]["name"].as_str().unwrap_or("metric");
    let mut prometheus = match template_provider(source, &mut findings) {
        Ok(p) => p,
        Err((path, reason)) => {
            findings.push(path, reason);
            return Conversion {
                objects: Vec::new(),
                findings,
            };
        }
    };
    let (query, unknown) = translate_query(source["spec"]["query"].as_str().unwrap_or(""), "1m");
    for placeholder in unknown {
        findings.push(
            "spec.query",
            format!("placeholder {{{{ {placeholder} }}}} has no Sluice argument"),
        );
    }
    let args = args_of(&query);
    prometheus.insert("query".into(), json!(query));
    let object = json!({
        "apiVersion": super::API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": carry::metadata(&source["metadata"]),
        "spec": {
            "args": args.iter().map(|a| json!({"name": a})).collect::<Vec<_>>(),
            "metrics": [{"name": name, "provider": {"prometheus": prometheus}}],
        },
    });
    findings.push(
        "spec.query",
        "{{ interval }} became 1m; thresholds come from the Canary's thresholdRange (convert the Canary too)",
    );
    finish::<AnalysisTemplate>(&object, findings)
}

/// The `{{args.NAME}}` names in `text`, once each, in order of first use.
#[must_use]
pub fn args_of(text: &str) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for (i, piece) in text.split("{{args.").skip(1).enumerate() {
        if let Some(end) = piece.find("}}") {
            seen.entry(piece[..end].trim().to_string()).or_insert(i);
        }
    }
    let mut names: Vec<_> = seen.into_iter().collect();
    names.sort_by_key(|(_, i)| *i);
    names.into_iter().map(|(n, _)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AnalysisPhase;
    use crate::engine::measure::condition::Conditions;

    #[test]
    fn threshold_ranges_become_conditions_that_judge_like_flagger() {
        // (thresholdRange, result, expected phase)
        let cases = [
            (json!({"min": 99}), json!([99.5]), AnalysisPhase::Successful),
            (json!({"min": 99}), json!([99]), AnalysisPhase::Successful),
            (json!({"min": 99}), json!([98.9]), AnalysisPhase::Failed),
            (json!({"max": 500}), json!([500]), AnalysisPhase::Successful),
            (json!({"max": 500}), json!([501]), AnalysisPhase::Failed),
            (
                json!({"min": 1, "max": 2.5}),
                json!([2.5]),
                AnalysisPhase::Successful,
            ),
            (
                json!({"min": 1, "max": 2.5}),
                json!([0.5]),
                AnalysisPhase::Failed,
            ),
            // No data fails, as Flagger's "no values found".
            (json!({"min": 99}), json!([]), AnalysisPhase::Failed),
            (json!({"min": 99}), json!(["NaN"]), AnalysisPhase::Failed),
        ];
        for (range, result, expected) in cases {
            let condition = threshold_condition(&range).expect("a condition");
            let compiled = Conditions::compile("m", Some(&condition), None, &|_| None)
                .unwrap_or_else(|e| panic!("{condition}: {e}"));
            let phase = compiled
                .evaluate(&result)
                .unwrap_or_else(|e| panic!("{condition}: {e}"));
            assert_eq!(phase, expected, "{condition} on {result}");
        }
        assert_eq!(threshold_condition(&json!({})), None);
    }

    #[test]
    fn built_in_queries_exist_per_router_and_select_the_canary_pods() {
        for provider in [
            "istio",
            "linkerd",
            "nginx",
            "traefik",
            "kubernetes",
            "gatewayapi",
        ] {
            let success = success_rate_query(provider, "1m").expect(provider);
            let duration = duration_query(provider, "1m").expect(provider);
            for query in [&success, &duration] {
                assert!(query.contains("[1m]"), "{provider}: {query}");
                assert!(query.contains("{{args.namespace}}"), "{provider}: {query}");
                assert_eq!(
                    query.matches('(').count(),
                    query.matches(')').count(),
                    "{query}"
                );
            }
            assert!(success.ends_with("* 100"), "{success}");
        }
        let istio = success_rate_query("istio", "30s").unwrap_or_default();
        assert!(
            istio.contains(
                r#"pod=~"{{args.target}}-{{args.canaryHash}}-[0-9a-z]+",response_code!~"5.*"}[30s]"#
            ),
            "{istio}"
        );
        assert_eq!(success_rate_query("contour", "1m"), None);
    }

    #[test]
    fn template_placeholders_become_arguments() {
        let (query, unknown) = translate_query(
            r#"rate(x{ns="{{ namespace }}",d=~"{{ target }}",dir="{{ variables.direction }}",r="{{route}}"}[{{ interval }}])"#,
            "2m",
        );
        assert_eq!(
            query,
            r#"rate(x{ns="{{args.namespace}}",d=~"{{args.target}}",dir="{{args.direction}}",r="{{route}}"}[2m])"#
        );
        assert_eq!(unknown, ["route"]);
        assert_eq!(args_of(&query), ["namespace", "target", "direction"]);
    }

    #[test]
    fn a_metric_template_becomes_an_analysis_template() {
        let source = json!({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "latency", "namespace": "istio-system"},
            "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090",
                     "secretRef": {"name": "s"}},
                     "query": "sum(x{n=\"{{ namespace }}\"}[{{ interval }}])"}});
        let c = convert_template(&source);
        let metric = &c.objects[0]["spec"]["metrics"][0];
        assert_eq!(
            metric["provider"]["prometheus"]["query"],
            "sum(x{n=\"{{args.namespace}}\"}[1m])"
        );
        assert_eq!(
            metric["provider"]["prometheus"]["address"],
            "http://prometheus:9090"
        );
        assert_eq!(c.objects[0]["spec"]["args"], json!([{"name": "namespace"}]));
        assert!(c.findings.names("spec.provider.secretRef"));
        let datadog = json!({"metadata": {"name": "d"}, "spec": {"provider": {"type": "datadog"}, "query": "q"}});
        assert!(convert_template(&datadog).objects.is_empty());
    }
}
