//! Reverse indexes over the reflector caches, so that observe and the watch mappers look up the
//! few objects they need instead of scanning a whole cache: children by controller-owner uid,
//! Rollouts by the Service or Deployment names they reference, Rollouts by the objects they
//! claim (`engine::validate::claims`), so observe can tell which claims another Rollout holds
//! first. Kept exact by feeding them the same watcher events the stores see (including
//! relists). Touches nothing but its own maps and the Rollout store it is given.

use crate::crd::Rollout;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

/// Namespace and name of an indexed object.
type ObjKey = (String, String);

/// Maps `(namespace, key)` to the names of the objects in that namespace that carry `key`, where
/// an object's keys come from a function of the object (an owner uid, a referenced name).
pub struct Index<K> {
    keys_of: fn(&K) -> Vec<String>,
    inner: Arc<RwLock<Inner>>,
}

impl<K> Clone for Index<K> {
    fn clone(&self) -> Self {
        Self {
            keys_of: self.keys_of,
            inner: self.inner.clone(),
        }
    }
}

impl<K> fmt::Debug for Index<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    /// `(namespace, key)` → names of the objects carrying it.
    by_key: HashMap<ObjKey, BTreeSet<String>>,
    /// `(namespace, name)` → the keys the object was indexed under (to undo on change).
    keys: HashMap<ObjKey, Vec<String>>,
    /// Objects listed since the last `Init`; replaces everything at `InitDone`.
    relist: Option<Vec<(ObjKey, Vec<String>)>>,
}

