//! Shared support of the playground and controller tests: the one bounded wait, which names
//! what it waited for.

#![allow(dead_code)]

use std::time::Duration;

/// Poll `check` until it yields a value; fail naming `what` after 30 s (a loaded 2-core CI
/// machine running several test binaries at once).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
