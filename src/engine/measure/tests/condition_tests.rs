//! Conditions as Argo users write them: helpers, int/double mixing, arrays, NaN, Argo's
//! success/failure rules, errors with positions, and arguments that try to change the
//! expression.

use crate::crd::AnalysisPhase::{self, Failed, Inconclusive, Successful};
use crate::engine::measure::condition::{ConditionError, Conditions};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn no_args(_: &str) -> Option<String> {
    None
}

fn success(expr: &str) -> Result<Conditions, ConditionError> {
    Conditions::compile("m", Some(expr), None, &no_args)
}

/// Whether `expr`, as the only success condition, holds for `result`.
fn holds(expr: &str, result: &Value) -> Result<bool, String> {
    let conditions = success(expr).map_err(|e| e.to_string())?;
    match conditions.evaluate(result).map_err(|e| e.to_string())? {
        Successful => Ok(true),
        Failed => Ok(false),
        other => Err(format!("unexpected {other:?}")),
    }
}

#[test]
fn conditions_argo_users_write_evaluate_as_in_argo() {
    let cases: &[(&str, Value, bool)] = &[
        ("result[0] >= 0.95", json!([0.96]), true),
        ("result[0] >= 0.95", json!([0.9]), false),
        ("result > 5", json!(6.0), true),
        ("result > 5", json!(5), false),
        ("result == 5", json!(5.0), true),
        ("result >= 5.5", json!(6), true),
        ("result * 100 > 5", json!(0.06), true),
        ("result + 1 == 2.5", json!(1.5), true),
        ("(result - 1) * 2 < 1", json!(1.2), true),
        ("5 / 2 == 2.5", json!(null), true),
        ("asInt(result) + 1 == 3", json!("2"), true),
        ("asInt(result) * 1.5 == 3.0", json!(2), true),
        ("asInt(result) % 2 == 1", json!(7.9), true),
        ("asFloat(result) == 1.5", json!("1.5"), true),
        ("asFloat(result) > 1", json!(2), true),
        ("len(result) == 0 || result[0] < 5", json!([]), true),
        ("len(result) == 0 || result[0] < 5", json!([7.0]), false),
        ("len(result) == 2", json!({"a": 1, "b": 2}), true),
        ("len(result) == 5", json!("hello"), true),
        ("isNaN(result)", json!("NaN"), true),
        ("isNaN(result)", json!(1.0), false),
        ("result > 5", json!("NaN"), false),
        ("result <= 5", json!("NaN"), false),
        ("isInf(result)", json!("+Inf"), true),
        ("isInf(result) && result < 0", json!("-Inf"), true),
        ("isNil(result)", json!(null), true),
        ("isNil(result)", json!(0), false),
        ("result == nil", json!(null), true),
        ("default(result, 0) >= 0", json!(null), true),
        ("default(result, 0) > 3", json!(4.0), true),
        ("result == 'It worked!'", json!("It worked!"), true),
        (
            "result.status == \"ok\" && result.latency < 0.5",
            json!({"status": "ok", "latency": 0.2}),
            true,
        ),
        ("!(result > 1)", json!(0.5), true),
        ("result > 1 || result < -1", json!(-3), true),
        ("result > 1 ? true : false", json!(3), true),
        ("result.all(x, x < 10)", json!([1, 2, 3]), true),
        ("result.exists(x, x * 2 > 5)", json!([1, 2, 3]), true),
        ("size(result) == 3", json!([1, 2, 3]), true),
        ("result.exists(x, x == 5)", json!([1.0, 5.0]), true),
        ("[1, 2.0] == [1.0, 2]", json!(null), true),
        // expr's keywords
        ("result > 1 and result < 3", json!(2), true),
        ("result < 1 or result > 3", json!(2), false),
        ("not (result > 1)", json!(2), false),
        ("result == 'and or not'", json!("and or not"), true),
    ];
    for (expr, result, want) in cases {
        assert_eq!(
            holds(expr, result),
            Ok(*want),
            "{expr} with result = {result}"
        );
    }
}

#[test]
fn success_and_failure_conditions_combine_as_in_argo() {
    let gt = "result > 5";
    let lt = "result < 3";
    let cases: &[(Option<&str>, Option<&str>, f64, AnalysisPhase)] = &[
        (None, None, 1.0, Successful),
        (Some(gt), None, 6.0, Successful),
        (Some(gt), None, 4.0, Failed),
        (None, Some(lt), 1.0, Failed),
        (None, Some(lt), 4.0, Successful),
        (Some(gt), Some(lt), 6.0, Successful),
        (Some(gt), Some(lt), 1.0, Failed),
        (Some(gt), Some(lt), 4.0, Inconclusive),
        // Both true: failure wins.
        (Some("result > 0"), Some("result > 0"), 1.0, Failed),
    ];
    for (s, f, value, want) in cases {
        let c = Conditions::compile("m", *s, *f, &no_args).unwrap();
        assert_eq!(
            c.evaluate(&json!(value)).unwrap(),
            *want,
            "{s:?} / {f:?} at {value}"
        );
    }
}

#[test]
fn evaluation_failures_are_errors() {
    let cases: &[(&str, Value, &str)] = &[
        ("result[3] > 1", json!([1]), "evaluation failed"),
        ("result > 1", json!("text"), "evaluation failed"),
        ("result > 1", json!(null), "evaluation failed"),
        ("asInt(result) > 1", json!("1.5"), "is not an integer"),
        ("result + 1", json!(1), "not a boolean"),
        ("result.missing > 1", json!({"a": 1}), "evaluation failed"),
    ];
    for (expr, result, want) in cases {
        let c = success(expr).unwrap();
        let err = c.evaluate(result).unwrap_err().to_string();
        assert!(err.contains(want), "{expr} with {result}: {err}");
        assert!(err.starts_with("metric m: successCondition"), "{err}");
    }
}

