//! The narrowing rounds of the selection of several ranks at once: the choice of each
//! round's pivots (a sample's, then interpolated between the exact counts seen, the weighted
//! median when a round removed too little), the staircase pass that counts up to three
//! targets' pivots in one walk over the rows, and the final selection among the few
//! candidates left, copied out by one more walk. A target's window is the two cuts that
//! bound it (`window`), so nothing per row outlives a pass. Reads the matrix only.

use super::Differences;
use super::interpolate::Known;
use super::pass::{Outcome, Want, pass};
use super::pivots::{draw_sample, pick_bracket, sample_size, weighted_median_pivot};
use super::window::Window;

/// One target rank during the rounds.
struct Target {
    k: u64,
    /// Its window and the counts seen around it.
    known: Known,
    /// Pivots for the next pass, when already chosen from a sample.
    pivots: Option<Sampled>,
    /// Rounds in a row that removed less than a quarter of the window: after one (two when
    /// ties call for a sample's pivots first) the weighted median is the next pivot, which
    /// removes at least a quarter, so the rounds stay O(log nm) on any data.
    stalled: u8,
    /// Ties were seen (a sample whose pivots repeat, or a line that met them: see
    /// `Known::learn`): from then on a sample's pivots, which are differences themselves and
    /// can split blocks of equal ones.
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
            stalled: 0,
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
        if after > before - before / 4 {
            self.stalled = self.stalled.saturating_add(1);
        } else {
            self.stalled = 0;
        }
    }
}

