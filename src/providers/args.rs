//! A run's arguments and their substitution into a provider's fields (`{{args.NAME}}`, spaces
//! allowed inside the braces). Substitution is by context, so no value can change the
//! structure of what it lands in: escaped inside PromQL string literals, percent-encoded in
//! URLs, inserted as string content in JSON, refused elsewhere unless it is a plain token.
//! Reads Secrets through the kube client (`Args::resolve`); everything else is pure.

mod placeholder;

use crate::crd::Argument;
use k8s_openapi::api::core::v1::Secret;
use placeholder::{Piece, pieces};
use std::collections::BTreeMap;

/// An argument that is missing or cannot be substituted safely. Never shows a secret's value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ArgError(pub String);

/// One argument's value and whether it came from a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ArgValue {
    value: Option<String>,
    secret: bool,
}

/// The run's arguments with their values (secrets resolved).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    values: BTreeMap<String, ArgValue>,
}

/// Where in a PromQL query the lexer is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PromqlState {
    /// Outside any string literal (expressions, label names, durations).
    Code,
    /// Inside a literal opened by this quote character (`"`, `'` or a backtick).
    Literal(char),
    /// In a `#` comment, which runs to the end of the line; a quote here opens no literal.
    Comment,
}

/// Bytes percent-encoded in a URL value: everything except RFC 3986's unreserved characters, so
/// a value cannot add a segment (`/`), a parameter (`&`, `=`), a query (`?`) or a fragment (`#`).
const URL_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl Args {
    /// Adds (or replaces) an argument; `secret` marks a value read from a Secret, which
    /// `redact` hides and errors never show.
    pub fn insert(&mut self, name: &str, value: Option<String>, secret: bool) {
        self.values
            .insert(name.to_string(), ArgValue { value, secret });
    }

    /// An argument's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name)?.value.as_deref()
    }

    /// The run's arguments with `valueFrom.secretKeyRef` read from Secrets in `namespace` now.
    ///
    /// # Errors
    /// When a Secret or key is missing or cannot be read (the error names the Secret and key,
    /// never a value).
    pub async fn resolve(
        client: &kube::Client,
        namespace: &str,
        args: &[Argument],
    ) -> Result<Self, ArgError> {
        let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
        let mut resolved = Self::default();
        for arg in args {
            let secret_ref = arg
                .value_from
                .as_ref()
                .and_then(|from| from.secret_key_ref.as_ref());
            match (&arg.value, secret_ref) {
                (Some(value), _) => resolved.insert(&arg.name, Some(value.clone()), false),
                (None, Some(reference)) => {
                    let value = read_secret_key(&secrets, namespace, &arg.name, reference).await?;
                    resolved.insert(&arg.name, Some(value), true);
                }
                (None, None) => resolved.insert(&arg.name, None, false),
            }
        }
        Ok(resolved)
    }

    /// `query` with every placeholder substituted: inside a PromQL string literal the value is
    /// escaped for that literal; outside one it must be a plain token (number, duration,
    /// identifier) or the substitution is refused.
    ///
    /// A value inside a regular-expression matcher (`=~"{{args.x}}"`) is still read as a
    /// regular expression by Prometheus: escaping keeps it inside the literal, not literal.
    ///
    /// # Errors
    /// A missing argument or a value that would change the query's structure.
    pub fn substitute_promql(&self, query: &str) -> Result<String, ArgError> {
        let mut out = String::with_capacity(query.len());
        let mut state = PromqlState::Code;
        let mut escaped = false;
        for piece in pieces(query) {
            match piece {
                Piece::Text(text) => {
                    for c in text.chars() {
                        (state, escaped) = promql_step(state, escaped, c);
                        out.push(c);
                    }
                }
                Piece::Arg(name) => {
                    let value = self.value(name)?;
                    out.push_str(&self.promql_value(name, value, state)?);
                    // A value is complete in itself: an escape it ends with was escaped.
                    escaped = false;
                }
            }
        }
        Ok(out)
    }

    /// `url` with every placeholder's value percent-encoded (a value cannot add a path segment,
    /// a query parameter or change the host).
    ///
    /// # Errors
    /// A missing argument, or a placeholder in the scheme or host.
    pub fn substitute_url(&self, url: &str) -> Result<String, ArgError> {
        let authority_end = authority_end(url);
        let mut out = String::with_capacity(url.len());
        for piece in pieces(url) {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Arg(name) => {
                    if out.len() < authority_end {
                        return Err(ArgError(format!(
                            "argument {name}: a placeholder may not be in a URL's scheme, host or port; \
                             name the endpoint in full and put arguments in its path or query"
                        )));
                    }
                    let value = self.value(name)?;
                    out.extend(percent_encoding::utf8_percent_encode(value, URL_VALUE));
                }
            }
        }
        // `.` is unreserved, so values can still form a `.` or `..` segment (alone, or two
        // placeholders side by side), which URL parsing would resolve.
        if dot_segments(&out, authority_end) > dot_segments(url, authority_end) {
            return Err(ArgError(format!(
                "URL {}: an argument forms a path segment of . or .., which would move the URL",
                self.redact(url)
            )));
        }
        Ok(out)
    }

    /// `text` (a header value) with placeholders substituted; values with control characters
    /// (newlines) are refused.
    ///
    /// # Errors
    /// A missing argument or a refused value.
    pub fn substitute_plain(&self, text: &str) -> Result<String, ArgError> {
        let mut out = String::with_capacity(text.len());
        for piece in pieces(text) {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Arg(name) => {
                    let value = self.value(name)?;
                    if value.chars().any(char::is_control) {
                        return Err(self.refused(
                            name,
                            "it contains a control character (a newline?), which is not allowed here",
                        ));
                    }
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }

    /// Every string in `value` (a Job spec, a JSON body) with placeholders substituted as
    /// string content: the JSON's shape never changes. Object keys are left as written, so
    /// two keys can never become one.
    ///
    /// # Errors
    /// A missing argument.
    pub fn substitute_json(
        &self,
        value: &serde_json::Value,
    ) -> Result<serde_json::Value, ArgError> {
        use serde_json::Value;
        Ok(match value {
            Value::String(text) => Value::String(self.substitute_raw(text)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.substitute_json(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, item)| Ok((key.clone(), self.substitute_json(item)?)))
                    .collect::<Result<_, ArgError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// `text` with every secret value replaced by `<redacted>`: for metadata, messages, logs.
    /// The forms a value takes after substitution (escaped for PromQL, percent-encoded) are
    /// redacted too.
    pub fn redact(&self, text: &str) -> String {
        let mut forms: Vec<String> = self
            .values
            .values()
            .filter(|arg| arg.secret)
            .filter_map(|arg| arg.value.as_deref())
            .filter(|value| !value.is_empty())
            .flat_map(|value| {
                [
                    value.to_string(),
                    escape_quoted(value, '"'),
                    escape_quoted(value, '\''),
                    percent_encoding::utf8_percent_encode(value, URL_VALUE).to_string(),
                ]
            })
            .collect();
        // Longest first, so a secret that contains another is hidden whole.
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        forms.dedup();
        forms.iter().fold(text.to_string(), |text, form| {
            text.replace(form.as_str(), "<redacted>")
        })
    }

    /// The value of argument `name`.
    fn value(&self, name: &str) -> Result<&str, ArgError> {
        match self.values.get(name) {
            None if name.starts_with(placeholder::SCOPE_PREFIX) => Err(ArgError(format!(
                "{{{{{name}}}}} is not known: judge metrics have scope.podTemplateHash, scope.role, scope.namespace, scope.rollout and scope.window; other metrics have no scope"
            ))),
            None => Err(ArgError(format!(
                "argument {name} is not defined (the template's args list it, the Rollout gives its value)"
            ))),
            Some(ArgValue { value: None, .. }) => Err(ArgError(format!(
                "argument {name} has no value: give one in the Rollout's analysis args"
            ))),
            Some(ArgValue {
                value: Some(value), ..
            }) => Ok(value),
        }
    }

    /// A refusal naming the argument, and its value only when it is not a secret.
    fn refused(&self, name: &str, why: &str) -> ArgError {
        let shown = match self.values.get(name) {
            Some(ArgValue {
                value: Some(value),
                secret: false,
            }) => format!(" {value:?}"),
            _ => String::new(),
        };
        ArgError(format!("argument {name}: value{shown} refused: {why}"))
    }

    /// `value` as it may appear at a point of a PromQL query in `state`.
    fn promql_value(
        &self,
        name: &str,
        value: &str,
        state: PromqlState,
    ) -> Result<String, ArgError> {
        match state {
            PromqlState::Literal('`') if value.contains('`') => Err(self.refused(
                name,
                "a backtick cannot be written inside a PromQL raw string; use a \"...\" string",
            )),
            PromqlState::Literal('`') => Ok(value.to_string()),
            PromqlState::Literal(quote) => Ok(escape_quoted(value, quote)),
            // A value in a comment could end it with a line break; it is held to the rule of
            // code.
            PromqlState::Code | PromqlState::Comment if is_plain_token(value) => {
                Ok(value.to_string())
            }
            PromqlState::Code | PromqlState::Comment => Err(self.refused(
                name,
                "outside a string literal a value must be a plain token (letters, digits, _ . :), \
                 such as a number, a duration or a metric name; put it inside quotes to use it as a label value",
            )),
        }
    }

    /// Like `substitute_plain` without refusing anything: for JSON string content, which
    /// serde_json escapes when written.
    fn substitute_raw(&self, text: &str) -> Result<String, ArgError> {
        let mut out = String::with_capacity(text.len());
        for piece in pieces(text) {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Arg(name) => out.push_str(self.value(name)?),
            }
        }
        Ok(out)
    }
}

/// Reads one key of a Secret as UTF-8.
async fn read_secret_key(
    secrets: &kube::Api<Secret>,
    namespace: &str,
    arg: &str,
    reference: &crate::crd::SecretKeyRef,
) -> Result<String, ArgError> {
    let (name, key) = (&reference.name, &reference.key);
    let secret = secrets.get(name).await.map_err(|error| {
        ArgError(format!(
            "argument {arg}: cannot read Secret {namespace}/{name}: {error}"
        ))
    })?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .map(|bytes| bytes.0.clone())
        .or_else(|| {
            let text = secret.string_data.as_ref()?.get(key)?;
            Some(text.as_bytes().to_vec())
        })
        .ok_or_else(|| {
            ArgError(format!(
                "argument {arg}: Secret {namespace}/{name} has no key {key}"
            ))
        })?;
    String::from_utf8(bytes).map_err(|_| {
        ArgError(format!(
            "argument {arg}: key {key} of Secret {namespace}/{name} is not UTF-8 text"
        ))
    })
}

/// The lexer's next state after `c`, with whether the next character is escaped.
fn promql_step(state: PromqlState, escaped: bool, c: char) -> (PromqlState, bool) {
    match state {
        PromqlState::Code if matches!(c, '"' | '\'' | '`') => (PromqlState::Literal(c), false),
        PromqlState::Code if c == '#' => (PromqlState::Comment, false),
        PromqlState::Code => (PromqlState::Code, false),
        // Prometheus ends a comment at either line-break character.
        PromqlState::Comment if matches!(c, '\n' | '\r') => (PromqlState::Code, false),
        PromqlState::Comment => (PromqlState::Comment, false),
        // Raw strings have no escapes.
        PromqlState::Literal('`') if c == '`' => (PromqlState::Code, false),
        PromqlState::Literal('`') => (state, false),
        PromqlState::Literal(_) if escaped => (state, false),
        PromqlState::Literal(_) if c == '\\' => (state, true),
        PromqlState::Literal(quote) if c == quote => (PromqlState::Code, false),
        PromqlState::Literal(_) => (state, false),
    }
}

/// `value` escaped as the content of a PromQL string quoted by `quote` (Go's escapes, which the
/// PromQL parser reads).
fn escape_quoted(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Whether `value` can stand outside a literal without changing a query's structure.
fn is_plain_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':'))
}

/// The byte offset where a URL template's `scheme://host:port` ends (its whole length when it
/// has no path, query or fragment). Without `://` the whole template counts as the authority,
/// so a placeholder is refused.
fn authority_end(url: &str) -> usize {
    let Some(scheme_end) = url.find("://") else {
        return url.len();
    };
    let host_start = scheme_end + 3;
    url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| host_start + at)
}

/// How many `.` or `..` segments the path of `url` (starting at `path_start`) has, counted as
/// URL parsing resolves them: `%2e` is a dot too, and `\` separates segments as `/` does in
/// `http(s)` URLs.
fn dot_segments(url: &str, path_start: usize) -> usize {
    let rest = url.get(path_start..).unwrap_or_default();
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    path.split(['/', '\\'])
        .filter(|s| {
            let decoded = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
            matches!(&*decoded, "." | "..")
        })
        .count()
}

#[cfg(test)]
mod tests;
