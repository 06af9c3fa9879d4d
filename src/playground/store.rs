//! The object store: one collection per stored resource, objects kept as `Arc`'d JSON, one
//! global `resourceVersion` counter, a bounded event history per collection for watches and a
//! broadcast channel per collection. Knows nothing of HTTP or API semantics (see `ops`).

use super::error::ApiError;
use super::registry::GroupResource;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::sync::{broadcast, mpsc};

/// (namespace, name); namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, as retained in history and fanned out to watches.
#[derive(Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: EventType,
    pub object: Arc<Value>,
    /// The object before a MODIFIED change (selector-filtered watches turn a change that
    /// enters or leaves the selection into ADDED or DELETED, as the real server does).
    pub previous: Option<Arc<Value>>,
    /// The serialized watch line, built once by the first watch that sends it.
    line: OnceLock<Bytes>,
}

impl WatchEvent {
    pub fn new(rv: u64, kind: EventType, object: Arc<Value>) -> Self {
        WatchEvent {
            rv,
            kind,
            object,
            previous: None,
            line: OnceLock::new(),
        }
    }

    /// `{"type":"ADDED","object":{...}}\n`, serialized once and shared by every watch.
    pub fn line(&self) -> Bytes {
        self.line
            .get_or_init(|| watch_line(self.kind.as_str(), &self.object))
            .clone()
    }
}

/// Serialize one watch line.
pub fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// A change seen by in-process observers (garbage collector, simulation).
#[derive(Debug, Clone)]
pub struct Change {
    pub resource: GroupResource,
    pub event: Arc<WatchEvent>,
}

/// What a write closure decided.
pub enum Write {
    /// Store this object (create or replace).
    Put(Value),
    /// Remove the object.
    Remove,
    /// Leave the object as it is.
    Keep,
}

struct Inner {
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Events with `rv <= compacted` are gone from history.
    compacted: u64,
}

/// All objects of one stored resource.
pub struct Collection {
    pub resource: GroupResource,
    inner: RwLock<Inner>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
}

/// What a watch starts from.
pub enum WatchStart {
    /// Replay these retained events, then follow.
    Replay(Vec<Arc<WatchEvent>>),
    /// Send these objects as ADDED (initial state at `rv`), then follow.
    Initial { objects: Vec<Arc<Value>>, rv: u64 },
}

#[derive(Default)]
struct Index {
    by_uid: HashMap<String, (GroupResource, Key)>,
    dependents: HashMap<String, BTreeSet<(GroupResource, Key)>>,
}

/// The whole store.
pub struct Store {
    rv: AtomicU64,
    collections: RwLock<HashMap<GroupResource, Arc<Collection>>>,
    history_limit: usize,
    index: Mutex<Index>,
    changes: broadcast::Sender<Change>,
    removals: mpsc::UnboundedSender<Change>,
    drop_watches: tokio::sync::watch::Sender<u64>,
}

fn uid_of(v: &Value) -> Option<&str> {
    v.pointer("/metadata/uid").and_then(Value::as_str)
}

/// The owner uids in an object's `metadata.ownerReferences`.
pub fn owner_uids(v: &Value) -> Vec<String> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    /// A store retaining `history_limit` events per collection; removals and writes of objects
    /// being deleted are reported on the returned receiver (for the garbage collector).
    pub fn new(history_limit: usize) -> (Arc<Store>, mpsc::UnboundedReceiver<Change>) {
        let (removals, removed) = mpsc::unbounded_channel();
        let (changes, _) = broadcast::channel(65_536);
        let (drop_watches, _) = tokio::sync::watch::channel(0);
        let store = Store {
            rv: AtomicU64::new(1),
            collections: RwLock::new(HashMap::new()),
            history_limit: history_limit.max(1),
            index: Mutex::new(Index::default()),
            changes,
            removals,
            drop_watches,
        };
        (Arc::new(store), removed)
    }

    /// The current global resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv.load(Ordering::SeqCst)
    }

    fn next_rv(&self) -> u64 {
        self.rv.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The collection of a resource, created empty on first use.
    pub fn collection(&self, resource: &GroupResource) -> Arc<Collection> {
        if let Some(c) = self
            .collections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(resource)
        {
            return c.clone();
        }
        let mut all = self.collections.write().unwrap_or_else(|e| e.into_inner());
        all.entry(resource.clone())
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(4096);
                Arc::new(Collection {
                    resource: resource.clone(),
                    inner: RwLock::new(Inner {
                        objects: BTreeMap::new(),
                        history: VecDeque::new(),
                        compacted: 0,
                    }),
                    tx,
                })
            })
            .clone()
    }

    /// Every collection that exists.
    pub fn collections(&self) -> Vec<Arc<Collection>> {
        self.collections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// In-process change feed (all collections).
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// A receiver that changes value whenever open watches are to be dropped.
    pub fn drop_watches_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }

    /// End every open watch (clients see the stream close and re-watch).
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    /// Forget all retained watch history, so any watch resuming from an older
    /// resourceVersion gets `410 Gone`.
    pub fn compact(&self) {
        let rv = self.current_rv();
        for c in self.collections() {
            let mut inner = c.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.history.clear();
            inner.compacted = rv;
        }
    }

    /// Where the object with this uid lives.
    pub fn locate_uid(&self, uid: &str) -> Option<(GroupResource, Key)> {
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_uid
            .get(uid)
            .cloned()
    }

    /// Objects whose ownerReferences name this uid.
    pub fn dependents(&self, uid: &str) -> Vec<(GroupResource, Key)> {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index
            .dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn reindex(
        &self,
        resource: &GroupResource,
        key: &Key,
        old: Option<&Value>,
        new: Option<&Value>,
    ) {
        let old_owners = old.map(owner_uids).unwrap_or_default();
        let new_owners = new.map(owner_uids).unwrap_or_default();
        let old_uid = old.and_then(uid_of);
        let new_uid = new.and_then(uid_of);
        if old_owners == new_owners && old_uid == new_uid {
            return;
        }
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let loc = (resource.clone(), key.clone());
        for o in &old_owners {
            if let Some(set) = index.dependents.get_mut(o) {
                set.remove(&loc);
                if set.is_empty() {
                    index.dependents.remove(o);
                }
            }
        }
        for o in &new_owners {
            index
                .dependents
                .entry(o.clone())
                .or_default()
                .insert(loc.clone());
        }
        if let Some(u) = old_uid {
            index.by_uid.remove(u);
        }
        if let Some(u) = new_uid {
            index.by_uid.insert(u.to_string(), loc);
        }
    }
}

