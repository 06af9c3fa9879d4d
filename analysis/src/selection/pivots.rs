//! Pivots for the selection rounds: a jittered stratified sample of a target's candidates and
//! the two sample values bracketing its rank (Floyd & Rivest, CACM 18(3), 1975), or the
//! weighted median of the row windows' middle elements when a round must be guaranteed to
//! remove a quarter of the candidates (Johnson & Mizoguchi 1978). Reads the matrix and the
//! windows; touches nothing else.

use super::Differences;
use super::window::Window;

/// Sample size per round: a sixteenth of n + m, so that drawing it and choosing pivots from it
/// cost less than the staircase pass, while one round cuts the candidates by about √s/5 (some
/// twentyfold at n = m = 100,000). A quarter cut more per round but cost 2 % more instructions
/// in the whole judgement on the bench input.
fn size_for(n_plus_m: usize) -> u64 {
    (n_plus_m / 16).clamp(256, 1 << 16) as u64
}

/// Fills `values` with a jittered stratified sample of the candidates in `window` (see
/// [`Sampler`]). `None` when there is no candidate.
pub(super) fn draw_sample(
    d: &Differences<'_>,
    window: Window,
    seed: u64,
    values: &mut Vec<f64>,
) -> Option<()> {
    let candidates = window.candidates(d);
    let size = sample_size(d).min(candidates);
    if size == 0 {
        return None;
    }
    let mut sampler = Sampler::new(candidates, size, seed ^ candidates, std::mem::take(values));
    if window == Window::default() {
        // The whole matrix: position p is row p / m, column p % m.
        let m = d.cols() as u64;
        while let Some(p) = sampler.pending().filter(|&p| p < candidates) {
            let (row, col) = (usize::try_from(p / m).ok()?, usize::try_from(p % m).ok()?);
            sampler.take(d.at(row, col));
        }
    } else {
        for (&xi, (l, h)) in d.x.iter().zip(window.rows(d)) {
            sampler.row(xi, &d.y_pad, l, h);
        }
    }
    *values = sampler.into_values();
    (!values.is_empty()).then_some(())
}

/// The sample size per round for the matrix `d` (see [`sample_size`]).
pub(super) fn sample_size(d: &Differences<'_>) -> u64 {
    size_for(d.x.len() + d.cols())
}

/// A jittered stratified sample of a window's candidates, taken row by row: positions
/// (t + u_t)·C/s for t = 0..s in row-major order, u_t uniform in [0, 1) from a generator
/// seeded with `seed`. (Without the jitter the positions fall into the same column whenever
/// C/s is a multiple of the row length.) C may be an estimate (a pass that samples the
/// window between its pivots learns C only at its end): then about s·C_true/C values come
/// out, spread over the whole window all the same.
pub(super) struct Sampler {
    step: f64,
    size: u64,
    t: u64,
    next: u64,
    /// Candidates in the rows before the current one.
    start: u64,
    rng: SplitMix64,
    values: Vec<f64>,
}

impl Sampler {
    /// A sampler of about `size` of `candidates`, filling `values` (cleared first).
    pub(super) fn new(candidates: u64, size: u64, seed: u64, values: Vec<f64>) -> Self {
        let step = candidates as f64 / size.max(1) as f64;
        Self::stepping(step, size, seed, values)
    }

    /// A sampler of one in every `step` candidates, at most `size` of them.
    pub(super) fn stepping(step: f64, size: u64, seed: u64, mut values: Vec<f64>) -> Self {
        values.clear();
        let mut sampler = Self {
            step,
            size,
            t: 0,
            next: 0,
            start: 0,
            rng: SplitMix64::new(seed),
            values,
        };
        sampler.next = sampler.position(0);
        sampler
    }

    fn position(&mut self, t: u64) -> u64 {
        ((t as f64 + self.rng.unit()) * self.step) as u64
    }

