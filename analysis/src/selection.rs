//! Exact selection of the k-th smallest pairwise difference x_i − y_j in O((n+m)·log(n+m))
//! time and O(n+m) memory, without ever materialising the n·m differences.
//!
//! Algorithm: the differences form a matrix with sorted rows and columns (x ascending down the
//! rows, y descending along the columns), the "X + Y" selection problem of Johnson & Mizoguchi
//! (1978, SIAM J. Comput. 7(2):147–153) applied to X + (−Y). Like Monahan's Algorithm 616
//! (ACM TOMS 10(3), 1984), each row keeps a window `[lo_i, hi_i)` of candidate columns; a pivot
//! is counted against the whole matrix with an O(n + m) staircase walk, and the windows shrink
//! to the side that must hold the k-th value. Pivots come from a Floyd–Rivest style sample of
//! the candidates (two pivots bracketing the target rank, from a jittered stratified sample with a
//! fixed seed, so results and running times are reproducible); whenever a sampled round removes less than a quarter of
//! the candidates, the next round uses the weighted median of the row medians, which always
//! removes at least a quarter (Johnson & Mizoguchi's argument), bounding the number of rounds by
//! O(log(nm)). When at most 4·(n+m) candidates remain they are copied out and finished with a
//! linear-time `select_nth_unstable`.
//!
//! Exactness: every value compared or returned is the double `x_i − y_j` as computed by one
//! IEEE subtraction, the same double a brute-force "compute all differences and sort" produces.
//! Floating-point subtraction is monotone in each argument, so rows and columns of computed
//! differences stay sorted and the staircase counts are exact. Inputs must be finite, free of
//! NaN and −0.0 (see `Sample::new`), so IEEE comparison and `total_cmp` agree.

/// The n·m pairwise differences `x_i − y_j` of two ascending samples, never materialised.
#[derive(Debug, Clone)]
pub struct Differences<'a> {
    x: &'a [f64],
    /// `+∞` followed by y in descending order: `y_pad[c + 1]` is column c of the matrix, and
    /// the sentinel stops every staircase walk at column 0 without a bounds test
    /// (x − ∞ = −∞ is never above a finite pivot).
    y_pad: Vec<f64>,
}

/// Moves a staircase pointer left while the difference at its left exceeds `p`: three
/// branch-free steps cover the usual move (about m/n columns per row), a loop the rest. The
/// comparisons are those of the brute-force definition, on the computed difference.
#[inline(always)]
fn walk_gt(xi: f64, y_pad: &[f64], mut j: usize, p: f64) -> usize {
    j -= usize::from(xi - y_pad[j] > p);
    j -= usize::from(xi - y_pad[j] > p);
    j -= usize::from(xi - y_pad[j] > p);
    while xi - y_pad[j] > p {
        j -= 1;
    }
    j
}

/// Like [`walk_gt`] for differences at or above `p`.
#[inline(always)]
fn walk_ge(xi: f64, y_pad: &[f64], mut j: usize, p: f64) -> usize {
    j -= usize::from(xi - y_pad[j] >= p);
    j -= usize::from(xi - y_pad[j] >= p);
    j -= usize::from(xi - y_pad[j] >= p);
    while xi - y_pad[j] >= p {
        j -= 1;
    }
    j
}

impl<'a> Differences<'a> {
    /// Wraps two ascending, finite samples. Costs O(m) to keep y in descending order.
    pub fn new(x_ascending: &'a [f64], y_ascending: &[f64]) -> Self {
        let mut y_pad = Vec::with_capacity(y_ascending.len() + 1);
        y_pad.push(f64::INFINITY);
        y_pad.extend(y_ascending.iter().rev());
        Self {
            x: x_ascending,
            y_pad,
        }
    }

    fn cols(&self) -> usize {
        self.y_pad.len() - 1
    }

