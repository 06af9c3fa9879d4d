//! The AnalysisRun controller: measures runs. A second kube-runtime `Controller`, beside the
//! Rollout one, over every AnalysisRun in the watched namespaces (runs a Rollout created and
//! runs a person created).
//!
//! One reconcile of a run: guard (leadership) → fold the measurements finished since into the
//! status with the pure loop (`engine::measure::step`, time passed in) → write the status (a
//! PUT with the run's resourceVersion, so a stale cache or a concurrent writer loses nothing:
//! the results go back to the inbox and the run is retried) → Events for phase changes →
//! start the measurements now due as tasks (`take.rs`), each bounded by a deadline and a
//! controller-wide limit of measurements at once, so a slow provider never holds a reconcile
//! slot → requeue at the exact time of the next one. A finished task wakes its run.

pub mod inflight;
mod judging;
pub mod metrics;
pub mod take;

use super::context::Context;
use super::events;
use crate::crd::{AnalysisPhase, AnalysisRun, AnalysisRunStatus, FIELD_MANAGER, MetricResult};
use crate::engine::measure::{self, Due};
use crate::engine::{EventKind, EventNote};
use crate::providers::{Args, MeasureRequest, MetricProviders, kind_of};
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use inflight::InFlight;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::sync::Arc;
use std::time::{Duration, Instant};
use take::Taker;
use tokio::sync::Semaphore;

/// Errors of one reconcile of a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// This replica is not the leader.
    #[error("not the leader")]
    NotLeader,
    /// Writing the run's status failed (a conflict: the cache was stale, or someone else wrote).
    #[error("writing the status of AnalysisRun {name}")]
    Status {
        /// The run.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl RunError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotLeader => "NotLeader",
            Self::Status { source, .. } => match source {
                kube::Error::Api(status) if status.code == 409 => "Conflict",
                _ => "ApiError",
            },
        }
    }
}

/// What every run reconcile shares.
pub struct MeasureContext {
    /// The Rollout controller's context: client, leadership, metrics, Events.
    pub ctx: Arc<Context>,
    /// The providers measurements are taken with.
    pub providers: MetricProviders,
    /// Measurements under way and results not yet written.
    pub inflight: InFlight,
    /// Measurements allowed at once over all runs.
    pub permits: Semaphore,
    /// Wakes a run when one of its measurements finished.
    pub wake: UnboundedSender<ObjectRef<AnalysisRun>>,
}

/// Runs the AnalysisRun controller until `shutdown` completes.
pub async fn run(
    ctx: Arc<Context>,
    providers: MetricProviders,
    became_leader: impl futures::Stream<Item = ()> + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (wake, woken) = unbounded();
    let api: Api<AnalysisRun> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let concurrency = ctx.settings.concurrency;
    // Only the runs of this controller instance, as for Rollouts.
    let selector = super::run::rollout_selector(ctx.settings.instance_id.as_deref());
    let m = Arc::new(MeasureContext {
        permits: Semaphore::new(ctx.settings.measurements_at_once.max(1)),
        ctx,
        providers,
        inflight: InFlight::default(),
        wake,
    });
    Controller::new(api, watcher::Config::default().labels(&selector))
        .reconcile_on(woken)
        .reconcile_all_on(became_leader)
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, m)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "analysis run controller stream error");
            }
        })
        .await;
}

fn error_policy(_run: Arc<AnalysisRun>, error: &RunError, _m: Arc<MeasureContext>) -> Action {
    match error {
        RunError::NotLeader => Action::await_change(),
        // A conflict resolves as soon as the cache catches up.
        RunError::Status { .. } => Action::requeue(Duration::from_millis(250)),
    }
}

