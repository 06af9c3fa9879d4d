//! What a conversion could not carry: one finding per field, printed on stderr as
//! `<file>: <kind>/<name>: <field path>: <reason>`. Pure data; printing is the verb's.

/// One field of a source object that the converted objects do not carry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The field's path in the source object (`spec.analysis.webhooks[0]`).
    pub path: String,
    /// Why it is not carried, and what to do instead where there is something.
    pub reason: String,
}

/// The findings of one source object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// Records that `path` is not carried because of `reason`.
    pub fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Finding {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// The lines for stderr, each prefixed with the file and the object.
    #[must_use]
    pub fn lines(&self, file: &str, kind: &str, name: &str) -> Vec<String> {
        self.0
            .iter()
            .map(|f| format!("{file}: {kind}/{name}: {}: {}", f.path, f.reason))
            .collect()
    }

    /// Whether a finding names `path` exactly.
    #[must_use]
    pub fn names(&self, path: &str) -> bool {
        self.0.iter().any(|f| f.path == path)
    }
}

/// The outcome of converting one source object.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Conversion {
    /// The Sluice objects (and the Services and routing objects they need), in output order.
    pub objects: Vec<serde_json::Value>,
    /// What could not be carried.
    pub findings: Findings,
}

impl Conversion {
    /// A conversion that produced nothing, for the reason given at `path`.
    #[must_use]
    pub fn refused(path: &str, reason: impl Into<String>) -> Self {
        let mut findings = Findings::default();
        findings.push(path, reason);
        Conversion {
            objects: Vec::new(),
            findings,
        }
    }
}
