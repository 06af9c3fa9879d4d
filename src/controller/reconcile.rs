//! The reconcile driver for one Rollout: guard (leadership, synced caches) → finalizer → observe
//! (routers verified) → decide → act → status → events, one `?` per stage, inside one tracing span;
//! plus the error policy (capped exponential back-off). A failing traffic router is not a failed
//! reconcile: its state goes into the status beside the rest of the decision and the router step is
//! retried with back-off. The status write is guarded by the resourceVersion the decision was made
//! from; when the Rollout changed meanwhile (a person's abort, a promote) the driver reads the
//! latest object and decides again at once instead of writing a stale status. The only place that
//! reads the clock for the engine.

use super::act::{self, ActError, Acting};
use super::cleanup::{self, CleanupError, FINALIZER};
use super::context::Context;
use super::events;
use super::observe::{self, ObserveError};
use super::restart::{self, RestartError};
use super::routing_condition::{self, RouterOutcomes, error_chain};
use super::status::{self, StatusError};
use crate::crd::{FIELD_MANAGER, Rollout, RolloutStatus, TrafficWeights};
use crate::engine::condition_names::PROGRESSING;
use crate::engine::{EventKind, EventNote};
use crate::traffic::{RouteContext, TrafficError, TrafficRouter};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Errors of one reconcile, one variant per stage.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Observing failed.
    #[error("observe")]
    Observe(#[from] ObserveError),
    /// Acting failed.
    #[error("act")]
    Act(#[from] ActError),
    /// Writing the status failed.
    #[error("status")]
    Status(#[from] StatusError),
    /// Listing pods for `spec.restartAt` failed.
    #[error("restart")]
    Restart(#[from] RestartError),
    /// The finalizer's clean-up failed.
    #[error("cleanup")]
    Cleanup(#[from] CleanupError),
    /// Adding or removing the finalizer failed.
    #[error("updating finalizers of {name}")]
    Finalizer {
        /// The Rollout.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl ReconcileError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Observe(error) => error.category(),
            Self::Act(error) => error.category(),
            Self::Status(error) => error.category(),
            Self::Restart(error) => error.category(),
            Self::Cleanup(error) => error.category(),
            Self::Finalizer { .. } => "ApiError",
        }
    }

    /// The condition a failure is reported under on the status, when it has one.
    fn condition(&self) -> Option<&'static str> {
        match self {
            Self::Act(ActError::OwnedByAnother { .. }) => Some(PROGRESSING),
            _ => None,
        }
    }

    fn not_leader(&self) -> bool {
        matches!(
            self,
            Self::Act(ActError::NotLeader(_))
                | Self::Status(StatusError::NotLeader(_))
                | Self::Cleanup(CleanupError::NotLeader(_))
        )
    }
}

fn key(rollout: &Rollout) -> (String, String) {
    (rollout.namespace().unwrap_or_default(), rollout.name_any())
}

fn version(rollout: &Rollout) -> Option<u64> {
    rollout.resource_version()?.parse().ok()
}

/// kube-runtime's reconcile callback.
///
/// # Errors
/// Any stage's error; the error policy turns it into a back-off.
pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let span = tracing::info_span!(
        "reconcile",
        rollout = %rollout.name_any(),
        namespace = %rollout.namespace().unwrap_or_default()
    );
    async move {
        let started = Instant::now();
        let _in_flight = ctx.metrics.start();
        ctx.metrics.dequeued(
            &rollout.namespace().unwrap_or_default(),
            &rollout.name_any(),
        );
        let result = reconcile_latest(&rollout, &ctx).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(error) => error.category(),
        };
        ctx.metrics
            .reconciled(label, started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => ctx.remember(key(&rollout), |m| m.failures = 0),
            Err(error) if error.not_leader() => {}
            Err(error) => {
                tracing::warn!(error = %error_chain(error), category = label, "reconcile failed");
                let note = EventNote {
                    kind: EventKind::Warning,
                    reason: label,
                    message: error_chain(error),
                };
                events::publish(&ctx, rollout.as_ref(), &[note]).await;
                if let Some(condition) = error.condition() {
                    report_failure(&ctx, &rollout, condition, error).await;
                }
            }
        }
        result
    }
    .instrument(span)
    .await
}

