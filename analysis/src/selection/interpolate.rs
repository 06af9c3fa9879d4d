//! Pivots by interpolation between exact counts. Every staircase pass counts the differences
//! at or below (or under) each pivot exactly, so after a pass a target's rank lies between two
//! known points (value, count) of the matrix's counting function C(v) = #{d ≤ v}. Over n·m
//! differences C is a sum of n staircases with unrelated offsets: locally it is very nearly
//! linear, so the value where the straight line between the two points reaches rank k ± M is
//! a far better pivot than a sample's order statistic (a sample's rank error grows with the
//! window; the line's shrinks with the square of its width, down to the staircases' jitter
//! of some √n ranks). The margin M comes from how far the previous interpolated pivots
//! landed from their aim, scaled to the new window; a round that misses still narrows the
//! window from one side, and a round that removes less than a quarter is followed by the
//! weighted-median round of `rounds`, so the number of rounds stays O(log nm) on any data
//! (ties, gaps, rounding). Results never depend on the pivots, only the running time does.
//! Pure arithmetic on the counts; reads nothing else.

use super::window::{Bound, Cut, Window};

/// What the passes so far proved about one target rank k: its window, and how well the
/// line aimed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Known {
    /// The tightest cut known to count only differences below the k-th (count < k).
    below: Option<Bound>,
    /// The tightest cut known to count the k-th (count ≥ k).
    above: Option<Bound>,
    /// The ranks the last interpolated pivots aimed at and the window they were aimed in.
    aim: Option<Aim>,
    /// How far the last interpolated pivots' counts landed from their aim, and the window's
    /// width then.
    miss: Option<(u64, u64)>,
}

/// Where the last interpolated pivots aimed: the rank of each side that was put on the line
/// (`None` for a side left at its known bound), and the window's width then.
#[derive(Debug, Clone, Copy)]
struct Aim {
    low: Option<u64>,
    high: Option<u64>,
    width: u64,
}

impl Known {
    /// Takes in a pass's counts for pivots `a ≤ b`: `le_a = #{d ≤ a}`, `lt_b = #{d < b}`.
    /// Returns true when interpolated pivots met ties: they bracket k but leave a window far
    /// wider than aimed at (the counts jump there: values each held by many differences), or
    /// no difference lies between them (a gap between such values). Only a pivot equal to a
    /// difference can split a block of equal ones; a line cannot. (A miss without either is
    /// the line's bend, which the next line's margin takes in.)
    pub(super) fn learn(&mut self, k: u64, (a, b): (f64, f64), (le_a, lt_b): (u64, u64)) -> bool {
        let cuts = [
            (
                Cut {
                    value: a,
                    strict: false,
                },
                le_a,
            ),
            (
                Cut {
                    value: b,
                    strict: true,
                },
                lt_b,
            ),
        ];
        for (cut, count) in cuts {
            let bound = Some(Bound { cut, count });
            if count < k {
                if self.below.is_none_or(|b| count > b.count) {
                    self.below = bound;
                }
            } else if self.above.is_none_or(|b| count < b.count) {
                self.above = bound;
            }
        }
        let Some(aim) = self.aim.take() else {
            return false;
        };
        let off = |aimed: Option<u64>, got: u64| aimed.map_or(0, |r| r.abs_diff(got));
        self.miss = Some((off(aim.low, le_a).max(off(aim.high, lt_b)), aim.width));
        let aimed = aim.high.unwrap_or(k).saturating_sub(aim.low.unwrap_or(k));
        let bracketed = le_a < k && k <= lt_b;
        let wide = self.width().is_some_and(|w| w > 4 * aimed.max(1));
        (bracketed && wide) || (a < b && le_a == lt_b)
    }

    /// The count between the known bounds, when both are known.
    fn width(&self) -> Option<u64> {
        Some(self.above?.count - self.below?.count)
    }

    /// The candidates: the differences between the two bounds.
    pub(super) fn window(&self) -> Window {
        Window {
            below: self.below,
            above: self.above,
        }
    }

    /// The value every candidate equals, when the bounds are the two cuts of one value
    /// (`< v` below, `≤ v` above).
    pub(super) fn single_value(&self) -> Option<f64> {
        let (below, above) = (self.below?, self.above?);
        (below.cut.value == above.cut.value).then_some(below.cut.value)
    }

    /// How many candidates the last interpolated pivots aimed to leave, if both sides hit.
    pub(super) fn aimed_window(&self) -> Option<u64> {
        let (aim, below, above) = (self.aim?, self.below?, self.above?);
        Some(aim.high.unwrap_or(above.count) - aim.low.unwrap_or(below.count))
    }

