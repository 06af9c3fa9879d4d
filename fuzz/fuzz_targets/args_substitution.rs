//! `{{args.NAME}}` substitution into each context a provider uses (PromQL, URL, header, JSON,
//! and a metric's success/failure condition): never a panic, and no value changes the
//! structure of what it lands in:
//! - PromQL: lexed by an independent lexer (Prometheus' rules for strings, raw strings and `#`
//!   comments), the substituted query has the same code, literals and comments as the query
//!   with every value replaced by a harmless one; a value stays inside its literal.
//! - URL: the same scheme, host, port, number of path segments, query parameters and fragment.
//! - Header: no control character appears unless the template had one.
//! - JSON: the same shape (types, keys, array lengths).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sluice::engine::measure::condition::Conditions;
use sluice::providers::args::Args;

const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    values: [Option<&'a str>; 3],
    secret: [bool; 3],
    template: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let args = args_map(&input, str::to_string);
    // Values as harmless as possible where they land: plain tokens stay (outside a literal
    // they are the only values allowed), anything else becomes `x`.
    let neutral = args_map(
        &input,
        |v| if plain(v) { v.to_string() } else { "x".into() },
    );
    let template = input.template;
    promql(&args, &neutral, template);
    url(&args, &args_map(&input, |_| "x".into()), template);
    header(&args, template);
    json(&args, template);
    condition(&input, template);
    let _ = args.redact(template);
});

fn args_map(input: &Input<'_>, map: impl Fn(&str) -> String) -> Args {
    let mut args = Args::default();
    for ((name, value), secret) in NAMES.iter().zip(input.values).zip(input.secret) {
        args.insert(name, value.map(&map), secret);
    }
    args
}

fn plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':'))
}

fn promql(args: &Args, neutral: &Args, template: &str) {
    let Ok(out) = args.substitute_promql(template) else {
        return;
    };
    let Ok(reference) = neutral.substitute_promql(template) else {
        panic!("{template:?} substitutes to {out:?} but not with harmless values");
    };
    assert_eq!(
        skeleton(&out),
        skeleton(&reference),
        "{template:?} substitutes to {out:?}, whose structure differs from {reference:?}"
    );
}

/// A PromQL query's structure: its code characters, with each string literal and comment
/// reduced to a marker (the opening quote and whether it was closed).
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Code(char),
    Literal(char, bool),
    Comment,
}

fn skeleton(query: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                // Prometheus ends a line comment at `\n` or `\r`.
                for next in chars.by_ref() {
                    if matches!(next, '\n' | '\r') {
                        break;
                    }
                }
                out.push(Token::Comment);
            }
            '"' | '\'' | '`' => {
                let mut closed = false;
                while let Some(next) = chars.next() {
                    if next == c {
                        closed = true;
                        break;
                    }
                    if next == '\\' && c != '`' {
                        chars.next();
                    }
                }
                out.push(Token::Literal(c, closed));
            }
            c => out.push(Token::Code(c)),
        }
    }
    out
}

fn url(args: &Args, neutral: &Args, template: &str) {
    let Ok(out) = args.substitute_url(template) else {
        return;
    };
    let Ok(reference) = neutral.substitute_url(template) else {
        return;
    };
    let Ok(reference) = url::Url::parse(&reference) else {
        return;
    };
    let Ok(parsed) = url::Url::parse(&out) else {
        panic!("{template:?} substitutes to {out:?}, which is not a URL, but {reference} is");
    };
    let shape = |u: &url::Url| {
        (
            u.scheme().to_string(),
            u.host_str().map(str::to_string),
            u.port(),
            u.path_segments().map(Iterator::count),
            u.query_pairs().count(),
            u.fragment().is_some(),
        )
    };
    assert_eq!(
        shape(&parsed),
        shape(&reference),
        "{template:?} substitutes to {out:?}, whose structure differs from {reference}"
    );
}

fn header(args: &Args, template: &str) {
    if let Ok(out) = args.substitute_plain(template) {
        let controls = |s: &str| s.chars().filter(|c| c.is_control()).count();
        assert_eq!(controls(&out), controls(template), "{template:?} → {out:?}");
    }
}

fn json(args: &Args, template: &str) {
    let value = serde_json::from_str(template)
        .unwrap_or_else(|_| serde_json::Value::String(template.to_string()));
    if let Ok(out) = args.substitute_json(&value) {
        assert!(same_shape(&value, &out), "{value} → {out}");
        // What a provider sends is the value written out; it must read back with the same
        // shape and strings. (Numbers are not compared: without serde_json's
        // `float_roundtrip` its reader can land one ulp away from what its writer meant.)
        let text = out.to_string();
        let back: Result<serde_json::Value, _> = serde_json::from_str(&text);
        assert!(
            back.is_ok_and(|b| same_shape(&b, &out) && strings(&b) == strings(&out)),
            "{out} does not read back from {text}"
        );
    }
}

fn strings(value: &serde_json::Value) -> Vec<&str> {
    use serde_json::Value;
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(strings(v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn same_shape(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::String(_), Value::String(_)) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_shape(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, x), (ky, y))| kx == ky && same_shape(x, y))
        }
        (Value::Number(_), Value::Number(_)) => true,
        (x, y) => x == y,
    }
}

fn condition(input: &Input<'_>, template: &str) {
    let arg = |name: &str| {
        let at = NAMES.iter().position(|n| *n == name)?;
        input.values[at].map(str::to_string)
    };
    if let Ok(compiled) = Conditions::compile("m", Some(template), Some(template), &arg) {
        for result in [
            serde_json::json!(1.5),
            serde_json::json!([1, "x"]),
            serde_json::json!({"a": null}),
        ] {
            let _ = compiled.evaluate(&result);
        }
    }
}
