//! Kubernetes Events about a Rollout, published through kube-runtime's `Recorder` (which
//! deduplicates repeats into series). Only the leader publishes; a failed publish is logged and
//! never fails a reconcile. Touches only `events.k8s.io` Events.

use super::context::Context;
use crate::crd::Rollout;
use crate::engine::{EventKind, EventNote};
use kube::Resource;
use kube::runtime::events::{Event, EventType};

/// Publish each note as an Event on the Rollout. Returns how many were written.
pub async fn publish(ctx: &Context, rollout: &Rollout, notes: &[EventNote]) -> u32 {
    let reference = rollout.object_ref(&());
    let mut written = 0;
    for note in notes {
        if !ctx.leadership.is_leader() {
            break;
        }
        let event = Event {
            type_: match note.kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: note.reason.into(),
            note: Some(note.message.clone()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let result = ctx.recorder.publish(&event, &reference).await;
        ctx.metrics.api_request("create", &result);
        match result {
            Ok(()) => written += 1,
            Err(error) => tracing::warn!(%error, reason = note.reason, "publishing event failed"),
        }
    }
    written
}
