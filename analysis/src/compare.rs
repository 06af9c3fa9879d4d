//! The full two-sample comparison of a cleaned canary sample with a cleaned control sample:
//! Mann-Whitney U and p-value, Hodges-Lehmann estimate and interval, mean ratio, CLES and
//! descriptive statistics. This is what the benchmark measures.

use thiserror::Error;

use crate::hodges_lehmann::{ShiftInterval, shift_interval};
use crate::mann_whitney::{PValueMethod, rank_test, run_terms};
use crate::sample::Descriptive;

/// Why two samples cannot be compared.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CompareError {
    /// One side has no values.
    #[error("the {side} sample is empty")]
    Empty { side: &'static str },
    /// A value is NaN or infinite (clean the sample first).
    #[error("the {side} sample holds a non-finite value at #{index}")]
    NonFinite { side: &'static str, index: usize },
    /// The confidence level is outside (0, 1).
    #[error("confidence level {level} is outside (0, 1)")]
    Level { level: f64 },
}

/// Everything the judge reports about one sample pair (x = experiment, y = control).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// #{x_i > y_j} + ½·#{x_i = y_j}.
    pub u: f64,
    /// Two-sided p-value, as R's `wilcox.test(x, y)` default.
    pub p_value: f64,
    pub p_value_method: PValueMethod,
    /// Hodges-Lehmann estimate and interval of the shift x − y.
    pub shift: ShiftInterval,
    /// mean(x)/mean(y); NaN when either mean is 0.
    pub mean_ratio: f64,
    /// Common-language effect size U/(nm) = P(X > Y) + ½·P(X = Y).
    pub cles: f64,
    pub experiment: Descriptive,
    pub control: Descriptive,
    /// Both samples hold the same multiset of values.
    pub identical: bool,
    /// Both samples together hold a single distinct value.
    pub single_value: bool,
}

/// From this n + m on, the descriptive statistics are computed on a second thread.
const PARALLEL_LEN: usize = 20_000;

/// Compares `experiment` (canary) with `control`.
///
/// # Errors
/// [`CompareError`] when a side is empty, holds a non-finite value, or the level is outside (0, 1).
pub fn compare(
    experiment: &[f64],
    control: &[f64],
    level: f64,
) -> Result<Comparison, CompareError> {
    check_level(level)?;
    let x = sorted_finite(experiment, "experiment")?;
    let y = sorted_finite(control, "control")?;
    compare_sorted(&x, &y, level)
}

/// [`compare`] of two non-empty, ascending samples of finite values without −0.0 (cleaned
/// samples, sorted once by the caller).
///
/// # Errors
/// [`CompareError`] when a side is empty or the level is outside (0, 1).
pub(crate) fn compare_sorted(x: &[f64], y: &[f64], level: f64) -> Result<Comparison, CompareError> {
    check_level(level)?;
    // The interval needs only the ties within each sample; large samples get the rank test
    // and the statistics on a second thread while the interval is selected.
    let within = run_terms(x) + run_terms(y);
    let ((test, (experiment, control)), shift) = crate::parallel::join_if(
        x.len() + y.len() >= PARALLEL_LEN,
        || {
            let test = rank_test(x, y);
            (test, (Descriptive::of_sorted(x), Descriptive::of_sorted(y)))
        },
        || shift_interval(x, y, within, level),
    );
    let shift = shift.ok_or(CompareError::Empty { side: "experiment" })?;
    let (mean_x, mean_y) = (experiment.mean, control.mean);
    let mean_ratio = if mean_x == 0.0 || mean_y == 0.0 {
        f64::NAN
    } else {
        mean_x / mean_y
    };
    let pairs = x.len() as f64 * y.len() as f64;
    let single_value = x.first() == x.last() && y.first() == y.last() && x.first() == y.first();
    Ok(Comparison {
        u: test.u,
        p_value: test.p_value,
        p_value_method: test.method,
        shift,
        mean_ratio,
        cles: test.u / pairs,
        experiment,
        control,
        identical: x == y,
        single_value,
    })
}

fn check_level(level: f64) -> Result<(), CompareError> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(CompareError::Level { level })
    }
}

fn sorted_finite(values: &[f64], side: &'static str) -> Result<Vec<f64>, CompareError> {
    if values.is_empty() {
        return Err(CompareError::Empty { side });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(CompareError::NonFinite { side, index });
    }
    // −0.0 → +0.0, so that equal values give +0.0 differences (see `selection`).
    let mut sorted: Vec<f64> = values.iter().map(|v| v + 0.0).collect();
    crate::sort::sort_f64(&mut sorted);
    Ok(sorted)
}
