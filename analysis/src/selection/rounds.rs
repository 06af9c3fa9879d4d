//! The narrowing rounds of the selection of several ranks at once: the choice of each
//! round's pivots (a sample's, then interpolated between the exact counts seen, the weighted
//! median when a round removed too little), the staircase pass that counts up to three
//! targets' pivots in one walk over the rows, and the final selection among the few
//! candidates left, copied out by one more walk. A target's window is the two cuts that
//! bound it (`window`), so nothing per row outlives a pass. Reads the matrix only.

use super::Differences;
use super::interpolate::Known;
use super::pivots::{Sampler, draw_sample, pick_bracket, sample_size, weighted_median_pivot};
use super::window::Window;

/// One target rank during the rounds.
struct Target {
    k: u64,
    /// Its window and the counts seen around it.
    known: Known,
    /// Pivots for the next pass, when already chosen.
    pivots: Option<(f64, f64)>,
    /// The last round removed less than a quarter: pivot on the weighted median next.
    guaranteed: bool,
    /// An interpolated round met ties (see `Known::learn`): from then on a sample's pivots,
    /// which are differences themselves and can split blocks of equal ones.
    tied: bool,
    /// The k-th difference and, when known, the (k+1)-th.
    found: Option<(f64, Option<f64>)>,
}

impl Target {
    fn new(k: u64) -> Self {
        Self {
            k,
            known: Known::default(),
            pivots: None,
            guaranteed: false,
            tied: false,
            found: None,
        }
    }

    /// Takes in a pass's counts `(#{d ≤ a}, #{d < b})` for pivots `(a, b)`.
    fn learn(&mut self, d: &Differences<'_>, (a, b): (f64, f64), (le_a, lt_b): (u64, u64)) {
        let before = self.known.window().candidates(d);
        // With a single pivot (a = b) the pass counts #{d ≤ a} and #{d < a}: the k-th is a
        // itself when it lies between them.
        if a == b && lt_b < self.k && self.k <= le_a {
            self.found = Some((a, (le_a > self.k).then_some(a)));
            return;
        }
        // Once ties are seen, lines stay off for the target: its window holds few values.
        self.tied |= self.known.learn(self.k, (a, b), (le_a, lt_b));
        if let Some(value) = self.known.single_value() {
            let more = self.known.above_count().is_some_and(|c| c > self.k);
            self.found = Some((value, more.then_some(value)));
            return;
        }
        let after = self.known.window().candidates(d);
        self.guaranteed = after > before - before / 4;
    }
}

/// Scratch buffers reused across rounds.
#[derive(Default)]
struct Work {
    values: Vec<f64>,
    pairs: Vec<(f64, u64)>,
    /// The differences a pass copied out between each target's pivots.
    between: [Between; 3],
}

/// The differences a pass copies out of each row between a target's two pivots, into memory
/// allocated zeroed and touched only as far as it is written.
#[derive(Default)]
struct Between {
    /// `cap + PAD` values: every row writes [`super::PAD`] at once.
    values: Vec<f64>,
    len: usize,
    /// More than `cap` did not fit: the copy is void.
    overflowed: bool,
}

impl Between {
    /// Ready for a pass of at most `cap` differences.
    fn reset(&mut self, cap: usize) {
        if self.values.len() != cap + super::PAD {
            self.values = vec![0.0; cap + super::PAD];
        }
        self.len = 0;
        self.overflowed = false;
    }

    /// The row's differences `xi − y_pad[c + PAD]` for columns `le..lt`: the usual few by
    /// one vector write of [`super::PAD`] (the extra ones are overwritten by the next row's),
    /// longer runs one by one.
    #[inline(always)]
    fn row(&mut self, xi: f64, y_pad: &[f64], le: usize, lt: usize) {
        let here = lt.saturating_sub(le);
        if here == 0 || self.overflowed {
            return;
        }
        let room = self.values.len() - super::PAD;
        if self.len + here > room {
            self.overflowed = true;
            return;
        }
        let from = le + super::PAD;
        if here <= super::PAD {
            let to = &mut self.values[self.len..self.len + super::PAD];
            for (v, &y) in to.iter_mut().zip(&y_pad[from..from + super::PAD]) {
                *v = xi - y;
            }
        } else {
            let to = &mut self.values[self.len..self.len + here];
            for (v, &y) in to.iter_mut().zip(&y_pad[from..from + here]) {
                *v = xi - y;
            }
        }
        self.len += here;
    }

    /// The differences copied, unless they overflowed.
    fn copied(&mut self) -> Option<&mut [f64]> {
        (!self.overflowed).then(|| &mut self.values[..self.len])
    }
}

