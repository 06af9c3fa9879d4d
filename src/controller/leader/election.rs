//! The election loop: every retry period, read the Lease, `decide`, and write the renewal or
//! takeover with the resourceVersion read (so two candidates cannot both win). Each attempt is
//! bounded by the renew deadline, and a timer drops the `Leadership` flag when the deadline
//! passes, even while a call hangs. Touches only its Lease, on the election's own client.

use super::decide::{Action, LeaseRecord, Timing, decide};
use super::{Leadership, LeaseNamespaceMissing, LeaseSettings, LeaseSettingsError};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// Why the controller cannot start its election.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Incoherent timing flags.
    #[error(transparent)]
    Settings(#[from] LeaseSettingsError),
    /// The Lease namespace does not exist.
    #[error(transparent)]
    NamespaceMissing(#[from] LeaseNamespaceMissing),
}

/// One candidate's memory: the record it last observed and when (local clock) it changed.
struct Candidate {
    name: String,
    identity: String,
    timing: Timing,
    duration_seconds: i32,
    observed: Option<(LeaseRecord, Instant)>,
}

impl Candidate {
    fn new(settings: &LeaseSettings, timing: Timing) -> Self {
        Self {
            name: settings.name.clone(),
            identity: settings.identity.clone(),
            timing,
            // Validated: the duration fits.
            duration_seconds: super::duration_seconds(timing.lease_duration).unwrap_or(i32::MAX),
            observed: None,
        }
    }

    /// Remember `record`, restarting its expiry clock only when it changed.
    fn observe(&mut self, record: LeaseRecord, at: Instant) -> (LeaseRecord, Instant) {
        match &self.observed {
            Some((seen, since)) if *seen == record => (record, *since),
            _ => {
                self.observed = Some((record.clone(), at));
                (record, at)
            }
        }
    }

    /// One read and, when `decide` says so, one write. `Ok(true)` when this candidate holds the
    /// Lease after it.
    async fn attempt(&mut self, api: &Api<Lease>) -> Result<bool, kube::Error> {
        let Some(mut lease) = api.get_opt(&self.name).await? else {
            return self.create(api).await;
        };
        let now = Instant::now();
        let (record, since) = self.observe(record_of(&lease), now);
        let action = decide(&record, since, &self.identity, now, &self.timing);
        let wall_now = jiff::Timestamp::now();
        let Some(next) = record.after(action, &self.identity, wall_now, self.duration_seconds)
        else {
            return Ok(false);
        };
        if action == Action::TakeOver {
            tracing::info!(lease = %self.name, previous = record.holder.as_deref().unwrap_or(""), "taking over the lease");
        }
        write_record(&mut lease, &next);
        // The object carries the resourceVersion read: a competing write in between makes this
        // one fail with 409 instead of both candidates believing they hold the Lease.
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observe(record_of(&written), Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn create(&mut self, api: &Api<Lease>) -> Result<bool, kube::Error> {
        let now = jiff::Timestamp::now();
        let record = LeaseRecord {
            holder: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds),
            acquire_time: Some(now),
            renew_time: Some(now),
            lease_transitions: 0,
        };
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        };
        write_record(&mut lease, &record);
        match api.create(&PostParams::default(), &lease).await {
            Ok(written) => {
                self.observe(record_of(&written), Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }
}

fn record_of(lease: &Lease) -> LeaseRecord {
    let Some(spec) = lease.spec.as_ref() else {
        return LeaseRecord::default();
    };
    LeaseRecord {
        holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
        lease_duration_seconds: spec.lease_duration_seconds,
        acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
        renew_time: spec.renew_time.as_ref().map(|t| t.0),
        lease_transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// Write `record` into the Lease, leaving the fields the election does not own alone.
fn write_record(lease: &mut Lease, record: &LeaseRecord) {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = record.holder.clone();
    spec.lease_duration_seconds = record.lease_duration_seconds;
    spec.acquire_time = record.acquire_time.map(MicroTime);
    spec.renew_time = record.renew_time.map(MicroTime);
    spec.lease_transitions = Some(record.lease_transitions);
}

/// One attempt at the Lease before the controller starts, so that a set-up error the election
/// could never recover from (incoherent timing, a missing namespace) stops the controller with
/// one clear error instead of a warning repeated for ever. Other errors (a slow API server) are
/// left to the election's retries; holding the Lease after this attempt is fine, the election
/// renews it.
///
/// # Errors
/// [`PreflightError`].
pub async fn preflight(
    client: &kube::Client,
    settings: &LeaseSettings,
) -> Result<(), PreflightError> {
    let timing = settings.validate()?;
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut candidate = Candidate::new(settings, timing);
    let attempt = tokio::time::timeout(timing.renew_deadline, candidate.attempt(&api)).await;
    match attempt {
        Ok(Err(kube::Error::Api(status)))
            if status.code == 404 && status.message.starts_with("namespaces ") =>
        {
            Err(LeaseNamespaceMissing {
                namespace: settings.namespace.clone(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// Run the election until `stop` turns true, then release the Lease if held. Settings that do
/// not validate (see [`LeaseSettings::validate`]) are logged and this replica never leads.
pub async fn run_election(
    client: kube::Client,
    settings: LeaseSettings,
    leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    let timing = match settings.validate() {
        Ok(timing) => timing,
        Err(error) => {
            tracing::error!(%error, lease = %settings.name, "leader election cannot run: this replica never leads");
            return;
        }
    };
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut candidate = Candidate::new(&settings, timing);
    loop {
        let started = Instant::now();
        // A leader's attempt may last until its deadline, a follower's a renew deadline.
        let bound = leadership
            .deadline()
            .unwrap_or(started + timing.renew_deadline);
        let outcome = tokio::select! {
            outcome = tokio::time::timeout_at(bound, candidate.attempt(&api)) => outcome,
            _ = stop.wait_for(|s| *s) => break,
        };
        match outcome {
            Ok(Ok(true)) => leadership.lead_until(started + timing.renew_deadline),
            Ok(Ok(false)) => leadership.step_down(),
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %settings.name, "lease renewal failed");
            }
            Err(_) => tracing::warn!(lease = %settings.name, "lease request timed out"),
        }
        leadership.expire_if_due(Instant::now());
        if !wait(&leadership, Instant::now() + timing.retry_period, &mut stop).await {
            break;
        }
    }
    let held = leadership.is_leader();
    leadership.step_down();
    if held {
        let released = tokio::time::timeout(timing.renew_deadline, release(&api, &settings)).await;
        if !matches!(released, Ok(Ok(()))) {
            tracing::warn!(lease = %settings.name, "releasing the lease failed");
        }
    }
}

/// Sleep until `until`, dropping the flag at the renew deadline if it comes first. `false`
/// when `stop` turned true.
async fn wait(leadership: &Leadership, until: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        let wake = leadership.deadline().map_or(until, |d| d.min(until));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
        let now = Instant::now();
        leadership.expire_if_due(now);
        if now >= until {
            return true;
        }
    }
}

async fn release(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        return Ok(());
    };
    let mut record = record_of(&lease);
    if record.holder.as_deref() != Some(settings.identity.as_str()) {
        return Ok(());
    }
    record.holder = None;
    record.renew_time = None;
    write_record(&mut lease, &record);
    api.replace(&settings.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}
