//! The narrowing rounds of the selection of several ranks at once: per-target candidate
//! windows, the choice of each round's pivots (a sample's, then interpolated between the
//! exact counts seen, the weighted median when a round removed too little), the staircase
//! pass that counts up to three targets' pivots in one walk over the rows, and the final
//! selection among the few candidates left. Reads the matrix only.

use super::interpolate::Known;
use super::pivots::{draw_sample, pick_bracket, weighted_median_pivot};
use super::{Differences, PAD, walk_ge, walk_gt};

/// Per-row candidate windows `[lo_i, hi_i)` of one target (or of all targets while they share
/// them): every difference left of a window is below the target, every difference right of
/// it is above. Columns are `u32` (a sample holds at most 2^31 values), which halves the
/// memory the rounds touch.
#[derive(Debug, Clone)]
pub(super) struct Windows {
    pub(super) rows: Vec<[u32; 2]>,
    /// Σ lo_i: differences known to rank below the target.
    pub(super) below: u64,
    /// Σ (hi_i − lo_i).
    pub(super) candidates: u64,
}

impl Windows {
    /// No rows yet: only for adopting a pass's rows.
    fn empty() -> Self {
        Self {
            rows: Vec::new(),
            below: 0,
            candidates: 0,
        }
    }

    fn full(rows: usize, cols: u32) -> Self {
        Self {
            rows: vec![[0, cols]; rows],
            below: 0,
            candidates: rows as u64 * u64::from(cols),
        }
    }

    /// Applies the bounds a pass proved for target ranks `low..=high` (see [`bounds`]): the
    /// pass's rows become the windows when both its columns bound them, else the windows are
    /// clamped to the proven side, in one pass that recounts. Returns the buffer no longer
    /// needed.
    fn apply(
        &mut self,
        mut counted: Vec<[u32; 2]>,
        sums: (u64, u64),
        proven: Bounds,
    ) -> Vec<[u32; 2]> {
        if proven.adopts() {
            std::mem::swap(&mut self.rows, &mut counted);
            self.below = sums.0;
            self.candidates = sums.1 - sums.0;
            return counted;
        }
        let (mut below, mut candidates) = (0u64, 0u64);
        for (window, row) in self.rows.iter_mut().zip(&counted) {
            let [mut l, mut h] = *window;
            if let Some(f) = proven.floor {
                l = row[f].clamp(l, h);
            }
            if let Some(c) = proven.ceiling {
                h = row[c].clamp(l, h);
            }
            *window = [l, h];
            below += u64::from(l);
            candidates += u64::from(h - l);
        }
        self.below = below;
        self.candidates = candidates;
        counted
    }
}

impl Bounds {
    /// The pass's rows are exactly the new windows.
    fn adopts(self) -> bool {
        matches!((self.floor, self.ceiling), (Some(0), Some(1)))
    }
}

/// Which column of a pass's rows (0: `#{d ≤ a}`, 1: `#{d < b}`) is a proven floor and which a
/// proven ceiling for every target rank in `low..=high`.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    floor: Option<usize>,
    ceiling: Option<usize>,
}

/// From the sums `(#{d ≤ a}, #{d < b})` of a pass with pivots a ≤ b: the differences ≤ a all
/// lie below every target when there are fewer than `low` of them (a floor), those < b
/// likewise; the differences > a all lie above when at least `high` are ≤ a (a ceiling),
/// those ≥ b when at least `high` are < b. Of two proven floors (or ceilings) the one that
/// removes more is taken: for a < b the one by b (a), for a = b the one by ≤ a (< b), which a
/// round on a single pivot needs to remove the differences equal to it.
fn bounds((le_a, lt_b): (u64, u64), (a, b): (f64, f64), low: u64, high: u64) -> Bounds {
    let (by_a, by_b) = (Some(0), Some(1));
    let floors = [(lt_b < low, by_b), (le_a < low, by_a)];
    let ceilings = [(le_a >= high, by_a), (lt_b >= high, by_b)];
    let pick = |mut options: [(bool, Option<usize>); 2]| {
        if a == b {
            options.reverse();
        }
        options.into_iter().find(|o| o.0).and_then(|o| o.1)
    };
    Bounds {
        floor: pick(floors),
        ceiling: pick(ceilings),
    }
}

/// One target rank during the rounds.
struct Target {
    k: u64,
    /// Its own windows, or `None` while it still shares the first round's.
    windows: Option<Windows>,
    /// Pivots for the next pass, when already chosen.
    pivots: Option<(f64, f64)>,
    /// The last round removed less than a quarter: pivot on the weighted median next.
    guaranteed: bool,
    /// The last interpolated round left a window far wider than aimed at (a block of equal
    /// differences, or a bend): a sample's pivots next, which are differences themselves.
    tied: bool,
    /// The k-th difference and, when known, the (k+1)-th.
    found: Option<(f64, Option<f64>)>,
    /// The exact counts seen so far around k, for interpolated pivots.
    known: Known,
}

