//! Mann-Whitney / Hodges-Lehmann results against R and scipy. Every expected value was printed
//! by `Rscript scripts/judge-reference.R` (R 4.x, base `stats`) and cross-checked with
//! `python3 scripts/judge-reference-scipy.py` (scipy 1.17.1); the case name in each test is the
//! line prefix in that output. Neither tool is needed to run these tests.

// A test crate: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]
// The literals are R's `%.17g` output, kept verbatim so they can be compared with it.
#![allow(clippy::excessive_precision)]

use sluice_analysis::mann_whitney::PValueMethod;
use sluice_analysis::{Comparison, compare};

/// The Park-Miller generator of the R script, exact in doubles.
fn minstd(seed: u64, count: usize) -> Vec<f64> {
    let mut s = seed;
    (0..count)
        .map(|_| {
            s = s * 48271 % 2_147_483_647;
            s as f64 / 2_147_483_647.0
        })
        .collect()
}

/// `latency(seed, n, shift)` of the R script: 80 + 30·a + 2/(1.0005 − b) + shift.
fn latency(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let u = minstd(seed, 2 * n);
    (0..n)
        .map(|i| 80.0 + 30.0 * u[2 * i] + 2.0 / (1.0005 - u[2 * i + 1]) + shift)
        .collect()
}

struct Expected {
    u: f64,
    p: f64,
    method: PValueMethod,
    k: Option<(u64, u64)>,
    interval: Option<(f64, f64)>,
    estimate: Option<f64>,
    /// R's `wilcox.test(exact = FALSE, correct = TRUE)` interval, found by `uniroot` (tol 1e-4).
    r_root_interval: (f64, f64),
}

fn check(name: &str, c: &Comparison, e: &Expected) {
    assert_eq!(c.u, e.u, "{name}: U");
    let rel = ((c.p_value - e.p) / e.p).abs();
    assert!(
        rel < 1e-12,
        "{name}: p {} vs R {} (rel {rel:e})",
        c.p_value,
        e.p
    );
    assert_eq!(c.p_value_method, e.method, "{name}: method");
    if let Some((k_low, k_high)) = e.k {
        assert_eq!(
            (c.shift.k_low, c.shift.k_high),
            (k_low, k_high),
            "{name}: ranks"
        );
    }
    if let Some((lower, upper)) = e.interval {
        assert_eq!(
            (c.shift.lower, c.shift.upper),
            (lower, upper),
            "{name}: exact interval"
        );
    }
    if let Some(estimate) = e.estimate {
        assert_eq!(c.shift.estimate, estimate, "{name}: estimate");
    }
    let (r_lo, r_hi) = e.r_root_interval;
    assert!(
        (c.shift.lower - r_lo).abs() < 2e-4 && (c.shift.upper - r_hi).abs() < 2e-4,
        "{name}: [{}, {}] vs R's root-finder interval [{r_lo}, {r_hi}]",
        c.shift.lower,
        c.shift.upper
    );
}

#[test]
fn small_samples_without_ties_use_the_exact_distribution() {
    let x = [12.1, 14.3, 11.8, 15.2, 13.9, 16.4, 12.7];
    let y = [10.2, 11.5, 12.4, 9.8, 11.1, 10.9];
    let c = compare(&x, &y, 0.98).unwrap();
    // R small_no_ties: W=40 p=0.004662004662004662 (exact); scipy exact p identical.
    // k_low=5 k_high=38 lower=0.59999999999999964 upper=5.2999999999999989 hl=2.7999999999999998
    // normal_cc ci=[0.59997619272564906, 5.3000077077288914]
    check(
        "small_no_ties",
        &c,
        &Expected {
            u: 40.0,
            p: 0.004_662_004_662_004_662,
            method: PValueMethod::Exact,
            k: Some((5, 38)),
            interval: Some((0.599_999_999_999_999_64, 5.299_999_999_999_998_9)),
            estimate: Some(2.799_999_999_999_999_8),
            r_root_interval: (0.599_976_192_725_649_06, 5.300_007_707_728_891_4),
        },
    );
}