    /// Number of differences, n·m.
    pub fn count(&self) -> u64 {
        self.x.len() as u64 * self.cols() as u64
    }

    #[inline]
    fn at(&self, row: usize, col: usize) -> f64 {
        self.x[row] - self.y_pad[col + 1]
    }

    /// `(#{d < p}, #{d ≤ p})` over all differences, in O(n + m).
    pub fn rank_of(&self, p: f64) -> (u64, u64) {
        let m = self.cols();
        let (mut j_lt, mut j_le) = (m, m);
        let (mut lt, mut le) = (0u64, 0u64);
        for &xi in self.x {
            j_le = walk_gt(xi, &self.y_pad, j_le, p);
            j_lt = walk_ge(xi, &self.y_pad, j_lt, p);
            lt += j_lt as u64;
            le += j_le as u64;
        }
        (lt, le)
    }

    /// `(#{d ≤ a}, #{d < b})` in one staircase pass, storing each row's counts in
    /// `work.le_a` and `work.lt_b`: all a successful bracket round needs.
    ///
    /// A staircase is a chain of dependent steps (each row starts where the previous one
    /// stopped), so the rows are cut into [`SEGMENTS`] runs whose starting columns come from a
    /// binary search; the runs advance in lockstep and the processor overlaps their chains.
    fn staircase_bracket(&self, a: f64, b: f64, work: &mut Workspace) -> (u64, u64) {
        let n = self.x.len();
        let y = &self.y_pad[..];
        let columns = &self.y_pad[1..];
        let run = n.div_ceil(SEGMENTS).max(1);
        let mut le_a = [0usize; SEGMENTS];
        let mut lt_b = [0usize; SEGMENTS];
        for s in 0..SEGMENTS {
            if let Some(&xi) = self.x.get(s * run) {
                // Differences grow along a row, so the counts are prefix lengths.
                le_a[s] = columns.partition_point(|&yc| xi - yc <= a);
                lt_b[s] = columns.partition_point(|&yc| xi - yc < b);
            }
        }
        let (mut sum_le_a, mut sum_lt_b) = (0u64, 0u64);
        for t in 0..run {
            for s in 0..SEGMENTS {
                // Runs do not overlap (t < run); the last one may be short.
                let i = s * run + t;
                let Some(&xi) = self.x.get(i) else {
                    continue;
                };
                le_a[s] = walk_gt(xi, y, le_a[s], a);
                lt_b[s] = walk_ge(xi, y, lt_b[s], b);
                work.le_a[i] = le_a[s];
                work.lt_b[i] = lt_b[s];
                sum_le_a += le_a[s] as u64;
                sum_lt_b += lt_b[s] as u64;
            }
        }
        (sum_le_a, sum_lt_b)
    }

    /// `(#{d < a}, #{d ≤ a}, #{d < b}, #{d ≤ b})` in one staircase pass (four independent
    /// pointers, which the processor runs side by side), storing each row's counts in `work`.
    fn staircase(&self, a: f64, b: f64, work: &mut Workspace) -> [u64; 4] {
        let n = self.x.len();
        for rows in [
            &mut work.lt_a,
            &mut work.le_a,
            &mut work.lt_b,
            &mut work.le_b,
        ] {
            rows.resize(n, 0);
        }
        let m = self.cols();
        let y = &self.y_pad[..];
        let (mut lt_a, mut le_a, mut lt_b, mut le_b) = (m, m, m, m);
        let mut sums = [0u64; 4];
        let rows = work
            .lt_a
            .iter_mut()
            .zip(work.le_a.iter_mut())
            .zip(work.lt_b.iter_mut().zip(work.le_b.iter_mut()));
        for (&xi, ((r_lt_a, r_le_a), (r_lt_b, r_le_b))) in self.x.iter().zip(rows) {
            le_b = walk_gt(xi, y, le_b, b);
            lt_b = walk_ge(xi, y, lt_b, b);
            le_a = walk_gt(xi, y, le_a, a);
            lt_a = walk_ge(xi, y, lt_a, a);
            (*r_lt_a, *r_le_a, *r_lt_b, *r_le_b) = (lt_a, le_a, lt_b, le_b);
            sums[0] += lt_a as u64;
            sums[1] += le_a as u64;
            sums[2] += lt_b as u64;
            sums[3] += le_b as u64;
        }
        sums
    }

