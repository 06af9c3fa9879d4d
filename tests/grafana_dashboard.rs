//! The Grafana dashboard `deploy/grafana/sluice.json`: its shape (titles, the datasource input,
//! unique ids, a 24-column grid), every PromQL expression in it parsed by a real `prometheus`,
//! every metric (and label) the expressions name exported by the controller's `/metrics` after
//! a judged canary rollout, and the kustomization that wraps it in a ConfigMap for Grafana's
//! sidecar, built by the real `kubectl kustomize`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;
mod kubectl_support;
mod prometheus_support;

use controller_support::*;
use kube::api::{Api, PostParams};
use kubectl_support::Kubectl;
use prometheus_support::{exporter, shared};
use serde_json::{Value, json};
use sluice::crd::{AnalysisTemplate, RolloutPhase};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn dashboard_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/sluice.json")
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(dashboard_path()).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("sluice.json is not JSON: {e}"))
}

/// Every panel, those inside collapsed rows included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("a panels array") {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Every panel target's expression, with its panel's title.
fn panel_exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("a target without expr: {t}"));
            out.push((p["title"].as_str().unwrap_or("?").to_string(), expr.into()));
        }
    }
    out
}

/// The template variables' `label_values(...)` queries, by variable name.
fn variable_queries(d: &Value) -> Vec<(String, String)> {
    d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = v["query"]["query"].as_str().or(v["query"].as_str());
            let query = query.unwrap_or_else(|| panic!("variable without a query: {v}"));
            (v["name"].as_str().unwrap().to_string(), query.to_string())
        })
        .collect()
}

/// Grafana's variables replaced by values Prometheus accepts.
fn substitute(expr: &str, namespace: &str, rollout: &str) -> String {
    let mut out = expr.to_string();
    for (var, value) in [
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "1h"),
        ("namespace", namespace),
        ("rollout", rollout),
    ] {
        out = out
            .replace(&format!("${{{var}}}"), value)
            .replace(&format!("${var}"), value);
    }
    assert!(!out.contains('$'), "an unknown Grafana variable in {expr}");
    out
}

/// `label_values(SELECTOR, LABEL)` split into its selector and label.
fn label_values(query: &str) -> (String, String) {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(selector, label): {query}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .unwrap_or_else(|| panic!("label_values needs a selector: {query}"));
    (selector.trim().to_string(), label.trim().to_string())
}

/// A small tokenizer over PromQL that finds what an expression refers to: the metric names, the
/// label matchers in `{...}` with the metric they select, and the labels of `by`, `without`,
/// `on`, `ignoring`, `group_left` and `group_right` lists.
///
/// An identifier is a metric name unless it is followed by `(` (a function or aggregation), is
/// an aggregation operator (which may take `by (...)` before its parenthesis), or is a keyword
/// (`and`, `or`, `unless`, `bool`, `offset`, `inf`, `nan`, ...). Strings, ranges and
/// subqueries in `[...]`, numbers and durations, and `#` comments are skipped. It does not
/// validate the expression (Prometheus does that); a selector without a metric name
/// (`{__name__="x"}`) is an error, because its metric could not be checked.
mod promql {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Matcher {
        pub metric: String,
        pub label: String,
        pub op: String,
        pub value: String,
    }

    #[derive(Debug, Default, PartialEq)]
    pub struct Refs {
        pub metrics: Vec<String>,
        pub matchers: Vec<Matcher>,
        pub grouping: Vec<String>,
    }

