"""Cross-checks of the canary judge's reference values with scipy (analysis/tests/reference_r.rs).

Run: python3 scripts/judge-reference-scipy.py   (needs numpy and scipy)
Prints scipy.stats.mannwhitneyu two-sided p-values for the cases of judge-reference.R, with the
method R's default would use ("exact" without ties when both samples are under 50, else
"asymptotic" with continuity correction), and the Hodges-Lehmann median of all differences.
"""
import numpy as np
from scipy.stats import mannwhitneyu


def minstd(seed, count):
    s, out = seed, []
    for _ in range(count):
        s = (s * 48271) % 2147483647
        out.append(s / 2147483647)
    return out


def latency(seed, n, shift):
    u = minstd(seed, 2 * n)
    return np.array([80 + 30 * u[2 * i] + 2 / (1.0005 - u[2 * i + 1]) + shift for i in range(n)])


def report(name, x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    pooled = np.concatenate([x, y])
    ties = len(np.unique(pooled)) != len(pooled)
    method = "exact" if (len(x) < 50 and len(y) < 50 and not ties) else "asymptotic"
    r = mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=True)
    hl = np.median(np.subtract.outer(x, y)) if len(x) * len(y) <= 5_000_000 else float("nan")
    print(f"{name}: U={r.statistic!r} p={r.pvalue!r} method={method} hl={hl!r}")


report("small_no_ties", [12.1, 14.3, 11.8, 15.2, 13.9, 16.4, 12.7], [10.2, 11.5, 12.4, 9.8, 11.1, 10.9])
report("small_ties", [3, 5, 5, 6, 7, 7, 8, 9], [1, 2, 3, 3, 4, 5, 5, 6, 6])
report("nan_removed", [1.2, np.nan, 2.4, 3.1, np.nan, 2.2, 2.9], [0.9, 1.1, np.nan, 1.5, 1.0])
report("tiny_exact", [1.5, 3.5, 9.25], [0.5, 2.5, 4.75, 6.0])
report("latency_60", latency(7, 60, 0.8), latency(11, 60, 0))
report("latency_2000", latency(1234, 2000, 1.5), latency(4321, 2000, 0))
report("latency_20000", latency(99, 20000, 0.25), latency(98, 20000, 0))
report("zero_inflated", [0] * 80 + [1] * 32 + [2] * 8, [0] * 100 + [1] * 20)
