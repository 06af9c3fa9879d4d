//! Criterion bench of the two-sample comparison (U, p-value, Hodges-Lehmann estimate and
//! 98 % interval as exact order statistics, effect sizes, descriptive statistics) for
//! n = m = 1,000 / 10,000 / 100,000, in wall-clock time (`compare`) and, on Linux, in CPU time
//! of the benchmarking thread (`compare_cpu`), which stays meaningful on a shared, loaded
//! machine. The data are the latency-like samples of `benches/judge_scipy_sizes.py`, which
//! times scipy's `mannwhitneyu` (p-value only) on the same values both ways.
//! `rate_ratio` times the rate-ratio test (p-value and 98 % interval) at 10^6 and 10^10 events.
//! `judgement` times one whole judgement as the controller makes it each interval: 20 metrics,
//! 600 points a side (latency-like log-normal values at 0.1 ms resolution, so with ties),
//! built as a validated request (no JSON), all `mannWhitney` and with 5 of them `rateRatio`.
//! `input` times the phases of `kubectl sluice judge` on 100,000 + 100,000 points: parsing and
//! validating the JSON text, and judging the parsed request (see `benches/judge_vs_scipy.py`
//! for the whole process against scipy).
//! `selection` times the exact selection of the estimate and the 98 % interval's bounds
//! (three order statistics of the 10^10 pairwise differences) at 100,000 a side on data of
//! several shapes: the latency-like samples, the same rounded to whole and to tenth units
//! (data on a grid: blocks of equal differences), log-normal with σ = 2 (a sharp bend), and
//! two ranks in the 1 % tails.
//! Run: `cargo bench -p sluice-analysis --bench judge` (one group: append its name).

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_analysis::config::{
    DEFAULT_CONFIDENCE, Direction, EffectSize, JudgeRequest, Metric, MetricConfig, MetricData,
    Thresholds,
};
use sluice_analysis::rate_ratio::Counts;
use sluice_analysis::sample::{NanStrategy, OutlierStrategy, Sample};
use std::collections::BTreeMap;
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
    use sluice_analysis::rate_ratio::rate_ratio;
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

/// Log-normal values (Box-Muller on the Park-Miller stream) with median `median` ms and shape
/// 0.35, rounded to 0.1 ms as a latency histogram's quantiles or a timer would report them.
fn log_normal(seed: u64, n: usize, median: f64) -> Vec<f64> {
    let u = minstd(seed, 2 * n);
    (0..n)
        .map(|i| {
            let z = (-2.0 * u[2 * i].ln()).sqrt() * (std::f64::consts::TAU * u[2 * i + 1]).cos();
            (median * (0.35 * z).exp() * 10.0).round() / 10.0
        })
        .collect()
}

fn metric_config(i: usize) -> MetricConfig {
    MetricConfig {
        name: format!("metric-{i}"),
        group: ["latency", "errors", "saturation"][i % 3].to_owned(),
        direction: Direction::Increase,
        critical: i == 0,
        must_have_data: false,
        muted: false,
        nan_strategy: NanStrategy::Remove,
        outliers: OutlierStrategy::Keep,
        effect_size: EffectSize::default(),
    }
}

/// 20 metrics of 600 points a side; the last `rate_metrics` are `rateRatio` error counters
/// (the canary at 1.3 times the baseline's rate for one of them).
fn judgement_request(rate_metrics: usize) -> JudgeRequest {
    const METRICS: usize = 20;
    const POINTS: usize = 600;
    let metrics = (0..METRICS)
        .map(|i| {
            let seed = 1000 + 2 * i as u64;
            let data = if i >= METRICS - rate_metrics {
                let canary_events = if i == METRICS - 1 { 130 } else { 100 };
                MetricData::Counts {
                    control: Some(Counts {
                        events: 100,
                        total: 60_000.0,
                    }),
                    experiment: Some(Counts {
                        events: canary_events,
                        total: 60_000.0,
                    }),
                }
            } else {
                let median = 20.0 + 10.0 * i as f64;
                // Every fourth metric's canary is 10 % slower.
                let slower = if i % 4 == 3 { 1.1 } else { 1.0 };
                MetricData::Samples {
                    control: sample(log_normal(seed, POINTS, median)),
                    experiment: sample(log_normal(seed + 1, POINTS, median * slower)),
                }
            };
            Metric {
                config: metric_config(i),
                data,
            }
        })
        .collect();
    JudgeRequest {
        confidence: DEFAULT_CONFIDENCE,
        thresholds: Thresholds::default(),
        group_weights: BTreeMap::new(),
        metrics,
    }
}