#[test]
fn compile_errors_name_the_metric_the_condition_and_the_position() {
    let err = Conditions::compile("latency", None, Some("result >\n  && 1"), &no_args)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("metric latency: failureCondition"), "{err}");
    assert!(err.contains("does not parse: at 2:"), "{err}");
    let cases: &[(&str, &str)] = &[
        ("frobnicate(result)", "unknown function \"frobnicate\""),
        ("reslt > 1", "unknown name \"reslt\""),
        ("result > {{metrics.x}}", "is not supported"),
        ("result > {{args.x", "not closed"),
    ];
    for (expr, want) in cases {
        let err = success(expr).unwrap_err().to_string();
        assert!(err.contains(want), "{expr}: {err}");
    }
}

#[test]
fn arguments_are_literals_and_never_change_the_expression() {
    let args: BTreeMap<&str, &str> = [
        ("limit", "0.95"),
        ("whole", "5"),
        ("negative", "-1"),
        ("flag", "true"),
        ("or", "1 || true"),
        ("call", "isNil(result)"),
        ("quote", "') || true || ('"),
        ("dquote", "\") || true || (\""),
        ("backslash", "a\\"),
        ("inf", "inf"),
    ]
    .into_iter()
    .collect();
    let arg = |name: &str| args.get(name).map(|v| (*v).to_string());
    let compile = |expr: &str| Conditions::compile("m", Some(expr), None, &arg);
    let evaluate = |expr: &str, result: Value| compile(expr).unwrap().evaluate(&result).unwrap();

    assert_eq!(
        evaluate("result[0] >= {{args.limit}}", json!([0.96])),
        Successful
    );
    assert_eq!(
        evaluate("result[0] >= {{ args.limit }}", json!([0.9])),
        Failed
    );
    assert_eq!(evaluate("result > {{args.whole}}", json!(5.5)), Successful);
    assert_eq!(evaluate("result > {{args.negative}}", json!(0)), Successful);
    assert_eq!(
        evaluate("result - {{args.negative}} == 1", json!(0)),
        Successful
    );
    assert_eq!(evaluate("{{args.flag}} && result", json!(true)), Successful);
    // Inside a string the value is text, whatever it holds.
    assert_eq!(
        evaluate("result == '{{args.quote}}'", json!("') || true || ('")),
        Successful
    );
    assert_eq!(evaluate("result == '{{args.quote}}'", json!("x")), Failed);
    assert_eq!(
        evaluate("result == \"{{args.dquote}}\"", json!("x")),
        Failed
    );
    assert_eq!(
        evaluate("result == \"{{args.dquote}}\"", json!("\") || true || (\"")),
        Successful
    );
    assert_eq!(
        evaluate("result == '{{args.backslash}}'", json!("a\\")),
        Successful
    );

    for hostile in ["or", "call", "quote", "inf"] {
        let expr = format!("result > {{{{args.{hostile}}}}}");
        let err = compile(&expr).unwrap_err().to_string();
        assert!(
            err.contains("is not a number or boolean literal"),
            "{hostile}: {err}"
        );
    }
    // In a raw string nothing can be escaped: a quote is refused.
    let err = compile("result == r'{{args.quote}}'")
        .unwrap_err()
        .to_string();
    assert!(err.contains("raw string"), "{err}");
    // Arguments not known yet stand in as numbers, so a template can be checked early.
    assert!(compile("result > {{args.unknown}}").is_ok());
}

/// Every condition in the upstream Argo Rollouts example manifests compiles.
#[test]
fn upstream_argo_conditions_compile() {
    let dir = upstream_manifests();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Document by document: a multi-document deserializer keeps yielding a failed one.
        for doc in text.split("\n---") {
            match serde_yaml::from_str::<serde_yaml::Value>(doc) {
                Ok(value) => collect_conditions(&value, &mut found),
                // Helm templates are not YAML; one holding a condition must not be missed.
                Err(e) if doc.contains("Condition:") => panic!("{}: {e}", path.display()),
                Err(_) => {}
            }
        }
    }
    assert!(
        found.len() >= 2,
        "expected conditions in {}: {found:?}",
        dir.display()
    );
    for (which, expr) in &found {
        let (s, f) = if which == "successCondition" {
            (Some(expr.as_str()), None)
        } else {
            (None, Some(expr.as_str()))
        };
        if let Err(e) = Conditions::compile("upstream", s, f, &|_| None) {
            panic!("{e}");
        }
    }
}

fn collect_conditions(value: &serde_yaml::Value, found: &mut Vec<(String, String)>) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                if let (Some(key), Some(text)) = (k.as_str(), v.as_str())
                    && (key == "successCondition" || key == "failureCondition")
                {
                    found.push((key.to_string(), text.to_string()));
                }
                collect_conditions(v, found);
            }
        }
        serde_yaml::Value::Sequence(items) => {
            items.iter().for_each(|v| collect_conditions(v, found));
        }
        _ => {}
    }
}

/// `shared/upstream/manifests/argo-rollouts` beside the repository, or beside the folder
/// holding this checkout when it is a git worktree one level down.
fn upstream_manifests() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("../shared/upstream/manifests/argo-rollouts"),
        root.join("../../shared/upstream/manifests/argo-rollouts"),
    ];
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the upstream Argo Rollouts manifests are missing: this test needs the shared \
                 folder `shared/upstream/manifests/argo-rollouts/` checked out beside this \
                 repository"
            )
        })
}