    const AGGREGATIONS: [&str; 14] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 8] = [
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];

    struct Scanner {
        chars: Vec<char>,
        at: usize,
    }

    impl Scanner {
        fn peek(&self) -> Option<char> {
            self.chars.get(self.at).copied()
        }

        fn skip_space(&mut self) {
            while self.peek().is_some_and(char::is_whitespace) {
                self.at += 1;
            }
        }

        /// The next character that is not whitespace, without consuming anything.
        fn next_significant(&self) -> Option<char> {
            self.chars[self.at..]
                .iter()
                .copied()
                .find(|c| !c.is_whitespace())
        }

        fn identifier(&mut self) -> String {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            {
                self.at += 1;
            }
            self.chars[start..self.at].iter().collect()
        }

        /// A quoted string starting at the current quote; returns its content, unescaped.
        fn string(&mut self) -> Result<String, String> {
            let quote = self.chars[self.at];
            self.at += 1;
            let mut out = String::new();
            while let Some(c) = self.peek() {
                self.at += 1;
                match c {
                    '\\' if quote != '`' => {
                        out.extend(self.peek());
                        self.at += 1;
                    }
                    c if c == quote => return Ok(out),
                    c => out.push(c),
                }
            }
            Err("an unterminated string".into())
        }

        /// A number or a duration (`0.5`, `1e-3`, `0x1f`, `5m`, `1h30m`).
        fn number(&mut self) {
            let start = self.at;
            while let Some(c) = self.peek() {
                // The sign of a decimal exponent (`1e-3`); in hex (`0x1e`) an `e` is a digit.
                let exponent_sign = (c == '-' || c == '+')
                    && matches!(self.chars[self.at - 1], 'e' | 'E')
                    && !self.chars[start..self.at].contains(&'x');
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
                    self.at += 1;
                } else {
                    break;
                }
            }
        }

        fn skip_past(&mut self, close: char) -> Result<(), String> {
            while let Some(c) = self.peek() {
                if c == '"' || c == '\'' || c == '`' {
                    self.string()?;
                    continue;
                }
                self.at += 1;
                if c == close {
                    return Ok(());
                }
            }
            Err(format!("no closing {close}"))
        }

        /// `(a, b)` after a grouping keyword: the labels.
        fn label_list(&mut self) -> Result<Vec<String>, String> {
            self.skip_space();
            self.at += 1; // the '(' the caller saw
            let mut labels = Vec::new();
            loop {
                self.skip_space();
                match self.peek() {
                    Some(')') => {
                        self.at += 1;
                        return Ok(labels);
                    }
                    Some(',') => self.at += 1,
                    Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                        labels.push(self.identifier())
                    }
                    other => return Err(format!("unexpected {other:?} in a label list")),
                }
            }
        }

        /// `{label op "value", ...}` of `metric`.
        fn matchers(&mut self, metric: Option<&str>) -> Result<Vec<Matcher>, String> {
            self.at += 1; // '{'
            let mut out = Vec::new();
            loop {
                self.skip_space();
                match self.peek() {
                    Some('}') => {
                        self.at += 1;
                        return Ok(out);
                    }
                    Some(',') => self.at += 1,
                    Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                        let label = self.identifier();
                        self.skip_space();
                        let start = self.at;
                        while self.peek().is_some_and(|c| "=!~".contains(c)) {
                            self.at += 1;
                        }
                        let op: String = self.chars[start..self.at].iter().collect();
                        self.skip_space();
                        if !self.peek().is_some_and(|c| "\"'`".contains(c)) {
                            return Err(format!("matcher {label}{op} without a quoted value"));
                        }
                        let value = self.string()?;
                        let metric = metric.ok_or_else(|| {
                            format!("a selector without a metric name ({label}{op}\"{value}\")")
                        })?;
                        out.push(Matcher {
                            metric: metric.into(),
                            label,
                            op,
                            value,
                        });
                    }
                    other => return Err(format!("unexpected {other:?} in a selector")),
                }
            }
        }
    }

    /// What `expr` refers to.
    pub fn refs(expr: &str) -> Result<Refs, String> {
        let mut s = Scanner {
            chars: expr.chars().collect(),
            at: 0,
        };
        let mut refs = Refs::default();
        // The metric whose selector may follow directly.
        let mut last_metric: Option<String> = None;
        while let Some(c) = s.peek() {
            match c {
                c if c.is_whitespace() => s.at += 1,
                '#' => {
                    while s.peek().is_some_and(|c| c != '\n') {
                        s.at += 1;
                    }
                }
                '"' | '\'' | '`' => {
                    s.string()?;
                    last_metric = None;
                }
                '{' => {
                    let found = s.matchers(last_metric.as_deref())?;
                    refs.matchers.extend(found);
                    last_metric = None;
                }
                '[' => {
                    s.skip_past(']')?;
                    last_metric = None;
                }
                c if c.is_ascii_digit()
                    || (c == '.' && s.chars.get(s.at + 1).is_some_and(|d| d.is_ascii_digit())) =>
                {
                    s.number();
                    last_metric = None;
                }
                c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                    let word = s.identifier();
                    let lower = word.to_ascii_lowercase();
                    let next = s.next_significant();
                    last_metric = None;
                    if GROUPING.contains(&lower.as_str()) {
                        if next == Some('(') {
                            refs.grouping.extend(s.label_list()?);
                        }
                    } else if next == Some('(')
                        || AGGREGATIONS.contains(&lower.as_str())
                        || KEYWORDS.contains(&lower.as_str())
                    {
                        // A function, an aggregation or a keyword.
                    } else {
                        if !refs.metrics.contains(&word) {
                            refs.metrics.push(word.clone());
                        }
                        last_metric = Some(word);
                    }
                }
                _ => {
                    s.at += 1;
                    last_metric = None;
                }
            }
        }
        Ok(refs)
    }
}

