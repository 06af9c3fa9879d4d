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

/// `f` of every item, in the items' order; when their sizes add up to `threshold` or more the
/// items are split between two threads by size (each item whole, to the lighter half).
pub(crate) fn map_split<T, R>(
    items: &[T],
    size: impl Fn(&T) -> usize,
    threshold: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let (mut first_size, mut second_size) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        if first_size <= second_size {
            first.push(i);
            first_size += size(item);
        } else {
            second.push(i);
            second_size += size(item);
        }
    }
    let run =
        |part: &[usize]| -> Vec<(usize, R)> { part.iter().map(|&i| (i, f(&items[i]))).collect() };
    let fork = first_size + second_size >= threshold;
    let (a, b) = join_if(fork, || run(&second), || run(&first));
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    for (i, result) in a.into_iter().chain(b) {
        results[i] = Some(result);
    }
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_maps_keep_the_items_order() {
        let items: Vec<usize> = (0..9).map(|i| (i * 7) % 5 + 1).collect();
        let want: Vec<usize> = items.iter().map(|v| v * 10).collect();
        assert_eq!(map_split(&items, |&v| v, 0, |v| v * 10), want);
        assert_eq!(map_split(&items, |&v| v, usize::MAX, |v| v * 10), want);
        assert!(map_split(&[] as &[usize], |&v| v, 0, |v| *v).is_empty());
    }
}