    /// The smallest difference strictly greater than `p`, if any, in O(n + m).
    pub fn next_above(&self, p: f64) -> Option<f64> {
        let m = self.cols();
        let mut j = m;
        let mut best: Option<f64> = None;
        for (i, &xi) in self.x.iter().enumerate() {
            j = walk_gt(xi, &self.y_pad, j, p);
            if j < m {
                let d = self.at(i, j);
                best = Some(best.map_or(d, |b| b.min(d)));
            }
        }
        best
    }

    /// The k-th smallest difference (1-based, counting multiplicities), or `None` when k is 0 or
    /// larger than n·m.
    pub fn select(&self, k: u64) -> Option<f64> {
        Some(self.select_many(&[k])?[0])
    }

    /// The k-th smallest difference for each k in `ranks`, sharing the first narrowing round
    /// (the usual targets, interval bounds and median, lie close together).
    pub fn select_many(&self, ranks: &[u64]) -> Option<Vec<f64>> {
        Some(
            self.select_many_with_next(ranks)?
                .into_iter()
                .map(|(v, _)| v)
                .collect(),
        )
    }

    /// Like [`Self::select_many`], also returning the (k+1)-th difference when the search
    /// found it for free (it usually does: it is the smallest candidate above the k-th).
    pub fn select_many_with_next(&self, ranks: &[u64]) -> Option<Vec<(f64, Option<f64>)>> {
        let total = self.count();
        let (&first, &last) = (ranks.iter().min()?, ranks.iter().max()?);
        if first == 0 || last > total {
            return None;
        }
        let mut work = Workspace::new(self.x.len());
        let mut shared = Windows::full(self.x.len(), self.cols());
        if ranks.len() > 1 && shared.candidates > self.finish_at() {
            // One round bracketing all targets at once: below the smallest rank, above the
            // largest. A failed side leaves the windows as they are.
            self.draw_sample(&shared, first ^ last, &mut work)?;
            let (a, b) = pick_bracket(&mut work.values, &shared, first, last)?;
            let (le_a, lt_b) = self.staircase_bracket(a, b, &mut work);
            if a < b && le_a < first && lt_b >= last {
                shared.adopt(&mut work, le_a, lt_b);
            } else {
                let floor = (le_a < first).then_some(&work.le_a[..]);
                let ceiling = (lt_b >= last).then_some(&work.lt_b[..]);
                shared.narrow(floor, ceiling);
            }
        }
        // The targets still share their windows: one sample gives every target its first
        // per-target pivots.
        let mut first_pivots = Vec::with_capacity(ranks.len());
        if ranks.len() > 1 && shared.candidates > self.finish_at() {
            self.draw_sample(&shared, first ^ last ^ 1, &mut work)?;
            for &k in ranks {
                first_pivots.push(pick_bracket(&mut work.values, &shared, k, k));
            }
        }
        let targets: Vec<(u64, Option<(f64, f64)>)> = ranks
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, first_pivots.get(i).copied().flatten()))
            .collect();
        // Large matrices: the first target on a second thread with its own workspace.
        let fork = targets.len() > 1 && self.x.len() + self.cols() >= PARALLEL_LEN;
        let split = usize::from(fork);
        let (head, tail) = targets.split_at(split);
        let (mut found, rest) = crate::parallel::join_if(
            fork,
            || self.select_each(head, &shared, &mut Workspace::new(self.x.len())),
            || self.select_each(tail, &shared, &mut work),
        );
        found.extend(rest);
        found.into_iter().collect()
    }

    /// [`Self::select_within`] for each `(k, first pivots)`, starting from `windows`.
    fn select_each(
        &self,
        targets: &[(u64, Option<(f64, f64)>)],
        windows: &Windows,
        work: &mut Workspace,
    ) -> Vec<Option<(f64, Option<f64>)>> {
        targets
            .iter()
            .map(|&(k, pivots)| self.select_within(k, windows.clone(), pivots, work))
            .collect()
    }

    /// Candidates left when the windows are copied out for the final selection: a quarter of
    /// n + m, so the copy and the final `select_nth_unstable` cost less than one more round.
    fn finish_at(&self) -> u64 {
        (4 * (self.x.len() + self.cols())).max(4096) as u64
    }

    /// Narrows `windows` (which must contain the k-th difference) until few candidates remain,
    /// then selects among them. Returns the k-th difference and, when known without another
    /// pass, the (k+1)-th.
    fn select_within(
        &self,
        k: u64,
        mut windows: Windows,
        mut pivots: Option<(f64, f64)>,
        work: &mut Workspace,
    ) -> Option<(f64, Option<f64>)> {
        let finish_at = self.finish_at();
        let mut guaranteed_round = false;
        while windows.candidates > finish_at {
            let (a, b) = if let Some(given) = pivots.take() {
                given
            } else if guaranteed_round {
                let p = self.weighted_median_pivot(&windows, &mut work.pairs)?;
                (p, p)
            } else {
                self.sampled_pivots(&windows, k, work)?
            };
            let before = windows.candidates;
            if a < b {
                // The usual case: the bracket holds, two pointers suffice.
                let (le_a, lt_b) = self.staircase_bracket(a, b, work);
                if le_a < k && lt_b >= k {
                    windows.adopt(work, le_a, lt_b);
                    guaranteed_round = windows.candidates > before - before / 4;
                    continue;
                }
            }
            let [lt_a, le_a, lt_b, le_b] = self.staircase(a, b, work);
            if lt_a < k && k <= le_a {
                return Some((a, (le_a > k).then_some(a)));
            }
            if lt_b < k && k <= le_b {
                return Some((b, (le_b > k).then_some(b)));
            }
            // a ≤ b. Raise the floor to the larger pivot lying wholly below the answer, lower
            // the ceiling to the smaller pivot lying wholly above it.
            let floor = if le_b < k {
                Some(&work.le_b[..])
            } else if le_a < k {
                Some(&work.le_a[..])
            } else {
                None
            };
            let ceiling = if lt_a >= k {
                Some(&work.lt_a[..])
            } else if lt_b >= k {
                Some(&work.lt_b[..])
            } else {
                None
            };
            windows.narrow(floor, ceiling);
            guaranteed_round = windows.candidates > before - before / 4;
        }

        let rank = k.checked_sub(windows.below)?;
        work.values.clear();
        work.values
            .reserve(usize::try_from(windows.candidates).ok()?);
        for (row, (&l, &h)) in windows.lo.iter().zip(&windows.hi).enumerate() {
            let xi = self.x[row];
            for &y in &self.y_pad[l + 1..h + 1] {
                work.values.push(xi - y);
            }
        }
        let index = usize::try_from(rank.checked_sub(1)?).ok()?;
        if index >= work.values.len() {
            return None;
        }
        let (_, value, above) = work.values.select_nth_unstable_by(index, f64::total_cmp);
        // Everything right of the windows exceeds every candidate, so the next difference is
        // the smallest candidate above the k-th, when there is one.
        let next = above.iter().copied().reduce(f64::min);
        Some((*value, next))
    }

    /// The k-th and (k+1)-th smallest differences (the two middle values for the median of an
    /// even count). The second costs one more O(n + m) pass, not another selection.
    pub fn select_pair(&self, k: u64) -> Option<(f64, f64)> {
        let first = self.select(k)?;
        let (_, le) = self.rank_of(first);
        if le > k {
            Some((first, first))
        } else {
            Some((first, self.next_above(first)?))
        }
    }

    /// Two candidate values bracketing the target rank k, from a stratified sample of the
    /// candidates: one point in each of `s` equal slices of the candidates in row-major order,
    /// drawn in one linear pass with a fixed seed, so the sample is deterministic (in the spirit of Floyd &
    /// Rivest, CACM 18(3), 1975). Returns `(a, b)` with a ≤ b.
    fn sampled_pivots(
        &self,
        windows: &Windows,
        k: u64,
        work: &mut Workspace,
    ) -> Option<(f64, f64)> {
        self.draw_sample(windows, k, work)?;
        pick_bracket(&mut work.values, windows, k, k)
    }

    /// Fills `work.values` with a jittered stratified sample of the candidates: positions
    /// (t + u_t)·C/s for t = 0..s in row-major order, u_t uniform in [0, 1) from a generator
    /// seeded with `seed`. (Without the jitter the positions fall into the same column whenever
    /// C/s is a multiple of the row length.)
    fn draw_sample(&self, windows: &Windows, seed: u64, work: &mut Workspace) -> Option<()> {
        let candidates = windows.candidates;
        let size = sample_size(self.x.len() + self.cols()).min(candidates);
        if size == 0 {
            return None;
        }
        work.values.clear();
        let step = candidates as f64 / size as f64;
        let last = candidates - 1;
        let mut rng = SplitMix64::new(seed ^ candidates);
        let mut position = |t: u64| (((t as f64 + rng.unit()) * step) as u64).min(last);
        let mut t = 0u64;
        let mut next = position(0);
        let mut start = 0u64;
        for (row, (&l, &h)) in windows.lo.iter().zip(&windows.hi).enumerate() {
            let end = start + (h - l) as u64;
            while t < size && next < end {
                let col = l + usize::try_from(next - start).ok()?;
                work.values.push(self.at(row, col));
                t += 1;
                next = position(t);
            }
            start = end;
        }
        (!work.values.is_empty()).then_some(())
    }

    /// The weighted median of the row windows' middle elements, each weighted by its window
    /// size (Johnson & Mizoguchi 1978): at least a quarter of the candidates lie on each side.
    fn weighted_median_pivot(&self, windows: &Windows, pairs: &mut Vec<(f64, u64)>) -> Option<f64> {
        pairs.clear();
        for (row, (&l, &h)) in windows.lo.iter().zip(&windows.hi).enumerate() {
            if h > l {
                pairs.push((self.at(row, l + (h - l) / 2), (h - l) as u64));
            }
        }
        weighted_median(pairs)
    }
}

