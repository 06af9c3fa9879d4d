//! Watch streams: initial state or replay from a resourceVersion, then live events from the
//! collection's broadcast channel, with selectors, bookmarks (including the
//! `k8s.io/initial-events-end` bookmark of streaming lists), timeouts, `410 Gone` as an ERROR
//! event, and dropping on demand. Produces newline-delimited JSON lines into a channel.

use super::error::ApiError;
use super::ops::Api;
use super::registry::{ResourceDef, View};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Collection, EventType, Store, WatchEvent, WatchStart, watch_line};
use super::table;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// What a watch request asked for.
#[derive(Debug, Clone, Default)]
pub struct WatchOpts {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `None`, `""` and `"0"` start from the current state.
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
    /// Send each object as a one-row `meta.k8s.io/v1` Table (what `kubectl get -w` asks for).
    pub table: bool,
}

struct Filter {
    def: Arc<ResourceDef>,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    convert: bool,
    table: bool,
}

impl Filter {
    fn keep(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && obj.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// Whether the stored object must be re-rendered for this served version (the shared,
    /// pre-serialized line is used otherwise).
    fn needs_conversion(&self, obj: &Value) -> bool {
        self.convert
            && (self.def.view == View::EventsV1
                || obj.get("apiVersion").and_then(Value::as_str)
                    != Some(self.def.api_version().as_str()))
    }

    /// Initial ADDED events carry the object at the served version.
    fn line_initial(&self, event: &WatchEvent) -> Bytes {
        if self.table || self.convert {
            self.line(event)
        } else {
            watch_line("ADDED", &event.object)
        }
    }

    /// The line this watch sends for an event, if any: a MODIFIED change that moves the
    /// object into or out of the selection becomes ADDED or DELETED.
    fn render(&self, event: &WatchEvent) -> Option<Bytes> {
        let now = self.keep(&event.object);
        let before = event.previous.as_ref().map(|p| self.keep(p));
        match (event.kind, before, now) {
            (EventType::Modified, Some(false), true) => {
                Some(self.line_as(EventType::Added, &event.object))
            }
            (EventType::Modified, Some(true), false) => {
                Some(self.line_as(EventType::Deleted, &event.object))
            }
            (_, _, true) => Some(self.line(event)),
            _ => None,
        }
    }

    fn line_as(&self, kind: EventType, object: &Value) -> Bytes {
        if self.table {
            watch_line(
                kind.as_str(),
                &table::from_object(&self.def, &Api::present(&self.def, object)),
            )
        } else {
            watch_line(kind.as_str(), &Api::present(&self.def, object))
        }
    }

    fn line(&self, event: &WatchEvent) -> Bytes {
        if self.table {
            watch_line(
                event.kind.as_str(),
                &table::from_object(&self.def, &Api::present(&self.def, &event.object)),
            )
        } else if self.needs_conversion(&event.object) {
            watch_line(event.kind.as_str(), &Api::present(&self.def, &event.object))
        } else {
            event.line()
        }
    }
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    watch_line(
        "BOOKMARK",
        &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": metadata}),
    )
}

/// The ERROR event the real server sends when a watch cannot continue.
pub fn error_line(error: &ApiError) -> Bytes {
    watch_line("ERROR", &error.to_status())
}

/// Start a watch and return the receiving end of its lines. The stream ends on timeout, on
/// `drop_watches`, on `410 Gone`, or when the receiver is dropped.
pub fn start(
    store: Arc<Store>,
    def: Arc<ResourceDef>,
    collection: Arc<Collection>,
    opts: WatchOpts,
    bookmark_every: Duration,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let from = match opts.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(rv) => match rv.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                let _ = tx.try_send(error_line(&ApiError::BadRequest(format!(
                    "invalid resource version: {rv}"
                ))));
                return rx;
            }
        },
    };
    let from = if opts.send_initial_events { None } else { from };
    let filter = Filter {
        convert: def.view == View::EventsV1 || def.crd.is_some(),
        table: opts.table,
        namespace: if def.namespaced {
            opts.namespace.clone()
        } else {
            None
        },
        labels: opts.labels.clone(),
        fields: opts.fields.clone(),
        def,
    };
    let mut dropped = store.drop_watches_signal();
    dropped.borrow_and_update();
    tokio::spawn(async move {
        let (start, mut events) = match collection.watch(&store, from) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(error_line(&e)).await;
                return;
            }
        };
        let mut last_rv = from.unwrap_or(0);
        match start {
            WatchStart::Replay(replay) => {
                for ev in replay {
                    last_rv = ev.rv;
                    if let Some(line) = filter.render(&ev)
                        && tx.send(line).await.is_err()
                    {
                        return;
                    }
                }
            }
            WatchStart::Initial { objects, rv } => {
                last_rv = rv;
                for obj in objects {
                    let ev = WatchEvent::new(rv, EventType::Added, obj);
                    if filter.keep(&ev.object) && tx.send(filter.line_initial(&ev)).await.is_err() {
                        return;
                    }
                }
                if opts.send_initial_events
                    && opts.bookmarks
                    && tx.send(bookmark(&filter.def, rv, true)).await.is_err()
                {
                    return;
                }
            }
        }
        let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            let sleep_until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                received = events.recv() => match received {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(line) = filter.render(&ev) && tx.send(line).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => match collection.events_since(last_rv) {
                        Ok(missed) => {
                            for ev in missed {
                                last_rv = ev.rv;
                                if let Some(line) = filter.render(&ev) && tx.send(line).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(error_line(&e)).await;
                            return;
                        }
                    },
                    Err(RecvError::Closed) => return,
                },
                _ = ticker.tick(), if opts.bookmarks => {
                    let rv = collection.stable_rv(&store);
                    while let Ok(ev) = events.try_recv() {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(line) = filter.render(&ev) && tx.send(line).await.is_err() {
                            return;
                        }
                    }
                    last_rv = last_rv.max(rv);
                    if tx.send(bookmark(&filter.def, last_rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = dropped.changed() => return,
                _ = tokio::time::sleep_until(sleep_until) => return,
                _ = tx.closed() => return,
            }
        }
    });
    rx
}
