//! The garbage collector: owner-reference cascading (background and foreground), namespace
//! termination and CRD instance cleanup, driven by the store's feed of removals and of writes
//! to objects being deleted. Acts only through `ops::Api`.

use super::error::ApiError;
use super::ops::{Api, DeleteOpts, Target};
use super::registry::GroupResource;
use super::store::{Change, EventType, Key, Write, owner_uids};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn str_of<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// Run the collector until the feed closes.
pub async fn run(
    api: Arc<Api>,
    mut feed: mpsc::UnboundedReceiver<Change>,
    requeue: mpsc::UnboundedSender<Change>,
) {
    while let Some(change) = feed.recv().await {
        let obj = change.event.object.clone();
        let uid = str_of(&obj, "/metadata/uid")
            .unwrap_or_default()
            .to_string();
        match change.event.kind {
            EventType::Deleted => {
                for (resource, key) in api.store.dependents(&uid) {
                    collect_if_orphaned(&api, &resource, &key, "Background");
                }
                for owner in owner_uids(&obj) {
                    finish_foreground(&api, &owner);
                }
                if change.resource
                    == GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
                {
                    let name = str_of(&obj, "/metadata/name").unwrap_or_default();
                    api.registry.unregister_crd(name);
                    let group = str_of(&obj, "/spec/group").unwrap_or_default();
                    let plural = str_of(&obj, "/spec/names/plural").unwrap_or_default();
                    clear_collection(&api, &GroupResource::new(group, plural), None);
                }
            }
            EventType::Added | EventType::Modified => {
                if change.resource == GroupResource::new("", "namespaces") {
                    let name = str_of(&obj, "/metadata/name")
                        .unwrap_or_default()
                        .to_string();
                    if clear_namespace(&api, &name) {
                        remove_namespace(&api, &name);
                    } else {
                        let requeue = requeue.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let _ = requeue.send(change);
                        });
                    }
                    continue;
                }
                let foreground = obj
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"));
                if foreground {
                    for (resource, key) in api.store.dependents(&uid) {
                        delete(&api, &resource, &key, "Foreground");
                    }
                    finish_foreground(&api, &uid);
                }
            }
        }
    }
}

fn target(api: &Api, resource: &GroupResource, key: &Key) -> Option<Target> {
    let def = api.registry.any_for_storage(resource)?;
    Some(Target {
        def,
        namespace: Some(key.0.clone()).filter(|n| !n.is_empty()),
        name: Some(key.1.clone()),
        subresource: None,
    })
}

fn delete(api: &Api, resource: &GroupResource, key: &Key, policy: &str) {
    let Some(t) = target(api, resource, key) else {
        return;
    };
    match api.delete(
        &t,
        &DeleteOpts {
            propagation: Some(policy.to_string()),
            ..DeleteOpts::default()
        },
    ) {
        Ok(_) | Err(ApiError::NotFound { .. }) => {}
        Err(error) => {
            tracing::warn!(%error, resource = %resource.display(), name = %key.1, "garbage collection failed")
        }
    }
}

/// Delete a dependent once none of its owners exists any more.
fn collect_if_orphaned(api: &Api, resource: &GroupResource, key: &Key, policy: &str) {
    let Some(obj) = api.store.collection(resource).get(key) else {
        return;
    };
    if owner_uids(&obj)
        .iter()
        .all(|o| api.store.locate_uid(o).is_none())
    {
        delete(api, resource, key, policy);
    }
}

/// Remove the `foregroundDeletion` finalizer from an owner whose dependents are all gone.
fn finish_foreground(api: &Api, owner_uid: &str) {
    if !api.store.dependents(owner_uid).is_empty() {
        return;
    }
    let Some((resource, key)) = api.store.locate_uid(owner_uid) else {
        return;
    };
    let collection = api.store.collection(&resource);
    let _ = collection.write(&api.store, &key, |cur| {
        let Some(cur) = cur else {
            return Ok((Write::Keep, ()));
        };
        let finalizers = cur
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if cur.pointer("/metadata/deletionTimestamp").is_none()
            || !finalizers.iter().any(|f| f == "foregroundDeletion")
        {
            return Ok((Write::Keep, ()));
        }
        let rest: Vec<Value> = finalizers
            .into_iter()
            .filter(|f| f != "foregroundDeletion")
            .collect();
        if rest.is_empty() {
            return Ok((Write::Remove, ()));
        }
        let mut next = (**cur).clone();
        if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("finalizers".into(), Value::Array(rest));
        }
        Ok((Write::Put(next), ()))
    });
}

fn clear_collection(api: &Api, resource: &GroupResource, namespace: Option<&str>) -> bool {
    let collection = api.store.collection(resource);
    let (items, _, _) = collection.list(&api.store, namespace, None, None, &|_| true);
    let mut empty = true;
    for obj in items {
        let key = (
            str_of(&obj, "/metadata/namespace")
                .unwrap_or_default()
                .to_string(),
            str_of(&obj, "/metadata/name")
                .unwrap_or_default()
                .to_string(),
        );
        delete(api, resource, &key, "Background");
        if collection.get(&key).is_some() {
            empty = false;
        }
    }
    empty
}

/// Delete everything in a terminating namespace; true when nothing is left.
fn clear_namespace(api: &Api, namespace: &str) -> bool {
    let mut empty = true;
    for collection in api.store.collections() {
        let namespaced = api
            .registry
            .any_for_storage(&collection.resource)
            .is_some_and(|d| d.namespaced);
        if namespaced && !clear_collection(api, &collection.resource, Some(namespace)) {
            empty = false;
        }
    }
    empty
}

fn remove_namespace(api: &Api, name: &str) {
    let collection = api.store.collection(&GroupResource::new("", "namespaces"));
    let _ = collection.write(&api.store, &(String::new(), name.to_string()), |cur| {
        Ok((
            if cur.is_some_and(|c| c.pointer("/metadata/deletionTimestamp").is_some()) {
                Write::Remove
            } else {
                Write::Keep
            },
            (),
        ))
    });
}