/// Record a failure as condition `type_`=False on the status as last written (never the
/// decision of the failed reconcile, whose actions did not all happen); a failure to write it is
/// logged only (the reconcile already failed and backs off).
async fn report_failure(ctx: &Context, rollout: &Rollout, type_: &str, error: &ReconcileError) {
    let status = routing_condition::with_failure(
        rollout,
        type_,
        error.category(),
        &error_chain(error),
        jiff::Timestamp::now(),
    );
    match status::write_status(ctx, rollout, status).await {
        Ok(Some(written)) => {
            if let Ok(v) = written.parse::<u64>() {
                ctx.remember(key(rollout), |m| m.last_written_version = Some(v));
            }
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "recording the failure condition failed"),
    }
}

/// How many decisions one reconcile makes when its status writes keep meeting a newer Rollout;
/// after that it backs off like any failure.
const CONFLICT_ATTEMPTS: u32 = 3;

/// Reconcile; when the status write finds that the Rollout changed since it was read (a
/// person's abort, say), drop that decision's status, read the latest object from the API
/// server (the cache may not have it yet) and decide again at once. What the stale decision
/// already did to children is idempotent state the new decision corrects.
async fn reconcile_latest(rollout: &Arc<Rollout>, ctx: &Context) -> Result<Action, ReconcileError> {
    let mut current = rollout.clone();
    let mut attempt = 1;
    loop {
        match reconcile_inner(&current, ctx).await {
            Err(ReconcileError::Status(StatusError::Conflict { .. }))
                if attempt < CONFLICT_ATTEMPTS =>
            {
                attempt += 1;
                tracing::debug!(
                    attempt,
                    "rollout changed during the reconcile; deciding again"
                );
                match status::read_latest(ctx, &current).await? {
                    Some(latest) => current = Arc::new(latest),
                    // Deleted meanwhile: its deletion is a change of its own.
                    None => return Ok(Action::await_change()),
                }
            }
            other => return other,
        }
    }
}