    /// The sample taken.
    pub(super) fn into_values(self) -> Vec<f64> {
        self.values
    }

    /// The position of the next sample point, while the sample is not complete.
    fn pending(&self) -> Option<u64> {
        (self.t < self.size).then_some(self.next)
    }

    /// Records the value at the pending position.
    fn take(&mut self, value: f64) {
        self.values.push(value);
        self.t += 1;
        self.next = self.position(self.t);
    }

    /// The next row `xi`, whose window is columns `l..h`.
    #[inline(always)]
    pub(super) fn row(&mut self, xi: f64, y_pad: &[f64], l: usize, h: usize) {
        let end = self.start + h.saturating_sub(l) as u64;
        while self.t < self.size && self.next < end {
            // Below `end`, so within the row: the offset is below h − l.
            let col = l + (self.next - self.start) as usize;
            self.take(xi - y_pad[col + super::PAD]);
        }
        self.start = end;
    }
}

/// From a sample of the `candidates` of a window above `below` differences, a value likely
/// below the `low`-th difference and one likely above the `high`-th: the sample positions
/// expected for those ranks, widened by 2.5 standard deviations of a binomial count (a
/// stratified sample varies less, so this is generous). Two linear-time selections, no sort.
/// Returns `(a, b)` with a ≤ b.
pub(super) fn pick_bracket(
    sample: &mut [f64],
    (below, candidates): (u64, u64),
    low: u64,
    high: u64,
) -> Option<(f64, f64)> {
    let s = sample.len();
    if s == 0 {
        return None;
    }
    let position = |k: u64| k.saturating_sub(below) as f64 / candidates as f64 * s as f64;
    let spread = 2.5 * (s as f64).sqrt();
    // Float-to-int `as` casts saturate; the clamps keep both indices in range.
    let ia = ((position(low) - spread).floor() as usize).clamp(1, s) - 1;
    let ib = ((position(high) + spread).ceil() as usize).clamp(1, s) - 1;
    let (_, a, above) = sample.select_nth_unstable_by(ia, f64::total_cmp);
    let a = *a;
    let b = if ib > ia {
        let (_, b, _) = above.select_nth_unstable_by(ib - ia - 1, f64::total_cmp);
        *b
    } else {
        a
    };
    Some((a, b))
}

/// The weighted median of the row windows' middle elements, each weighted by its window
/// size (Johnson & Mizoguchi 1978): at least a quarter of the candidates lie on each side.
pub(super) fn weighted_median_pivot(
    d: &Differences<'_>,
    window: Window,
    pairs: &mut Vec<(f64, u64)>,
) -> Option<f64> {
    pairs.clear();
    for (row, (l, h)) in window.rows(d).enumerate() {
        if h > l {
            pairs.push((d.at(row, l + (h - l) / 2), (h - l) as u64));
        }
    }
    weighted_median(pairs)
}

/// Smallest value v such that the items ≤ v carry at least half of the total weight, by
/// weighted quickselect (expected linear time).
pub(super) fn weighted_median(pairs: &mut [(f64, u64)]) -> Option<f64> {
    let total: u64 = pairs.iter().map(|p| p.1).sum();
    let target = total.div_ceil(2);
    let mut slice = pairs;
    let mut acc = 0u64;
    loop {
        match slice.len() {
            0 => return None,
            1 => return Some(slice[0].0),
            len => {
                let mid = len / 2;
                slice.select_nth_unstable_by(mid, |a, b| a.0.total_cmp(&b.0));
                let left: u64 = slice[..mid].iter().map(|p| p.1).sum();
                if acc + left >= target {
                    slice = &mut slice[..mid];
                } else if acc + left + slice[mid].1 >= target {
                    return Some(slice[mid].0);
                } else {
                    acc += left + slice[mid].1;
                    slice = &mut slice[mid + 1..];
                }
            }
        }
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seedable generator, used only to place
/// sample points; results never depend on it, only running times do.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