/// The k-th difference (and the (k+1)-th when found on the way) for each k in `ranks`, all
/// within 1..=n·m.
pub(super) fn select(d: &Differences<'_>, ranks: &[u64]) -> Option<Vec<(f64, Option<f64>)>> {
    let finish = finish_at(d);
    let mut work = Work::default();
    let mut targets: Vec<Target> = ranks.iter().map(|&k| Target::new(k)).collect();
    if ranks.len() > 1 && d.count() > finish {
        shared_rounds(d, &mut targets, &mut work)?;
    }
    narrow_all(d, targets, &mut work)
}

/// The first round for several targets at once: pivots from a sample of the whole matrix,
/// below the smallest rank and above the largest; the pass that counts them also samples the
/// differences between them, and when both pivots bracket every target (the usual case) that
/// sample gives each target its first pivots of its own.
fn shared_rounds(d: &Differences<'_>, targets: &mut [Target], work: &mut Work) -> Option<()> {
    let first = targets.iter().map(|t| t.k).min()?;
    let last = targets.iter().map(|t| t.k).max()?;
    draw_sample(d, Window::default(), first ^ last, &mut work.values)?;
    let (a, b) = pick_bracket(&mut work.values, (0, d.count()), first, last)?;
    // The sample's share between the pivots estimates the window's size.
    let inside = work.values.iter().filter(|&&v| a < v && v < b).count() as f64;
    let estimate = (d.count() as f64 * inside / work.values.len() as f64) as u64;
    let mut sampler = Sampler::new(estimate, sample_size(d), first ^ last ^ 1, &mut work.values);
    let [sums] = count(d, [(a, b)], [Extra::Sample(&mut sampler)]);
    for t in targets.iter_mut() {
        t.learn(d, (a, b), sums);
    }
    let shared = targets[0].known.window();
    let exact = shared.below_count() == sums.0 && shared.candidates(d) == sums.1 - sums.0;
    let open = targets
        .iter()
        .all(|t| t.found.is_none() && t.known.window() == shared);
    if exact && open && !work.values.is_empty() {
        for t in targets.iter_mut() {
            let window = (sums.0, sums.1 - sums.0);
            t.pivots = pick_bracket(&mut work.values, window, t.k, t.k);
        }
    }
    Some(())
}