async fn reconcile(run: Arc<AnalysisRun>, m: Arc<MeasureContext>) -> Result<Action, RunError> {
    let span = tracing::info_span!(
        "analysisrun",
        run = %run.name_any(),
        namespace = %run.namespace().unwrap_or_default()
    );
    let _entered = span.enter();
    if !m.ctx.leadership.is_leader() {
        return Err(RunError::NotLeader);
    }
    let uid = run.uid().unwrap_or_default();
    if run.metadata.deletion_timestamp.is_some() {
        m.inflight.forget(&uid);
        return Ok(Action::await_change());
    }
    let finished_since = m.inflight.drain(&uid);
    let taken: Vec<_> = finished_since.iter().map(|f| f.taken.clone()).collect();
    let now = jiff::Timestamp::now();
    let mut decision = measure::step(&run.spec, run.status.as_ref(), &taken, now);
    let judged = latest_judgement(&run, &finished_since);
    if let Some(record) = &judged {
        decision.status.judgement = Some(record.clone());
    }
    measure::judge::explain(&mut decision.status);
    if run.status.as_ref() != Some(&decision.status) {
        if let Err(error) = write_status(&m.ctx, &run, &decision.status).await {
            m.inflight.restore(&uid, finished_since);
            return Err(error);
        }
        let written = jiff::Timestamp::now();
        for f in &finished_since {
            if f.taken.measurement.phase != AnalysisPhase::Running {
                let lag = written.duration_since(f.due_at).as_secs_f64();
                m.ctx.metrics.analysis.recorded(lag.max(0.0));
            }
        }
        let mut notes = transitions(run.status.as_ref(), &decision.status);
        if let Some(record) = &judged {
            notes.insert(0, judgement_note(record));
            m.ctx.metrics.analysis.judged(&run, record);
        }
        events::publish(&m.ctx, run.as_ref(), &notes).await;
        if finished(&decision.status) && !finished_opt(run.status.as_ref()) {
            m.ctx
                .metrics
                .analysis
                .run_completed(phase_name(decision.status.phase));
        }
    }
    for due in &decision.stop {
        stop(&m, &run, due);
    }
    let (judge_due, plain_due): (Vec<Due>, Vec<Due>) = decision
        .due
        .into_iter()
        .partition(|due| metric_of(&run, &due.metric).is_some_and(|x| x.judge.is_some()));
    for due in plain_due {
        start(&m, &run, &decision.status, due);
    }
    start_judgement(&m, &run, judge_due);
    Ok(match decision.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

async fn write_status(
    ctx: &Context,
    run: &AnalysisRun,
    status: &AnalysisRunStatus,
) -> Result<(), RunError> {
    let mut updated = run.clone();
    updated.status = Some(status.clone());
    updated.metadata.managed_fields = None;
    let api: Api<AnalysisRun> =
        Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    api.replace_status(&run.name_any(), &params, &updated)
        .await
        .map(|_| ())
        .map_err(|source| RunError::Status {
            name: run.name_any(),
            source,
        })
}

/// Starts one measurement as a task, unless one of the same metric is under way.
fn start(m: &Arc<MeasureContext>, run: &Arc<AnalysisRun>, status: &AnalysisRunStatus, due: Due) {
    let uid = run.uid().unwrap_or_default();
    let Some(metric) = metric_of(run, &due.metric) else {
        return;
    };
    if !m.inflight.start(&uid, &due.metric) {
        return;
    }
    let index = metric_result(status, &due.metric).map_or(0, |r| r.count);
    spawn_task(
        m,
        run,
        vec![metric.name.clone()],
        move |m, run| async move {
            let started = Instant::now();
            let taker = Taker {
                client: &m.ctx.client,
                providers: &m.providers,
            };
            let taken = taker.take(&run, &metric, index, due.resume.as_ref()).await;
            m.ctx.metrics.analysis.measured(
                kind_of(&metric.provider),
                phase_name(Some(taken.measurement.phase)),
                started.elapsed().as_secs_f64(),
            );
            vec![inflight::Finished {
                taken,
                due_at: due.due_at,
                judgement: None,
            }]
        },
    );
}

/// Runs `work` (measurements of `metrics`, already marked under way) as a task holding one of
/// the controller's measurement permits; what it finished lands in the inbox and wakes the run.
fn spawn_task<F, Fut>(
    m: &Arc<MeasureContext>,
    run: &Arc<AnalysisRun>,
    metrics: Vec<String>,
    work: F,
) where
    F: FnOnce(Arc<MeasureContext>, Arc<AnalysisRun>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Vec<inflight::Finished>> + Send,
{
    let uid = run.uid().unwrap_or_default();
    let (m, run) = (m.clone(), run.clone());
    tokio::spawn(async move {
        let Ok(_permit) = m.permits.acquire().await else {
            for metric in &metrics {
                m.inflight.abandon(&uid, metric);
            }
            return;
        };
        m.ctx.metrics.analysis.set_in_flight(m.inflight.running());
        for finished in work(m.clone(), run.clone()).await {
            m.inflight.finish(&uid, finished);
        }
        m.ctx.metrics.analysis.set_in_flight(m.inflight.running());
        let _ = m.wake.unbounded_send(ObjectRef::from_obj(run.as_ref()));
    });
}

/// The judgement a finished judgement task brought, unless the run had already completed.
fn latest_judgement(
    run: &AnalysisRun,
    finished: &[inflight::Finished],
) -> Option<crate::crd::RunJudgement> {
    if finished_opt(run.status.as_ref()) {
        return None;
    }
    finished
        .iter()
        .rev()
        .find_map(|f| f.judgement.as_deref().cloned())
}

/// The Event of a judgement: its verdict, score and the metrics that did not pass.
fn judgement_note(record: &crate::crd::RunJudgement) -> EventNote {
    use sluice_analysis::score::Verdict;
    let (kind, reason) = match record.latest.result {
        Verdict::Pass => (EventKind::Normal, "CanaryJudgedPass"),
        Verdict::Marginal => (EventKind::Warning, "CanaryJudgedMarginal"),
        Verdict::Fail => (EventKind::Warning, "CanaryJudgedFail"),
    };
    EventNote {
        kind,
        reason,
        message: measure::judge::summary(&record.latest),
    }
}

/// Starts one judgement of the run's judge metrics due now, as one task: they are judged
/// together (one score), unless one of them is still being judged.
fn start_judgement(m: &Arc<MeasureContext>, run: &Arc<AnalysisRun>, due: Vec<Due>) {
    let uid = run.uid().unwrap_or_default();
    let metrics: Vec<crate::crd::Metric> = due
        .iter()
        .filter_map(|d| metric_of(run, &d.metric))
        .collect();
    if metrics.is_empty() || metrics.iter().any(|x| m.inflight.is_running(&uid, &x.name)) {
        return;
    }
    for metric in &metrics {
        m.inflight.start(&uid, &metric.name);
    }
    let due_at = due
        .iter()
        .map(|d| d.due_at)
        .min()
        .unwrap_or_else(jiff::Timestamp::now);
    let names = metrics.iter().map(|x| x.name.clone()).collect();
    spawn_task(m, run, names, move |m, run| async move {
        let started = Instant::now();
        let taker = Taker {
            client: &m.ctx.client,
            providers: &m.providers,
        };
        let judged = taker.judge(&run, &metrics).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut record = judged.record.map(Box::new);
        judged
            .taken
            .into_iter()
            .map(|taken| {
                let phase = phase_name(Some(taken.measurement.phase));
                m.ctx.metrics.analysis.measured("judge", phase, seconds);
                inflight::Finished {
                    taken,
                    due_at,
                    judgement: record.take(),
                }
            })
            .collect()
    });
}

/// Stops a measurement in progress (a Job) of a run that completed.
fn stop(m: &Arc<MeasureContext>, run: &Arc<AnalysisRun>, due: &Due) {
    let Some(measurement) = due.resume.clone() else {
        return;
    };
    let Some(metric) = metric_of(run, &due.metric) else {
        return;
    };
    let (m, run) = (m.clone(), run.clone());
    tokio::spawn(async move {
        let Ok(provider) = m.providers.for_metric(&metric) else {
            return;
        };
        let namespace = run.namespace().unwrap_or_default();
        let args = Args::resolve(&m.ctx.client, &namespace, &run.spec.args)
            .await
            .unwrap_or_default();
        let (name, uid) = (run.name_any(), run.uid().unwrap_or_default());
        let req = MeasureRequest {
            namespace: &namespace,
            run_name: &name,
            run_uid: &uid,
            metric: &metric,
            args: &args,
            index: 0,
            now: jiff::Timestamp::now(),
        };
        if let Err(error) = provider.terminate(&req, &measurement).await {
            tracing::warn!(error = %args.redact(&error.to_string()), metric = %metric.name, "stopping a measurement failed");
        }
    });
}

fn metric_of(run: &AnalysisRun, name: &str) -> Option<crate::crd::Metric> {
    run.spec.metrics.iter().find(|x| x.name == name).cloned()
}

fn metric_result<'a>(status: &'a AnalysisRunStatus, metric: &str) -> Option<&'a MetricResult> {
    status.metric_results.iter().find(|r| r.name == metric)
}

fn finished(status: &AnalysisRunStatus) -> bool {
    status.completed_at.is_some()
}

fn finished_opt(status: Option<&AnalysisRunStatus>) -> bool {
    status.is_some_and(finished)
}

fn phase_name(phase: Option<AnalysisPhase>) -> &'static str {
    match phase {
        None | Some(AnalysisPhase::Pending) => "Pending",
        Some(AnalysisPhase::Running) => "Running",
        Some(AnalysisPhase::Successful) => "Successful",
        Some(AnalysisPhase::Failed) => "Failed",
        Some(AnalysisPhase::Error) => "Error",
        Some(AnalysisPhase::Inconclusive) => "Inconclusive",
    }
}

