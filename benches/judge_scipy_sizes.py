"""Times scipy's Mann-Whitney p-value on the data of the judge's criterion bench.

Run:  python3 benches/judge_scipy_sizes.py        (needs numpy and scipy)
Then: cargo bench -p sluice-analysis --bench judge

Both use the same latency-like samples for n = m = 1,000 / 10,000 / 100,000 (a Park-Miller
generator that Rust and Python evaluate bit for bit alike; canary shifted by +0.5). scipy computes
only the two-sided p-value (`mannwhitneyu`, method "asymptotic" as R and the judge use at these
sizes); the judge computes U, the p-value, the Hodges-Lehmann estimate, the 98 % interval as
exact order statistics, the effect sizes and the descriptive statistics. The script prints the
median and the minimum wall-clock time of repeated runs and the mean CPU time per call (the
bench's `compare_cpu` group measures the same for the judge; CPU time stays comparable on a
shared, loaded machine), in milliseconds, plus the p-value so that both sides can be checked to
agree.
"""
import statistics
import time

import numpy as np
import scipy
from scipy.stats import mannwhitneyu


from judge_data import latency


def main():
    print(f"scipy {scipy.__version__}, numpy {np.__version__}")
    print(f"{'n = m':>8}  {'median ms':>10}  {'min ms':>8}  {'cpu ms':>8}  p-value")
    for n in (1_000, 10_000, 100_000):
        x = latency(1234, n, 0.5)
        y = latency(4321, n, 0.0)
        repeats = 200 if n <= 10_000 else 30
        times = []
        cpu0 = time.thread_time()
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue
            times.append((time.perf_counter() - t0) * 1e3)
        cpu = (time.thread_time() - cpu0) * 1e3 / repeats
        print(f"{n:>8}  {statistics.median(times):>10.3f}  {min(times):>8.3f}  {cpu:>8.3f}  {float(p)!r}")


if __name__ == "__main__":
    main()
