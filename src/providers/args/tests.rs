//! Table tests of argument substitution with hostile values.

use super::*;

const HOSTILE: &str = "\"} or vector(1) #";

fn args() -> Args {
    let mut args = Args::default();
    args.insert("svc", Some("checkout".into()), false);
    args.insert("hostile", Some(HOSTILE.into()), false);
    args.insert("window", Some("5m".into()), false);
    args.insert("quote", Some("it's \"q\" \\ `x`".into()), false);
    args.insert("newline", Some("a\nb".into()), false);
    args.insert("up", Some("../".into()), false);
    args.insert("dotdot", Some("..".into()), false);
    args.insert("dot", Some(".".into()), false);
    args.insert("query", Some("x?y=1&z=2#f".into()), false);
    args.insert("token", Some("s3cr\"et\nvalue".into()), true);
    args.insert("unset", None, false);
    args
}

#[test]
fn promql_values_are_escaped_inside_literals_and_plain_tokens_outside() {
    let args = args();
    let table: &[(&str, Result<&str, &str>)] = &[
        (
            r#"rate(http_requests_total{service="{{args.svc}}"}[{{ args.window }}])"#,
            Ok(r#"rate(http_requests_total{service="checkout"}[5m])"#),
        ),
        (
            r#"up{service="{{args.hostile}}"}"#,
            Ok(r#"up{service="\"} or vector(1) #"}"#),
        ),
        (
            r#"up{service='{{args.hostile}}'}"#,
            Ok(r#"up{service='"} or vector(1) #'}"#),
        ),
        (
            r#"up{s="{{args.quote}}"} + up{s='{{args.quote}}'}"#,
            Ok(r#"up{s="it's \"q\" \\ `x`"} + up{s='it\'s "q" \\ `x`'}"#),
        ),
        (r#"up{s="{{args.newline}}"}"#, Ok(r#"up{s="a\nb"}"#)),
        (r#"up{s=`{{args.newline}}`}"#, Ok("up{s=`a\nb`}")),
        // A literal that itself holds an escaped quote does not end early.
        (r#"up{s="\"{{args.svc}}"}"#, Ok(r#"up{s="\"checkout"}"#)),
        (r#"up{s=`{{args.quote}}`}"#, Err("argument quote: value")),
        (r#"up{service={{args.hostile}}}"#, Err("plain token")),
        (r#"sum(up) by ({{args.newline}})"#, Err("plain token")),
        (r#"up # {{args.hostile}}"#, Err("plain token")),
        (
            r#"up{s="{{args.nope}}"}"#,
            Err("argument nope is not defined"),
        ),
        (
            r#"up{s="{{args.unset}}"}"#,
            Err("argument unset has no value"),
        ),
    ];
    for (query, want) in table {
        let got = args.substitute_promql(query);
        match want {
            Ok(want) => assert_eq!(got.as_deref(), Ok(*want), "{query}"),
            Err(want) => {
                let err = got.expect_err(query).to_string();
                assert!(err.contains(want), "{query}: {err}");
            }
        }
    }
}

#[test]
fn url_values_are_percent_encoded_and_cannot_move_the_url() {
    let args = args();
    let table: &[(&str, Result<&str, &str>)] = &[
        (
            "https://metrics.example/api/{{args.svc}}?window={{args.window}}",
            Ok("https://metrics.example/api/checkout?window=5m"),
        ),
        (
            "http://a.b/x/{{args.up}}admin",
            Ok("http://a.b/x/..%2Fadmin"),
        ),
        (
            "http://a.b/x?q={{args.query}}",
            Ok("http://a.b/x?q=x%3Fy%3D1%26z%3D2%23f"),
        ),
        ("http://a.b/x/{{args.newline}}", Ok("http://a.b/x/a%0Ab")),
        ("http://a.b/x/{{args.dotdot}}/y", Err("would move the URL")),
        (
            "http://a.b/x/{{args.dot}}{{args.dot}}",
            Err("would move the URL"),
        ),
        (
            "http://a.b/x/{{args.dot}}{{args.dotdot}}",
            Ok("http://a.b/x/..."),
        ),
        ("http://a.b/x?q={{args.dotdot}}", Ok("http://a.b/x?q=..")),
        ("http://a.b/./x/{{args.svc}}", Ok("http://a.b/./x/checkout")),
        ("http://{{args.svc}}.example/x", Err("scheme, host or port")),
        ("http://a.b:{{args.svc}}/x", Err("scheme, host or port")),
        ("{{args.svc}}://a.b/x", Err("scheme, host or port")),
        ("{{args.svc}}", Err("scheme, host or port")),
        (
            "http://a.b/{{args.unset}}",
            Err("argument unset has no value"),
        ),
    ];
    for (url, want) in table {
        let got = args.substitute_url(url);
        match want {
            Ok(want) => assert_eq!(got.as_deref(), Ok(*want), "{url}"),
            Err(want) => {
                let err = got.expect_err(url).to_string();
                assert!(err.contains(want), "{url}: {err}");
            }
        }
    }
}

#[test]
fn plain_values_with_control_characters_are_refused() {
    let args = args();
    assert_eq!(
        args.substitute_plain("Bearer {{args.svc}}").as_deref(),
        Ok("Bearer checkout")
    );
    assert_eq!(
        args.substitute_plain("{{args.quote}}").as_deref(),
        Ok("it's \"q\" \\ `x`")
    );
    let err = args.substitute_plain("x {{args.newline}}").unwrap_err();
    assert!(err.0.contains("control character"), "{err}");
}

#[test]
fn json_strings_take_values_as_content_and_the_shape_stays() {
    let args = args();
    let spec = serde_json::json!({
        "{{args.svc}}": ["--target={{args.hostile}}", 3, {"env": "{{ args.newline }}"}],
        "n": null,
    });
    let got = args.substitute_json(&spec).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "{{args.svc}}": [format!("--target={HOSTILE}"), 3, {"env": "a\nb"}],
            "n": null,
        })
    );
    let err = args
        .substitute_json(&serde_json::json!(["{{args.nope}}"]))
        .unwrap_err();
    assert!(err.0.contains("nope"), "{err}");
}

#[test]
fn secrets_never_appear_in_errors_and_are_redacted_in_every_form() {
    let args = args();
    let errors = [
        args.substitute_promql("up{s={{args.token}}}").unwrap_err(),
        args.substitute_plain("{{args.token}}").unwrap_err(),
    ];
    for err in errors {
        assert!(!err.0.contains("s3cr"), "{err}");
        assert!(err.0.contains("argument token"), "{err}");
    }
    // A non-secret refused value is shown, to help whoever wrote it.
    let err = args.substitute_plain("{{args.newline}}").unwrap_err();
    assert!(err.0.contains(r#""a\nb""#), "{err}");

    let query = args.substitute_promql(r#"up{t="{{args.token}}"}"#).unwrap();
    assert_eq!(args.redact(&query), r#"up{t="<redacted>"}"#);
    let url = args
        .substitute_url("http://a.b/x?t={{args.token}}")
        .unwrap();
    assert_eq!(args.redact(&url), "http://a.b/x?t=<redacted>");
    assert_eq!(
        args.redact("raw s3cr\"et\nvalue and checkout"),
        "raw <redacted> and checkout"
    );
}

/// Found by the `args_substitution` fuzz target (docs/fuzzing.md): a quote inside a `#`
/// comment was taken to open a literal, so a placeholder on a later line was escaped for the
/// wrong quote and its value could close the real literal and add to the query.
#[test]
fn a_quote_in_a_promql_comment_opens_no_literal() {
    let args = args();
    let query = "# the service's latency\nup{s=\"{{args.hostile}}\"}";
    assert_eq!(
        args.substitute_promql(query).as_deref(),
        Ok("# the service's latency\nup{s=\"\\\"} or vector(1) #\"}")
    );
    // A carriage return ends a comment too.
    assert_eq!(
        args.substitute_promql("# it's\rup{s='{{args.quote}}'}")
            .as_deref(),
        Ok("# it's\rup{s='it\\'s \"q\" \\\\ `x`'}")
    );
    // In a comment a value is held to the rule of code: it could end the comment.
    let err = args.substitute_promql("up # {{args.newline}}").unwrap_err();
    assert!(err.0.contains("plain token"), "{err}");
    assert_eq!(
        args.substitute_promql("up # {{args.window}}").as_deref(),
        Ok("up # 5m")
    );
}

/// Written with the `args_substitution` fuzz target's URL property: URL parsing reads `%2e`
/// as `.` and, in http(s) URLs, `\` as `/`, so values could still form a `.` or `..`
/// segment next to template text.
#[test]
fn percent_encoded_and_backslash_dot_segments_cannot_move_the_url() {
    let mut args = args();
    args.insert("e", Some("e".into()), false);
    for url in [
        "http://a.b/x/%2{{args.e}}/y",
        "http://a.b/x/%2e%2{{args.e}}/y",
        "http://a.b/x/.%2{{args.e}}",
        "http://a.b/x\\{{args.dotdot}}",
        "http://a.b/x\\{{args.dot}}\\y",
    ] {
        let err = args.substitute_url(url).expect_err(url);
        assert!(err.0.contains("would move the URL"), "{url}: {err}");
    }
    assert_eq!(
        args.substitute_url("http://a.b/%2e%2e/x/%{{args.svc}}")
            .as_deref(),
        Ok("http://a.b/%2e%2e/x/%checkout")
    );
}