#[test]
fn tiny_samples_have_the_whole_range_as_interval() {
    // R tiny_exact: W=7 p=0.85714285714285721 (exact); k_low=1 k_high=12 lower=-4.5
    // upper=8.75 hl=1; normal_cc ci=[-4.5, 8.75]
    let c = compare(&[1.5, 3.5, 9.25], &[0.5, 2.5, 4.75, 6.0], 0.98).unwrap();
    check(
        "tiny_exact",
        &c,
        &Expected {
            u: 7.0,
            p: 0.857_142_857_142_857_21,
            method: PValueMethod::Exact,
            k: Some((1, 12)),
            interval: Some((-4.5, 8.75)),
            estimate: Some(1.0),
            r_root_interval: (-4.5, 8.75),
        },
    );
}

#[test]
fn ties_switch_to_the_corrected_normal_approximation() {
    let x = [3.0, 5.0, 5.0, 6.0, 7.0, 7.0, 8.0, 9.0];
    let y = [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0, 6.0];
    let c = compare(&x, &y, 0.98).unwrap();
    // R small_ties: W=59 p=0.028472175599008127 (continuity correction);
    // scipy asymptotic p=0.028472175599008116. k_low=12 k_high=61 lower=0 upper=5 hl=2;
    // normal_cc ci=[-1.6292667148667771e-05, 4.9999961586023263]
    check(
        "small_ties",
        &c,
        &Expected {
            u: 59.0,
            p: 0.028_472_175_599_008_127,
            method: PValueMethod::Normal,
            k: Some((12, 61)),
            interval: Some((0.0, 5.0)),
            estimate: Some(2.0),
            r_root_interval: (-1.629_266_714_866_777_1e-5, 4.999_996_158_602_326_3),
        },
    );
}

#[test]
fn identical_samples_are_centred_on_zero() {
    let x = [4.0, 8.0, 15.0, 16.0, 23.0, 42.0];
    let y = [42.0, 23.0, 16.0, 15.0, 8.0, 4.0];
    let c = compare(&x, &y, 0.98).unwrap();
    assert!(c.identical);
    // R identical: W=18 p=1; k_low=3 k_high=34 lower=-27 upper=27 hl=0;
    // normal_cc ci=[-26.999980480530791, 26.999980480530791]
    check(
        "identical",
        &c,
        &Expected {
            u: 18.0,
            p: 1.0,
            method: PValueMethod::Normal,
            k: Some((3, 34)),
            interval: Some((-27.0, 27.0)),
            estimate: Some(0.0),
            r_root_interval: (-26.999_980_480_530_791, 26.999_980_480_530_791),
        },
    );
    assert_eq!(c.cles, 0.5);
    assert_eq!(c.mean_ratio, 1.0);
}

#[test]
fn latency_like_sixty_points_use_the_normal_approximation() {
    let c = compare(&latency(7, 60, 0.8), &latency(11, 60, 0.0), 0.98).unwrap();
    // R latency_60: W=1461 p=0.07562349968352039; scipy identical.
    // k_low=1357 k_high=2244 lower=-8.4904213011561893 upper=1.0821529979762374
    // hl=-3.2994392242630397; normal_cc ci=[-8.4904337686909539, 1.082171748355917]
    check(
        "latency_60",
        &c,
        &Expected {
            u: 1461.0,
            p: 0.075_623_499_683_520_39,
            method: PValueMethod::Normal,
            k: Some((1357, 2244)),
            interval: Some((-8.490_421_301_156_189_3, 1.082_152_997_976_237_4)),
            estimate: Some(-3.299_439_224_263_039_7),
            r_root_interval: (-8.490_433_768_690_953_9, 1.082_171_748_355_917),
        },
    );
}

