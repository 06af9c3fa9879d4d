//! One staircase pass over the rows: for each target's pivot pair (a, b) the counts of the
//! differences ≤ a and < b, and what the round wants of the differences strictly between
//! them (all of them, to finish with, or a sample, to choose the next pivots from). Large
//! matrices are walked in two halves on two threads: the second half's staircases start
//! where a binary search in its first row puts them, so both halves count exactly what one
//! walk would. Reads the matrix only.

use super::pivots::Sampler;
use super::{Differences, PAD, walk_ge, walk_gt};

/// From this many rows on, a pass runs in two halves on two threads (the controller's
/// judgements, hundreds of points a side, stay on their own thread).
const PARALLEL_ROWS: usize = 10_000;

/// What a pass takes out of the differences strictly between a target's pivots.
#[derive(Debug, Clone, Copy)]
pub(super) enum Want {
    Nothing,
    /// All of them, unless there are more than `cap`.
    Copy {
        cap: usize,
    },
    /// A stratified sample of one in every `step` of them, at most `size`.
    Sample {
        step: f64,
        size: u64,
        seed: u64,
    },
}

/// What a pass found for one target.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// `(#{d ≤ a}, #{d < b})`.
    pub(super) sums: (u64, u64),
    /// The differences strictly between a and b ([`Want::Copy`], `None` if over the cap).
    pub(super) between: Option<Vec<f64>>,
    /// The sample of them ([`Want::Sample`]).
    pub(super) sample: Vec<f64>,
}

