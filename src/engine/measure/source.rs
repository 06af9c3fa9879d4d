//! Text-level preparation of a condition before CEL parses it: `{{args.NAME}}` placeholders
//! are replaced by their values, and expr's `and` / `or` / `not` keywords by CEL's operators.
//! Pure string work; touches nothing else.
//!
//! A value can never change the expression's structure: outside a string literal it must be a
//! number or boolean literal (re-printed by us, in parentheses), inside one it is escaped.

/// Where the scanner is.
#[derive(Clone, Copy)]
enum State {
    Code,
    /// Inside a string literal opened by `quote` (`'`, `"`, `'''` or `"""`).
    Str {
        quote: &'static str,
        raw: bool,
    },
}

/// The expression ready for the CEL parser, and whether an argument changed its length (so a
/// parser position is one in the substituted text).
pub(super) struct Prepared {
    pub text: String,
    pub substituted: bool,
}

/// Substitutes arguments and rewrites keywords. `arg` returns `None` for an argument whose
/// value is unknown yet: it stands in as `0` (or as nothing inside a string).
///
/// # Errors
/// A message when a placeholder is not `{{args.NAME}}`, is not closed, or its value is not a
/// literal that fits where it stands.
pub(super) fn prepare(
    expression: &str,
    arg: &dyn Fn(&str) -> Option<String>,
) -> Result<Prepared, String> {
    let mut out = String::with_capacity(expression.len());
    let mut substituted = false;
    let mut state = State::Code;
    let mut rest = expression;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") {
            let (name, after) = placeholder(rest)?;
            let value = arg(name);
            out.push_str(&render(name, value.as_deref(), state)?);
            substituted = true;
            rest = after;
            continue;
        }
        match state {
            State::Code => {
                if let Some(quote) = opening_quote(rest) {
                    let raw = raw_prefix(&out);
                    out.push_str(quote);
                    rest = &rest[quote.len()..];
                    state = State::Str { quote, raw };
                    continue;
                }
                if c.is_ascii_alphabetic() || c == '_' {
                    let len = rest
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .unwrap_or(rest.len());
                    out.push_str(keyword(&rest[..len], &out));
                    rest = &rest[len..];
                    continue;
                }
            }
            State::Str { quote, raw } => {
                if rest.starts_with(quote) {
                    out.push_str(quote);
                    rest = &rest[quote.len()..];
                    state = State::Code;
                    continue;
                }
                if c == '\\' && !raw {
                    // Copy the escape and the escaped character together, so `\'` does not close.
                    let mut chars = rest.chars();
                    chars.next();
                    out.push('\\');
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                    rest = chars.as_str();
                    continue;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(Prepared {
        text: out,
        substituted,
    })
}

/// The argument name of the placeholder at the start of `text`, and the text after it.
fn placeholder(text: &str) -> Result<(&str, &str), String> {
    let end = text
        .find("}}")
        .ok_or_else(|| "a `{{` placeholder is not closed with `}}`".to_string())?;
    let inner = text[2..end].trim();
    let name = inner
        .strip_prefix("args.")
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        })
        .ok_or_else(|| {
            format!("placeholder {{{{{inner}}}}} is not supported (only {{{{args.NAME}}}})")
        })?;
    Ok((name, &text[end + 2..]))
}

/// The text that stands for argument `name` with `value` in `state`.
fn render(name: &str, value: Option<&str>, state: State) -> Result<String, String> {
    match (state, value) {
        (State::Code, None) => Ok("0".to_string()),
        (State::Str { .. }, None) => Ok(String::new()),
        (State::Code, Some(value)) => literal(value.trim()).ok_or_else(|| {
            format!(
                "argument {name} = {value:?} is not a number or boolean literal; quote the \
                 placeholder to use it as a string"
            )
        }),
        (State::Str { raw: false, .. }, Some(value)) => Ok(escape(value)),
        (State::Str { quote, raw: true }, Some(value)) => {
            if value.contains(quote.chars().next().unwrap_or('"')) || value.contains('\n') {
                Err(format!(
                    "argument {name} = {value:?} cannot stand in a raw string: it holds a quote \
                     or a line break"
                ))
            } else {
                Ok(value.to_string())
            }
        }
    }
}

/// A number or boolean, printed again by us in parentheses so that nothing of the value's own
/// spelling reaches the parser.
fn literal(value: &str) -> Option<String> {
    match value {
        "true" | "false" => return Some(value.to_string()),
        _ => {}
    }
    // Only plain decimal spellings: `f64::from_str` also accepts `inf` and `NaN`.
    let plain = value
        .chars()
        .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && value.chars().any(|c| c.is_ascii_digit());
    if !plain {
        return None;
    }
    if let Ok(int) = value.parse::<i64>() {
        return Some(format!("({int})"));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| format!("({f:?})"))
}

/// `value` escaped for a (non-raw) CEL string literal of either quote.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '{' | '}' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn opening_quote(text: &str) -> Option<&'static str> {
    ["'''", "\"\"\"", "'", "\""]
        .into_iter()
        .find(|q| text.starts_with(q))
}

/// Whether the identifier just written before a quote is a raw-string prefix (`r`, `R`,
/// `br`, `rb`, ...): CEL does not process escapes in raw strings.
fn raw_prefix(written: &str) -> bool {
    let ident: String = written
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    !ident.is_empty()
        && ident.len() <= 2
        && ident.chars().all(|c| "rRbB".contains(c))
        && ident.chars().any(|c| c == 'r' || c == 'R')
}

/// expr's word operators as CEL's symbols, padded to the same width so parser columns still
/// match the text as written. A method call (`x.or(y)`) keeps its name.
fn keyword<'a>(word: &'a str, written: &str) -> &'a str {
    if written.trim_end().ends_with('.') {
        return word;
    }
    match word {
        "and" => "&& ",
        "or" => "||",
        "not" => "!  ",
        other => other,
    }
}
