//! Table tests of the Flagger `Canary` conversion.

use super::*;

fn canary(provider: Option<&str>, analysis: Value) -> Value {
    let mut c = json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": analysis,
        },
    });
    if let Some(p) = provider {
        c["spec"]["provider"] = json!(p);
    }
    c
}

fn paths(c: &Conversion) -> Vec<&str> {
    c.findings.0.iter().map(|f| f.path.as_str()).collect()
}

#[test]
fn step_weights_and_intervals_become_set_weight_and_pause_steps() {
    // (analysis, expected weights)
    let cases = [
        (
            json!({"interval": "30s", "stepWeight": 20, "maxWeight": 50}),
            vec![20, 40, 60],
        ),
        (
            json!({"interval": "30s", "stepWeight": 10, "maxWeight": 30}),
            vec![10, 20, 30],
        ),
        (
            json!({"interval": "30s", "stepWeight": 40}),
            vec![40, 80, 100],
        ),
        (
            json!({"interval": "30s", "stepWeights": [1, 5, 10, 80]}),
            vec![1, 5, 10, 80],
        ),
        (
            json!({"interval": "30s", "stepWeights": [50, 120]}),
            vec![50, 100],
        ),
    ];
    for (analysis, expected) in cases {
        let c = convert(&canary(Some("istio"), analysis.clone()), &Inputs::default());
        let steps = &c.objects[0]["spec"]["strategy"]["canary"]["steps"];
        let want: Vec<Value> = expected
            .iter()
            .flat_map(|w| {
                [
                    json!({"setWeight": w}),
                    json!({"pause": {"duration": "30s"}}),
                ]
            })
            .collect();
        assert_eq!(steps, &json!(want), "{analysis}");
    }
}

#[test]
fn an_interval_below_ten_seconds_is_clamped_as_flagger_does() {
    let c = convert(
        &canary(Some("istio"), json!({"interval": "5s", "stepWeight": 50})),
        &Inputs::default(),
    );
    assert_eq!(
        c.objects[0]["spec"]["strategy"]["canary"]["steps"][1],
        json!({"pause": {"duration": "10s"}})
    );
}

#[test]
fn built_in_checks_become_prometheus_metrics_with_conditions() {
    let analysis = json!({"interval": "1m", "threshold": 5, "stepWeight": 50, "metrics": [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
        {"name": "request-duration", "threshold": 500, "interval": "30s"},
    ]});
    let mut source = canary(Some("linkerd"), analysis);
    source["spec"]["metricsServer"] = json!("http://prometheus.linkerd-viz:9090");
    let c = convert(&source, &Inputs::default());
    let kinds: Vec<_> = c
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "Rollout",
            "AnalysisTemplate",
            "Service",
            "Service",
            "Service"
        ]
    );
    let rollout = &c.objects[0];
    assert_eq!(rollout["spec"]["workloadRef"]["name"], "podinfo");
    assert_eq!(
        rollout["spec"]["selector"],
        json!({"matchLabels": {"app": "podinfo"}})
    );
    let canary_block = &rollout["spec"]["strategy"]["canary"];
    assert_eq!(canary_block["stableService"], "podinfo-primary");
    assert_eq!(
        canary_block["analysis"]["templates"],
        json!([{"templateName": "podinfo-analysis"}])
    );
    let args = canary_block["analysis"]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<_> = args
        .iter()
        .map(|a| a["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["namespace", "target", "canaryHash"]);
    let metrics = &c.objects[1]["spec"]["metrics"];
    assert_eq!(
        metrics[0]["successCondition"],
        "len(result) > 0 && result[0] >= 99.0"
    );
    assert_eq!(
        metrics[1]["successCondition"],
        "len(result) > 0 && result[0] <= 500.0"
    );
    assert_eq!(metrics[0]["failureLimit"], 4);
    assert_eq!(metrics[0]["interval"], "1m");
    assert_eq!(
        metrics[0]["provider"]["prometheus"]["address"],
        "http://prometheus.linkerd-viz:9090"
    );
    let query = metrics[1]["provider"]["prometheus"]["query"]
        .as_str()
        .unwrap_or_default();
    assert!(
        query.contains("response_latency_ms_bucket") && query.contains("[30s]"),
        "{query}"
    );
    assert!(c.findings.0.is_empty(), "{:?}", c.findings);
}

#[test]
fn template_refs_inline_the_metric_template_or_are_named() {
    let template = json!({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "latency", "namespace": "istio-system"},
        "spec": {"provider": {"type": "prometheus", "address": "http://p:9090"},
                 "query": "x{r=\"{{ variables.reporter }}\",n=\"{{ namespace }}\"}[{{ interval }}]"}});
    let analysis = json!({"stepWeight": 50, "metrics": [{"name": "latency",
        "templateRef": {"name": "latency", "namespace": "istio-system"},
        "thresholdRange": {"max": 500}, "interval": "2m", "templateVariables": {"reporter": "destination"}}]});
    let inputs = Inputs {
        deployments: vec![],
        metric_templates: vec![&template],
    };
    let c = convert(&canary(Some("istio"), analysis.clone()), &inputs);
    let metric = &c.objects[1]["spec"]["metrics"][0];
    assert_eq!(
        metric["provider"]["prometheus"]["query"],
        "x{r=\"{{args.reporter}}\",n=\"{{args.namespace}}\"}[2m]"
    );
    let args = &c.objects[0]["spec"]["strategy"]["canary"]["analysis"]["args"];
    assert_eq!(args[0], json!({"name": "reporter", "value": "destination"}));
    let missing = convert(&canary(Some("istio"), analysis), &Inputs::default());
    assert_eq!(paths(&missing), ["spec.analysis.metrics[0].templateRef"]);
    assert!(
        missing.objects[0]["spec"]["strategy"]["canary"]
            .get("analysis")
            .is_none()
    );
}