/// Per-row candidate windows `[lo_i, hi_i)`: every difference left of a window is below the
/// target, every difference right of it is above.
#[derive(Debug, Clone, Default)]
struct Windows {
    lo: Vec<usize>,
    hi: Vec<usize>,
    /// Σ lo_i: differences known to rank below the target.
    below: u64,
    /// Σ (hi_i − lo_i).
    candidates: u64,
}

impl Windows {
    fn full(rows: usize, cols: usize) -> Self {
        Self {
            lo: vec![0; rows],
            hi: vec![cols; rows],
            below: 0,
            candidates: rows as u64 * cols as u64,
        }
    }

    /// After a successful bracket round with pivots a < b taken from the candidates, the new
    /// windows are exactly `[le_a_i, lt_b_i)`: every row count lies within the old window and
    /// le_a_i ≤ lt_b_i. The row arrays are swapped in, not copied.
    fn adopt(&mut self, work: &mut Workspace, le_a: u64, lt_b: u64) {
        std::mem::swap(&mut self.lo, &mut work.le_a);
        std::mem::swap(&mut self.hi, &mut work.lt_b);
        self.below = le_a;
        self.candidates = lt_b - le_a;
    }

    /// Raises each row's floor to `floor` and lowers its ceiling to `ceiling` (either may be
    /// absent), keeping lo ≤ hi, and recounts, in one pass.
    fn narrow(&mut self, floor: Option<&[usize]>, ceiling: Option<&[usize]>) {
        let (mut below, mut candidates) = (0u64, 0u64);
        for (i, (l, h)) in self.lo.iter_mut().zip(self.hi.iter_mut()).enumerate() {
            if let Some(&f) = floor.and_then(|f| f.get(i)) {
                *l = f.clamp(*l, *h);
            }
            if let Some(&c) = ceiling.and_then(|c| c.get(i)) {
                *h = c.clamp(*l, *h);
            }
            below += *l as u64;
            candidates += (*h - *l) as u64;
        }
        self.below = below;
        self.candidates = candidates;
    }
}

