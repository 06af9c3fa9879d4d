//! `successCondition` / `failureCondition` of a metric: CEL expressions over `result` with
//! Argo's helper names (`asInt`, `asFloat`, `isNaN`, `isInf`, `isNil`, `default`, `len`),
//! compiled once and evaluated per measurement. Pure: no I/O.
//!
//! Preparation (`source`) substitutes `{{args.NAME}}` and expr's `and`/`or`/`not`; the parsed
//! tree is checked for unknown names and its arithmetic made to promote ints to doubles
//! (`cel_ext`). docs/analysis.md, "Differences from Argo Rollouts (expr)", lists every
//! difference from Argo's expr.

use super::{cel_ext, source};
use crate::crd::AnalysisPhase;
use cel::Value;
use cel::parser::{Expression, Parser};

/// A condition that does not compile or cannot be evaluated.
#[derive(Debug, thiserror::Error)]
#[error("metric {metric}: {which} {expression:?}: {problem}")]
pub struct ConditionError {
    /// The metric's name.
    pub metric: String,
    /// `successCondition` or `failureCondition`.
    pub which: &'static str,
    /// The expression as written (before argument substitution).
    pub expression: String,
    /// What is wrong, with the position (line:column) where there is one.
    pub problem: String,
}

impl ConditionError {
    /// A static label for metrics and Event reasons.
    #[must_use]
    pub fn category(&self) -> &'static str {
        "condition"
    }
}

/// One compiled condition.
struct Compiled {
    which: &'static str,
    source: String,
    tree: Expression,
}

/// The compiled conditions of one metric.
pub struct Conditions {
    metric: String,
    success: Option<Compiled>,
    failure: Option<Compiled>,
}

impl std::fmt::Debug for Conditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conditions")
            .field("metric", &self.metric)
            .field("success", &self.success.as_ref().map(|c| &c.source))
            .field("failure", &self.failure.as_ref().map(|c| &c.source))
            .finish()
    }
}

impl Conditions {
    /// Compiles a metric's conditions after substituting `{{args.NAME}}` with `arg(NAME)`.
    /// An argument whose value is unknown (`arg` returns `None`) stands in as a number, so a
    /// template can be checked before a Rollout supplies its arguments.
    ///
    /// # Errors
    /// When a condition does not parse, names an unknown function, or an argument's value
    /// would change the expression's structure.
    pub fn compile(
        metric: &str,
        success: Option<&str>,
        failure: Option<&str>,
        arg: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConditionError> {
        let one = |which, text: Option<&str>| {
            text.filter(|t| !t.trim().is_empty())
                .map(|t| compile_one(metric, which, t, arg))
                .transpose()
        };
        Ok(Self {
            metric: metric.to_string(),
            success: one("successCondition", success)?,
            failure: one("failureCondition", failure)?,
        })
    }

    /// The phase of a measurement whose value is `result` (Argo's rules: only a success
    /// condition → not-success is Failed; only failure → not-failure is Successful; both and
    /// neither true → Inconclusive; none → Successful).
    ///
    /// Every JSON number is a double. JSON has no NaN or infinity: a provider passes them as
    /// the strings `"NaN"`, `"+Inf"`, `"-Inf"`, which conditions see as those doubles.
    ///
    /// # Errors
    /// When evaluation fails (a type error, a missing index): the measurement is `Error`.
    pub fn evaluate(&self, result: &serde_json::Value) -> Result<AnalysisPhase, ConditionError> {
        let value = cel_ext::from_json(result);
        let success = self.check(self.success.as_ref(), &value)?;
        let failure = self.check(self.failure.as_ref(), &value)?;
        Ok(match (success, failure) {
            (_, Some(true)) => AnalysisPhase::Failed,
            (Some(true), _) | (None, Some(false)) | (None, None) => AnalysisPhase::Successful,
            (Some(false), None) => AnalysisPhase::Failed,
            (Some(false), Some(false)) => AnalysisPhase::Inconclusive,
        })
    }

    fn check(
        &self,
        compiled: Option<&Compiled>,
        value: &Value,
    ) -> Result<Option<bool>, ConditionError> {
        let Some(compiled) = compiled else {
            return Ok(None);
        };
        let error = |problem: String| ConditionError {
            metric: self.metric.clone(),
            which: compiled.which,
            expression: compiled.source.clone(),
            problem,
        };
        let ctx = cel_ext::context(value.clone());
        match Value::resolve(&compiled.tree, &ctx) {
            Ok(Value::Bool(b)) => Ok(Some(b)),
            Ok(other) => Err(error(format!("evaluates to {other:?}, not a boolean"))),
            Err(e) => Err(error(format!("evaluation failed: {e}"))),
        }
    }
}

fn compile_one(
    metric: &str,
    which: &'static str,
    text: &str,
    arg: &dyn Fn(&str) -> Option<String>,
) -> Result<Compiled, ConditionError> {
    let error = |problem: String| ConditionError {
        metric: metric.to_string(),
        which,
        expression: text.to_string(),
        problem,
    };
    let prepared = source::prepare(text, arg).map_err(error)?;
    let mut tree = Parser::default().parse(&prepared.text).map_err(|errors| {
        let first = errors.errors.first();
        let at = first
            .map(|e| format!("at {}:{}: ", e.pos.0, e.pos.1))
            .unwrap_or_default();
        let msg = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
        let note = if prepared.substituted {
            format!(" (in {:?}, after argument substitution)", prepared.text)
        } else {
            String::new()
        };
        error(format!("does not parse: {at}{msg}{note}"))
    })?;
    if let Some(problem) = cel_ext::unknown_name(&tree) {
        return Err(error(problem));
    }
    cel_ext::promote(&mut tree);
    Ok(Compiled {
        which,
        source: text.to_string(),
        tree,
    })
}
