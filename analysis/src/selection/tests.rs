use super::pivots::weighted_median;
use super::*;
use proptest::prelude::*;

fn brute_force(x: &[f64], y: &[f64]) -> Vec<f64> {
    let mut all: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .collect();
    all.sort_unstable_by(f64::total_cmp);
    all
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v
}

fn check_all_ranks(x: Vec<f64>, y: Vec<f64>) {
    let (x, y) = (sorted(x), sorted(y));
    let expected = brute_force(&x, &y);
    let diffs = Differences::new(&x, &y);
    for (i, want) in expected.iter().enumerate() {
        let k = i as u64 + 1;
        assert_eq!(
            diffs.select(k),
            Some(*want),
            "k = {k}, x = {x:?}, y = {y:?}"
        );
    }
    assert_eq!(diffs.select(0), None);
    assert_eq!(diffs.select(expected.len() as u64 + 1), None);
}

#[test]
fn every_rank_of_a_small_matrix() {
    check_all_ranks(vec![1.0, 5.0, 2.5, 7.0], vec![0.5, 3.0, 3.0]);
    check_all_ranks(vec![4.0], vec![4.0]);
}

/// Large enough to run the sampling rounds: 600 × 500 has 300,000 differences against a
/// finishing threshold of 4,096.
#[test]
fn sampled_rounds_agree_with_brute_force_on_a_large_matrix_with_ties() {
    let x: Vec<f64> = (0..600).map(|i| f64::from((i * 37) % 101) * 0.5).collect();
    let y: Vec<f64> = (0..500).map(|i| f64::from((i * 53) % 89) * 0.25).collect();
    let (x, y) = (sorted(x), sorted(y));
    let expected = brute_force(&x, &y);
    let diffs = Differences::new(&x, &y);
    for k in [1, 2, 777, 150_000, 150_001, 299_999, 300_000] {
        assert_eq!(diffs.select(k), Some(expected[k as usize - 1]), "k = {k}");
    }
}

/// A useless first pivot (the smallest difference, a == b) takes the four-pointer path and
/// removes almost nothing, so the next round must pivot on the weighted median.
#[test]
fn fallback_rounds_after_a_bad_pivot_still_select_exactly() {
    let x: Vec<f64> = sorted((0..300).map(|i| f64::from((i * 71) % 97) * 1.5).collect());
    let y: Vec<f64> = sorted((0..280).map(|i| f64::from((i * 29) % 83)).collect());
    let expected = brute_force(&x, &y);
    let diffs = Differences::new(&x, &y);
    let smallest = expected[0];
    for k in [1u64, 5_000, 42_000, 84_000] {
        let (value, next) = rounds::select_with_pivots(&diffs, k, (smallest, smallest)).unwrap();
        assert_eq!(value, expected[k as usize - 1], "k = {k}");
        if let Some(next) = next {
            assert_eq!(next, expected[k as usize], "k = {k}");
        }
    }
}

/// A large matrix (10^8 differences) with four targets, two passes of three and one: every
/// value must be the exact order statistic (checked by its rank, without the 10^8
/// differences) and equal the one-target selection.
#[test]
fn selection_of_many_ranks_in_large_matrices_is_exact() {
    let x = sorted(
        (0..12_000)
            .map(|i| f64::from((i * 7919) % 4999) * 0.01)
            .collect(),
    );
    let y = sorted(
        (0..10_000)
            .map(|i| f64::from((i * 104_729) % 3001) * 0.02 + 3.0)
            .collect(),
    );
    let diffs = Differences::new(&x, &y);
    let total = diffs.count();
    let ranks = [total / 100, total / 2, total / 2 + 1, total - total / 100];
    let found = diffs.select_many_with_next(&ranks).unwrap();
    for (&k, &(value, next)) in ranks.iter().zip(&found) {
        let (lt, le) = diffs.rank_of(value);
        assert!(lt < k && k <= le, "k = {k}: {value} has ranks ({lt}, {le}]");
        assert_eq!(diffs.select(k), Some(value), "k = {k}");
        if let Some(next) = next {
            assert_eq!(diffs.select(k + 1), Some(next), "k + 1 = {}", k + 1);
        }
    }
}

#[test]
fn weighted_median_splits_the_weight() {
    let mut pairs = vec![(1.0, 1), (2.0, 1), (3.0, 10)];
    assert_eq!(weighted_median(&mut pairs), Some(3.0));
    let mut pairs = vec![(5.0, 3), (1.0, 3)];
    assert_eq!(weighted_median(&mut pairs), Some(1.0));
}

#[test]
fn pair_selection_gives_the_next_distinct_or_tied_value() {
    let x = [1.0, 2.0, 4.0];
    let y = [0.0, 1.0];
    // differences: 1 0 2 1 4 3 -> sorted 0 1 1 2 3 4
    let diffs = Differences::new(&x, &y);
    assert_eq!(diffs.select_pair(2), Some((1.0, 1.0)));
    assert_eq!(diffs.select_pair(3), Some((1.0, 2.0)));
    assert_eq!(diffs.next_above(4.0), None);
}

fn tied_values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((0i32..6).prop_map(f64::from), 1..40)
}

