//! A failpoint before every write, for fault campaigns: a layer on the controller's client
//! that, armed for the k-th write (any verb but get, list and watch), never lets that write
//! reach the server and reports that it stopped there, so the campaign can kill the controller
//! at that point (a crash between two writes of one reconcile). Only an embedded controller
//! given one (`EmbeddedOptions::failpoints`, `None` by default) has it; `sluice controller`
//! never builds one. Touches only its own counters.

use super::client_metrics::{is_write, verb_of};
use http::Request;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// A write failpoint shared by the layer and the campaign; clones share it.
#[derive(Clone, Debug)]
pub struct Failpoint {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The write (1-based) to stop at; 0 never stops.
    armed_at: u64,
    /// Writes seen so far, the stopped one included.
    writes: AtomicU64,
    /// Becomes true when a write was stopped.
    hit: watch::Sender<bool>,
}

impl Failpoint {
    /// A failpoint that stops the `k`-th write through it (never, for `k` = 0).
    pub fn at_write(k: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                armed_at: k,
                writes: AtomicU64::new(0),
                hit: watch::channel(false).0,
            }),
        }
    }

    /// Writes seen so far (the stopped one included).
    pub fn writes(&self) -> u64 {
        self.inner.writes.load(Ordering::SeqCst)
    }

    /// Whether a write was stopped.
    pub fn is_hit(&self) -> bool {
        *self.inner.hit.borrow()
    }

    /// Wait until a write was stopped (forever, if none will be).
    pub async fn hit(&self) {
        let mut hit = self.inner.hit.subscribe();
        // The sender lives in `self`: waiting cannot fail while we hold it.
        let _ = hit.wait_for(|h| *h).await;
    }

    /// Whether this request is the one to stop (counting it when it is a write).
    fn stops<B>(&self, request: &Request<B>) -> bool {
        if !is_write(verb_of(request)) {
            return false;
        }
        let n = self.inner.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.inner.armed_at {
            return false;
        }
        self.inner.hit.send_replace(true);
        true
    }

    /// Wrap a client: the new client sends through the old one, except the stopped write,
    /// which never completes (the controller is killed while it waits).
    pub fn wrap(&self, client: kube::Client) -> kube::Client {
        let namespace = client.default_namespace().to_string();
        let failpoint = self.clone();
        let send = tower::service_fn(move |request: Request<kube::client::Body>| {
            let client = client.clone();
            let stop = failpoint.stops(&request);
            async move {
                if stop {
                    std::future::pending::<()>().await;
                }
                client.send(request).await
            }
        });
        kube::Client::new(send, namespace)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn req(op: &'static str) -> Request<()> {
        let mut r = Request::builder().uri("/x").body(()).unwrap();
        r.extensions_mut().insert(op);
        r
    }

    #[test]
    fn stops_exactly_the_armed_write_and_counts_only_writes() {
        let failpoint = Failpoint::at_write(2);
        assert!(!failpoint.stops(&req("list")));
        assert!(!failpoint.stops(&req("patch_status")));
        assert!(!failpoint.is_hit());
        assert!(!failpoint.stops(&req("get")));
        assert!(failpoint.stops(&req("create")));
        assert!(failpoint.is_hit());
        assert!(!failpoint.stops(&req("delete")));
        assert_eq!(failpoint.writes(), 3);
    }

    #[test]
    fn disarmed_never_stops() {
        let failpoint = Failpoint::at_write(0);
        for _ in 0..10 {
            assert!(!failpoint.stops(&req("patch")));
        }
        assert!(!failpoint.is_hit());
    }
}