impl Target {
    fn new(k: u64) -> Self {
        Self {
            k,
            windows: None,
            pivots: None,
            guaranteed: false,
            tied: false,
            found: None,
            known: Known::default(),
        }
    }
}

/// Scratch buffers reused across rounds.
#[derive(Default)]
struct Work {
    values: Vec<f64>,
    pairs: Vec<(f64, u64)>,
    /// Row buffers of finished passes, for the next ones.
    spare: Vec<Vec<[u32; 2]>>,
}

impl Work {
    /// A row buffer of length n (every buffer given back has that length).
    fn rows(&mut self, n: usize) -> Vec<[u32; 2]> {
        self.spare.pop().unwrap_or_else(|| vec![[0, 0]; n])
    }

    fn give(&mut self, rows: Vec<[u32; 2]>) {
        if !rows.is_empty() {
            self.spare.push(rows);
        }
    }
}

/// The k-th difference (and the (k+1)-th when found on the way) for each k in `ranks`, all
/// within 1..=n·m. `None` if a sample has 2^32 or more values.
pub(super) fn select(d: &Differences<'_>, ranks: &[u64]) -> Option<Vec<(f64, Option<f64>)>> {
    let cols = u32::try_from(d.cols()).ok()?;
    let (first, last) = (*ranks.iter().min()?, *ranks.iter().max()?);
    let n = d.x.len();
    let finish = finish_at(d);
    let mut work = Work::default();
    let mut shared = Windows::full(n, cols);
    let mut targets: Vec<Target> = ranks.iter().map(|&k| Target::new(k)).collect();
    if ranks.len() > 1 && shared.candidates > finish {
        // One round bracketing all targets at once: below the smallest, above the largest.
        draw_sample(d, &shared, first ^ last, &mut work.values)?;
        let pivots = pick_bracket(&mut work.values, &shared, first, last)?;
        let mut counted = work.rows(n);
        let [sums] = count(d, [pivots], [&mut counted]);
        let spare = shared.apply(counted, sums, bounds(sums, pivots, first, last));
        work.give(spare);
        for t in &mut targets {
            t.known.learn(t.k, pivots, sums);
        }
    }
    if shared.candidates > finish {
        // The targets still share their windows: one sample gives each its first pivots.
        draw_sample(d, &shared, first ^ last ^ 1, &mut work.values)?;
        for t in &mut targets {
            t.pivots = pick_bracket(&mut work.values, &shared, t.k, t.k);
        }
    }
    narrow_all(d, targets, &shared, &mut work)
}

/// Runs rounds until every target is found; targets without windows of their own start
/// from `shared`.
fn narrow_all(
    d: &Differences<'_>,
    mut targets: Vec<Target>,
    shared: &Windows,
    work: &mut Work,
) -> Option<Vec<(f64, Option<f64>)>> {
    let finish = finish_at(d);
    loop {
        let mut active = Vec::with_capacity(targets.len());
        for t in targets.iter_mut().filter(|t| t.found.is_none()) {
            let windows = t.windows.as_ref().unwrap_or(shared);
            if windows.candidates <= finish {
                t.found = Some(finish_target(d, windows, t.k, &mut work.values)?);
                if let Some(own) = t.windows.take() {
                    work.give(own.rows);
                }
            } else {
                active.push(t);
            }
        }
        if active.is_empty() {
            break;
        }
        for group in active.chunks_mut(3) {
            round(d, group, shared, work)?;
        }
    }
    targets.into_iter().map(|t| t.found).collect()
}

/// [`select`] of one rank whose first round uses the given pivots, for the tests of bad
/// pivots.
#[cfg(test)]
pub(super) fn select_with_pivots(
    d: &Differences<'_>,
    k: u64,
    pivots: (f64, f64),
) -> Option<(f64, Option<f64>)> {
    let cols = u32::try_from(d.cols()).ok()?;
    let shared = Windows::full(d.x.len(), cols);
    let mut target = Target::new(k);
    target.pivots = Some(pivots);
    narrow_all(d, vec![target], &shared, &mut Work::default())?.pop()
}

/// Candidates left when a target's windows are copied out for the final selection: about
/// n + m, where copying and selecting cost about what one more round would.
fn finish_at(d: &Differences<'_>) -> u64 {
    (d.x.len() + d.cols()).max(4096) as u64
}

/// The smallest margin an interpolated pivot aims at: windows of about a quarter of n + m
/// are finished at once (see [`finish_at`]).
fn interpolation_floor(d: &Differences<'_>) -> u64 {
    finish_at(d) / 8
}