fn set_rv(v: &mut Value, rv: u64) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Collection {
    /// One object.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .objects
            .get(key)
            .cloned()
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .objects
            .len()
    }

    /// Whether the collection is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Objects (in one namespace, or all), in key order after `after`, matching `keep`, at most
    /// `limit`; returns them, the list resourceVersion and whether more remain.
    pub fn list(
        &self,
        store: &Store,
        namespace: Option<&str>,
        after: Option<&Key>,
        limit: Option<usize>,
        keep: &dyn Fn(&Value) -> bool,
    ) -> (Vec<Arc<Value>>, u64, bool) {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let rv = store.current_rv();
        let start = match (after, namespace) {
            (Some(k), _) => std::ops::Bound::Excluded(k.clone()),
            (None, Some(ns)) => std::ops::Bound::Included((ns.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut more = false;
        for (k, v) in inner.objects.range((start, std::ops::Bound::Unbounded)) {
            if let Some(ns) = namespace
                && k.0 != ns
            {
                break;
            }
            if !keep(v) {
                continue;
            }
            if limit.is_some_and(|l| out.len() >= l) {
                more = true;
                break;
            }
            out.push(v.clone());
        }
        (out, rv, more)
    }

    /// Read-modify-write one object atomically. `decide` sees the current object and returns
    /// what to store; the resourceVersion is assigned here. Returns the object as stored
    /// (or as removed), or the current one for `Keep`, and `decide`'s extra result.
    ///
    /// # Errors
    /// Whatever `decide` returns.
    pub fn write<R>(
        &self,
        store: &Store,
        key: &Key,
        decide: impl FnOnce(Option<&Arc<Value>>) -> Result<(Write, R), ApiError>,
    ) -> Result<(Option<Arc<Value>>, R), ApiError> {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let current = inner.objects.get(key).cloned();
        let (write, extra) = decide(current.as_ref())?;
        let (kind, object, rv) = match write {
            Write::Keep => return Ok((current, extra)),
            Write::Put(mut v) => {
                let rv = store.next_rv();
                set_rv(&mut v, rv);
                let v = Arc::new(v);
                inner.objects.insert(key.clone(), v.clone());
                (
                    if current.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    v,
                    rv,
                )
            }
            Write::Remove => {
                let Some(old) = current.clone() else {
                    return Ok((None, extra));
                };
                let rv = store.next_rv();
                let mut v = (*old).clone();
                set_rv(&mut v, rv);
                inner.objects.remove(key);
                (EventType::Deleted, Arc::new(v), rv)
            }
        };
        let mut event = WatchEvent::new(rv, kind, object.clone());
        if kind == EventType::Modified {
            event.previous = current.clone();
        }
        let event = Arc::new(event);
        inner.history.push_back(event.clone());
        while inner.history.len() > store.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted = old.rv;
            }
        }
        let _ = self.tx.send(event.clone());
        let new = (kind != EventType::Deleted).then_some(&*object);
        store.reindex(&self.resource, key, current.as_deref(), new);
        let change = Change {
            resource: self.resource.clone(),
            event,
        };
        let _ = store.changes.send(change.clone());
        if kind == EventType::Deleted || object.pointer("/metadata/deletionTimestamp").is_some() {
            let _ = store.removals.send(change);
        }
        drop(inner);
        Ok((Some(object), extra))
    }

    /// Start a watch: either replay the retained events after `from`, or (for `None`) the
    /// current objects as initial state. The receiver follows later events with no gap.
    ///
    /// # Errors
    /// `Gone` when `from` is older than the retained history.
    pub fn watch(
        &self,
        store: &Store,
        from: Option<u64>,
    ) -> Result<(WatchStart, broadcast::Receiver<Arc<WatchEvent>>), ApiError> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        match from {
            None => {
                let objects = inner.objects.values().cloned().collect();
                Ok((
                    WatchStart::Initial {
                        objects,
                        rv: store.current_rv(),
                    },
                    rx,
                ))
            }
            Some(rv) => Ok((WatchStart::Replay(Self::since(&inner, rv)?), rx)),
        }
    }

    /// The current resourceVersion, read after every in-flight write to this collection has
    /// been published (so a bookmark at this version never skips an event).
    pub fn stable_rv(&self, store: &Store) -> u64 {
        let _inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        store.current_rv()
    }

    /// Retained events after `rv` (used to catch up after a lagging receiver).
    ///
    /// # Errors
    /// `Gone` when `rv` is older than the retained history.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Arc<WatchEvent>>, ApiError> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        Self::since(&inner, rv)
    }

    fn since(inner: &Inner, rv: u64) -> Result<Vec<Arc<WatchEvent>>, ApiError> {
        if rv < inner.compacted {
            return Err(ApiError::Gone(format!(
                "too old resource version: {rv} ({})",
                inner.compacted + 1
            )));
        }
        let start = inner.history.partition_point(|e| e.rv <= rv);
        Ok(inner.history.range(start..).cloned().collect())
    }
}