#[test]
fn iterations_make_blue_green_and_match_makes_header_routes() {
    let bg = convert(
        &canary(
            Some("kubernetes"),
            json!({"interval": "15s", "iterations": 10, "threshold": 2,
            "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}),
        ),
        &Inputs::default(),
    );
    let strategy = &bg.objects[0]["spec"]["strategy"];
    assert_eq!(strategy["blueGreen"]["activeService"], "podinfo");
    assert_eq!(strategy["blueGreen"]["previewService"], "podinfo-canary");
    assert_eq!(
        strategy["blueGreen"]["prePromotionAnalysis"]["templates"][0]["templateName"],
        "podinfo-analysis"
    );
    assert_eq!(bg.objects[1]["spec"]["metrics"][0]["count"], 10);
    assert_eq!(bg.objects[1]["spec"]["metrics"][0]["failureLimit"], 1);

    let ab = convert(
        &canary(
            Some("istio"),
            json!({"iterations": 5, "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
                {"sourceLabels": {"app": "x"}},
            ]}),
        ),
        &Inputs::default(),
    );
    let canary_block = &ab.objects[0]["spec"]["strategy"]["canary"];
    assert_eq!(
        canary_block["trafficRouting"]["managedRoutes"],
        json!([{"name": "ab-0"}, {"name": "ab-1"}])
    );
    assert_eq!(
        canary_block["steps"][0],
        json!({"setHeaderRoute": {"name": "ab-0", "match": [{"headerName": "x-canary", "headerValue": {"exact": "insider"}}]}})
    );
}

#[test]
fn what_has_no_equivalent_is_named_one_finding_each() {
    let mut source = canary(
        None,
        json!({"stepWeight": 50, "alerts": [{"name": "slack"}],
        "webhooks": [{"name": "load-test", "type": "rollout", "url": "http://x/"}], "mirror": true}),
    );
    source["spec"]["autoscalerRef"] = json!({"kind": "HorizontalPodAutoscaler", "name": "podinfo"});
    source["spec"]["service"]["trafficPolicy"] = json!({"tls": {"mode": "DISABLE"}});
    let c = convert(&source, &Inputs::default());
    let mut got = paths(&c);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "spec.analysis.alerts[0]",
            "spec.analysis.mirror",
            "spec.analysis.webhooks[0]",
            "spec.autoscalerRef",
            "spec.provider",
            "spec.service.trafficPolicy",
        ]
    );
    assert!(
        c.findings
            .0
            .iter()
            .any(|f| f.reason.starts_with("rollout: not carried")),
        "{:?}",
        c.findings
    );
}

#[test]
fn a_daemonset_target_is_refused() {
    let mut source = canary(Some("kubernetes"), json!({"iterations": 1}));
    source["spec"]["targetRef"]["kind"] = json!("DaemonSet");
    let c = convert(&source, &Inputs::default());
    assert!(c.objects.is_empty());
    assert_eq!(paths(&c), ["spec.targetRef.kind"]);
}

#[test]
fn the_deployment_in_the_input_gives_selector_and_replicas() {
    let deployment = json!({"metadata": {"name": "podinfo"}, "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "podinfo"}}}});
    let inputs = Inputs {
        deployments: vec![&deployment],
        metric_templates: vec![],
    };
    let c = convert(&canary(Some("istio"), json!({"stepWeight": 50})), &inputs);
    assert_eq!(c.objects[0]["spec"]["replicas"], 3);
    assert_eq!(
        c.objects[0]["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "podinfo"})
    );
    assert_eq!(
        c.objects[1]["spec"]["selector"],
        json!({"app.kubernetes.io/name": "podinfo"})
    );
}
