//! Criterion bench of the two-sample comparison (U, p-value, Hodges-Lehmann estimate and
//! 98 % interval as exact order statistics, effect sizes, descriptive statistics) for
//! n = m = 1,000 / 10,000 / 100,000, in wall-clock time (`compare`) and, on Linux, in CPU time
//! of the benchmarking thread (`compare_cpu`), which stays meaningful on a shared, loaded
//! machine. The data are the latency-like samples of `scripts/bench-judge-vs-scipy.py`, which
//! times scipy's `mannwhitneyu` (p-value only) on the same values both ways.
//! `rate_ratio` times the rate-ratio test (p-value and 98 % interval) at 10^6 and 10^10 events.
//! Run: `cargo bench -p sluice-analysis --bench judge`.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn bench_compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("compare");
    group.sample_size(20);
    for n in SIZES {
        let x = latency(1234, n, 0.5);
        let y = latency(4321, n, 0.0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| sluice_analysis::compare(black_box(&x), black_box(&y), 0.98))
        });
    }
    group.finish();
}

/// CPU time consumed by the current thread, from `/proc/thread-self/schedstat` (nanoseconds,
/// updated at scheduler ticks and switches; criterion's batches of iterations are long enough
/// for that resolution).
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e3, "µs cpu")
        } else {
            (1e6, "ms cpu")
        };
        for v in values.iter_mut() {
            *v /= divisor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "n/a"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn bench_compare_cpu(c: &mut Criterion<ThreadCpuTime>) {
    if thread_cpu_ns() == 0 {
        eprintln!("compare_cpu skipped: /proc/thread-self/schedstat is not available");
        return;
    }
    let mut group = c.benchmark_group("compare_cpu");
    group.sample_size(20);
    for n in SIZES {
        let x = latency(1234, n, 0.5);
        let y = latency(4321, n, 0.0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| sluice_analysis::compare(black_box(&x), black_box(&y), 0.98))
        });
    }
    group.finish();
}

/// Total events s; over equal exposures the canary has s/20,000 events more than half (0.1 σ
/// above the mean at 10^6, 10 σ at 10^10), so the p-value needs both tails.
const RATE_EVENTS: [u64; 2] = [1_000_000, 10_000_000_000];

fn bench_rate_ratio(c: &mut Criterion) {
    use sluice_analysis::rate_ratio::{Counts, rate_ratio};
    let mut group = c.benchmark_group("rate_ratio");
    group.sample_size(10);
    for s in RATE_EVENTS {
        let x = s / 2 + s / 20_000;
        let experiment = Counts {
            events: x,
            total: 1e9,
        };
        let control = Counts {
            events: s - x,
            total: 1e9,
        };
        group.bench_with_input(BenchmarkId::from_parameter(s), &s, |b, _| {
            b.iter(|| rate_ratio(black_box(experiment), black_box(control), 0.98))
        });
    }
    group.finish();
}

criterion_group!(wall, bench_compare, bench_rate_ratio);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench_compare_cpu
}
criterion_main!(wall, cpu);
