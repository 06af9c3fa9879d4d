//! Scoring of metric results into a 0–100 canary score and a Pass / Marginal / Fail verdict
//! (kayenta-judge.md §4: muted metrics, group scores, weights, critical and 50 % NoData
//! overrides, half-up rounding to two decimals).
//!
//! Deliberate changes from Kayenta (docs/judge.md): `Error` counts as a failing metric instead
//! of vanishing (so all-Error scores 0, not 100); a group without scored metrics reports
//! `null` instead of 0.0 (it still counts 100 in the summary, as in Kayenta); weighted groups
//! without unmuted metrics and unweighted groups left without weight are named in the reason.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::classify::{Classification, MetricResult};
use crate::config::Thresholds;

/// The canary verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Verdict {
    Pass,
    Marginal,
    Fail,
}

/// One group's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupScore {
    pub name: String,
    /// 100·passed/scored, or `null` when no metric of the group was scored.
    pub score: Option<f64>,
}

/// The scored summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub score: f64,
    pub result: Verdict,
    pub reason: Option<String>,
    pub groups: Vec<GroupScore>,
}

/// Scores unmuted results with group weights (validated: each ≥ 0, sum ≤ 100).
pub fn score(
    results: &[MetricResult],
    weights: &BTreeMap<String, f64>,
    thresholds: Thresholds,
) -> Summary {
    let active: Vec<&MetricResult> = results.iter().filter(|r| !r.muted).collect();
    let mut notes = Vec::new();

    // Group tallies: (passed, scored).
    let mut tallies: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for r in &active {
        let tally = tallies.entry(r.group.as_str()).or_default();
        match r.classification {
            Classification::Pass => {
                tally.0 += 1;
                tally.1 += 1;
            }
            Classification::High | Classification::Low | Classification::Error => tally.1 += 1,
            Classification::NoData if r.must_have_data => tally.1 += 1,
            Classification::NoData => {}
        }
    }
    let groups: Vec<GroupScore> = tallies
        .iter()
        .map(|(name, &(passed, scored))| GroupScore {
            name: (*name).to_owned(),
            score: (scored > 0).then(|| 100.0 * f64::from(passed) / f64::from(scored)),
        })
        .collect();

    let configured: f64 = weights.values().sum();
    let unweighted = groups
        .iter()
        .filter(|g| !weights.contains_key(&g.name))
        .count();
    let share = if unweighted > 0 {
        (100.0 - configured) / unweighted as f64
    } else {
        0.0
    };
    if unweighted > 0 && share <= 0.0 {
        notes.push(format!(
            "configured weights already sum to {configured}, so the {unweighted} group(s) without a weight count for nothing"
        ));
    }
    for (name, weight) in weights {
        if *weight > 0.0 && !tallies.contains_key(name.as_str()) {
            notes.push(format!(
                "group {name} (weight {weight}) has no unmuted metric and contributes 0"
            ));
        }
    }
    let raw: f64 = groups
        .iter()
        .map(|g| {
            let weight = weights.get(&g.name).copied().unwrap_or(share);
            g.score.unwrap_or(100.0) * weight / 100.0
        })
        .sum();
    let mut total = round_half_up_2(raw);

    let mut reason = None;
    if active.is_empty() {
        total = 0.0;
        reason = Some("Canary Failed: no unmuted metric to score".to_owned());
    } else if let Some(critical) = active
        .iter()
        .find(|r| r.critical && r.classification != Classification::Pass)
    {
        total = 0.0;
        let why = critical
            .reason
            .clone()
            .unwrap_or_else(|| critical.name.clone());
        reason = Some(format!("Canary Failed: {why}"));
    } else {
        let no_data = active
            .iter()
            .filter(|r| r.classification == Classification::NoData && !r.must_have_data)
            .count();
        if 2 * no_data >= active.len() {
            total = 0.0;
            reason = Some("Canary Failed: 50% or more metrics returned NODATA".to_owned());
        }
    }
    if !notes.is_empty() {
        let joined = notes.join("; ");
        reason = Some(match reason {
            Some(r) => format!("{r}; {joined}"),
            None => joined,
        });
    }
    let result = if total >= thresholds.pass {
        Verdict::Pass
    } else if total >= thresholds.marginal {
        Verdict::Marginal
    } else {
        Verdict::Fail
    };
    Summary {
        score: total,
        result,
        reason,
        groups,
    }
}

/// Rounds half-up to two decimals on the shortest decimal representation of `v`, as Kayenta's
/// `Precision.round` does through `BigDecimal(Double.toString(v))`: 33.335 becomes 33.34 even
/// though the double nearest 33.335 lies just below it.
pub fn round_half_up_2(v: f64) -> f64 {
    if !v.is_finite() || v < 0.0 {
        return v;
    }
    // Rust's `{}` prints the shortest representation that round-trips, never in exponent form.
    let text = format!("{v}");
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    if frac_part.len() <= 2 {
        return v;
    }
    let digits = frac_part.as_bytes();
    let (Ok(whole), Ok(hundredths)) = (int_part.parse::<u128>(), frac_part[..2].parse::<u128>())
    else {
        return v;
    };
    let round_up = digits[2] >= b'5';
    let cents = whole * 100 + hundredths + u128::from(round_up);
    format!("{}.{:02}", cents / 100, cents % 100)
        .parse()
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_up_rounding_on_the_decimal_string() {
        assert_eq!(round_half_up_2(33.335), 33.34);
        assert_eq!(round_half_up_2(100.0 / 3.0), 33.33);
        assert_eq!(round_half_up_2(99.995), 100.0);
        assert_eq!(round_half_up_2(5.0), 5.0);
        assert_eq!(round_half_up_2(0.125), 0.13);
    }
}