/// One round for up to three targets: pivots for those without, one staircase pass counting
/// all of them, then each target's windows narrowed (or its value found).
fn round(
    d: &Differences<'_>,
    group: &mut [&mut Target],
    shared: &Windows,
    work: &mut Work,
) -> Option<()> {
    let mut pivots = Vec::with_capacity(group.len());
    for t in group.iter_mut() {
        let windows = t.windows.as_ref().unwrap_or(shared);
        let chosen = match t.pivots.take() {
            Some(given) => given,
            None if t.guaranteed => {
                let p = weighted_median_pivot(d, windows, &mut work.pairs)?;
                (p, p)
            }
            None => {
                let line = (!t.tied)
                    .then(|| t.known.pivots(t.k, d.count(), interpolation_floor(d)))
                    .flatten();
                match line {
                    Some(interpolated) => interpolated,
                    None => {
                        draw_sample(d, windows, t.k, &mut work.values)?;
                        pick_bracket(&mut work.values, windows, t.k, t.k)?
                    }
                }
            }
        };
        pivots.push(chosen);
    }
    let n = d.x.len();
    let mut counted: Vec<Vec<[u32; 2]>> = (0..group.len()).map(|_| work.rows(n)).collect();
    let sums = {
        let mut out: Vec<&mut [[u32; 2]]> = counted.iter_mut().map(|v| &mut v[..]).collect();
        match (pivots.as_slice(), out.as_mut_slice()) {
            (&[p], [o]) => count(d, [p], [o]).to_vec(),
            (&[p, q], [o, r]) => count(d, [p, q], [o, r]).to_vec(),
            (&[p, q, s], [o, r, t]) => count(d, [p, q, s], [o, r, t]).to_vec(),
            _ => return None,
        }
    };
    for ((t, rows), (&(a, b), &sum)) in group.iter_mut().zip(counted).zip(pivots.iter().zip(&sums))
    {
        let (le_a, lt_b) = sum;
        t.tied = t.known.learn(t.k, (a, b), sum);
        // With a single pivot (a = b) the pass counts #{d ≤ a} and #{d < a}: the k-th is a
        // itself when it lies between them.
        if lt_b < t.k && t.k <= le_a {
            t.found = Some((a, (le_a > t.k).then_some(a)));
            work.give(rows);
            if let Some(own) = t.windows.take() {
                work.give(own.rows);
            }
            continue;
        }
        let proven = bounds(sum, (a, b), t.k, t.k);
        let before = t.windows.as_ref().unwrap_or(shared).candidates;
        let windows = match &mut t.windows {
            Some(own) => own,
            // Adopting the pass's rows needs no copy of the shared windows.
            None if proven.adopts() => t.windows.insert(Windows::empty()),
            None => t.windows.insert(shared.clone()),
        };
        let spare = windows.apply(rows, sum, proven);
        work.give(spare);
        t.guaranteed = windows.candidates > before - before / 4;
    }
    Some(())
}

/// One staircase pass: for each of the `T` pivot pairs `(a, b)`, each row's
/// `[#{d ≤ a}, #{d < b}]` into `out[q]` (each at least n long), and their sums.
///
/// A staircase is a chain of dependent steps (each row starts where the previous one
/// stopped); the 2·T chains of the targets are independent and run side by side.
fn count<const T: usize>(
    d: &Differences<'_>,
    pivots: [(f64, f64); T],
    out: [&mut [[u32; 2]]; T],
) -> [(u64, u64); T] {
    let n = d.x.len();
    let y = &d.y_pad[..];
    let out = out.map(|rows| &mut rows[..n]);
    let mut at = [[d.cols(); 2]; T];
    let mut sums = [(0u64, 0u64); T];
    for (i, &xi) in d.x.iter().enumerate() {
        for q in 0..T {
            let (a, b) = pivots[q];
            let [le, lt] = &mut at[q];
            *le = walk_gt(xi, y, *le, a);
            *lt = walk_ge(xi, y, *lt, b);
            // Both are at most the column count, which fits in u32 (see `select`).
            out[q][i] = [*le as u32, *lt as u32];
            sums[q].0 += *le as u64;
            sums[q].1 += *lt as u64;
        }
    }
    sums
}

/// The k-th difference among few candidates: copies them out and selects in linear time.
/// Returns it and, when there is one among the candidates, the (k+1)-th.
fn finish_target(
    d: &Differences<'_>,
    windows: &Windows,
    k: u64,
    values: &mut Vec<f64>,
) -> Option<(f64, Option<f64>)> {
    let rank = k.checked_sub(windows.below)?;
    values.clear();
    values.reserve(usize::try_from(windows.candidates).ok()?);
    for (&xi, &[l, h]) in d.x.iter().zip(&windows.rows) {
        values.extend(
            d.y_pad[l as usize + PAD..h as usize + PAD]
                .iter()
                .map(|&y| xi - y),
        );
    }
    let index = usize::try_from(rank.checked_sub(1)?).ok()?;
    if index >= values.len() {
        return None;
    }
    let (_, value, above) = values.select_nth_unstable_by(index, f64::total_cmp);
    // Everything right of the windows exceeds every candidate, so the next difference is
    // the smallest candidate above the k-th, when there is one.
    let next = above.iter().copied().reduce(f64::min);
    Some((*value, next))
}
