//! Counting every request the Kubernetes client makes (`sluice_api_requests_total` by verb and
//! HTTP code): a tower layer on the one `kube::Client`, so watches, lists, Lease renewals and
//! Events are counted along with the reconciler's own calls; writes are also summed for
//! `Metrics::writes`. Touches only its counters.

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Labels of `sluice_api_requests_total`: both bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or
    /// `other` (a connect-style call such as exec).
    pub verb: String,
    /// The HTTP status code, or `error` when no response came back.
    pub code: String,
}

/// The Kubernetes verb of a request: from the operation name kube's `Api` attaches as a
/// request extension, else from the HTTP method (and `watch=true`).
pub fn verb_of<B>(request: &Request<B>) -> &'static str {
    if let Some(op) = request.extensions().get::<&'static str>() {
        return match *op {
            "watch" | "watch_metadata" => "watch",
            "list" | "list_metadata" => "list",
            "delete_collection" => "deletecollection",
            "delete" => "delete",
            "evict" | "create_token_request" => "create",
            op if op.starts_with("get") => "get",
            op if op.starts_with("create") => "create",
            op if op.starts_with("replace") => "update",
            op if op.starts_with("patch") => "patch",
            _ => "other",
        };
    }
    let watching = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    match *request.method() {
        Method::GET if watching => "watch",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// Whether a verb of [`verb_of`] changes something (`other`, a connect-style call, counts too).
pub fn is_write(verb: &str) -> bool {
    !matches!(verb, "get" | "list" | "watch")
}

/// The layer; clones share one counter family.
#[derive(Clone, Debug)]
pub struct RequestCountLayer {
    requests: Family<RequestLabels, Counter>,
    writes: Arc<AtomicU64>,
}

impl RequestCountLayer {
    /// Count into `requests`, and every write (any verb but get, list and watch) into
    /// `writes` as well.
    pub fn new(requests: Family<RequestLabels, Counter>, writes: Arc<AtomicU64>) -> Self {
        Self { requests, writes }
    }

    /// Wrap an already built client (the embedded controller receives one): the new client
    /// sends through the old one, counting each request on the way.
    pub fn wrap(&self, client: kube::Client) -> kube::Client {
        let namespace = client.default_namespace().to_string();
        let send = tower::service_fn(move |request: Request<kube::client::Body>| {
            let client = client.clone();
            async move { client.send(request).await }
        });
        kube::Client::new(self.layer(send), namespace)
    }
}

impl<S> Layer<S> for RequestCountLayer {
    type Service = RequestCount<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestCount {
            inner,
            requests: self.requests.clone(),
            writes: self.writes.clone(),
        }
    }
}

/// The counting service.
#[derive(Clone, Debug)]
pub struct RequestCount<S> {
    inner: S,
    requests: Family<RequestLabels, Counter>,
    writes: Arc<AtomicU64>,
}

impl<S, B, R> Service<Request<B>> for RequestCount<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let verb = verb_of(&request);
        if is_write(verb) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let sent = self.inner.call(request);
        let requests = self.requests.clone();
        Box::pin(async move {
            let response = sent.await;
            let code = match &response {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            requests
                .get_or_create(&RequestLabels {
                    verb: verb.into(),
                    code,
                })
                .inc();
            response
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn req(method: Method, uri: &str, op: Option<&'static str>) -> Request<()> {
        let mut r = Request::builder().method(method).uri(uri).body(()).unwrap();
        if let Some(op) = op {
            r.extensions_mut().insert(op);
        }
        r
    }

    #[test]
    fn verbs_from_kube_operations_and_from_methods() {
        let cases = [
            (
                Method::GET,
                "/api/v1/pods?watch=true",
                Some("watch"),
                "watch",
            ),
            (Method::GET, "/api/v1/pods", Some("list"), "list"),
            (Method::GET, "/api/v1/pods/a", Some("get"), "get"),
            (Method::PATCH, "/x/status", Some("patch_status"), "patch"),
            (Method::PUT, "/x/scale", Some("replace_scale"), "update"),
            (
                Method::POST,
                "/api/v1/namespaces/d/pods/a/eviction",
                Some("evict"),
                "create",
            ),
            (
                Method::DELETE,
                "/api/v1/pods",
                Some("delete_collection"),
                "deletecollection",
            ),
            (
                Method::GET,
                "/api/v1/pods?limit=1&watch=true",
                None,
                "watch",
            ),
            (Method::GET, "/api/v1/pods", None, "get"),
            (Method::POST, "/api/v1/pods", None, "create"),
            (Method::PUT, "/api/v1/pods/a", None, "update"),
            (Method::DELETE, "/api/v1/pods/a", None, "delete"),
        ];
        for (method, uri, op, want) in cases {
            assert_eq!(
                verb_of(&req(method.clone(), uri, op)),
                want,
                "{method} {uri} {op:?}"
            );
        }
    }

    #[tokio::test]
    async fn every_write_through_the_layer_is_summed_and_reads_are_not() {
        let family = Family::<RequestLabels, Counter>::default();
        let writes = Arc::new(AtomicU64::new(0));
        let answer = tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(()))
        });
        let mut service = RequestCountLayer::new(family.clone(), writes.clone()).layer(answer);
        for (method, op) in [
            (Method::GET, "get"),
            (Method::GET, "list"),
            (Method::GET, "watch"),
            (Method::PATCH, "patch_status"),
            (Method::POST, "create"),
            (Method::DELETE, "delete"),
        ] {
            service.call(req(method, "/x", Some(op))).await.unwrap();
        }
        assert_eq!(writes.load(Ordering::Relaxed), 3);
        let patched = family
            .get_or_create(&RequestLabels {
                verb: "patch".into(),
                code: "200".into(),
            })
            .get();
        assert_eq!(patched, 1);
    }
}