#[test]
fn the_promql_extractor_finds_metrics_matchers_and_grouping_labels() {
    fn m(metric: &str, label: &str, op: &str, value: &str) -> promql::Matcher {
        promql::Matcher {
            metric: metric.into(),
            label: label.into(),
            op: op.into(),
            value: value.into(),
        }
    }
    /// An expression, and the metrics, matchers and grouping labels it refers to.
    type Case = (
        &'static str,
        Vec<&'static str>,
        Vec<promql::Matcher>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        ("up", vec!["up"], vec![], vec![]),
        (
            "sum by (le) (rate(x_bucket{a=\"b\"}[5m]))",
            vec!["x_bucket"],
            vec![m("x_bucket", "a", "=", "b")],
            vec!["le"],
        ),
        (
            "histogram_quantile(0.99, sum without (pod) (rate(h_bucket[$__rate_interval])))",
            vec!["h_bucket"],
            vec![],
            vec!["pod"],
        ),
        // Strings may hold anything, functions included; escaped quotes stay in the string.
        (
            r#"foo{name="sum(bar) \"q\"", b!~'x|y'} offset 5m"#,
            vec!["foo"],
            vec![
                m("foo", "name", "=", "sum(bar) \"q\""),
                m("foo", "b", "!~", "x|y"),
            ],
            vec![],
        ),
        (
            "a / on (x) group_left (y) b * ignoring(z) c",
            vec!["a", "b", "c"],
            vec![],
            vec!["x", "y", "z"],
        ),
        (
            "x > bool 1e-3 and y unless z or inf > NaN",
            vec!["x", "y", "z"],
            vec![],
            vec![],
        ),
        // Aggregations with the grouping after the parenthesis; a subquery's range and step.
        (
            "max(max_over_time(gauge:recorded[1h:30s])) by (namespace)",
            vec!["gauge:recorded"],
            vec![],
            vec!["namespace"],
        ),
        (
            "count_values(\"v\", build_info) - 0x1F + .5 * topk(3, q)",
            vec!["build_info", "q"],
            vec![],
            vec![],
        ),
        // A histogram's parts are metrics of their own; a comment is skipped.
        (
            "sum(rate(s_sum[1m])) / sum(rate(s_count[1m])) # mean",
            vec!["s_sum", "s_count"],
            vec![],
            vec![],
        ),
    ];
    for (expr, metrics, matchers, grouping) in cases {
        let got = promql::refs(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let want = promql::Refs {
            metrics: metrics.into_iter().map(String::from).collect(),
            matchers,
            grouping: grouping.into_iter().map(String::from).collect(),
        };
        assert_eq!(got, want, "{expr}");
    }
    for bad in ["{__name__=\"x\"}", "x{a=\"unterminated}", "x[5m"] {
        assert!(promql::refs(bad).is_err(), "{bad} must be refused");
    }
}

#[test]
fn every_panel_has_a_title_the_input_datasource_a_unique_id_and_fits_the_grid() {
    let d = dashboard();
    let inputs = d["__inputs"].as_array().expect("__inputs");
    let input = inputs
        .iter()
        .find(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus")
        .unwrap_or_else(|| panic!("no Prometheus datasource input: {inputs:?}"));
    let uid = format!("${{{}}}", input["name"].as_str().unwrap());
    assert!(
        d["schemaVersion"].as_i64().unwrap() >= 39,
        "a current schema"
    );
    let mut ids = HashSet::new();
    let all = panels(&d);
    assert!(all.len() > 10, "{} panels", all.len());
    for p in &all {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.trim().is_empty(), "a panel without a title: {p}");
        let id = p["id"].as_i64().unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: id {id} used twice");
        let g = &p["gridPos"];
        let (x, w, h) = (g["x"].as_i64(), g["w"].as_i64(), g["h"].as_i64());
        let (Some(x), Some(w), Some(h), Some(_)) = (x, w, h, g["y"].as_i64()) else {
            panic!("{title}: gridPos {g}");
        };
        assert!(
            x >= 0 && w > 0 && h > 0 && x + w <= 24,
            "{title}: gridPos {g}"
        );
        if p["type"] == "row" {
            continue;
        }
        let desc = p["description"].as_str().unwrap_or_default();
        assert!(desc.len() > 20, "{title}: no description");
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no targets");
        assert_eq!(p["datasource"]["uid"], uid.as_str(), "{title}: {p}");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], uid.as_str(), "{title}: {t}");
        }
    }
    let vars: Vec<_> = variable_queries(&d).into_iter().map(|v| v.0).collect();
    assert_eq!(vars, ["namespace", "rollout"]);
    let list = d["templating"]["list"].as_array().unwrap();
    for v in list.iter().filter(|v| v["type"] == "query") {
        assert_eq!(v["datasource"]["uid"], uid.as_str(), "{v}");
    }
    // Provisioning (the sidecar) ignores __inputs; a datasource variable of the input's name
    // resolves the same references there.
    assert!(
        list.iter().any(|v| v["type"] == "datasource"
            && v["query"] == "prometheus"
            && v["name"] == input["name"]),
        "no datasource variable named {}: {list:?}",
        input["name"]
    );

    // The score panel draws the judge's default thresholds.
    let defaults = sluice_analysis::config::Thresholds::default();
    let score = all
        .iter()
        .find(|p| p["title"] == "Canary score")
        .expect("a Canary score panel");
    let steps: Vec<Option<f64>> = score["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(
        steps,
        [None, Some(defaults.marginal), Some(defaults.pass)],
        "{score}"
    );
}

