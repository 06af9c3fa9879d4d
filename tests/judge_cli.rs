//! `kubectl sluice judge` end to end: the built binary on JSON inputs, asserting on its JSON
//! output, its table, and its messages for bad input.

// A test crate: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn judge_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-sluice"))
        .arg("judge")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn judge_json(input: &Value) -> Value {
    let out = judge_stdin(&["-f", "-", "-o", "json"], &input.to_string());
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn canary_input() -> Value {
    json!({
        "confidence": 0.98,
        "thresholds": {"pass": 95, "marginal": 75},
        "groups": {"latency": 60, "errors": 40},
        "metrics": [
            {"name": "p50", "group": "latency", "direction": "increase",
             "control": [10, 11, 12, 10, 11, 13, 12, 11, 10, 12],
             "experiment": [14, 15, 13, 16, 15, 14, 16, 15, 14, 13]},
            {"name": "cpu", "group": "latency",
             "control": [0.5, null, 0.52, "NaN", 0.49], "experiment": [0.51, 0.5, 0.53]},
            {"name": "errors", "group": "errors", "direction": "increase", "test": "rateRatio",
             "control": {"events": [0, 0, 1, 0, 2], "total": 5000},
             "experiment": {"events": 12, "total": 5000}}
        ]
    })
}

#[test]
fn json_output_has_the_documented_shape() {
    let out = judge_json(&canary_input());
    // latency: 1 of 2 pass (50 % of 60); errors: Pass (40) -> 70, below marginal 75.
    assert_eq!(out["score"], 70.0, "{out:#}");
    assert_eq!(out["result"], "Fail");
    assert_eq!(out["reason"], Value::Null);
    assert_eq!(
        out["groups"],
        json!([{"name": "errors", "score": 100.0}, {"name": "latency", "score": 50.0}])
    );
    let p50 = &out["metrics"][0];
    assert_eq!(p50["name"], "p50");
    assert_eq!(p50["classification"], "High");
    assert_eq!(p50["critical"], false);
    assert!(
        p50["reason"]
            .as_str()
            .unwrap()
            .starts_with("p50 was classified as High")
    );
    let s = &p50["statistics"];
    assert_eq!(s["u"], 99.0);
    assert_eq!(s["pValueMethod"], "normal");
    assert_eq!(s["estimate"], 3.0);
    assert_eq!(
        s["confidenceInterval"],
        json!({"lower": 2.0, "upper": 5.0, "level": 0.98})
    );
    assert_eq!(s["cles"], 0.99);
    for key in ["count", "mean", "median", "min", "max", "stdDev"] {
        assert!(p50["control"][key].is_number(), "control.{key} in {p50:#}");
        assert!(p50["experiment"][key].is_number());
    }
    // NaN points were removed before counting.
    assert_eq!(out["metrics"][1]["control"]["count"], 3);
    let errors = &out["metrics"][2];
    assert_eq!(
        errors["statistics"]["pValueMethod"],
        "exactConditionalBinomial"
    );
    assert_eq!(errors["statistics"]["u"], Value::Null);
    assert_eq!(
        errors["control"],
        json!({"events": 3, "total": 5000.0, "rate": 0.0006})
    );
}

#[test]
fn input_from_a_file_and_the_table_output() {
    let dir = std::env::temp_dir().join(format!("sluice-judge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input.json");
    std::fs::write(&path, canary_input().to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-sluice"))
        .args(["judge", "-f"])
        .arg(&path)
        .args(["-o", "table"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("METRIC"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("p50") && l.contains("High")),
        "{table}"
    );
    assert!(table.contains("score: 70.00  result: Fail"), "{table}");
}

#[test]
fn critical_failure_is_explained_in_the_verdict() {
    let mut input = canary_input();
    input["metrics"][0]["critical"] = json!(true);
    let out = judge_json(&input);
    assert_eq!(out["score"], 0.0);
    assert_eq!(out["metrics"][0]["critical"], true);
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Canary Failed: The metric p50 was classified as High (Critical)"),
        "{reason}"
    );
}

#[test]
fn a_good_canary_passes_with_defaults() {
    let out = judge_json(&json!({"metrics": [
        {"name": "p50", "control": [10, 11, 12, 10, 11, 13], "experiment": [11, 10, 12, 11, 12, 10]}
    ]}));
    assert_eq!(
        (out["score"].as_f64(), out["result"].as_str()),
        (Some(100.0), Some("Pass"))
    );
    // Every field but name/control/experiment has a default; the group is "default".
    assert_eq!(out["groups"], json!([{"name": "default", "score": 100.0}]));
}

#[test]
fn bad_input_exits_non_zero_naming_the_field() {
    let one = |extra: Value| {
        let mut m = json!({"name": "m", "control": [1, 2], "experiment": [1, 2]});
        if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        m
    };
    let cases = [
        (
            json!({"metrics": [one(json!({"name": "lat", "experiment": [1, "-Inf"]}))]}),
            "metrics[0].experiment[1]",
        ),
        (
            json!({"metrics": [one(json!({"control": [1, 2, "x", 4]}))]}),
            "metrics[0].control[2]: invalid value: string \"x\"",
        ),
        (
            json!({"metrics": [one(json!({"control": [1, [2]]}))]}),
            "metrics[0].control[1]: invalid type: sequence",
        ),
        (
            json!({"metrics": [one(json!({"experiment": {"events": 1}}))]}),
            "metrics[0].experiment: invalid type: map",
        ),
        (
            json!({"metrics": [one(json!({"direction": "up"}))]}),
            "metrics[0].direction",
        ),
        (
            json!({"groups": {"a": 60, "b": 60}, "metrics": [one(json!({}))]}),
            "groups",
        ),
        (
            json!({"thresholds": {"pass": 70, "marginal": 80}, "metrics": [one(json!({}))]}),
            "thresholds.marginal",
        ),
        (
            json!({"metrics": [one(json!({"effectSize": {"allowedIncrease": -1}}))]}),
            "metrics[0].effectSize.allowedIncrease",
        ),
    ];
    for (input, field) in cases {
        let out = judge_stdin(&["-f", "-", "-o", "json"], &input.to_string());
        assert!(!out.status.success(), "{input} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(field), "{input}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = judge_stdin(&["-f", "-"], "{not json");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid judge input"));
}

#[test]
fn a_missing_file_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-sluice"))
        .args(["judge", "-f", "does-not-exist.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.json"));
}
