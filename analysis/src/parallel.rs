//! Two-way fork-join on scoped threads, for the large inputs of `kubectl sluice judge` only:
//! callers fork above a size threshold, so the controller's judgements (hundreds of points a
//! side, many at once inside its runtime) stay on their own thread. Touches nothing else.

/// Runs `a` on a new scoped thread and `b` on this one, and returns both results. A panic in
/// either closure is passed on to the caller.
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB,
    RA: Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(a);
        let rb = b();
        let ra = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (ra, rb)
    })
}

/// Like [`join`] when `fork` holds, else both closures in turn on this thread.
pub(crate) fn join_if<A, B, RA, RB>(fork: bool, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB,
    RA: Send,
{
    if fork { join(a, b) } else { (a(), b()) }
}
