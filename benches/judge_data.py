"""The judge benches' data: latency-like samples from a seeded Park-Miller generator, which
Rust (`analysis/benches/judge.rs`) and Python evaluate bit for bit alike."""
import numpy as np


def minstd(seed, count):
    """Park-Miller minimal standard generator; Rust and R evaluate it to the same doubles."""
    s, out = seed, np.empty(count)
    for i in range(count):
        s = (s * 48271) % 2147483647
        out[i] = s / 2147483647
    return out


def latency(seed, n, shift):
    u = minstd(seed, 2 * n)
    return 80 + 30 * u[0::2] + 2 / (1.0005 - u[1::2]) + shift
