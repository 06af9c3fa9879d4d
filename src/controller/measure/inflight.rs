//! Measurements under way and measurements finished but not yet written, per AnalysisRun.
//! Measurement tasks run outside any reconcile (a slow provider holds no reconcile slot); a
//! finished one lands in the inbox and wakes its run, whose next reconcile folds it into the
//! status. Only memory: lost on restart, when a measurement is simply taken again.

use crate::engine::measure::Taken;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A run, by uid (a run deleted and created again under the same name is another run).
pub type RunKey = String;

/// The bookkeeping of all runs.
#[derive(Default)]
pub struct InFlight {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: HashSet<(RunKey, String)>,
    inbox: HashMap<RunKey, Vec<Finished>>,
}

/// A finished measurement waiting to be written, with when it fell due.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// The measurement.
    pub taken: Taken,
    /// When it fell due.
    pub due_at: jiff::Timestamp,
    /// The run's new `status.judgement`, on one of the measurements of a judgement.
    pub judgement: Option<Box<crate::crd::RunJudgement>>,
}

impl InFlight {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `metric` of `run` as being measured; false when it already is.
    pub fn start(&self, run: &str, metric: &str) -> bool {
        self.state()
            .running
            .insert((run.to_string(), metric.to_string()))
    }

    /// Whether `metric` of `run` is being measured.
    pub fn is_running(&self, run: &str, metric: &str) -> bool {
        self.state()
            .running
            .contains(&(run.to_string(), metric.to_string()))
    }

    /// A measurement task finished: its result waits in the inbox.
    pub fn finish(&self, run: &str, finished: Finished) {
        let mut state = self.state();
        state
            .running
            .remove(&(run.to_string(), finished.taken.metric.clone()));
        state
            .inbox
            .entry(run.to_string())
            .or_default()
            .push(finished);
    }

    /// A measurement task ended without a result (its run is gone).
    pub fn abandon(&self, run: &str, metric: &str) {
        self.state()
            .running
            .remove(&(run.to_string(), metric.to_string()));
    }

    /// Takes the finished measurements of `run`, oldest first.
    pub fn drain(&self, run: &str) -> Vec<Finished> {
        self.state().inbox.remove(run).unwrap_or_default()
    }

    /// Puts back measurements a failed status write did not record, ahead of newer ones.
    pub fn restore(&self, run: &str, mut taken: Vec<Finished>) {
        if taken.is_empty() {
            return;
        }
        let mut state = self.state();
        let inbox = state.inbox.entry(run.to_string()).or_default();
        taken.append(inbox);
        *inbox = taken;
    }

    /// Forgets a run that was deleted.
    pub fn forget(&self, run: &str) {
        let mut state = self.state();
        state.inbox.remove(run);
        state.running.retain(|(r, _)| r != run);
    }

    /// Measurements under way, over all runs.
    pub fn running(&self) -> usize {
        self.state().running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AnalysisPhase, Measurement};
    use std::collections::BTreeMap;

    fn taken(metric: &str, value: &str) -> Finished {
        Finished {
            due_at: jiff::Timestamp::UNIX_EPOCH,
            judgement: None,
            taken: Taken {
                metric: metric.into(),
                measurement: Measurement {
                    phase: AnalysisPhase::Successful,
                    message: None,
                    started_at: None,
                    finished_at: None,
                    value: Some(value.into()),
                    resume_at: None,
                    metadata: BTreeMap::new(),
                },
            },
        }
    }

    #[test]
    fn a_metric_is_measured_once_at_a_time_and_its_result_waits_for_the_run() {
        let f = InFlight::default();
        assert!(f.start("uid-1", "rate"));
        assert!(
            !f.start("uid-1", "rate"),
            "a second task for the same metric"
        );
        assert!(f.start("uid-1", "latency"), "another metric runs beside it");
        assert!(
            f.start("uid-2", "rate"),
            "another run's metric of the same name"
        );
        f.finish("uid-1", taken("rate", "1"));
        assert!(!f.is_running("uid-1", "rate"));
        assert!(f.start("uid-1", "rate"), "measured again once finished");
        assert_eq!(f.drain("uid-1"), vec![taken("rate", "1")]);
        assert!(f.drain("uid-1").is_empty(), "drained once");
    }

    #[test]
    fn results_a_failed_write_did_not_record_come_back_first() {
        let f = InFlight::default();
        f.finish("r", taken("a", "1"));
        let first = f.drain("r");
        f.finish("r", taken("a", "2"));
        f.restore("r", first);
        let values: Vec<_> = f
            .drain("r")
            .into_iter()
            .map(|f| f.taken.measurement.value.unwrap_or_default())
            .collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn a_deleted_run_leaves_nothing_behind() {
        let f = InFlight::default();
        f.start("r", "a");
        f.finish("r", taken("b", "1"));
        f.forget("r");
        assert_eq!(f.running(), 0);
        assert!(f.drain("r").is_empty());
    }
}