#[tokio::test]
async fn kustomize_wraps_the_dashboard_in_a_configmap_for_the_grafana_sidecar() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana");
    let out = Kubectl::offline()
        .ok(&["kustomize", &dir.display().to_string()], None)
        .await;
    let map: Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(map["kind"], "ConfigMap", "{map}");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1", "{map}");
    let text = map["data"]["sluice.json"]
        .as_str()
        .expect("data.sluice.json");
    let built: Value = serde_json::from_str(text).unwrap();
    assert_eq!(built, dashboard(), "the ConfigMap holds the dashboard");
}

/// Sends `query` to Prometheus; the error it answers with, if any.
async fn prometheus_error(query: &str) -> Option<String> {
    let answer: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/query", shared().url()))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (answer["status"] != "success").then(|| answer.to_string())
}

#[tokio::test]
async fn every_expression_parses_in_a_real_prometheus() {
    let d = dashboard();
    let mut exprs = panel_exprs(&d);
    for (name, query) in variable_queries(&d) {
        exprs.push((format!("variable {name}"), label_values(&query).0));
    }
    assert!(exprs.len() > 20, "{exprs:?}");
    for (title, expr) in &exprs {
        let query = substitute(expr, "team-a", "web");
        if let Some(error) = prometheus_error(&query).await {
            panic!("{title}: Prometheus refuses {query}: {error}");
        }
    }
    // The check can fail: a broken expression is refused.
    let broken = substitute("sum by (le (rate(x[$__rate_interval]))", "a", "b");
    let error = prometheus_error(&broken).await.expect("refused");
    assert!(error.contains("bad_data"), "{error}");
}

/// The samples of a text exposition: metric name → the label sets of its samples.
fn samples(text: &str) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = line[..end].to_string();
        let mut labels = BTreeMap::new();
        if line[end..].starts_with('{') {
            let refs = promql::refs(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            for m in refs.matchers {
                labels.insert(m.label, m.value);
            }
        }
        out.entry(name).or_default().push(labels);
    }
    out
}

/// Each series of a version's pods: a latency gauge per pod, around 100 ms.
fn feed(ns: &str, hash: &str, tick: u64) {
    for pod in 0..4u64 {
        // A deterministic spread of ±5 %: the two versions behave alike.
        let jitter = ((tick * 7 + pod * 13) % 11) as f64 - 5.0;
        exporter().set(
            &format!(
                "dashboard_latency_ms{{namespace=\"{ns}\",rollouts_pod_template_hash=\"{hash}\",pod=\"{hash}-{pod}\"}}"
            ),
            100.0 + jitter,
        );
    }
}

