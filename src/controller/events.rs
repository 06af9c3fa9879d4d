//! Kubernetes Events about a Rollout or an AnalysisRun (`events.k8s.io/v1`). An Event repeating the same reason
//! and message for the same Rollout within a few minutes becomes a series (count and last
//! time patched) instead of a new object; distinct messages stay distinct Events (kube-runtime's
//! `Recorder` merges by reason alone, which would hide "step 3 completed" behind "step 2").
//! Only the leader publishes; a failed publish is logged and never fails a reconcile.

use super::context::Context;
use crate::crd::FIELD_MANAGER;
use crate::engine::{EventKind, EventNote};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a repeated Event is folded into the previous one.
const SERIES_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// A digest of the namespace, Rollout, reason and message of a published Event. A digest, not
/// the strings: at 10,000 Rollouts an update wave keeps ~70,000 Events in the window, and their
/// messages were most of this map. A collision (64-bit SipHash) would only fold an Event into
/// another one's series.
type EventKey = u64;

fn event_key(namespace: &str, rollout: &str, reason: &str, message: &str) -> EventKey {
    use std::hash::BuildHasher;
    KEY_HASHER.hash_one((namespace, rollout, reason, message))
}

/// Fixed keys, so a key means the same for the whole process.
static KEY_HASHER: std::hash::BuildHasherDefault<std::hash::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

/// How often expired entries are swept out. A sweep visits every entry, so running it on each
/// publish made publishing O(Events of the last five minutes); lookups check the age instead.
const SWEEP_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// Events published recently, to fold repeats into series.
#[derive(Default)]
pub struct EventCache {
    recent: Mutex<HashMap<EventKey, Published>>,
    swept_at: Mutex<Option<jiff::Timestamp>>,
}

#[derive(Clone)]
struct Published {
    name: Box<str>,
    count: i32,
    at: jiff::Timestamp,
}

/// Publish each note as an Event on the Rollout, all at once (they are independent writes; one
/// at a time they held the reconcile's write slot for a round trip each). Returns how many were
/// written.
pub async fn publish<K>(ctx: &Context, rollout: &K, notes: &[EventNote]) -> u32
where
    K: Resource<DynamicType = ()>,
{
    let Some(namespace) = rollout.namespace() else {
        return 0;
    };
    if notes.is_empty() || !ctx.leadership.is_leader() {
        return 0;
    }
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &namespace);
    let results = futures::future::join_all(
        notes
            .iter()
            .enumerate()
            .map(|(i, note)| publish_one(ctx, &api, rollout, &namespace, note, i)),
    )
    .await;
    let mut written = 0;
    for (note, result) in notes.iter().zip(results) {
        match result {
            Ok(_) => written += 1,
            Err(error) => tracing::warn!(%error, reason = note.reason, "publishing event failed"),
        }
    }
    written
}

/// Returns whether a new Event was created (false: an existing one was patched).
async fn publish_one<K>(
    ctx: &Context,
    api: &Api<Event>,
    rollout: &K,
    namespace: &str,
    note: &EventNote,
    index: usize,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()>,
{
    let now = jiff::Timestamp::now();
    let key = event_key(namespace, &rollout.name_any(), note.reason, &note.message);
    let previous = {
        let mut recent = ctx.events.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut swept_at = ctx
            .events
            .swept_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if swept_at.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY) {
            recent.retain(|_, p| now.duration_since(p.at) < SERIES_WINDOW);
            *swept_at = Some(now);
        }
        recent
            .get(&key)
            .filter(|p| now.duration_since(p.at) < SERIES_WINDOW)
            .cloned()
    };
    if let Some(previous) = previous {
        let count = previous.count + 1;
        let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api
            .patch(&previous.name, &params, &Patch::Merge(patch))
            .await
        {
            Ok(_) => {
                remember(ctx, key, previous.name, count, now);
                return Ok(false);
            }
            // Gone (expired by the server): start a new one.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    // The note's index keeps the names of one reconcile's Events apart on a coarse clock.
    let name = format!(
        "{}.{:x}",
        rollout.name_any(),
        now.as_nanosecond() + i128::try_from(index).unwrap_or_default()
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some("Reconcile".into()),
        reason: Some(note.reason.into()),
        note: Some(note.message.chars().take(1024).collect()),
        type_: Some(
            match note.kind {
                EventKind::Normal => "Normal",
                EventKind::Warning => "Warning",
            }
            .into(),
        ),
        regarding: Some(ObjectReference {
            api_version: Some(K::api_version(&()).into()),
            kind: Some(K::kind(&()).into()),
            name: Some(rollout.name_any()),
            namespace: Some(namespace.to_string()),
            uid: rollout.uid(),
            ..ObjectReference::default()
        }),
        reporting_controller: Some(FIELD_MANAGER.into()),
        reporting_instance: Some(ctx.settings.identity.clone()),
        series: None::<EventSeries>,
        ..Event::default()
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    api.create(&params, &event).await?;
    remember(ctx, key, name.into(), 1, now);
    Ok(true)
}

fn remember(ctx: &Context, key: EventKey, name: Box<str>, count: i32, at: jiff::Timestamp) {
    ctx.events
        .recent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, Published { name, count, at });
}