/// From a sample of the candidates in `windows`, a value likely below the `low`-th difference
/// and one likely above the `high`-th: the sample positions expected for those ranks, widened
/// by 2.5 standard deviations of a binomial count (a stratified sample varies less, so this is
/// generous). Two linear-time selections, no sort. Returns `(a, b)` with a ≤ b.
fn pick_bracket(sample: &mut [f64], windows: &Windows, low: u64, high: u64) -> Option<(f64, f64)> {
    let s = sample.len();
    if s == 0 {
        return None;
    }
    let position =
        |k: u64| k.saturating_sub(windows.below) as f64 / windows.candidates as f64 * s as f64;
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

/// Independent row runs per staircase pass (see `staircase_bracket`).
const SEGMENTS: usize = 4;

/// From this n + m on, [`Differences::select_many_with_next`] selects its first target on a
/// second thread (the controller's usual samples of hundreds of points stay on one).
const PARALLEL_LEN: usize = 20_000;

/// Scratch buffers reused across rounds, all O(n + m).
struct Workspace {
    lt_a: Vec<usize>,
    le_a: Vec<usize>,
    lt_b: Vec<usize>,
    le_b: Vec<usize>,
    values: Vec<f64>,
    pairs: Vec<(f64, u64)>,
}

impl Workspace {
    fn new(rows: usize) -> Self {
        Self {
            // lt_a and le_b serve only the four-pointer fallback; they grow on first use.
            lt_a: Vec::new(),
            le_a: vec![0; rows],
            lt_b: vec![0; rows],
            le_b: Vec::new(),
            values: Vec::new(),
            pairs: Vec::new(),
        }
    }
}

/// Sample size per round: a quarter of n + m, so that drawing it costs less than the staircase
/// walk while one round cuts the candidates by about √s/5 (some ninetyfold at n = m = 100,000).
fn sample_size(n_plus_m: usize) -> u64 {
    (n_plus_m / 4).clamp(256, 1 << 16) as u64
}

/// Smallest value v such that the items ≤ v carry at least half of the total weight, by
/// weighted quickselect (expected linear time).
fn weighted_median(pairs: &mut [(f64, u64)]) -> Option<f64> {
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

#[cfg(test)]
mod tests {
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
            let mut work = Workspace::new(x.len());
            let windows = Windows::full(x.len(), y.len());
            let (value, next) = diffs
                .select_within(k, windows, Some((smallest, smallest)), &mut work)
                .unwrap();
            assert_eq!(value, expected[k as usize - 1], "k = {k}");
            if let Some(next) = next {
                assert_eq!(next, expected[k as usize], "k = {k}");
            }
        }
    }

    /// Above `PARALLEL_LEN` the first target is selected on a second thread: every value must
    /// still be the exact order statistic (checked by its rank, without the 10^8 differences)
    /// and equal the one-target selection, which stays on one thread.
    #[test]
    fn forked_selection_of_large_matrices_is_exact() {
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
        }
    }
}