/// Runs rounds until every target is found.
fn narrow_all(
    d: &Differences<'_>,
    mut targets: Vec<Target>,
    work: &mut Work,
) -> Option<Vec<(f64, Option<f64>)>> {
    let finish = finish_at(d);
    loop {
        let mut active = Vec::with_capacity(targets.len());
        for t in targets.iter_mut().filter(|t| t.found.is_none()) {
            if t.known.window().candidates(d) <= finish {
                t.found = Some(finish_target(d, t.known.window(), t.k, &mut work.values)?);
            } else {
                active.push(t);
            }
        }
        if active.is_empty() {
            break;
        }
        for group in active.chunks_mut(3) {
            round(d, group, work)?;
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
    let mut target = Target::new(k);
    target.pivots = Some(pivots);
    narrow_all(d, vec![target], &mut Work::default())?.pop()
}

/// Candidates left when a target's window is copied out for the final selection: about
/// n + m, where copying and selecting cost about what one more round would.
fn finish_at(d: &Differences<'_>) -> u64 {
    (d.x.len() + d.cols()).max(4096) as u64
}

/// The smallest margin an interpolated pivot aims at: windows of about a quarter of n + m
/// are finished at once (see [`finish_at`]).
fn interpolation_floor(d: &Differences<'_>) -> u64 {
    finish_at(d) / 8
}

/// The pivots of a target's next pass, and whether the pass should copy out the differences
/// between them (when they are aimed to leave few enough to finish with).
fn choose_pivots(
    d: &Differences<'_>,
    t: &mut Target,
    work: &mut Work,
) -> Option<((f64, f64), bool)> {
    if let Some(given) = t.pivots.take() {
        return Some((given, false));
    }
    let window = t.known.window();
    if t.guaranteed {
        let p = weighted_median_pivot(d, window, &mut work.pairs)?;
        return Some(((p, p), false));
    }
    let line = (!t.tied)
        .then(|| t.known.pivots(t.k, d.count(), interpolation_floor(d)))
        .flatten();
    if let Some(line) = line {
        let copy = t
            .known
            .aimed_window()
            .is_some_and(|w| w <= finish_at(d) / 2);
        return Some((line, copy));
    }
    draw_sample(d, window, t.k, &mut work.values)?;
    let span = (window.below_count(), window.candidates(d));
    Some((pick_bracket(&mut work.values, span, t.k, t.k)?, false))
}

/// One round for up to three targets: their pivots, one staircase pass counting all of
/// them, then each target's window narrowed, or its value found (among the differences the
/// pass copied out when they are exactly the window left).
fn round(d: &Differences<'_>, group: &mut [&mut Target], work: &mut Work) -> Option<()> {
    let mut pivots = Vec::with_capacity(group.len());
    let mut copy = [false; 3];
    for (q, t) in group.iter_mut().enumerate() {
        let (chosen, wanted) = choose_pivots(d, t, work)?;
        pivots.push(chosen);
        copy[q] = wanted;
    }
    let cap = usize::try_from(finish_at(d)).ok()?;
    let [b0, b1, b2] = &mut work.between;
    let [o0, o1, o2] = [b0, b1, b2].map(|b| {
        b.reset(cap);
        b
    });
    let outs = |q: usize, b| {
        if copy[q] {
            Extra::Copy(b)
        } else {
            Extra::Nothing
        }
    };
    let sums = match *pivots.as_slice() {
        [p] => count(d, [p], [outs(0, o0)]).to_vec(),
        [p, q] => count(d, [p, q], [outs(0, o0), outs(1, o1)]).to_vec(),
        [p, q, s] => count(d, [p, q, s], [outs(0, o0), outs(1, o1), outs(2, o2)]).to_vec(),
        _ => return None,
    };
    for (q, ((t, &p), &sum)) in group.iter_mut().zip(&pivots).zip(&sums).enumerate() {
        t.learn(d, p, sum);
        let window = t.known.window();
        let exact = window.below_count() == sum.0 && t.known.above_count() == Some(sum.1);
        if t.found.is_none()
            && copy[q]
            && exact
            && let Some(between) = work.between[q].copied()
        {
            t.found = Some(select_rank(between, t.k - sum.0)?);
        }
    }
    Some(())
}

/// What a pass takes out of the differences strictly between a target's two pivots, besides
/// counting.
enum Extra<'a, 'v> {
    Nothing,
    /// All of them.
    Copy(&'a mut Between),
    /// A sample.
    Sample(&'a mut Sampler<'v>),
}

/// One staircase pass: for each of the `T` pivot pairs `(a, b)`, the sums over the rows of
/// `#{d ≤ a}` and `#{d < b}`, and the target's [`Extra`] of the differences strictly
/// between a and b.
///
/// A staircase is a chain of dependent steps (each row starts where the previous one
/// stopped); the 2·T chains of the targets are independent and run side by side.
fn count<const T: usize>(
    d: &Differences<'_>,
    pivots: [(f64, f64); T],
    mut extras: [Extra<'_, '_>; T],
) -> [(u64, u64); T] {
    let y = &d.y_pad[..];
    let mut at = [[d.cols(); 2]; T];
    let mut sums = [(0u64, 0u64); T];
    for &xi in d.x {
        for q in 0..T {
            let (a, b) = pivots[q];
            let [le, lt] = &mut at[q];
            *le = super::walk_gt(xi, y, *le, a);
            *lt = super::walk_ge(xi, y, *lt, b);
            sums[q].0 += *le as u64;
            sums[q].1 += *lt as u64;
            match &mut extras[q] {
                Extra::Nothing => {}
                Extra::Copy(out) => out.row(xi, y, *le, *lt),
                Extra::Sample(sampler) => sampler.row(xi, y, *le, *lt),
            }
        }
    }
    sums
}

/// The k-th difference among few candidates: copies them out and selects in linear time.
/// Returns it and, when there is one among the candidates, the (k+1)-th.
fn finish_target(
    d: &Differences<'_>,
    window: Window,
    k: u64,
    values: &mut Vec<f64>,
) -> Option<(f64, Option<f64>)> {
    let rank = k.checked_sub(window.below_count())?;
    values.clear();
    values.reserve(usize::try_from(window.candidates(d)).ok()?);
    for (&xi, (l, h)) in d.x.iter().zip(window.rows(d)) {
        values.extend(
            d.y_pad[l + super::PAD..h + super::PAD]
                .iter()
                .map(|&y| xi - y),
        );
    }
    select_rank(values, rank)
}

/// The `rank`-th smallest (1-based) of a window's candidates, and the next one when there is
/// one among them.
fn select_rank(values: &mut [f64], rank: u64) -> Option<(f64, Option<f64>)> {
    let index = usize::try_from(rank.checked_sub(1)?).ok()?;
    if index >= values.len() {
        return None;
    }
    let (_, value, above) = values.select_nth_unstable_by(index, f64::total_cmp);
    // Everything right of the window exceeds every candidate, so the next difference is
    // the smallest candidate above the k-th, when there is one.
    let next = above.iter().copied().reduce(f64::min);
    Some((*value, next))
}