fn continuous_values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-1.0e3f64..1.0e3, 1..40)
}

/// The ranks at quantiles `ranks` selected at once (shared rounds) are the brute force's, with
/// the next order statistic when given.
fn check_many(diffs: &Differences, expected: &[f64], ranks: &[f64]) -> Result<(), TestCaseError> {
    let ks: Vec<u64> = ranks
        .iter()
        .map(|q| ((q * expected.len() as f64) as u64).clamp(1, expected.len() as u64))
        .collect();
    let found = diffs.select_many_with_next(&ks).unwrap();
    for (k, (value, next)) in ks.iter().zip(found) {
        prop_assert_eq!(value, expected[*k as usize - 1]);
        if let Some(next) = next {
            prop_assert_eq!(next, expected[*k as usize]);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn selection_equals_brute_force_with_ties(x in tied_values(), y in tied_values()) {
        check_all_ranks(x, y);
    }

    #[test]
    fn selection_equals_brute_force_without_ties(x in continuous_values(), y in continuous_values()) {
        check_all_ranks(x, y);
    }

    /// Mixed magnitudes make rounding of x_i − y_j visible: the selection must still return
    /// the very doubles a sort of the computed differences returns.
    #[test]
    fn selection_is_exact_under_rounding(
        x in prop::collection::vec(prop_oneof![-1e16f64..1e16, -1.0f64..1.0], 1..30),
        y in prop::collection::vec(prop_oneof![-1e16f64..1e16, -1.0f64..1.0], 1..30),
    ) {
        check_all_ranks(x, y);
    }

    /// Matrices larger than the finishing threshold, so that pivots and window updates run.
    #[test]
    fn selection_with_pivot_rounds_equals_brute_force(
        x in prop::collection::vec((0i32..50).prop_map(f64::from), 150..300),
        y in prop::collection::vec(-1.0e2f64..1.0e2, 150..300),
        ranks in prop::collection::vec(0.0f64..1.0, 4),
    ) {
        let (x, y) = (sorted(x), sorted(y));
        let expected = brute_force(&x, &y);
        let diffs = Differences::new(&x, &y);
        for &q in &ranks {
            let k = ((q * expected.len() as f64) as u64).clamp(1, expected.len() as u64);
            prop_assert_eq!(diffs.select(k), Some(expected[k as usize - 1]));
        }
        // Several ranks at once (shared rounds), with the next order statistic when given.
        check_many(&diffs, &expected, &ranks)?;
    }

    /// Heavy ties across a large matrix: pivots often equal the target itself.
    #[test]
    fn selection_of_many_ranks_with_heavy_ties(
        x in prop::collection::vec((0i32..4).prop_map(f64::from), 100..250),
        y in prop::collection::vec((0i32..4).prop_map(f64::from), 100..250),
        ranks in prop::collection::vec(0.0f64..1.0, 3),
    ) {
        let (x, y) = (sorted(x), sorted(y));
        let expected = brute_force(&x, &y);
        let diffs = Differences::new(&x, &y);
        check_many(&diffs, &expected, &ranks)?;
    }

    /// Matrices of a few million differences, so that several rounds run with interpolated
    /// pivots: smooth, skewed, lattice (many equal differences) and near-lattice data (equal
    /// up to rounding), the interval's three ranks near the middle and two anywhere. Every
    /// value is checked by its exact rank (`rank_of`), the next one too.
    #[test]
    fn interpolated_rounds_select_exactly(
        shape in 0usize..4,
        n in 800usize..2500,
        m in 800usize..2500,
        seed in any::<u64>(),
        spread in 0.0f64..0.01,
        anywhere in prop::collection::vec(0.0f64..1.0, 2),
    ) {
        let mut state = seed | 1;
        let mut unit = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut draw = |count: usize, shift: f64| -> Vec<f64> {
            let values = (0..count).map(|_| {
                let u = unit().max(1e-12);
                match shape {
                    0 => u + shift,
                    1 => (-u.ln()).powf(2.0) + shift,
                    2 => (u * 40.0).floor() + (shift * 10.0).round(),
                    _ => ((u + shift) * 1000.0).round() / 1000.0 * 0.1,
                }
            });
            sorted(values.collect())
        };
        let x = draw(n, 0.25);
        let y = draw(m, 0.0);
        let diffs = Differences::new(&x, &y);
        let total = diffs.count();
        let half = total / 2;
        let width = (total as f64 * spread) as u64;
        let mut ranks = vec![(half - width).max(1), half.max(1), (half + width).min(total)];
        ranks.extend(anywhere.iter().map(|q| ((q * total as f64) as u64).clamp(1, total)));
        let found = diffs.select_many_with_next(&ranks).unwrap();
        for (&k, &(value, next)) in ranks.iter().zip(&found) {
            let (lt, le) = diffs.rank_of(value);
            prop_assert!(lt < k && k <= le, "k = {}: {} has ranks ({}, {}]", k, value, lt, le);
            if let Some(next) = next {
                let (lt, le) = diffs.rank_of(next);
                prop_assert!(lt < k + 1 && k < le, "k + 1 = {}: {} has ranks ({}, {}]", k + 1, next, lt, le);
            }
        }
    }
}
