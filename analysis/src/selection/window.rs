//! A target's candidate window, held as the two pivots that bound it rather than as per-row
//! column ranges: every bound a pass proves is the staircase of one pivot (in each row, the
//! columns whose difference is ≤ the pivot, or < it), so the rows of a window are walked
//! again from its two pivots whenever a sample, a weighted median or the final copy needs
//! them. No per-row buffer is kept between rounds (at n = 100,000 each was 800 kB of fresh
//! memory, some 200 page faults, for every target and round). Reads the matrix only.

use super::{Differences, walk_ge, walk_gt};

/// In each row, the columns whose difference is ≤ `value` (`< value` when `strict`): a
/// prefix, since differences grow along a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cut {
    pub(super) value: f64,
    pub(super) strict: bool,
}

impl Cut {
    /// The cut's column count in row `xi`, walking left from `j` (its count in the row
    /// above, or the column count in the first row).
    #[inline(always)]
    pub(super) fn walk(self, xi: f64, y_pad: &[f64], j: usize) -> usize {
        if self.strict {
            walk_ge(xi, y_pad, j, self.value)
        } else {
            walk_gt(xi, y_pad, j, self.value)
        }
    }
}

/// A cut with its count over the whole matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bound {
    pub(super) cut: Cut,
    pub(super) count: u64,
}

/// The differences counted by `above` and not by `below`; without `below` none is below the
/// window, without `above` every difference is in or below it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Window {
    pub(super) below: Option<Bound>,
    pub(super) above: Option<Bound>,
}

impl Window {
    /// Differences known to rank below the window.
    pub(super) fn below_count(&self) -> u64 {
        self.below.map_or(0, |b| b.count)
    }

    /// Differences in the window.
    pub(super) fn candidates(&self, d: &Differences<'_>) -> u64 {
        self.above.map_or(d.count(), |b| b.count) - self.below_count()
    }

    /// Whether the window holds exactly the differences strictly between a pass's pivots,
    /// whose counts were `(#{d ≤ a}, #{d < b})`: then what the pass took out of them (a copy,
    /// a sample) is the window's.
    pub(super) fn is_between(&self, d: &Differences<'_>, (le_a, lt_b): (u64, u64)) -> bool {
        self.below_count() == le_a && self.candidates(d) == lt_b.saturating_sub(le_a)
    }

    /// Each row's window `[l, h)` of columns, in row order.
    pub(super) fn rows<'a>(
        self,
        d: &'a Differences<'a>,
    ) -> impl Iterator<Item = (usize, usize)> + 'a {
        let m = d.cols();
        let (mut l, mut h) = (m, m);
        d.x.iter().map(move |&xi| {
            if let Some(b) = self.below {
                l = b.cut.walk(xi, &d.y_pad, l);
            }
            if let Some(b) = self.above {
                h = b.cut.walk(xi, &d.y_pad, h);
            }
            let lo = if self.below.is_some() { l } else { 0 };
            let hi = if self.above.is_some() { h } else { m };
            (lo.min(hi), hi)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_the_columns_between_the_two_cuts() {
        let x = [1.0, 2.0, 4.0];
        let y = [0.0, 1.0, 3.0];
        // Rows (x_i − y, columns by y descending): [-2, 0, 1], [-1, 1, 2], [1, 3, 4].
        let d = Differences::new(&x, &y);
        let window = Window {
            below: Some(Bound {
                cut: Cut {
                    value: 0.0,
                    strict: false,
                },
                count: 3,
            }),
            above: Some(Bound {
                cut: Cut {
                    value: 3.0,
                    strict: true,
                },
                count: 7,
            }),
        };
        let rows: Vec<_> = window.rows(&d).collect();
        assert_eq!(rows, vec![(2, 3), (1, 3), (0, 1)]);
        assert_eq!(window.candidates(&d), 4);
        assert!(window.is_between(&d, (3, 7)));
        assert!(!window.is_between(&d, (3, 8)));
        let all: Vec<_> = Window::default().rows(&d).collect();
        assert_eq!(all, vec![(0, 3); 3]);
    }
}