async fn judge_template(h: &Harness, ns: &str) {
    let scope =
        r#"namespace="{{scope.namespace}}",rollouts_pod_template_hash="{{scope.podTemplateHash}}""#;
    let t: AnalysisTemplate = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "judge", "namespace": ns},
        "spec": {"metrics": [{
            "name": "latency",
            "interval": "10s",
            "count": 1,
            "provider": {"prometheus": {"server": "test", "query": format!("dashboard_latency_ms{{{scope}}}")}},
            "judge": {"direction": "increase", "step": "1s", "effectSize": {"allowedIncrease": 1.1}}
        }], "judgement": {}}
    }))
    .unwrap();
    Api::<AnalysisTemplate>::namespaced(h.client.clone(), ns)
        .create(&PostParams::default(), &t)
        .await
        .unwrap();
}

#[tokio::test]
async fn every_metric_the_dashboard_names_is_exported_after_a_judged_rollout() {
    let prometheus = shared();
    let h = Harness::start().await;
    let controller = h.controller_with_prometheus(&[format!("test={}", prometheus.url())]);
    let (addr, server) = serve_metrics(&controller).await;

    // A canary with steps and a judged analysis, taken from its first revision to promoted.
    let (ns, name) = ("grafana", "web");
    h.namespace(ns).await;
    judge_template(&h, ns).await;
    let steps = "        - setWeight: 50\n        - analysis:\n            templates:\n            - templateName: judge\n        - setWeight: 100\n";
    h.apply_yaml(ns, &canary_yaml(name, 2, steps)).await;
    let v1 = h.first_revision_healthy(ns, name).await;
    // The pods of each version, fed until the rollout is done.
    let hashes = Arc::new(Mutex::new(vec![v1.clone()]));
    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = {
        let (feeding, hashes) = (feeding.clone(), hashes.clone());
        std::thread::spawn(move || {
            let mut tick = 0;
            while feeding.load(Ordering::Relaxed) {
                for hash in hashes.lock().unwrap().iter() {
                    feed(ns, hash, tick);
                }
                tick += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    h.set_image(ns, name, "example/app:2").await;
    let r = h
        .wait_rollout(ns, name, "the canary's hash", |r| {
            current_hash(r).is_some_and(|c| c != v1)
        })
        .await;
    hashes.lock().unwrap().push(current_hash(&r).unwrap());
    h.wait_rollout_for(ns, name, "promoted", Duration::from_secs(90), |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_hash(r).is_some_and(|s| s != v1)
    })
    .await;
    feeding.store(false, Ordering::Relaxed);
    feeder.join().unwrap();

    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported = samples(&text);
    let d = dashboard();
    let mut exprs = panel_exprs(&d);
    let mut named = BTreeSet::new();
    for (var, query) in variable_queries(&d) {
        let (selector, label) = label_values(&query);
        let refs = promql::refs(&selector).unwrap();
        for metric in &refs.metrics {
            let series = exported.get(metric).map(Vec::as_slice).unwrap_or_default();
            assert!(
                series.iter().any(|s| s.contains_key(&label)),
                "variable {var}: no {metric} sample has the label {label}:\n{text}"
            );
        }
        exprs.push((format!("variable {var}"), selector));
    }
    for (title, expr) in &exprs {
        let refs = promql::refs(expr).unwrap_or_else(|e| panic!("{title}: {e} in {expr}"));
        assert!(!refs.metrics.is_empty(), "{title}: no metric in {expr}");
        for metric in &refs.metrics {
            named.insert(metric.clone());
            assert!(
                exported.contains_key(metric),
                "{title}: {metric} is not exported after a judged rollout; /metrics:\n{text}"
            );
        }
        for m in &refs.matchers {
            let series = &exported[&m.metric];
            assert!(
                series.iter().any(|s| s.contains_key(&m.label)),
                "{title}: {} has no label {}: {series:?}",
                m.metric,
                m.label
            );
            if m.op == "=" && !m.value.contains('$') {
                assert!(
                    series.iter().any(|s| s.get(&m.label) == Some(&m.value)),
                    "{title}: no {} sample has {}=\"{}\": {series:?}",
                    m.metric,
                    m.label,
                    m.value
                );
            }
        }
        for label in &refs.grouping {
            assert!(
                refs.metrics
                    .iter()
                    .any(|metric| exported[metric].iter().any(|s| s.contains_key(label))),
                "{title}: groups by {label}, which none of {:?} has",
                refs.metrics
            );
        }
    }
    // The dashboard covers each family the controller exports.
    let families: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    for family in &families {
        let shown = ["", "_total", "_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| named.contains(&format!("{family}{suffix}")));
        assert!(
            shown,
            "the controller exports {family}, which no panel shows"
        );
    }

    server.abort();
    controller.stop().await;
}
