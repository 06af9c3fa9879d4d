//! Server-sent events: one stream per open page. It sends the page's whole view model at once
//! (so a reconnecting page resyncs, e.g. after the server restarted), then again after every
//! change of the caches that changes it; bursts of watch events are coalesced.

use super::server::App;
use super::view;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Watch events arriving within this long after a change are sent as one update.
const COALESCE: Duration = Duration::from_millis(50);
/// How soon a disconnected page tries again.
const RETRY: Duration = Duration::from_secs(1);

/// Which page the stream feeds: the overview, or one Rollout's page.
#[derive(Deserialize, Debug, Clone)]
pub struct Scope {
    pub namespace: Option<String>,
    pub name: Option<String>,
}

struct Feed {
    app: Arc<App>,
    scope: Scope,
    changes: watch::Receiver<u64>,
    last: Option<String>,
    started: bool,
}

/// `GET /api/stream[?namespace=NS&name=NAME]`: `overview` or `rollout` events (`rollout` data is
/// `null` once the Rollout is gone).
pub async fn stream(
    State(app): State<Arc<App>>,
    Query(scope): Query<Scope>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = app.store.changes();
    let feed = Feed {
        app,
        scope,
        changes,
        last: None,
        started: false,
    };
    Sse::new(futures::stream::unfold(feed, next)).keep_alive(KeepAlive::default())
}

async fn next(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if feed.started {
            feed.changes.changed().await.ok()?;
            tokio::time::sleep(COALESCE).await;
        } else {
            feed.app.store.ready().await.ok()?;
        }
        feed.changes.borrow_and_update();
        let (name, data) = render(&feed);
        if feed.last.as_ref() != Some(&data) {
            let mut event = Event::default().event(name).data(data.clone());
            if !feed.started {
                event = event.retry(RETRY);
            }
            feed.started = true;
            feed.last = Some(data);
            return Some((Ok(event), feed));
        }
        feed.started = true;
    }
}

fn render(feed: &Feed) -> (&'static str, String) {
    let world = feed.app.store.world();
    let read_only = feed.app.options.read_only;
    let json = match (&feed.scope.namespace, &feed.scope.name) {
        (Some(namespace), Some(name)) => (
            "rollout",
            serde_json::to_string(&view::detail(&world, namespace, name, read_only)),
        ),
        _ => (
            "overview",
            serde_json::to_string(&view::overview(
                &world,
                feed.app.options.namespace.as_deref(),
                read_only,
            )),
        ),
    };
    // The view models are plain data: serialising them cannot fail; `null` if it ever did.
    (json.0, json.1.unwrap_or_else(|_| "null".to_string()))
}