async fn reconcile_inner(rollout: &Arc<Rollout>, ctx: &Context) -> Result<Action, ReconcileError> {
    if !ctx.leadership.is_leader() {
        // A standby keeps its caches warm and nothing else; becoming leader reconciles all.
        return Ok(Action::await_change());
    }
    // A controller that just started decides nothing before its caches are filled: the fault
    // campaign saw a restarted one, its ReplicaSet cache still empty, promote an aborted canary
    // ("stable ReplicaSet gone").
    if !ctx.stores.synced() {
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    // Deciding on a Rollout older than our own last status write would redo a step.
    let last_written = ctx.remember(key(rollout), |m| m.last_written_version);
    if let (Some(seen), Some(written)) = (version(rollout), last_written)
        && seen < written
    {
        tracing::debug!(seen, written, "cache older than last write; waiting");
        return Ok(Action::requeue(Duration::from_millis(100)));
    }

    // The finalizer write moves the resourceVersion; the status write is guarded by the object
    // it returned (the same spec and status: that write was guarded too).
    let rollout = &if rollout.metadata.deletion_timestamp.is_none()
        && !rollout.finalizers().iter().any(|f| f == FINALIZER)
    {
        match set_finalizer(ctx, rollout, true).await? {
            Some(written) => Arc::new(written),
            None => rollout.clone(),
        }
    } else {
        rollout.clone()
    };
    let (routers, mut outcomes) = build_routers(ctx, rollout);
    let status = rollout.status.clone().unwrap_or_default();
    let mut route_ctx = RouteContext {
        rollout: rollout.clone(),
        canary_hash: status.current_pod_hash.clone(),
        stable_hash: status.stable_rs.clone(),
    };

    if rollout.metadata.deletion_timestamp.is_some() {
        return finalize(ctx, rollout, &routers, &route_ctx, &outcomes).await;
    }

    let mut observed = observe::observe(rollout, &ctx.stores)?;
    let applied = status.canary.as_ref().and_then(|c| c.weights.as_ref());
    observed.weights_verified = verify(&routers, &route_ctx, applied, &mut outcomes).await;

    let now = jiff::Timestamp::now();
    observed.restart_pods = restart::observe(ctx, rollout, &observed, now).await?;
    let decision = (ctx.decide)(rollout, &observed, now);
    // kube-runtime counts a requeue from the end of the reconcile; the engine counted it from
    // the clock read above, so the writes below would otherwise make every timer late by their
    // round trips.
    let decided = Instant::now();

    route_ctx.canary_hash = decision
        .status
        .current_pod_hash
        .clone()
        .or(route_ctx.canary_hash);
    route_ctx.stable_hash = decision.status.stable_rs.clone().or(route_ctx.stable_hash);
    let mut acting = Acting {
        rollout,
        routers: &routers,
        route_ctx: &route_ctx,
        outcomes: &mut outcomes,
    };
    let report = act::act(ctx, &mut acting, &decision.actions).await?;
    tracing::debug!(writes = report.writes, held = report.held, "acted");

    let mut new_status = decision.status.clone();
    routing_condition::apply(&mut new_status, rollout.status.as_ref(), &outcomes, now);
    let invalid = is_invalid(&new_status);
    let written = status::write_status(ctx, rollout, new_status.clone()).await?;
    if let Some(written) = written.and_then(|v| v.parse::<u64>().ok()) {
        ctx.remember(key(rollout), |m| m.last_written_version = Some(written));
    }
    // Events tell what the status now records: published before it, a step completed by a
    // decision whose status write failed was announced again by the retry.
    events::publish(ctx, rollout.as_ref(), &decision.events).await;
    events::publish(ctx, rollout.as_ref(), &outcomes.events()).await;
    let mut shown = (**rollout).clone();
    shown.status = Some(new_status);
    ctx.metrics.observe_rollout(&shown, decision.desired_weight);

    if outcomes.failed() {
        // The router step is retried with back-off; everything else was done.
        return Ok(Action::requeue(router_backoff(ctx, rollout)));
    }
    ctx.remember(key(rollout), |m| m.router_failures = 0);
    if invalid {
        // A bad spec waits for someone to change it.
        return Ok(Action::await_change());
    }
    Ok(match decision.requeue_after {
        Some(after) => Action::requeue(after.saturating_sub(decided.elapsed())),
        None => Action::requeue(ctx.settings.safety_requeue),
    })
}

/// The Rollout's routers, and an outcome entry for each; a router set that cannot be built is
/// one failing entry (named after the plugin when one is at fault), so it is reported like a
/// router that is down.
fn build_routers(
    ctx: &Context,
    rollout: &Rollout,
) -> (Vec<Box<dyn TrafficRouter>>, RouterOutcomes) {
    let built = (ctx.routers)(
        rollout,
        ctx.client.clone(),
        ctx.http.clone(),
        &ctx.settings.traffic_plugins,
    );
    match built {
        Ok(routers) => {
            let outcomes = RouterOutcomes::for_routers(&routers);
            (routers, outcomes)
        }
        Err(error) => {
            let name = match &error {
                TrafficError::UnregisteredPlugin { plugin, .. }
                | TrafficError::Plugin { plugin, .. } => plugin.clone(),
                _ => "trafficRouting".to_owned(),
            };
            let mut outcomes = RouterOutcomes::default();
            outcomes.record::<()>(&name, Err(error));
            (Vec::new(), outcomes)
        }
    }
}

/// Ask every router whether it carries `applied`: `Some(false)` when one says no or cannot be
/// asked (recorded as its failure), `Some(true)` when one confirms and none refuses.
async fn verify(
    routers: &[Box<dyn TrafficRouter>],
    ctx: &RouteContext,
    applied: Option<&TrafficWeights>,
    outcomes: &mut RouterOutcomes,
) -> Option<bool> {
    let weights = applied?;
    let mut verdict = None;
    for router in routers {
        match outcomes.record(router.name(), router.verify_weight(ctx, weights).await) {
            Some(Some(false)) | None => verdict = Some(false),
            Some(Some(true)) => {
                verdict.get_or_insert(true);
            }
            Some(None) => {}
        }
    }
    verdict
}

/// The back-off before the router step is tried again.
fn router_backoff(ctx: &Context, rollout: &Rollout) -> Duration {
    let failures = ctx.remember(key(rollout), |m| {
        m.router_failures = m.router_failures.saturating_add(1);
        m.router_failures
    });
    backoff(
        ctx.settings.backoff_base,
        ctx.settings.backoff_max,
        failures,
    )
}

/// A Rollout being deleted: undo what can be undone, and drop the finalizer once all of it is.
async fn finalize(
    ctx: &Context,
    rollout: &Rollout,
    routers: &[Box<dyn TrafficRouter>],
    route_ctx: &RouteContext,
    outcomes: &RouterOutcomes,
) -> Result<Action, ReconcileError> {
    if rollout.finalizers().iter().any(|f| f == FINALIZER) {
        let cleaned = cleanup::cleanup(ctx, rollout, routers, route_ctx).await;
        if outcomes.failed() {
            // A router that cannot be built may still hold traffic on the canary.
            events::publish(ctx, rollout, &outcomes.events()).await;
            cleaned?;
            return Ok(Action::requeue(router_backoff(ctx, rollout)));
        }
        cleaned?;
        set_finalizer(ctx, rollout, false).await?;
    }
    ctx.forget(&key(rollout));
    ctx.metrics.forget_rollout(&key(rollout).0, &key(rollout).1);
    Ok(Action::await_change())
}

fn is_invalid(status: &RolloutStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == "InvalidSpec" && c.status == "True")
}

