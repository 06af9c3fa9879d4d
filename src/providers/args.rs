//! A run's arguments and their substitution into a provider's fields (`{{args.NAME}}`, spaces
//! allowed inside the braces). Substitution is by context, so no value can change the
//! structure of what it lands in: escaped inside PromQL string literals, percent-encoded in
//! URLs, inserted as string content in JSON, refused elsewhere unless it is a plain token.

use crate::crd::Argument;
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
        let _ = (client, namespace, args);
        todo!("args")
    }

    /// `query` with every placeholder substituted: inside a PromQL string literal the value is
    /// escaped for that literal; outside one it must be a plain token (number, duration,
    /// identifier) or the substitution is refused.
    ///
    /// # Errors
    /// A missing argument or a value that would change the query's structure.
    pub fn substitute_promql(&self, query: &str) -> Result<String, ArgError> {
        let _ = query;
        todo!("args")
    }

    /// `url` with every placeholder's value percent-encoded (a value cannot add a path segment,
    /// a query parameter or change the host).
    ///
    /// # Errors
    /// A missing argument, or a placeholder in the scheme or host.
    pub fn substitute_url(&self, url: &str) -> Result<String, ArgError> {
        let _ = url;
        todo!("args")
    }

    /// `text` (a header value) with placeholders substituted; values with control characters
    /// (newlines) are refused.
    ///
    /// # Errors
    /// A missing argument or a refused value.
    pub fn substitute_plain(&self, text: &str) -> Result<String, ArgError> {
        let _ = text;
        todo!("args")
    }

    /// Every string in `value` (a Job spec, a JSON body) with placeholders substituted as
    /// string content: the JSON's shape never changes.
    ///
    /// # Errors
    /// A missing argument.
    pub fn substitute_json(
        &self,
        value: &serde_json::Value,
    ) -> Result<serde_json::Value, ArgError> {
        let _ = value;
        todo!("args")
    }

    /// `text` with every secret value replaced by `<redacted>`: for metadata, messages, logs.
    pub fn redact(&self, text: &str) -> String {
        let _ = text;
        todo!("args")
    }
}