fn is_bad(phase: AnalysisPhase) -> bool {
    matches!(
        phase,
        AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
    )
}

/// Events for what changed between two statuses: the run's phase
/// (`AnalysisRun<Phase>`) and each metric that reached a final phase (`Metric<Phase>`).
fn transitions(old: Option<&AnalysisRunStatus>, new: &AnalysisRunStatus) -> Vec<EventNote> {
    let mut notes = Vec::new();
    let old_phase = old.and_then(|s| s.phase);
    for result in &new.metric_results {
        let before = old
            .and_then(|s| metric_result(s, &result.name))
            .map(|r| r.phase);
        let now = result.phase;
        if before != Some(now) && !matches!(now, AnalysisPhase::Pending | AnalysisPhase::Running) {
            notes.push(EventNote {
                kind: if is_bad(now) && !result.dry_run {
                    EventKind::Warning
                } else {
                    EventKind::Normal
                },
                reason: metric_reason(now),
                message: match &result.message {
                    Some(message) => format!(
                        "Metric '{}' {}: {message}",
                        result.name,
                        phase_name(Some(now))
                    ),
                    None => format!("Metric '{}' {}", result.name, phase_name(Some(now))),
                },
            });
        }
    }
    if let Some(phase) = new.phase.filter(|p| Some(*p) != old_phase) {
        notes.push(EventNote {
            kind: if is_bad(phase) {
                EventKind::Warning
            } else {
                EventKind::Normal
            },
            reason: run_reason(phase),
            message: match &new.message {
                Some(message) => format!("Analysis run {}: {message}", phase_name(Some(phase))),
                None => format!("Analysis run {}", phase_name(Some(phase))),
            },
        });
    }
    notes
}

fn run_reason(phase: AnalysisPhase) -> &'static str {
    match phase {
        AnalysisPhase::Pending => "AnalysisRunPending",
        AnalysisPhase::Running => "AnalysisRunRunning",
        AnalysisPhase::Successful => "AnalysisRunSuccessful",
        AnalysisPhase::Failed => "AnalysisRunFailed",
        AnalysisPhase::Error => "AnalysisRunError",
        AnalysisPhase::Inconclusive => "AnalysisRunInconclusive",
    }
}

fn metric_reason(phase: AnalysisPhase) -> &'static str {
    match phase {
        AnalysisPhase::Pending => "MetricPending",
        AnalysisPhase::Running => "MetricRunning",
        AnalysisPhase::Successful => "MetricSuccessful",
        AnalysisPhase::Failed => "MetricFailed",
        AnalysisPhase::Error => "MetricError",
        AnalysisPhase::Inconclusive => "MetricInconclusive",
    }
}
