"""`kubectl sluice judge` as a whole process against scipy's Mann-Whitney p-value in Python.

Run (from the repository root, after `cargo build --release --bin kubectl-sluice`):

    python3 benches/judge_vs_scipy.py [--n 100000] [--runs 11] [--input FILE] [--binary PATH]

1. Writes the judge input: one `mannWhitney` metric with n canary and n baseline points
   (latency-like values from a seeded Park-Miller generator, the same as the criterion bench's
   and `benches/judge_scipy_sizes.py`'s; canary shifted by +0.5), each value written as
   the shortest decimal that reads back to the same double.
2. Times `scipy.stats.mannwhitneyu(x, y, alternative='two-sided').pvalue` inside Python, the
   data already in memory as numpy arrays: median and minimum of --runs calls.
3. Times the whole process `kubectl-sluice judge -f FILE -o json` (start-up, reading and
   parsing the file, cleaning, sorting, U, p-value, Hodges-Lehmann estimate, exact interval,
   effect sizes, descriptive statistics, JSON output): median and minimum wall-clock time of
   --runs runs after one warm-up, and the median CPU time (user + system) of a run.
4. Prints both p-values; they must agree (the judge uses the same normal approximation with
   tie and continuity corrections at these sizes).

Figures, not assertions: the speed is recorded in docs/judge.md, never tested.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy
from scipy.stats import mannwhitneyu


from judge_data import latency


def write_input(path, n):
    x = latency(1234, n, 0.5)
    y = latency(4321, n, 0.0)
    request = {
        "metrics": [
            {
                "name": "latency",
                "direction": "increase",
                "experiment": [float(v) for v in x],
                "control": [float(v) for v in y],
            }
        ]
    }
    with open(path, "w") as f:
        json.dump(request, f)
    return x, y


def time_scipy(x, y, runs):
    times, p = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        p = mannwhitneyu(x, y, alternative="two-sided").pvalue
        times.append(time.perf_counter() - t0)
    return times, float(p)


def time_process(binary, path, runs):
    command = [binary, "judge", "-f", path, "-o", "json"]
    subprocess.run(command, check=True, capture_output=True)  # warm-up (page cache)
    walls, cpus, out = [], [], None
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out = done.stdout
    return walls, cpus, json.loads(out)


def ms(seconds):
    return f"{seconds * 1e3:8.1f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="points per side")
    parser.add_argument("--runs", type=int, default=11, help="timed runs of each")
    parser.add_argument("--input", help="where to write the input (default: a temporary file)")
    parser.add_argument("--binary", default="target/release/kubectl-sluice")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} not found: run `cargo build --release --bin kubectl-sluice`")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.input or os.path.join(tmp, "judge-input.json")
        x, y = write_input(path, args.n)
        size = os.path.getsize(path)
        print(f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
              f"Python {platform.python_version()}, scipy {scipy.__version__}, numpy {np.__version__}")
        print(f"input: {args.n:,} + {args.n:,} points, {size / 1e6:.1f} MB")
        scipy_times, scipy_p = time_scipy(x, y, args.runs)
        walls, cpus, judgement = time_process(args.binary, path, args.runs)

    stats = judgement["metrics"][0]["statistics"]
    print(f"scipy mannwhitneyu p-value, in Python:  median {ms(statistics.median(scipy_times))}"
          f"  min {ms(min(scipy_times))}")
    print(f"kubectl-sluice judge, whole process:     median {ms(statistics.median(walls))}"
          f"  min {ms(min(walls))}  cpu median {ms(statistics.median(cpus))}")
    print(f"ratio of medians (judge / scipy): "
          f"{statistics.median(walls) / statistics.median(scipy_times):.2f}")
    print(f"p-value: scipy {scipy_p!r}, judge {stats['pValue']!r}")
    print(f"judge estimate {stats['estimate']!r}, interval "
          f"[{stats['confidenceInterval']['lower']!r}, {stats['confidenceInterval']['upper']!r}]")


if __name__ == "__main__":
    main()