/// Adds or removes our finalizer; the Rollout as written (`None`: it was already gone).
async fn set_finalizer(
    ctx: &Context,
    rollout: &Rollout,
    present: bool,
) -> Result<Option<Rollout>, ReconcileError> {
    ctx.leadership
        .ensure()
        .map_err(|e| ReconcileError::Act(ActError::NotLeader(e)))?;
    let name = rollout.name_any();
    let namespace = rollout.namespace().unwrap_or_default();
    let mut finalizers: Vec<String> = rollout
        .finalizers()
        .iter()
        .filter(|f| f.as_str() != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.into());
    }
    // The resourceVersion makes this a compare-and-swap on the list.
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": rollout.resource_version(),
    }});
    let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match api.patch(&name, &params, &Patch::Merge(patch)).await {
        Ok(written) => {
            if let Some(v) = written
                .resource_version()
                .and_then(|v| v.parse::<u64>().ok())
            {
                ctx.remember(key(rollout), |m| m.last_written_version = Some(v));
            }
            Ok(Some(written))
        }
        Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(None),
        Err(source) => Err(ReconcileError::Finalizer { name, source }),
    }
}

/// kube-runtime's error policy: capped exponential back-off per Rollout.
pub fn error_policy(rollout: Arc<Rollout>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    if error.not_leader() {
        return Action::await_change();
    }
    let failures = ctx.remember(key(&rollout), |m| {
        m.failures = m.failures.saturating_add(1);
        m.failures
    });
    Action::requeue(backoff(
        ctx.settings.backoff_base,
        ctx.settings.backoff_max,
        failures,
    ))
}

/// `base × 2^(failures−1)`, capped at `max`.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    base.saturating_mul(1 << exponent).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(200);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(base, max, 1), Duration::from_millis(200));
        assert_eq!(backoff(base, max, 2), Duration::from_millis(400));
        assert_eq!(backoff(base, max, 5), Duration::from_millis(3200));
        assert_eq!(backoff(base, max, 30), max);
    }
}
