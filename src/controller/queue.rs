//! The work queue's depth, measured from outside: kube-runtime's `Controller` does not expose
//! its queue, so every trigger (a Rollout event, or an event of an object mapped back to a
//! Rollout) is noted on its way in and every reconcile start takes it out
//! (`Metrics::triggered` / `Metrics::dequeued`). Reads the Rollout store; writes only metrics.

use super::metrics::Metrics;
use crate::crd::Rollout;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use std::sync::Arc;

/// Notes triggers for `sluice_work_queue_depth`. Cheap to clone.
#[derive(Clone)]
pub struct Triggers {
    metrics: Arc<Metrics>,
    rollouts: Store<Rollout>,
}

impl Triggers {
    /// Triggers of Rollouts in `rollouts` (the Controller drops requests for Rollouts it does
    /// not have, so those are not counted either).
    pub fn new(metrics: Arc<Metrics>, rollouts: Store<Rollout>) -> Self {
        Self { metrics, rollouts }
    }

    /// An event of the Rollout itself.
    pub fn rollout(&self, rollout: &Rollout) {
        self.metrics.triggered(
            &rollout.namespace().unwrap_or_default(),
            &rollout.name_any(),
        );
    }

    /// An event of an object whose controller owner reference may be a Rollout (`owns`).
    pub fn owned<K: Resource>(&self, obj: &K) {
        let namespace = obj.meta().namespace.clone().unwrap_or_default();
        let kind = Rollout::kind(&());
        let owners = obj.meta().owner_references.iter().flatten();
        for owner in owners.filter(|o| o.controller == Some(true) && o.kind == kind) {
            let key = ObjectRef::new(&owner.name).within(&namespace);
            if self.rollouts.get(&key).is_some() {
                self.metrics.triggered(&namespace, &owner.name);
            }
        }
    }

    /// The Rollouts a `watches` mapper returned; passed through unchanged.
    pub fn mapped(&self, refs: Vec<ObjectRef<Rollout>>) -> Vec<ObjectRef<Rollout>> {
        for key in &refs {
            if self.rollouts.get(key).is_some() {
                self.metrics
                    .triggered(key.namespace.as_deref().unwrap_or_default(), &key.name);
            }
        }
        refs
    }
}
