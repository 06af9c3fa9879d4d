//! The working plan of one decision: the status being built, the planned ReplicaSet counts,
//! Service selectors, weights and deadlines, and the helpers every strategy shares
//! (ReplicaSet identification, status reset, the pause protocol, abort, AnalysisRuns). It
//! turns into `Action`s once, at the end, so each kind of change is emitted in a safe order.

use super::hash::{TemplateDigest, pod_template_hash};
use super::model::{
    Action, AnalysisKind, EventKind, EventNote, Observed, ObservedAnalysisRun, ObservedReplicaSet,
};
use super::validate::ValidatedRollout;
use crate::crd::{
    AnalysisPhase, POD_TEMPLATE_HASH_LABEL, PauseCondition, PauseReason, RolloutAnalysis,
    RolloutAnalysisRunStatus, RolloutStatus, TrafficWeights,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::{BTreeMap, BTreeSet};

/// Collisions tried before giving up on finding a free ReplicaSet name.
const MAX_COLLISIONS: i32 = 16;

/// The plan being built for one Rollout at one instant.
pub struct Plan<'a> {
    /// The validated spec.
    pub v: &'a ValidatedRollout,
    /// What the controller saw.
    pub observed: &'a Observed,
    /// The instant of the decision.
    pub now: Timestamp,
    /// The status as found.
    pub prev: RolloutStatus,
    /// The status being built.
    pub status: RolloutStatus,
    /// Hash of the desired template.
    pub hash: String,
    /// `<rollout>-<hash>`.
    pub new_name: String,
    /// The ReplicaSet of the desired template, when it exists.
    pub new_rs: Option<&'a ObservedReplicaSet>,
    /// The revision the new ReplicaSet has (or gets).
    pub new_revision: i64,
    /// The revision the new ReplicaSet had before this decision (a rollback reuses one).
    pub reused_revision: Option<i64>,
    /// Planned `spec.replicas` per ReplicaSet name.
    pub targets: BTreeMap<String, i32>,
    /// Planned selector hash per Service name.
    pub selectors: BTreeMap<String, String>,
    /// Planned scale-down deadline changes per ReplicaSet name.
    pub deadlines: BTreeMap<String, Option<Timestamp>>,
    /// Weights to apply, when they change.
    pub weights: Option<TrafficWeights>,
    /// Header and mirror route actions, in step order.
    pub routes: Vec<Action>,
    /// Remove every managed route.
    pub remove_routes: bool,
    /// AnalysisRuns to create.
    pub create_runs: Vec<Action>,
    /// Run names the rollout still wants running.
    pub live_runs: BTreeSet<String>,
    /// Revision annotation updates.
    pub revisions: Vec<Action>,
    /// Events.
    pub events: Vec<EventNote>,
    /// Instants at which the decision may change.
    pub timers: Vec<Timestamp>,
    /// The stable hash before this decision changed it (a promotion demotes it).
    pub demoted: Option<String>,
    /// The Progressing message of an abort made in this decision.
    pub abort_message: Option<String>,
    /// The rollout waits on purpose (pause or analysis): the progress deadline does not run.
    pub deadline_exempt: bool,
    /// The canary's baseline ReplicaSet to create.
    pub baseline_create: Option<Action>,
    /// Baseline ReplicaSets with no pods left to delete.
    pub baseline_deletes: Vec<Action>,
    /// Send the routers reported failing (`status.canary.routers[].lastError`) the weights and
    /// routes again: in the first pass of a decision only.
    pub retry_routers: bool,
}