impl Inner {
    fn remove(&mut self, obj: &ObjKey) {
        let Some(keys) = self.keys.remove(obj) else {
            return;
        };
        for key in keys {
            let slot = (obj.0.clone(), key);
            if let Some(names) = self.by_key.get_mut(&slot) {
                names.remove(&obj.1);
                if names.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
    }

    fn insert(&mut self, obj: ObjKey, keys: Vec<String>) {
        self.remove(&obj);
        if keys.is_empty() {
            return;
        }
        for key in &keys {
            self.by_key
                .entry((obj.0.clone(), key.clone()))
                .or_default()
                .insert(obj.1.clone());
        }
        self.keys.insert(obj, keys);
    }
}

fn obj_key<K: Resource>(obj: &K) -> ObjKey {
    let meta = obj.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl<K: Resource<DynamicType = ()>> Index<K> {
    /// An empty index keying each object by `keys_of(object)`.
    pub fn new(keys_of: fn(&K) -> Vec<String>) -> Self {
        Self {
            keys_of,
            inner: Arc::default(),
        }
    }

    /// Fold one watcher event in, with the same semantics as a reflector store: `Init` starts a
    /// relist whose objects replace the whole index at `InitDone`.
    pub fn apply(&self, event: &watcher::Event<K>) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(obj) => {
                let keys = self.sorted_keys(obj);
                inner.insert(obj_key(obj), keys);
            }
            watcher::Event::Delete(obj) => inner.remove(&obj_key(obj)),
            watcher::Event::Init => inner.relist = Some(Vec::new()),
            watcher::Event::InitApply(obj) => {
                let keys = self.sorted_keys(obj);
                inner
                    .relist
                    .get_or_insert_with(Vec::new)
                    .push((obj_key(obj), keys));
            }
            watcher::Event::InitDone => {
                let listed = inner.relist.take().unwrap_or_default();
                inner.by_key.clear();
                inner.keys.clear();
                for (obj, keys) in listed {
                    inner.insert(obj, keys);
                }
            }
        }
    }

    fn sorted_keys(&self, obj: &K) -> Vec<String> {
        let mut keys = (self.keys_of)(obj);
        keys.sort();
        keys.dedup();
        keys
    }

    /// The objects in `namespace` carrying `key`, by name.
    pub fn lookup(&self, namespace: &str, key: &str) -> Vec<ObjectRef<K>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .by_key
            .get(&(namespace.to_owned(), key.to_owned()))
            .map(|names| {
                names
                    .iter()
                    .map(|name| ObjectRef::new(name).within(namespace))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The uid of an object's controller owner, as index keys (none or one).
pub fn controller_uid<K: Resource>(obj: &K) -> Vec<String> {
    controller_of(obj.meta().owner_references.as_deref().unwrap_or_default())
}

fn controller_of(owners: &[OwnerReference]) -> Vec<String> {
    owners
        .iter()
        .filter(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
        .collect()
}

/// The keys of the objects a Rollout claims: `Kind/namespace/name`.
pub fn claim_keys(rollout: &Rollout) -> Vec<String> {
    crate::engine::validate::claims(rollout)
        .iter()
        .map(crate::engine::validate::Claim::key)
        .collect()
}

/// Who claims what among the Rollouts of a namespace, and whether routes may leave it.
#[derive(Clone, Debug)]
pub struct Claims {
    /// Rollouts by `claim_keys`.
    pub index: Index<Rollout>,
    /// `--allow-cross-namespace-routing`.
    pub allow_cross_namespace_routing: bool,
}

/// A claimant's place in line: creation time, then name. `None` (never set by a real API
/// server) sorts first, so the order stays total.
type Place<'a> = (Option<&'a Time>, &'a str);

/// The first of `others` in line, when it comes before `me`.
fn first_before<'a>(me: Place<'_>, others: impl Iterator<Item = Place<'a>>) -> Option<&'a str> {
    let before = |(t, n): &Place<'_>| (t.map(|t| t.0), *n) < (me.0.map(|t| t.0), me.1);
    others
        .filter(before)
        .min_by_key(|(t, n)| (t.map(|t| t.0), *n))
        .map(|(_, n)| n)
}

impl Claims {
    /// For each object `rollout` claims, the Rollout that claimed it first, when that is
    /// another one: `Claim::key` → its name.
    pub fn claimed_by(
        &self,
        rollout: &Rollout,
        rollouts: &Store<Rollout>,
    ) -> std::collections::BTreeMap<String, String> {
        let namespace = rollout.meta().namespace.clone().unwrap_or_default();
        let name = rollout.meta().name.clone().unwrap_or_default();
        let me = (rollout.meta().creation_timestamp.as_ref(), name.as_str());
        let mut out = std::collections::BTreeMap::new();
        for key in claim_keys(rollout) {
            let others: Vec<_> = self
                .index
                .lookup(&namespace, &key)
                .into_iter()
                .filter(|r| r.name != name)
                .filter_map(|r| rollouts.get(&r))
                .collect();
            let places = others.iter().map(|r| {
                (
                    r.meta().creation_timestamp.as_ref(),
                    r.meta().name.as_deref().unwrap_or_default(),
                )
            });
            if let Some(first) = first_before(me, places) {
                out.insert(key, first.to_owned());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use kube::api::ObjectMeta;

    fn rs(name: &str, owner: Option<&str>) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        api_version: "sluice.dev/v1alpha1".into(),
                        kind: "Rollout".into(),
                        name: "r".into(),
                        uid: uid.into(),
                        controller: Some(true),
                        block_owner_deletion: None,
                    }]
                }),
                ..ObjectMeta::default()
            },
            ..ReplicaSet::default()
        }
    }

    fn names(index: &Index<ReplicaSet>, uid: &str) -> Vec<String> {
        index
            .lookup("ns", uid)
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    #[test]
    fn stays_exact_through_create_reowning_delete_and_relist() {
        let index = Index::new(controller_uid::<ReplicaSet>);
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(rs("a-1", Some("u1"))));
        index.apply(&watcher::Event::InitApply(rs("orphan", None)));
        index.apply(&watcher::Event::InitDone);
        assert_eq!(names(&index, "u1"), ["a-1"]);

        index.apply(&watcher::Event::Apply(rs("a-2", Some("u1"))));
        index.apply(&watcher::Event::Apply(rs("b-1", Some("u2"))));
        assert_eq!(names(&index, "u1"), ["a-1", "a-2"]);
        assert_eq!(names(&index, "u2"), ["b-1"]);
        assert!(index.lookup("other", "u1").is_empty(), "namespaced");

        // Adopted by another owner, then released: it moves, then leaves the index.
        index.apply(&watcher::Event::Apply(rs("a-2", Some("u2"))));
        assert_eq!(names(&index, "u1"), ["a-1"]);
        assert_eq!(names(&index, "u2"), ["a-2", "b-1"]);
        index.apply(&watcher::Event::Apply(rs("a-2", None)));
        assert_eq!(names(&index, "u2"), ["b-1"]);

        index.apply(&watcher::Event::Delete(rs("a-1", Some("u1"))));
        assert!(names(&index, "u1").is_empty());

        // A relist replaces everything, but only once it is complete.
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(rs("c-1", Some("u3"))));
        assert_eq!(names(&index, "u2"), ["b-1"], "old view until InitDone");
        index.apply(&watcher::Event::InitDone);
        assert!(
            names(&index, "u2").is_empty(),
            "b-1 vanished while unwatched"
        );
        assert_eq!(names(&index, "u3"), ["c-1"]);
    }

    #[test]
    fn the_first_claimant_is_the_oldest_then_the_smallest_name() {
        let t = |s: &str| Time(s.parse().unwrap());
        let (early, late) = (t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"));
        let others = || [(Some(&late), "b"), (Some(&early), "z"), (Some(&early), "c")].into_iter();
        assert_eq!(first_before((Some(&late), "a"), others()), Some("c"));
        assert_eq!(
            first_before((Some(&early), "d"), others()),
            Some("c"),
            "same time: by name"
        );
        assert_eq!(
            first_before((Some(&early), "a"), others()),
            None,
            "a is first"
        );
        assert_eq!(first_before((Some(&late), "a"), std::iter::empty()), None);
    }

    #[test]
    fn a_non_controller_owner_is_not_a_key() {
        let mut obj = rs("a-1", Some("u1"));
        if let Some(owners) = obj.metadata.owner_references.as_mut() {
            owners[0].controller = Some(false);
        }
        let index = Index::new(controller_uid::<ReplicaSet>);
        index.apply(&watcher::Event::Apply(obj));
        assert!(names(&index, "u1").is_empty());
    }
}