fn sample(values: Vec<f64>) -> Sample {
    match Sample::new(values) {
        Ok(s) => s,
        Err(e) => panic!("bench data: {e}"),
    }
}

/// Sorted samples of one shape (see the module's comment) and the ranks to select.
fn selection_case(shape: &str, n: usize) -> (Vec<f64>, Vec<f64>, Vec<u64>) {
    let round = |v: Vec<f64>, unit: f64| v.into_iter().map(|x| (x / unit).round() * unit).collect();
    let log_normal = |seed, shift: f64| -> Vec<f64> {
        let u = minstd(seed, 2 * n);
        (0..n)
            .map(|i| {
                let z =
                    (-2.0 * u[2 * i].ln()).sqrt() * (std::f64::consts::TAU * u[2 * i + 1]).cos();
                (2.0 * z).exp() + shift
            })
            .collect()
    };
    let (mut x, mut y): (Vec<f64>, Vec<f64>) = match shape {
        "whole_units" => (
            round(latency(1234, n, 0.5), 1.0),
            round(latency(4321, n, 0.0), 1.0),
        ),
        "tenth_units" => (
            round(latency(1234, n, 0.5), 0.1),
            round(latency(4321, n, 0.0), 0.1),
        ),
        "log_normal" => (log_normal(1234, 0.3), log_normal(4321, 0.0)),
        _ => (latency(1234, n, 0.5), latency(4321, n, 0.0)),
    };
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    let total = (n * n) as u64;
    let ranks = if shape == "tails" {
        vec![total / 100, total - total / 100]
    } else {
        let within = sluice_analysis::mann_whitney::run_terms(&x)
            + sluice_analysis::mann_whitney::run_terms(&y);
        let (low, high) = sluice_analysis::hodges_lehmann::interval_ranks(n, n, within, 0.98);
        vec![low, total.div_ceil(2), high]
    };
    (x, y, ranks)
}

fn bench_selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("selection");
    group.sample_size(20);
    for shape in [
        "latency",
        "whole_units",
        "tenth_units",
        "log_normal",
        "tails",
    ] {
        let (x, y, ranks) = selection_case(shape, 100_000);
        let d = sluice_analysis::selection::Differences::new(&x, &y);
        group.bench_function(format!("100000x2_{shape}"), |b| {
            b.iter(|| d.select_many_with_next(black_box(&ranks)))
        });
    }
    group.finish();
}

fn bench_judgement(c: &mut Criterion) {
    let mut group = c.benchmark_group("judgement");
    group.sample_size(50);
    for (name, rate_metrics) in [("20x600_mann_whitney", 0), ("20x600_5_rate_ratio", 5)] {
        let request = judgement_request(rate_metrics);
        group.bench_function(name, |b| {
            b.iter(|| sluice_analysis::judge(black_box(&request)))
        });
    }
    group.finish();
}

/// The judge input of `benches/judge_vs_scipy.py`: one metric, n + n latency-like points.
fn input_text(n: usize) -> String {
    let side = |seed| {
        let values: Vec<String> = latency(seed, n, if seed == 1234 { 0.5 } else { 0.0 })
            .iter()
            .map(|v| format!("{v:?}"))
            .collect();
        values.join(", ")
    };
    format!(
        r#"{{"metrics": [{{"name": "latency", "direction": "increase", "experiment": [{}], "control": [{}]}}]}}"#,
        side(1234),
        side(4321)
    )
}

fn bench_input(c: &mut Criterion) {
    let mut group = c.benchmark_group("input");
    group.sample_size(20);
    let text = input_text(100_000);
    let request = match sluice_analysis::input::parse(&text) {
        Ok(r) => r,
        Err(e) => panic!("bench input: {e}"),
    };
    group.bench_function("parse_100000x2", |b| {
        b.iter(|| sluice_analysis::input::parse(black_box(&text)))
    });
    group.bench_function("judge_100000x2", |b| {
        b.iter(|| sluice_analysis::judge(black_box(&request)))
    });
    group.finish();
}

criterion_group!(
    wall,
    bench_compare,
    bench_rate_ratio,
    bench_judgement,
    bench_input,
    bench_selection
);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench_compare_cpu
}
criterion_main!(wall, cpu);
