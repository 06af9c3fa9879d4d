//! The back-off policy of every watch the controller runs, and the adapter that keeps one
//! watch's errors from pausing the others. Touches no API; pure stream plumbing.
//!
//! Why not kube-runtime's `default_backoff()`: a `410 Gone` after etcd compaction is routine,
//! and `Controller` wraps *all* of its trigger streams (the Rollout watch plus every `owns` /
//! `watches` stream) in one more `StreamBackoff`. When every watch gets a 410 at once (one
//! compaction), the errors surface one per wake-up of that shared back-off, so it doubled
//! 0.8 → 1.6 → 3.2 → 6.4 → 12 s with no successful event in between to reset it, and the
//! Rollout watch, paused with the rest, noticed a promote 10–20 s late. Here each watch backs
//! off on its own (short first delay, doubling, reset by its next successful event), and an
//! auxiliary watch's error ends at its own back-off instead of reaching the shared one.

use futures::{Stream, StreamExt, future};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use std::time::Duration;

/// First delay after an error: long enough not to hammer a failing API server, short enough
/// that the relist after a routine `410 Gone` is not noticeable.
pub const FIRST_DELAY: Duration = Duration::from_millis(200);
/// Longest delay between attempts against an API server that keeps failing.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Exponential back-off from [`FIRST_DELAY`] to [`MAX_DELAY`], doubling per consecutive error.
/// `StreamBackoff` calls `reset` on every successful item, so one good event (the relist's
/// `InitDone` included) starts the next error over at the first delay.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: FIRST_DELAY }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (delay * 2).min(MAX_DELAY);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_DELAY;
    }
}

/// An auxiliary watch stream (already backed off by [`WatchBackoff`]) with its errors logged
/// and dropped, so they never reach the `Controller`'s shared trigger back-off.
pub fn absorb_errors<K, S>(
    stream: S,
    watch: String,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
    S: Stream<Item = Result<K, watcher::Error>> + Send + 'static,
{
    stream.filter_map(move |item| {
        future::ready(match item {
            Ok(obj) => Some(Ok(obj)),
            Err(error) => {
                tracing::debug!(%error, watch = %watch, "watch error; re-watching after back-off");
                None
            }
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use futures::stream;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::utils::StreamBackoff;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = WatchBackoff::default();
        let first: Vec<_> = b.by_ref().take(3).collect();
        assert_eq!(first, [FIRST_DELAY, FIRST_DELAY * 2, FIRST_DELAY * 4]);
        assert_eq!(b.by_ref().nth(20), Some(MAX_DELAY));
        b.reset();
        assert_eq!(b.next(), Some(FIRST_DELAY));
    }

    fn gone() -> watcher::Error {
        watcher::Error::WatchError(Box::new(kube::core::Status::failure(
            "too old resource version",
            "Expired",
        )))
    }

    /// The shape `run` builds: several watches, each with its own back-off, merged and wrapped
    /// in the Controller's trigger back-off. After one compaction every watch fails once, then
    /// delivers; the last event must arrive after about one first delay (virtual time), not
    /// after a shared back-off doubled once per watch (0.2 + 0.4 + ... for six watches ≈ 12 s).
    #[tokio::test(start_paused = true)]
    async fn one_compaction_does_not_stack_the_back_off_across_watches() {
        let watches = (0..6).map(|i| {
            let events = stream::iter([Err(gone()), Ok(i)]);
            absorb_errors(events.backoff(WatchBackoff::default()), "test".into()).boxed()
        });
        let merged = StreamBackoff::new(stream::select_all(watches), WatchBackoff::default());
        let start = tokio::time::Instant::now();
        let got: Vec<i32> = merged.map(Result::unwrap).collect().await;
        assert_eq!(got.len(), 6, "every watch delivered: {got:?}");
        let took = start.elapsed();
        assert!(
            took < FIRST_DELAY * 2,
            "six simultaneous 410s should cost one first delay, took {took:?}"
        );
    }
}