#[test]
fn latency_like_two_thousand_points_at_two_levels() {
    let (x, y) = (latency(1234, 2000, 1.5), latency(4321, 2000, 0.0));
    let c98 = compare(&x, &y, 0.98).unwrap();
    // R latency_2000: W=2213323 p=5.1780377648637736e-09; scipy 5.178037764863762e-09.
    // k_low=1915043 k_high=2084958 lower=1.3052446942460847 upper=3.0401625088409361
    // hl=2.169394598891202; normal_cc ci=[1.3052150927266879, 3.0401491543023171]
    check(
        "latency_2000",
        &c98,
        &Expected {
            u: 2_213_323.0,
            p: 5.178_037_764_863_773_6e-9,
            method: PValueMethod::Normal,
            k: Some((1_915_043, 2_084_958)),
            interval: Some((1.305_244_694_246_084_7, 3.040_162_508_840_936_1)),
            estimate: Some(2.169_394_598_891_202),
            r_root_interval: (1.305_215_092_726_687_9, 3.040_149_154_302_317_1),
        },
    );
    let c95 = compare(&x, &y, 0.95).unwrap();
    // R latency_2000_cl95: k_low=1928423 k_high=2071578 lower=1.4421532676874875
    // upper=2.9025205267587637; normal_cc ci=[1.4421289266952542, 2.9025067647198646]
    check(
        "latency_2000_cl95",
        &c95,
        &Expected {
            u: 2_213_323.0,
            p: 5.178_037_764_863_773_6e-9,
            method: PValueMethod::Normal,
            k: Some((1_928_423, 2_071_578)),
            interval: Some((1.442_153_267_687_487_5, 2.902_520_526_758_763_7)),
            estimate: Some(2.169_394_598_891_202),
            r_root_interval: (1.442_128_926_695_254_2, 2.902_506_764_719_864_6),
        },
    );
}

#[test]
fn latency_like_twenty_thousand_points() {
    let c = compare(&latency(99, 20000, 0.25), &latency(98, 20000, 0.0), 0.98).unwrap();
    // R latency_20000: W=199863193 p=0.90569017486821912; scipy 0.9056901748682191.
    // normal_cc ci=[-0.28803171971610242, 0.25943210407119111] (no brute force: 4e8 pairs).
    check(
        "latency_20000",
        &c,
        &Expected {
            u: 199_863_193.0,
            p: 0.905_690_174_868_219_12,
            method: PValueMethod::Normal,
            k: None,
            interval: None,
            estimate: None,
            r_root_interval: (-0.288_031_719_716_102_42, 0.259_432_104_071_191_11),
        },
    );
    assert!(c.shift.lower <= c.shift.estimate && c.shift.estimate <= c.shift.upper);
}

#[test]
fn zero_inflated_counts_have_an_exact_zero_interval() {
    let mut x = vec![0.0; 80];
    x.extend([1.0; 32]);
    x.extend([2.0; 8]);
    let mut y = vec![0.0; 100];
    y.extend([1.0; 20]);
    let c = compare(&x, &y, 0.98).unwrap();
    // R zero_inflated: W=8480 p=0.0015931995339482311; scipy 0.0015931995339482296.
    // k_low=6021 k_high=8380 lower=0 upper=0 hl=0. R's root finder instead returns
    // ci=[1.0362673489114772e-06, 1.0665340869978965e-05]: a lower bound above 0 that only
    // its 1e-4 tolerance put there.
    check(
        "zero_inflated",
        &c,
        &Expected {
            u: 8480.0,
            p: 0.001_593_199_533_948_231_1,
            method: PValueMethod::Normal,
            k: Some((6021, 8380)),
            interval: Some((0.0, 0.0)),
            estimate: Some(0.0),
            r_root_interval: (1.036_267_348_911_477_2e-6, 1.066_534_086_997_896_5e-5),
        },
    );
}

#[test]
fn two_different_constants_shift_by_exactly_their_difference() {
    let c = compare(&[10.0; 5], &[1.0; 6], 0.98).unwrap();
    assert_eq!(
        (c.shift.lower, c.shift.estimate, c.shift.upper),
        (9.0, 9.0, 9.0)
    );
    assert_eq!(c.cles, 1.0);
    assert!(!c.single_value && !c.identical);
}
