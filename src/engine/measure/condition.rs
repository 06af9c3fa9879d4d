//! `successCondition` / `failureCondition` of a metric: CEL expressions over `result` with
//! Argo's helper names (`asInt`, `asFloat`, `isNaN`, `isInf`, `isNil`, `default`, `len`),
//! compiled once and evaluated per measurement. Pure: no I/O.

use crate::crd::AnalysisPhase;

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

/// The compiled conditions of one metric.
pub struct Conditions {
    _private: (),
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
        let _ = (metric, success, failure, arg);
        todo!("conditions")
    }

    /// The phase of a measurement whose value is `result` (Argo's rules: only a success
    /// condition → not-success is Failed; only failure → not-failure is Successful; both and
    /// neither true → Inconclusive; none → Successful).
    ///
    /// # Errors
    /// When evaluation fails (a type error, a missing index): the measurement is `Error`.
    pub fn evaluate(&self, result: &serde_json::Value) -> Result<AnalysisPhase, ConditionError> {
        let _ = result;
        todo!("conditions")
    }
}
