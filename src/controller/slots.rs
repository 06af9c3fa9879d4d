//! Write slots: at most `--concurrency` reconciles talk to the API server at once, and one that
//! moves a revision already in flight forward (a step done, a pause ended, an abort, a
//! promotion) goes ahead of the ones that start a new revision or only keep books (replica
//! counts, conditions). A reconcile that will write nothing takes no
//! slot at all, so it never queues behind writers.
//!
//! Why not kube-runtime's own concurrency limit: its queue is first-come first-served, so at
//! 10,000 Rollouts a pause that ended waited behind every ReplicaSet status change queued before
//! it (the scale bench measured a median 150 ms between a pause's end and the start of the
//! reconcile applying the next step). The controller now runs every triggered reconcile at once;
//! this gate orders the ones that write.
//!
//! The lane comes from a trial decision on the cached state (`lane`): the engine is pure and
//! cheap, and the reconcile decides again once it holds its slot, so a stale trial can only
//! misplace a reconcile in the line, never change what it does.

use super::context::Context;
use super::observe;
use super::restart;
use super::status;
use crate::crd::{Rollout, RolloutStatus};
use crate::engine::Decision;
use kube::ResourceExt;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};

/// Where a reconcile queues for the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// It will make no API call: no slot.
    Idle,
    /// It writes bookkeeping only.
    Normal,
    /// It moves the Rollout forward: first in line.
    Urgent,
}

/// The write slots of one controller.
#[derive(Debug)]
pub struct WriteSlots {
    slots: Semaphore,
    /// Normal reconciles enter the semaphore's (first-come first-served) queue one at a time,
    /// so an urgent one finds at most one normal one ahead of it.
    normal_turn: Mutex<()>,
}

/// A held slot (none for `Lane::Idle`); released on drop.
#[derive(Debug)]
pub struct Slot<'a>(#[allow(dead_code)] Option<SemaphorePermit<'a>>);

impl WriteSlots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> Self {
        Self {
            slots: Semaphore::new(n.max(1)),
            normal_turn: Mutex::new(()),
        }
    }

    /// Wait for a slot in `lane`. Cancel-safe: dropping the future gives up the place in line.
    pub async fn acquire(&self, lane: Lane) -> Slot<'_> {
        let permit = match lane {
            Lane::Idle => None,
            Lane::Urgent => self.slots.acquire().await.ok(),
            Lane::Normal => {
                let _turn = self.normal_turn.lock().await;
                self.slots.acquire().await.ok()
            }
        };
        Slot(permit)
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

/// The lane of a reconcile of `rollout`, from a trial decision on the cached children (without
/// asking traffic routers, which would be an API call).
pub fn lane(ctx: &Context, rollout: &Rollout, now: jiff::Timestamp) -> Lane {
    if !ctx.leadership.is_leader() {
        return Lane::Idle;
    }
    if rollout.metadata.deletion_timestamp.is_some()
        || !rollout
            .finalizers()
            .iter()
            .any(|f| f == super::cleanup::FINALIZER)
    {
        return Lane::Normal;
    }
    let Ok(observed) = observe::observe(rollout, &ctx.stores) else {
        return Lane::Normal;
    };
    let decision = (ctx.decide)(rollout, &observed, now);
    let routed = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .is_some_and(|c| c.traffic_routing.is_some());
    let restarting = restart::due(rollout, now).is_some();
    classify(rollout.status.as_ref(), &decision, routed || restarting)
}

/// `reads`: the reconcile calls the API even when the decision writes nothing (routers verify
/// their weights; a restart lists pods).
fn classify(current: Option<&RolloutStatus>, decision: &Decision, reads: bool) -> Lane {
    let mut next = decision.status.clone();
    status::carry_condition_times(current, &mut next);
    let status_changes = !matches!(status::status_patch(current, &next), Ok(None));
    if moves_forward(current, &decision.status) {
        Lane::Urgent
    } else if reads || status_changes || !decision.actions.is_empty() || !decision.events.is_empty()
    {
        Lane::Normal
    } else {
        Lane::Idle
    }
}