/// Scratch buffers reused across rounds.
#[derive(Default)]
struct Work {
    values: Vec<f64>,
    pairs: Vec<(f64, u64)>,
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
/// sample gives each target its first pivots of its own. Targets too far apart for a shared
/// window take their first pivots from the first sample.
fn shared_rounds(d: &Differences<'_>, targets: &mut [Target], work: &mut Work) -> Option<()> {
    let first = targets.iter().map(|t| t.k).min()?;
    let last = targets.iter().map(|t| t.k).max()?;
    draw_sample(d, Window::default(), first ^ last, &mut work.values)?;
    let (a, b) = pick_bracket(&mut work.values, (0, d.count()), first, last)?;
    // The sample's share between the pivots estimates the window's size.
    let inside = work.values.iter().filter(|&&v| a < v && v < b).count() as f64;
    let share = inside / work.values.len() as f64;
    if share > 0.5 {
        // Ranks far apart (in both tails): a shared window would keep most of the matrix, so
        // each target takes its own first pivots from the sample instead.
        for t in targets.iter_mut() {
            t.pivots = bracket_from_sample(&mut work.values, (0, d.count()), t.k);
        }
        return Some(());
    }
    let estimate = (d.count() as f64 * share) as u64;
    let [outcome] = pass(d, [(a, b)], [sample_between(d, estimate, first ^ last ^ 1)]);
    let sums = outcome.sums;
    work.values = outcome.sample;
    for t in targets.iter_mut() {
        t.learn(d, (a, b), sums);
    }
    let shared = targets[0].known.window();
    let exact = shared.is_between(d, sums);
    let open = targets
        .iter()
        .all(|t| t.found.is_none() && t.known.window() == shared);
    if exact && open && complete(&work.values, d) {
        for t in targets.iter_mut() {
            let window = (sums.0, sums.1 - sums.0);
            t.pivots = bracket_from_sample(&mut work.values, window, t.k);
        }
    }
    Some(())
}

/// A pass's sample stops at this many times the sample size (its step comes from an
/// estimate of the window, which ties can throw far off).
const SAMPLE_ROOM: u64 = 4;

/// Whether a pass's sample can be used: not empty, and short of its size (a sample that
/// reached it stopped before the last rows; see [`Want::Sample`]).
fn complete(sample: &[f64], d: &Differences<'_>) -> bool {
    !sample.is_empty() && (sample.len() as u64) < SAMPLE_ROOM * sample_size(d)
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
    target.pivots = Some(Sampled {
        pivots,
        inside: 0,
        tied: false,
    });
    narrow_all(d, vec![target], &mut Work::default())?.pop()
}

/// Candidates left when a target's window is copied out for the final selection: about
/// n + m, where copying and selecting cost about what one more round would.
fn finish_at(d: &Differences<'_>) -> u64 {
    (d.x.len() + d.cols()).max(4096) as u64
}

/// The smallest margin an interpolated pivot aims at: windows of about a sixteenth of n + m,
/// copied out by the pass that finds them (see [`finish_at`]). The last lines on smooth data
/// miss by a few hundred to a few thousand at n = m = 100,000, against a margin of 6,250.
fn interpolation_floor(d: &Differences<'_>) -> u64 {
    finish_at(d) / 32
}

/// The pivots of a target's next pass, and whether the pass should copy out the differences
/// between them (when they are aimed to leave few enough to finish with).
fn choose_pivots(
    d: &Differences<'_>,
    t: &mut Target,
    work: &mut Work,
) -> Option<((f64, f64), Want)> {
    let guaranteed = t.stalled >= 2 || (t.stalled == 1 && !t.tied);
    let sampled = match t.pivots.take() {
        Some(given) => given,
        None if guaranteed => {
            let p = weighted_median_pivot(d, t.known.window(), &mut work.pairs)?;
            return Some(((p, p), Want::Nothing));
        }
        None => {
            let line = (!t.tied)
                .then(|| t.known.pivots(t.k, d.count(), interpolation_floor(d)))
                .flatten();
            if let Some(line) = line {
                // Copied out when aimed to leave few enough; a window found far wider (ties)
                // stops the copy at four times the aim.
                let aimed = t.known.aimed_window().filter(|&w| w <= finish_at(d) / 2);
                let want = match aimed {
                    Some(w) => Want::Copy {
                        cap: usize::try_from((4 * w).min(finish_at(d))).ok()?,
                    },
                    None => Want::Nothing,
                };
                return Some((line, want));
            }
            let window = t.known.window();
            draw_sample(d, window, t.k, &mut work.values)?;
            let span = (window.below_count(), window.candidates(d));
            bracket_from_sample(&mut work.values, span, t.k)?
        }
    };
    // A window that will want a sample's pivots (too wide for a line, or with ties) is
    // sampled by this very pass; with ties the estimate may be far off, and a sample that
    // reaches its size before the last row is dropped.
    let Sampled {
        pivots,
        inside,
        tied,
    } = sampled;
    t.tied |= tied;
    let again = t.tied || inside > d.count() / 16;
    let want = if again {
        sample_between(d, inside, t.k ^ inside)
    } else {
        Want::Nothing
    };
    Some((pivots, want))
}

/// A pass's sample of the differences between a target's pivots, about `estimate` of them:
/// one in every estimate / sample size (at least every one), up to [`SAMPLE_ROOM`] times the
/// sample size.
fn sample_between(d: &Differences<'_>, estimate: u64, seed: u64) -> Want {
    let size = sample_size(d);
    Want::Sample {
        step: (estimate as f64 / size as f64).max(1.0),
        size: SAMPLE_ROOM * size,
        seed,
    }
}

/// Pivots bracketing rank k from a sample of a window (`span`: the differences below it and
/// in it), and the number of differences the sample puts between them.
fn bracket_from_sample(sample: &mut [f64], span: (u64, u64), k: u64) -> Option<Sampled> {
    let pivots = pick_bracket(sample, span, k, k)?;
    let (a, b) = pivots;
    // At least one sample gap: with ties no sample value may lie strictly between.
    let inside = sample.iter().filter(|&&v| a < v && v < b).count().max(1) as f64;
    let estimate = span.1 as f64 * inside / sample.len() as f64;
    // In continuous data each pivot is in the sample once; more copies mean blocks of equal
    // differences (data on a grid, such as milliseconds), which lines cannot split.
    let copies = sample.iter().filter(|&&v| v == a || v == b).count();
    Some(Sampled {
        pivots,
        inside: estimate as u64,
        tied: copies > 4,
    })
}

/// Pivots from a sample, the number of differences it put between them, and whether it
/// showed ties.
#[derive(Debug, Clone, Copy)]
struct Sampled {
    pivots: (f64, f64),
    inside: u64,
    tied: bool,
}

/// One round for up to three targets: their pivots, one staircase pass counting all of
/// them, then each target's window narrowed, or its value found (among the differences the
/// pass copied out when they are exactly the window left).
fn round(d: &Differences<'_>, group: &mut [&mut Target], work: &mut Work) -> Option<()> {
    let mut pivots = Vec::with_capacity(group.len());
    let mut wants = Vec::with_capacity(group.len());
    for t in group.iter_mut() {
        let (chosen, want) = choose_pivots(d, t, work)?;
        pivots.push(chosen);
        wants.push(want);
    }
    let outcomes: Vec<Outcome> = match (pivots.as_slice(), wants.as_slice()) {
        (&[p], &[w]) => pass(d, [p], [w]).into(),
        (&[p, q], &[w, v]) => pass(d, [p, q], [w, v]).into(),
        (&[p, q, s], &[w, v, u]) => pass(d, [p, q, s], [w, v, u]).into(),
        _ => return None,
    };
    for ((t, &p), outcome) in group.iter_mut().zip(&pivots).zip(outcomes) {
        let sum = outcome.sums;
        t.learn(d, p, sum);
        if t.found.is_some() || !t.known.window().is_between(d, sum) {
            continue;
        }
        if let Some(mut between) = outcome.between {
            t.found = Some(select_rank(&mut between, t.k - sum.0)?);
        } else if complete(&outcome.sample, d) {
            let mut sample = outcome.sample;
            t.pivots = bracket_from_sample(&mut sample, (sum.0, sum.1 - sum.0), t.k);
        }
    }
    Some(())
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
