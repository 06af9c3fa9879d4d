//! Exact selection of the k-th smallest pairwise difference x_i − y_j in O((n+m)·log(n+m))
//! time and O(n+m) memory, without ever materialising the n·m differences.
//!
//! Algorithm: the differences form a matrix with sorted rows and columns (x ascending down the
//! rows, y descending along the columns), the "X + Y" selection problem of Johnson & Mizoguchi
//! (1978, SIAM J. Comput. 7(2):147–153) applied to X + (−Y). Like Monahan's Algorithm 616
//! (ACM TOMS 10(3), 1984), each target rank keeps per-row windows `[lo_i, hi_i)` of candidate
//! columns; pivots are counted against the whole matrix with an O(n + m) staircase walk, and
//! the windows shrink to the side that must hold the target. The first pivots come from a
//! Floyd–Rivest style sample of the candidates (two pivots bracketing the target rank, from
//! a jittered stratified sample with a fixed seed, so results and running times are
//! reproducible); once a target is bracketed within a sixteenth of the matrix, its pivots
//! are interpolated between the exact counts the passes found (`interpolate`), which
//! narrows a window some hundredfold per round where a sample narrows it twentyfold;
//! whenever a round removes less than a quarter of a target's candidates, its next round
//! uses the weighted median of the row medians, which always removes at least a quarter
//! (Johnson & Mizoguchi's argument), bounding the number of rounds by O(log(nm)). When few
//! candidates remain they are copied out and finished with a linear-time
//! `select_nth_unstable`.
//!
//! Several ranks (the interval's bounds and the median) are selected together (`rounds`): a
//! first round brackets all of them at once, and every later round counts the pivots of up to
//! three targets in one staircase pass, so the pass's independent pointer chains run side by
//! side in the processor and the matrix rows are read once per round, not once per target.
//!
//! Exactness: every value compared or returned is the double `x_i − y_j` as computed by one
//! IEEE subtraction, the same double a brute-force "compute all differences and sort" produces.
//! Floating-point subtraction is monotone in each argument, so rows and columns of computed
//! differences stay sorted and the staircase counts are exact. Inputs must be finite, free of
//! NaN and −0.0 (see `Sample::new`), so IEEE comparison and `total_cmp` agree.

mod interpolate;
mod pass;
mod pivots;
mod rounds;
#[cfg(test)]
mod tests;
mod window;

/// The n·m pairwise differences `x_i − y_j` of two ascending samples, never materialised.
#[derive(Debug, Clone)]
pub struct Differences<'a> {
    x: &'a [f64],
    /// [`PAD`] times `+∞`, then y in descending order, then [`PAD`] times `−∞`: `y_pad[c + PAD]`
    /// is column c of the
    /// matrix. The sentinels stop every staircase walk at column 0 without a bounds test
    /// (x − ∞ = −∞ is never above a finite pivot).
    y_pad: Vec<f64>,
}

/// Sentinels before the first column: one per column a walk looks at in one step.
const PAD: usize = 8;

/// Moves a staircase pointer left (from a count of columns j) while the difference at its
/// left is not counted by the cut at `p` (counted: `≤ p`, or `< p` when `STRICT`), giving the
/// cut's column count in row `xi`. The [`PAD`] columns left of it are compared at once, not
/// one after the other (the compiler makes vector comparisons of them): a row's differences
/// grow along it, so the comparisons that hold are the leading ones and their number is the
/// move; only a move of all eight continues in a loop. This keeps the dependent chain from one
/// row to the next short (the usual move is about m/n columns) and the loop's branch almost
/// always predicted (eight columns took the bench's passes from 3.2 to 1.9 ms against three;
/// four were a little slower, sixteen slower still). The comparisons are those of the
/// brute-force definition, on the computed difference.
#[inline(always)]
fn walk<const STRICT: bool>(xi: f64, y_pad: &[f64], j: usize, p: f64) -> usize {
    let left = &y_pad[j..j + PAD];
    let steps: usize = left
        .iter()
        .map(|&y| usize::from(beyond::<STRICT>(xi - y, p)))
        .sum();
    if steps == PAD {
        walk_on::<STRICT>(xi, y_pad, j - steps, p)
    } else {
        j - steps
    }
}

/// The rest of a long [`walk`], out of line: a loop inside would keep the compiler from
/// unrolling the passes' loops over targets (only innermost loops are unrolled).
#[cold]
#[inline(never)]
fn walk_on<const STRICT: bool>(xi: f64, y_pad: &[f64], mut j: usize, p: f64) -> usize {
    while beyond::<STRICT>(xi - y_pad[j + PAD - 1], p) {
        j -= 1;
    }
    j
}

/// Whether difference `d` lies beyond the cut at `p`: above it, or at it too when `STRICT`.
#[inline(always)]
fn beyond<const STRICT: bool>(d: f64, p: f64) -> bool {
    if STRICT { d >= p } else { d > p }
}

/// The column count of `#{d ≤ p}` in row `xi` (see [`walk`]).
#[inline(always)]
fn walk_gt(xi: f64, y_pad: &[f64], j: usize, p: f64) -> usize {
    walk::<false>(xi, y_pad, j, p)
}

/// The column count of `#{d < p}` in row `xi` (see [`walk`]).
#[inline(always)]
fn walk_ge(xi: f64, y_pad: &[f64], j: usize, p: f64) -> usize {
    walk::<true>(xi, y_pad, j, p)
}

impl<'a> Differences<'a> {
    /// Wraps two ascending, finite samples. Costs O(m) to keep y in descending order.
    pub fn new(x_ascending: &'a [f64], y_ascending: &[f64]) -> Self {
        let mut y_pad = Vec::with_capacity(y_ascending.len() + 2 * PAD);
        y_pad.extend([f64::INFINITY; PAD]);
        y_pad.extend(y_ascending.iter().rev());
        y_pad.extend([f64::NEG_INFINITY; PAD]);
        Self {
            x: x_ascending,
            y_pad,
        }
    }

    fn cols(&self) -> usize {
        self.y_pad.len() - 2 * PAD
    }

    /// Number of differences, n·m.
    pub fn count(&self) -> u64 {
        self.x.len() as u64 * self.cols() as u64
    }

    #[inline]
    fn at(&self, row: usize, col: usize) -> f64 {
        self.x[row] - self.y_pad[col + PAD]
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

    /// The k-th smallest difference for each k in `ranks`, sharing the narrowing rounds.
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
    /// `None` when `ranks` is empty or a rank is 0 or above n·m.
    pub fn select_many_with_next(&self, ranks: &[u64]) -> Option<Vec<(f64, Option<f64>)>> {
        let (&first, &last) = (ranks.iter().min()?, ranks.iter().max()?);
        if first == 0 || last > self.count() {
            return None;
        }
        rounds::select(self, ranks)
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
}