/// Whether `next` moves a revision already in flight forward: a step done, a pause ended, an
/// abort or a promotion, a phase change. Starting a new revision is not urgent: finishing what
/// is under way comes first (a burst of 10,000 new revisions otherwise delays every pause end).
fn moves_forward(current: Option<&RolloutStatus>, next: &RolloutStatus) -> bool {
    let Some(current) = current else {
        return false;
    };
    current.current_pod_hash.is_some()
        && current.current_pod_hash == next.current_pod_hash
        && (next.current_step_index > current.current_step_index
            || next.pause_conditions.len() < current.pause_conditions.len()
            || current.controller_pause != next.controller_pause
            || current.abort != next.abort
            || current.stable_rs != next.stable_rs
            || current.phase != next.phase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{PauseCondition, PauseReason};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::sync::Arc;
    use std::time::Duration;

    fn decision(status: RolloutStatus) -> Decision {
        Decision {
            status,
            actions: Vec::new(),
            events: Vec::new(),
            requeue_after: None,
        }
    }

    #[test]
    fn lanes_follow_what_the_decision_changes() {
        let current = RolloutStatus {
            current_pod_hash: Some("v2".into()),
            current_step_index: Some(1),
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::CanaryPauseStep,
                start_time: Time(jiff::Timestamp::UNIX_EPOCH),
            }],
            ..RolloutStatus::default()
        };
        let same = decision(current.clone());
        assert_eq!(classify(Some(&current), &same, false), Lane::Idle);
        assert_eq!(classify(Some(&current), &same, true), Lane::Normal);

        let mut counts = current.clone();
        counts.replicas = Some(3);
        assert_eq!(
            classify(Some(&current), &decision(counts), false),
            Lane::Normal
        );

        // The pause ended: the next step is applied first.
        let mut next_step = current.clone();
        next_step.current_step_index = Some(2);
        next_step.pause_conditions.clear();
        assert_eq!(
            classify(Some(&current), &decision(next_step), false),
            Lane::Urgent
        );

        let mut aborted = current.clone();
        aborted.abort = true;
        assert_eq!(
            classify(Some(&current), &decision(aborted), false),
            Lane::Urgent
        );

        // A new revision starts in line with the rest, as does a first status.
        let mut new_revision = current.clone();
        new_revision.current_pod_hash = Some("v3".into());
        new_revision.current_step_index = Some(0);
        new_revision.pause_conditions.clear();
        assert_eq!(
            classify(Some(&current), &decision(new_revision), false),
            Lane::Normal
        );
        assert_eq!(classify(None, &decision(current), false), Lane::Normal);
    }

    #[tokio::test(start_paused = true)]
    async fn an_urgent_reconcile_overtakes_every_waiting_normal_one_but_the_first() {
        let slots = Arc::new(WriteSlots::new(1));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = slots.acquire(Lane::Normal).await;
        let mut tasks = Vec::new();
        for (i, lane) in [Lane::Normal, Lane::Normal, Lane::Normal, Lane::Urgent]
            .into_iter()
            .enumerate()
        {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire(lane).await;
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }));
            // Queue them in this order.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Idle needs no slot even while all are taken.
        let _idle = slots.acquire(Lane::Idle).await;
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        // Normal 0 was already waiting on the semaphore; the urgent 3 comes right after it.
        assert_eq!(*order.lock().unwrap(), vec![0, 3, 1, 2]);
        assert_eq!(slots.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_gives_its_place_back() {
        let slots = Arc::new(WriteSlots::new(1));
        let held = slots.acquire(Lane::Urgent).await;
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move {
                let _slot = slots.acquire(Lane::Normal).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        let _again = slots.acquire(Lane::Normal).await;
        assert_eq!(slots.available(), 0);
    }
}