    /// The count of the bound above the window, when there is one.
    pub(super) fn above_count(&self) -> Option<u64> {
        Some(self.above?.count)
    }

    /// Pivots aimed at ranks k − M and k + M on the line between the known points (a side
    /// whose aim falls outside the window stays at its known bound), or `None` while the
    /// target is not bracketed, or only within more than a sixteenth of all `total`
    /// differences or more than a quarter of k's distance from the nearer end (where the
    /// counting function bends too much for a line; a sample's pivots are better there), or
    /// when both aims fall outside. `floor`: the smallest margin worth
    /// aiming at (windows of about 2·floor are finished by copying them out).
    pub(super) fn pivots(&mut self, k: u64, total: u64, floor: u64) -> Option<(f64, f64)> {
        let (below, above) = (self.below?, self.above?);
        let width = above.count - below.count;
        let (below, above) = (
            (below.cut.value, below.count),
            (above.cut.value, above.count),
        );
        let edge = k.min(total - k);
        if below.0 >= above.0 || width > total / 16 || width > edge / 4 {
            return None;
        }
        // The line's error shrinks with the square of the window (its curvature).
        let expected = match self.miss {
            Some((miss, then)) => {
                let ratio = width as f64 / then.max(1) as f64;
                (miss as f64 * ratio * ratio) as u64
            }
            None => first_guess(k, total, width),
        };
        let margin = expected.saturating_mul(4).max(floor);
        let low = Some(k.saturating_sub(margin)).filter(|&r| r > below.1);
        let high = Some(k.saturating_add(margin)).filter(|&r| r < above.1);
        if low.is_none() && high.is_none() {
            return None;
        }
        self.aim = Some(Aim { low, high, width });
        Some((
            low.map_or(below.0, |r| on_line(below, above, r)),
            high.map_or(above.0, |r| on_line(below, above, r)),
        ))
    }
}

/// The expected miss of a first line, with no miss seen yet: the counting function bends
/// more the larger the window is against the distance of k from the nearer end of all the
/// differences (in the tails the differences thin out fast). A thirty-second of the window
/// times that ratio: on smooth data the misses measured at the middle were a fifth of this,
/// in the 1 % tail about as much.
fn first_guess(k: u64, total: u64, width: u64) -> u64 {
    let edge = k.min(total - k).max(1) as f64;
    (width as f64 * (width as f64 / edge) / 32.0) as u64
}