/// Runs a pass for the `T` pivot pairs.
pub(super) fn pass<const T: usize>(
    d: &Differences<'_>,
    pivots: [(f64, f64); T],
    wants: [Want; T],
) -> [Outcome; T] {
    let n = d.x.len();
    if n < PARALLEL_ROWS {
        return walk(d, 0..n, [[d.cols(); 2]; T], pivots, wants.map(Taker::new));
    }
    let half = n / 2;
    // The second half's first staircase positions, by binary search in its first row.
    let xh = d.x[half];
    let starts = pivots.map(|(a, b)| [column_count(d, xh, a, false), column_count(d, xh, b, true)]);
    let halves = wants.map(split);
    let (second, first) = crate::parallel::join(
        || walk(d, half..n, starts, pivots, halves.map(|h| Taker::new(h.1))),
        || {
            walk(
                d,
                0..half,
                [[d.cols(); 2]; T],
                pivots,
                halves.map(|h| Taker::new(h.0)),
            )
        },
    );
    let mut merged = first;
    for ((out, more), want) in merged.iter_mut().zip(second).zip(wants) {
        out.sums.0 += more.sums.0;
        out.sums.1 += more.sums.1;
        out.sample.extend(more.sample);
        out.between = match (out.between.take(), more.between, want) {
            (Some(mut a), Some(b), Want::Copy { cap }) if a.len() + b.len() <= cap => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
    }
    merged
}

/// The halves of a want: a sample's step kept (so that each half is sampled as densely as
/// the other, however the candidates fall between them) and its seed changed for the
/// second, a copy's cap kept whole (checked again on merging).
fn split(want: Want) -> (Want, Want) {
    match want {
        Want::Sample { step, size, seed } => {
            let second = Want::Sample {
                step,
                size,
                seed: seed ^ 0x5DEE_CE66_D1CE_4E5B,
            };
            (want, second)
        }
        other => (other, other),
    }
}

/// In row `xi`, the number of columns whose difference is ≤ `p` (< `p` when `strict`), by
/// binary search on the computed differences (the comparisons the walks make).
fn column_count(d: &Differences<'_>, xi: f64, p: f64, strict: bool) -> usize {
    let cols = &d.y_pad[PAD..PAD + d.cols()];
    cols.partition_point(|&y| if strict { xi - y < p } else { xi - y <= p })
}

/// Rows `rows` from the staircase positions `at` of their first row's predecessor (or its
/// own).
fn walk<const T: usize>(
    d: &Differences<'_>,
    rows: std::ops::Range<usize>,
    mut at: [[usize; 2]; T],
    pivots: [(f64, f64); T],
    mut takers: [Taker; T],
) -> [Outcome; T] {
    let y = &d.y_pad[..];
    let mut sums = [(0u64, 0u64); T];
    for &xi in &d.x[rows] {
        for q in 0..T {
            let (a, b) = pivots[q];
            let [le, lt] = &mut at[q];
            *le = walk_gt(xi, y, *le, a);
            *lt = walk_ge(xi, y, *lt, b);
            sums[q].0 += *le as u64;
            sums[q].1 += *lt as u64;
            match &mut takers[q] {
                Taker::Nothing => {}
                Taker::Copy(out) => out.row(xi, y, *le, *lt),
                Taker::Sample(sampler) => sampler.row(xi, y, *le, *lt),
            }
        }
    }
    let mut outcomes = sums.map(|sums| Outcome {
        sums,
        ..Outcome::default()
    });
    for (out, taker) in outcomes.iter_mut().zip(takers) {
        match taker {
            Taker::Nothing => {}
            Taker::Copy(between) => out.between = between.into_values(),
            Taker::Sample(sampler) => out.sample = sampler.into_values(),
        }
    }
    outcomes
}

/// A want at work during a walk.
enum Taker {
    Nothing,
    Copy(Between),
    Sample(Sampler),
}

impl Taker {
    fn new(want: Want) -> Self {
        match want {
            Want::Nothing => Self::Nothing,
            Want::Copy { cap } => Self::Copy(Between::new(cap)),
            Want::Sample { step, size, seed } => {
                Self::Sample(Sampler::stepping(step, size, seed, Vec::new()))
            }
        }
    }
}

/// The differences a walk copies out of each row between a target's two pivots, into memory
/// reserved for the cap at once (growing by doubling touched and copied twice as much) but
/// not zeroed (once the allocator serves such sizes from its heap, zeroing touches the whole
/// capacity: that cost more than the copy).
struct Between {
    values: Vec<f64>,
    cap: usize,
    /// More than `cap` did not fit: the copy is void.
    overflowed: bool,
}

impl Between {
    fn new(cap: usize) -> Self {
        Self {
            values: Vec::with_capacity(cap),
            cap,
            overflowed: false,
        }
    }

    /// The row's differences `xi − y_pad[c + PAD]` for columns `le..lt`.
    #[inline(always)]
    fn row(&mut self, xi: f64, y_pad: &[f64], le: usize, lt: usize) {
        if lt <= le || self.overflowed {
            return;
        }
        if self.values.len() + (lt - le) > self.cap {
            self.overflowed = true;
            return;
        }
        let columns = &y_pad[le + PAD..lt + PAD];
        self.values.extend(columns.iter().map(|&y| xi - y));
    }

    /// The differences copied, unless they overflowed.
    fn into_values(self) -> Option<Vec<f64>> {
        (!self.overflowed).then_some(self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascending(count: usize, scale: f64, offset: f64) -> Vec<f64> {
        let mut v: Vec<f64> = (0..count)
            .map(|i| ((i * 7919) % count) as f64 * scale + offset)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Two halves on two threads count, copy and sample what one walk does.
    #[test]
    fn halves_agree_with_one_walk() {
        let x = ascending(24_000, 0.001, 0.3);
        let y = ascending(20_000, 0.0011, 0.0);
        let d = Differences::new(&x, &y);
        let pivots = [(0.29, 0.31), (0.5, 0.5), (-3.0, 40.0)];
        // #{-3 < d < 40}: #{d < 40} − #{d ≤ −3}.
        let inside = d.rank_of(40.0).0 - d.rank_of(-3.0).1;
        let wants = [
            Want::Copy { cap: 10_000_000 },
            Want::Nothing,
            Want::Sample {
                step: inside as f64 / 1000.0,
                size: 2000,
                seed: 7,
            },
        ];
        let split = pass(&d, pivots, wants);
        let one = walk(
            &d,
            0..x.len(),
            [[d.cols(); 2]; 3],
            pivots,
            wants.map(Taker::new),
        );
        for (a, b) in split.iter().zip(&one) {
            assert_eq!(a.sums, b.sums);
        }
        assert_eq!(one[2].sums.1 - one[2].sums.0, inside);
        let sorted = |v: &Option<Vec<f64>>| {
            let mut v = v.clone().unwrap_or_default();
            v.sort_by(f64::total_cmp);
            v
        };
        assert_eq!(sorted(&split[0].between), sorted(&one[0].between));
        assert_eq!(
            split[0].between.as_ref().map(Vec::len),
            Some((split[0].sums.1 - split[0].sums.0) as usize)
        );
        // One in every step of each half: 1,000 in all, give or take one a half.
        assert!(
            (998..=1002).contains(&split[2].sample.len()),
            "{}",
            split[2].sample.len()
        );
        assert!(split[2].sample.iter().all(|&v| -3.0 < v && v < 40.0));
        // A copy over its cap is void.
        let over = pass(&d, [(0.29, 0.31)], [Want::Copy { cap: 10 }]);
        assert!(over[0].between.is_none());
    }
}
