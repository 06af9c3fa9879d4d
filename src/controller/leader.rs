//! Leader election on a `coordination.k8s.io/v1` Lease, and the `Leadership` flag every write
//! checks first. A replica that cannot renew within the renew deadline, or finds the Lease held
//! by someone else, drops the flag at once and so stops writing. Touches only its Lease.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Returned instead of writing when this replica is not the leader.
#[derive(Debug, thiserror::Error)]
#[error("not the leader: writes are disabled")]
pub struct NotLeader;

/// Whether this replica may write, shared by every reconcile.
#[derive(Clone, Debug)]
pub struct Leadership {
    flag: Arc<AtomicBool>,
    changes: Arc<watch::Sender<bool>>,
}

impl Leadership {
    /// Always the leader (leader election off).
    pub fn always() -> Self {
        Self::with(true)
    }

    /// Not the leader until an election says so.
    pub fn follower() -> Self {
        Self::with(false)
    }

    fn with(value: bool) -> Self {
        let (changes, _) = watch::channel(value);
        Self {
            flag: Arc::new(AtomicBool::new(value)),
            changes: Arc::new(changes),
        }
    }

    /// Whether this replica holds the Lease.
    pub fn is_leader(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// `Ok` when this replica may write.
    ///
    /// # Errors
    /// `NotLeader` when it may not.
    pub fn ensure(&self) -> Result<(), NotLeader> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(NotLeader)
        }
    }

    /// Changes of leadership.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    fn set(&self, value: bool) {
        let before = self.flag.swap(value, Ordering::SeqCst);
        if before != value {
            if value {
                tracing::info!("acquired leader lease");
            } else {
                tracing::warn!("lost leader lease: writes stop");
            }
            self.changes.send_replace(value);
        }
    }
}

/// Where and how to hold the Lease.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps writing without a successful renewal.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// Defaults as in Kubernetes controllers: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(name: String, namespace: String, identity: String) -> Self {
        Self {
            name,
            namespace,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// A Lease the controller cannot ever hold: its namespace does not exist.
#[derive(Debug, thiserror::Error)]
#[error(
    "leader election: the Lease namespace {namespace:?} does not exist; create it, pass --lease-namespace NAMESPACE (env SLUICE_LEASE_NAMESPACE), or run one replica with --leader-elect=false"
)]
pub struct LeaseNamespaceMissing {
    /// The namespace.
    pub namespace: String,
}

/// One attempt at the Lease before the controller starts, so that a set-up error the election
/// could never recover from (a missing namespace) stops the controller with one clear error
/// instead of a warning repeated for ever. Other errors (a slow API server) are left to the
/// election's retries; holding the Lease after this attempt is fine, the election renews it.
///
/// # Errors
/// [`LeaseNamespaceMissing`].
pub async fn preflight(
    client: &kube::Client,
    settings: &LeaseSettings,
) -> Result<(), LeaseNamespaceMissing> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    match try_acquire_or_renew(&api, settings).await {
        Err(kube::Error::Api(status))
            if status.code == 404 && status.message.starts_with("namespaces ") =>
        {
            Err(LeaseNamespaceMissing {
                namespace: settings.namespace.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Run the election until `stop` turns true, then release the Lease if held.
pub async fn run_election(
    client: kube::Client,
    settings: LeaseSettings,
    leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut last_renewal: Option<tokio::time::Instant> = None;
    loop {
        match try_acquire_or_renew(&api, &settings).await {
            Ok(true) => {
                last_renewal = Some(tokio::time::Instant::now());
                leadership.set(true);
            }
            Ok(false) => leadership.set(false),
            Err(error) => {
                tracing::warn!(%error, lease = %settings.name, "lease renewal failed");
                let overdue = last_renewal.is_none_or(|at| at.elapsed() >= settings.renew_deadline);
                if overdue {
                    leadership.set(false);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.retry_period) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if leadership.is_leader() {
        leadership.set(false);
        if let Err(error) = release(&api, &settings).await {
            tracing::warn!(%error, lease = %settings.name, "releasing the lease failed");
        }
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

async fn try_acquire_or_renew(
    api: &Api<Lease>,
    settings: &LeaseSettings,
) -> Result<bool, kube::Error> {
    let duration_seconds = i32::try_from(settings.lease_duration.as_secs()).unwrap_or(15);
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(settings.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(settings.identity.clone()),
                lease_duration_seconds: Some(duration_seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let ours = holder.as_deref() == Some(settings.identity.as_str());
    if !ours {
        let held_for = spec
            .lease_duration_seconds
            .map_or(settings.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        let expired = match &spec.renew_time {
            None => true,
            Some(renewed) => {
                let age = jiff::Timestamp::now().duration_since(renewed.0);
                age.is_positive() && age.unsigned_abs() > held_for
            }
        };
        if holder.is_some() && !expired {
            return Ok(false);
        }
        spec.holder_identity = Some(settings.identity.clone());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(duration_seconds);
    spec.renew_time = Some(now());
    // The update carries the resourceVersion we read: a competing replica makes it fail with
    // 409 instead of both believing they hold the Lease.
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

async fn release(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    api.replace(&settings.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}