impl<'a> Plan<'a> {
    /// Starts a plan: finds or names the new ReplicaSet, resolves collisions and revisions.
    pub fn new(
        v: &'a ValidatedRollout,
        observed: &'a Observed,
        prev: RolloutStatus,
        now: Timestamp,
    ) -> Self {
        let mut status = prev.clone();
        let mut collision_count = prev.collision_count;
        let mut hash = pod_template_hash(&v.template, collision_count);
        let digest = TemplateDigest::of(&v.template);
        let mut new_rs = None;
        for _ in 0..MAX_COLLISIONS {
            if let Some(rs) = live(observed)
                .find(|rs| !rs.baseline && rs.pod_template_hash.as_deref() == Some(hash.as_str()))
            {
                new_rs = Some(rs);
                break;
            }
            let name = format!("{}-{}", v.name, hash);
            match live(observed).find(|rs| rs.name == name) {
                // Our name is taken by a ReplicaSet of another template: bump the collision
                // count so the hash, and so the name, changes.
                Some(rs) if rs.template != digest => {
                    collision_count = Some(collision_count.unwrap_or(0) + 1);
                    hash = pod_template_hash(&v.template, collision_count);
                }
                Some(rs) => {
                    new_rs = Some(rs);
                    break;
                }
                None => break,
            }
        }
        // A ReplicaSet of the same template under another hash (for example created before a
        // collision bump) is still the new ReplicaSet: adopt its hash rather than duplicate it.
        if new_rs.is_none()
            && let Some(rs) = live(observed)
                .find(|rs| !rs.baseline && rs.pod_template_hash.is_some() && rs.template == digest)
        {
            hash = rs.pod_template_hash.clone().unwrap_or(hash);
            new_rs = Some(rs);
        }
        status.collision_count = collision_count;
        let max_revision = observed
            .replica_sets
            .iter()
            .filter_map(|rs| rs.revision)
            .max()
            .unwrap_or(0);
        let (new_revision, reused_revision, revisions) = match new_rs {
            None => (max_revision + 1, None, Vec::new()),
            Some(rs) => match rs.revision {
                Some(r) if r >= max_revision => (r, None, Vec::new()),
                // A rollback reuses an old ReplicaSet: it becomes the newest revision.
                old => (
                    max_revision + 1,
                    old,
                    vec![Action::SetRevision {
                        name: rs.name.clone(),
                        revision: max_revision + 1,
                    }],
                ),
            },
        };
        let new_name = new_rs.map_or_else(|| format!("{}-{}", v.name, hash), |rs| rs.name.clone());
        Plan {
            v,
            observed,
            now,
            prev,
            status,
            hash,
            new_name,
            new_rs,
            new_revision,
            reused_revision,
            targets: BTreeMap::new(),
            selectors: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            weights: None,
            routes: Vec::new(),
            remove_routes: false,
            create_runs: Vec::new(),
            live_runs: BTreeSet::new(),
            revisions,
            events: Vec::new(),
            timers: Vec::new(),
            demoted: None,
            abort_message: None,
            deadline_exempt: false,
            baseline_create: None,
            baseline_deletes: Vec::new(),
            retry_routers: false,
        }
    }

    /// Records an Event.
    pub fn event(&mut self, kind: EventKind, reason: &'static str, message: impl Into<String>) {
        self.events.push(EventNote {
            kind,
            reason,
            message: message.into(),
        });
    }