/// The value where the line through `(v0, c0)` and `(v1, c1)` reaches count `rank`, within
/// `[v0, v1]` (c0 < rank < c1 and v0 < v1).
fn on_line((v0, c0): (f64, u64), (v1, c1): (f64, u64), rank: u64) -> f64 {
    let share = (rank - c0) as f64 / (c1 - c0) as f64;
    (v0 + share * (v1 - v0)).clamp(v0, v1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matrix so large that every window here is a small share of it.
    const ALL: u64 = u64::MAX;
    /// Counts start here, so that k lies far from both ends of `ALL`.
    const BASE: u64 = 1 << 40;

    fn bound(value: f64, count: u64) -> Option<Bound> {
        Some(Bound {
            cut: Cut {
                value,
                strict: false,
            },
            count,
        })
    }

    /// Bounds 0 and 1024 holding counts BASE and BASE + 1,024,000, with a miss of 0 seen.
    fn thousand_wide() -> Known {
        Known {
            below: bound(0.0, BASE),
            above: bound(1024.0, BASE + 1_024_000),
            aim: None,
            miss: Some((0, 1)),
        }
    }

    #[test]
    fn no_pivots_until_the_target_is_bracketed() {
        let k = BASE + 50;
        let mut known = Known::default();
        assert_eq!(known.pivots(k, ALL, 1), None);
        known.learn(k, (1.0, 2.0), (BASE + 10, BASE + 20));
        assert_eq!(known.pivots(k, ALL, 1), None);
        known.learn(k, (3.0, 4.0), (BASE + 90, BASE + 100));
        assert!(known.pivots(k, ALL, 1).is_some());
    }

    #[test]
    fn pivots_lie_on_the_line_around_the_target() {
        let mut known = thousand_wide();
        // Margin 256,000 (the floor): ranks 256,000 and 768,000 into the window.
        assert_eq!(
            known.pivots(BASE + 512_000, ALL, 256_000),
            Some((256.0, 768.0))
        );
        assert_eq!(
            known.pivots(BASE + 512_000, ALL, 300_000),
            Some((212.0, 812.0))
        );
    }

    #[test]
    fn a_first_line_allows_for_the_bend_near_an_end() {
        // 1,024,000·(1,024,000/512,000)/32 = 64,000.
        assert_eq!(first_guess(512_000, 1_024_000_000, 1_024_000), 64_000);
        // The same window about the middle: 1,024,000·(1,024,000/512,000,000)/32 = 64.
        assert_eq!(first_guess(512_000_000, 1_024_000_000, 1_024_000), 64);
    }

    #[test]
    fn the_margin_follows_the_last_miss_scaled_with_the_square_of_the_window() {
        let k = BASE + 512_000;
        let mut known = thousand_wide();
        let _ = known.pivots(k, ALL, 256_000); // aims at 256,000 and 768,000 in
        // 1,000 and 2,000 off; the window is about what was aimed at: no ties.
        assert!(!known.learn(k, (256.0, 768.0), (BASE + 255_000, BASE + 770_000)));
        assert_eq!(known.miss, Some((2_000, 1_024_000)));
        // Window 515,000: expected 2,000·(515/1,024)² = 505, margin 2,020.
        let (a, b) = known.pivots(k, ALL, 1).unwrap();
        let rank = |v: f64| 255_000.0 + (v - 256.0) / 512.0 * 515_000.0;
        assert!((rank(a) - 509_980.0).abs() < 1e-6, "{}", rank(a));
        assert!((rank(b) - 514_020.0).abs() < 1e-6, "{}", rank(b));
    }

    #[test]
    fn a_side_aimed_outside_the_window_keeps_its_known_bound() {
        let mut known = Known {
            below: bound(0.0, BASE),
            above: bound(100.0, BASE + 100),
            aim: None,
            miss: Some((0, 100)),
        };
        // Margin 20 (the floor): k − 20 is below the window, k + 20 = 30 on the line.
        assert_eq!(known.pivots(BASE + 10, ALL, 20), Some((0.0, 30.0)));
        // Both sides outside: no pivots.
        assert_eq!(known.pivots(BASE + 50, ALL, 60), None);
    }

    #[test]
    fn a_window_over_a_sixteenth_of_all_differences_gets_no_line() {
        let mut known = Known::default();
        known.learn(8_000, (0.0, 10.0), (7_500, 8_500));
        assert!(known.pivots(8_000, 16_000, 1).is_some());
        assert_eq!(known.pivots(8_000, 15_999, 1), None);
    }

    #[test]
    fn a_window_over_a_quarter_of_the_way_to_the_nearer_end_gets_no_line() {
        let mut known = Known::default();
        known.learn(4_000, (0.0, 10.0), (3_500, 4_500));
        assert!(known.pivots(4_000, ALL, 1).is_some());
        let mut known = Known::default();
        known.learn(3_000, (0.0, 10.0), (2_500, 3_500));
        assert_eq!(known.pivots(3_000, ALL, 1), None);
    }

    #[test]
    fn ties_are_a_bracket_far_wider_than_aimed_or_a_gap() {
        let k = BASE + 512_000;
        let mut known = thousand_wide();
        assert_eq!(known.pivots(k, ALL, 1_000), Some((511.0, 513.0)));
        // Both counts jump far past their aim, to one block of equal differences around k.
        assert!(known.learn(k, (511.0, 513.0), (BASE + 400_000, BASE + 600_000)));
        // Window 200,000, last miss 111,000 at 1,024,000: expected 4,234, margin 16,936.
        let _ = known.pivots(k, ALL, 1_000).unwrap();
        assert!(!known.learn(k, (511.5, 512.5), (BASE + 495_000, BASE + 529_000)));
        // A miss to one side: the line bent, no ties.
        let mut known = thousand_wide();
        let (a, b) = known.pivots(k, ALL, 1_000).unwrap();
        assert!(!known.learn(k, (a, b), (BASE + 505_000, BASE + 508_000)));
        // No difference between the two pivots: a gap between blocks of equal ones.
        let mut known = thousand_wide();
        let (a, b) = known.pivots(k, ALL, 1_000).unwrap();
        assert!(known.learn(k, (a, b), (BASE + 510_000, BASE + 510_000)));
    }

    #[test]
    fn the_two_cuts_of_one_value_give_no_line_but_that_value() {
        let mut known = Known::default();
        known.learn(5, (1.0, 1.0), (9, 2));
        assert_eq!(known.pivots(5, ALL, 1), None);
        assert_eq!(known.single_value(), Some(1.0));
    }

    #[test]
    fn the_tightest_cuts_are_kept() {
        let mut known = Known::default();
        known.learn(50, (1.0, 4.0), (10, 90));
        known.learn(50, (2.0, 3.0), (20, 80));
        known.learn(50, (0.5, 5.0), (5, 95));
        assert_eq!(known.window().below_count(), 20);
        assert_eq!(known.above_count(), Some(80));
        assert_eq!(known.single_value(), None);
    }
}
