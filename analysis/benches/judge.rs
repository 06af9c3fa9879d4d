//! Criterion bench of the two-sample comparison (U, p-value, Hodges-Lehmann estimate and
//! 98 % interval, effect sizes, descriptive statistics) for n = m = 1,000 / 10,000 / 100,000.
//! The data are the latency-like samples of `scripts/bench-judge-vs-scipy.py`, which times
//! scipy's `mannwhitneyu` (p-value only) on the same values. Run: `cargo bench -p sluice-analysis`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

/// Park-Miller generator, identical to the Python script's.
fn minstd(seed: u64, count: usize) -> Vec<f64> {
    let mut s = seed;
    (0..count)
        .map(|_| {
            s = s * 48271 % 2_147_483_647;
            s as f64 / 2_147_483_647.0
        })
        .collect()
}

fn latency(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let u = minstd(seed, 2 * n);
    (0..n)
        .map(|i| 80.0 + 30.0 * u[2 * i] + 2.0 / (1.0005 - u[2 * i + 1]) + shift)
        .collect()
}

fn bench_compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("compare");
    group.sample_size(20);
    for n in [1_000usize, 10_000, 100_000] {
        let x = latency(1234, n, 0.5);
        let y = latency(4321, n, 0.0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| sluice_analysis::compare(black_box(&x), black_box(&y), 0.98))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_compare);
criterion_main!(benches);