    /// The stable ReplicaSet, when it exists.
    pub fn stable_rs(&self) -> Option<&'a ObservedReplicaSet> {
        let stable = self.status.stable_rs.as_deref()?;
        live(self.observed).find(|rs| rs.pod_template_hash.as_deref() == Some(stable))
    }

    /// The stable hash equals the desired hash: nothing left to roll out.
    pub fn promoted(&self) -> bool {
        self.status.stable_rs.as_deref() == Some(self.hash.as_str())
    }

    /// ReplicaSets that are neither new nor stable, nor a baseline (`baseline` plans those).
    pub fn others(&self) -> Vec<&'a ObservedReplicaSet> {
        let stable = self.status.stable_rs.clone();
        let mut others: Vec<_> = live(self.observed)
            .filter(|rs| !rs.baseline)
            .filter(|rs| rs.pod_template_hash.as_deref() != Some(self.hash.as_str()))
            .filter(|rs| rs.pod_template_hash.is_none() || rs.pod_template_hash != stable)
            .collect();
        others.sort_by_key(|rs| (rs.revision.unwrap_or(0), rs.name.clone()));
        others
    }

    /// Available pods of the new ReplicaSet.
    pub fn new_available(&self) -> i32 {
        self.new_rs.map_or(0, |rs| rs.available_replicas)
    }

    /// `spec.replicas` of the new ReplicaSet (0 when it does not exist yet).
    pub fn new_spec(&self) -> i32 {
        self.new_rs.map_or(0, |rs| rs.desired_replicas)
    }

    /// Progress is halted: `spec.paused` or an inconclusive analysis waits for a person.
    pub fn halted(&self) -> bool {
        self.v.paused || self.has_pause(PauseReason::InconclusiveAnalysisRun)
    }

    /// The status carries a pause condition with this reason.
    pub fn has_pause(&self, reason: PauseReason) -> bool {
        self.status
            .pause_conditions
            .iter()
            .any(|c| c.reason == reason)
    }

    /// The pause condition with this reason.
    pub fn pause_start(&self, reason: PauseReason) -> Option<Timestamp> {
        self.status
            .pause_conditions
            .iter()
            .find(|c| c.reason == reason)
            .map(|c| c.start_time.0)
    }

    /// `now` as a pause's `startTime` is stored: `metav1.Time` keeps whole seconds, so a pause
    /// records this and its timer counts from it; counting from `now` would apply the next step
    /// up to a second after the recorded start plus the duration.
    pub fn stored_now(&self) -> Timestamp {
        Timestamp::from_second(self.now.as_second()).unwrap_or(self.now)
    }

    /// The controller pauses: adds the condition and `controllerPause`.
    pub fn add_pause(&mut self, reason: PauseReason, message: &str) {
        if !self.has_pause(reason) {
            self.status.pause_conditions.push(PauseCondition {
                reason,
                start_time: Time(self.stored_now()),
            });
            self.status.controller_pause = true;
            self.event(EventKind::Normal, "RolloutPaused", message.to_string());
        }
    }

    /// A person removed the pause conditions after the controller paused: consume the
    /// resume and report whether it happened.
    pub fn take_resume(&mut self) -> bool {
        if self.status.controller_pause && self.status.pause_conditions.is_empty() {
            self.status.controller_pause = false;
            self.event(EventKind::Normal, "RolloutResumed", "Rollout resumed");
            true
        } else {
            false
        }
    }

    /// Removes one pause condition (a step is done) and ends the controller pause.
    pub fn clear_pause(&mut self, reason: PauseReason) {
        self.status.pause_conditions.retain(|c| c.reason != reason);
        if self.status.pause_conditions.is_empty() {
            self.status.controller_pause = false;
        }
    }

    /// Aborts the update; `detail` explains why (empty for a person's abort).
    pub fn abort(&mut self, detail: &str) {
        if self.status.abort && self.status.aborted_at.is_some() {
            return;
        }
        self.status.abort = true;
        self.status.aborted_at = Some(Time(self.now));
        self.status.pause_conditions.clear();
        self.status.controller_pause = false;
        // Every managed route goes, those set earlier in this decision included.
        self.routes.clear();
        self.remove_routes = true;
        let message = if detail.is_empty() {
            format!("Rollout aborted update to revision {}", self.new_revision)
        } else {
            format!(
                "Rollout aborted update to revision {}: {detail}",
                self.new_revision
            )
        };
        self.event(EventKind::Warning, "RolloutAborted", message.clone());
        self.abort_message = Some(message);
    }

    /// Registers a due time; past or present times are ignored.
    pub fn timer(&mut self, at: Timestamp) {
        self.timers.push(at);
    }

    /// `now + seconds`.
    pub fn after(&self, seconds: i64) -> Timestamp {
        self.now
            .checked_add(SignedDuration::from_secs(seconds))
            .unwrap_or(self.now)
    }

    /// The observed run a status entry names, checked to be for `kind` of the current hash.
    pub fn run_for(
        &self,
        entry: Option<&RolloutAnalysisRunStatus>,
        kind: AnalysisKind,
    ) -> RunState<'a> {
        let Some(entry) = entry else {
            return RunState::None;
        };
        match self
            .observed
            .analysis_runs
            .iter()
            .find(|r| r.name == entry.name)
        {
            Some(run) if run.kind == kind && run.pod_template_hash == self.hash => {
                RunState::Observed(run)
            }
            Some(_) => RunState::None,
            None => RunState::Missing(entry.name.clone()),
        }
    }

    /// A run name not taken by an observed run: `base`, then `base.1`, `base.2`, ...
    pub fn free_run_name(&self, base: &str) -> String {
        let taken = |n: &str| self.observed.analysis_runs.iter().any(|r| r.name == n);
        if !taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}.{i}"))
            .find(|n| !taken(n))
            .unwrap_or_else(|| base.to_string())
    }

    /// Asks for a run and returns the status entry that records it.
    pub fn create_run(
        &mut self,
        name: String,
        kind: AnalysisKind,
        analysis: &RolloutAnalysis,
    ) -> RolloutAnalysisRunStatus {
        self.create_runs.push(Action::CreateAnalysisRun {
            name: name.clone(),
            kind,
            pod_template_hash: self.hash.clone(),
            analysis: analysis.clone(),
        });
        self.event(
            EventKind::Normal,
            "AnalysisRunCreated",
            format!("Created AnalysisRun {name}"),
        );
        self.live_runs.insert(name.clone());
        RolloutAnalysisRunStatus {
            name,
            status: phase_name(AnalysisPhase::Pending).to_string(),
            message: None,
        }
    }

    /// Follows one analysis (step, background, pre/post promotion) one reconcile further.
    /// Returns the verdict and the updated status entry.
    pub fn follow_run(
        &mut self,
        entry: Option<RolloutAnalysisRunStatus>,
        kind: AnalysisKind,
        base_name: &str,
        analysis: &RolloutAnalysis,
    ) -> (Verdict, Option<RolloutAnalysisRunStatus>) {
        match self.run_for(entry.as_ref(), kind) {
            RunState::None => {
                if self.halted() {
                    return (Verdict::Waiting, entry);
                }
                let name = self.free_run_name(base_name);
                let entry = self.create_run(name, kind, analysis);
                (Verdict::Waiting, Some(entry))
            }
            RunState::Missing(name) => {
                // Recorded but not seen: the create was lost or the cache lags; ask again.
                let entry = self.create_run(name, kind, analysis);
                self.events.pop();
                (Verdict::Waiting, Some(entry))
            }
            RunState::Observed(run) => {
                let entry = RolloutAnalysisRunStatus {
                    name: run.name.clone(),
                    status: phase_name(run.phase).to_string(),
                    message: run.message.clone(),
                };
                let detail = || {
                    format!(
                        "AnalysisRun {} {}{}",
                        run.name,
                        phase_name(run.phase).to_lowercase(),
                        run.message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )
                };
                match run.phase {
                    AnalysisPhase::Pending | AnalysisPhase::Running => {
                        self.live_runs.insert(run.name.clone());
                        (Verdict::Waiting, Some(entry))
                    }
                    AnalysisPhase::Successful => (Verdict::Passed, Some(entry)),
                    AnalysisPhase::Failed | AnalysisPhase::Error => {
                        (Verdict::Failed(detail()), Some(entry))
                    }
                    AnalysisPhase::Inconclusive => (Verdict::Inconclusive, Some(entry)),
                }
            }
        }
    }

    /// The inconclusive protocol: pause once; a person's resume accepts the result.
    /// Returns true when a person resumed.
    pub fn inconclusive(&mut self) -> bool {
        if self.has_pause(PauseReason::InconclusiveAnalysisRun) {
            return false;
        }
        if self.take_resume() {
            return true;
        }
        self.add_pause(
            PauseReason::InconclusiveAnalysisRun,
            "Rollout paused: an AnalysisRun was inconclusive",
        );
        false
    }

    /// Points a Service at a hash, when the Service is managed by this rollout and the target
    /// has pods to receive traffic (or the rollout runs none).
    pub fn select(&mut self, service: &str, hash: &str, target_available: i32) {
        let current = self.observed_selector(service);
        if current.as_deref() == Some(hash) {
            self.selectors.insert(service.to_string(), hash.to_string());
            return;
        }
        if target_available > 0 || self.v.replicas == 0 {
            self.selectors.insert(service.to_string(), hash.to_string());
        } else if let Some(current) = current {
            self.selectors.insert(service.to_string(), current);
        }
    }

    /// The hash a Service selects now, if any.
    pub fn observed_selector(&self, service: &str) -> Option<String> {
        self.observed
            .services
            .get(service)
            .and_then(|s| s.as_ref())
            .and_then(|s| s.selector.get(POD_TEMPLATE_HASH_LABEL).cloned())
    }

    /// The hash a Service will select after this decision.
    pub fn planned_selector(&self, service: &str) -> Option<String> {
        self.selectors
            .get(service)
            .cloned()
            .or_else(|| self.observed_selector(service))
    }

    /// Available pods of the ReplicaSet with this hash.
    pub fn available_of(&self, hash: &str) -> i32 {
        live(self.observed)
            .find(|rs| rs.pod_template_hash.as_deref() == Some(hash))
            .map_or(0, |rs| rs.available_replicas)
    }
}

/// Where an analysis stands.
pub enum RunState<'a> {
    /// No run recorded for this purpose.
    None,
    /// Recorded in status but not observed.
    Missing(String),
    /// Observed.
    Observed(&'a ObservedAnalysisRun),
}

/// What an analysis says for the rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet.
    Waiting,
    /// Successful.
    Passed,
    /// Failed or Error, with the detail for the abort message.
    Failed(String),
    /// Inconclusive.
    Inconclusive,
}

/// ReplicaSets that are not being deleted.
pub fn live(observed: &Observed) -> impl Iterator<Item = &ObservedReplicaSet> {
    observed.replica_sets.iter().filter(|rs| !rs.deleting)
}

/// The phase's name as it appears in status.
pub fn phase_name(phase: AnalysisPhase) -> &'static str {
    match phase {
        AnalysisPhase::Pending => "Pending",
        AnalysisPhase::Running => "Running",
        AnalysisPhase::Successful => "Successful",
        AnalysisPhase::Failed => "Failed",
        AnalysisPhase::Error => "Error",
        AnalysisPhase::Inconclusive => "Inconclusive",
    }
}
