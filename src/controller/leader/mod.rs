//! Leader election on a `coordination.k8s.io/v1` Lease with client-go's semantics, and the
//! `Leadership` flag every write checks first. `decide.rs` is the pure decision (expiry from the
//! locally observed time of the last change), `election.rs` the loop that talks to the API
//! server on its own unthrottled client. The flag carries the renew deadline itself, so writes
//! stop when it passes even if the election task is stuck in a call. Touches only its Lease.

mod decide;
mod election;

pub use decide::{Action, LeaseRecord, Timing, decide};
pub use election::{PreflightError, preflight, run_election};

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Returned instead of writing when this replica is not the leader.
#[derive(Debug, thiserror::Error)]
#[error("not the leader: writes are disabled")]
pub struct NotLeader;

#[derive(Debug)]
struct State {
    leading: bool,
    /// When writes stop unless a renewal succeeds first; `None` is for ever (election off).
    until: Option<Instant>,
}

impl State {
    fn is_leader(&self, now: Instant) -> bool {
        self.leading && self.until.is_none_or(|until| now < until)
    }
}

/// Whether this replica may write, shared by every reconcile.
#[derive(Clone, Debug)]
pub struct Leadership {
    state: Arc<Mutex<State>>,
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

    fn with(leading: bool) -> Self {
        let (changes, _) = watch::channel(leading);
        Self {
            state: Arc::new(Mutex::new(State {
                leading,
                until: None,
            })),
            changes: Arc::new(changes),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this replica holds the Lease and its renew deadline has not passed.
    pub fn is_leader(&self) -> bool {
        self.state().is_leader(Instant::now())
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

    /// When this replica stops writing unless it renews the Lease first (`None` when it is not
    /// leading, or always leads).
    pub fn deadline(&self) -> Option<Instant> {
        let state = self.state();
        if state.leading { state.until } else { None }
    }

    /// Changes of leadership.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    /// Lead (again) until `until`.
    pub(crate) fn lead_until(&self, until: Instant) {
        let mut state = self.state();
        state.leading = true;
        state.until = Some(until);
        let leading = state.is_leader(Instant::now());
        drop(state);
        self.announce(leading);
    }

    /// Stop leading now.
    pub(crate) fn step_down(&self) {
        let mut state = self.state();
        state.leading = false;
        state.until = None;
        drop(state);
        self.announce(false);
    }

    /// Stop leading if the renew deadline has passed at `now`. The flag already reads false
    /// from the deadline on; this tells the watchers.
    pub(crate) fn expire_if_due(&self, now: Instant) {
        let due = {
            let state = self.state();
            state.leading && state.until.is_some_and(|until| until <= now)
        };
        if due {
            self.step_down();
        }
    }

    /// Publish a change of leadership (the watch holds the last one published).
    fn announce(&self, leading: bool) {
        if *self.changes.borrow() == leading {
            return;
        }
        if leading {
            tracing::info!("acquired leader lease");
        } else {
            tracing::warn!("lost leader lease: writes stop");
        }
        self.changes.send_replace(leading);
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

/// Settings the election cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum LeaseSettingsError {
    /// A zero or too long Lease.
    #[error(
        "leader election: --leader-elect-lease-duration must be between 1s and 68 years, not {0:?}"
    )]
    LeaseDuration(Duration),
    /// A renew deadline the Lease could expire before.
    #[error(
        "leader election: --leader-elect-renew-deadline ({renew_deadline:?}) must be shorter than --leader-elect-lease-duration ({lease_duration:?}), or a standby could take over while the leader still writes"
    )]
    RenewDeadline {
        /// The renew deadline.
        renew_deadline: Duration,
        /// The Lease duration.
        lease_duration: Duration,
    },
    /// A retry period that leaves no second attempt before the deadline.
    #[error(
        "leader election: --leader-elect-retry-period ({retry_period:?}) must be more than zero and shorter than --leader-elect-renew-deadline ({renew_deadline:?})"
    )]
    RetryPeriod {
        /// The retry period.
        retry_period: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
    },
}

impl LeaseSettings {
    /// The timing, once it is coherent: renew deadline shorter than the Lease, retry period
    /// shorter than the renew deadline.
    ///
    /// # Errors
    /// [`LeaseSettingsError`] naming the flag to change.
    pub fn validate(&self) -> Result<Timing, LeaseSettingsError> {
        let (lease_duration, renew_deadline, retry_period) =
            (self.lease_duration, self.renew_deadline, self.retry_period);
        if lease_duration < Duration::from_secs(1) || duration_seconds(lease_duration).is_none() {
            return Err(LeaseSettingsError::LeaseDuration(lease_duration));
        }
        if renew_deadline >= lease_duration {
            return Err(LeaseSettingsError::RenewDeadline {
                renew_deadline,
                lease_duration,
            });
        }
        if retry_period.is_zero() || retry_period >= renew_deadline {
            return Err(LeaseSettingsError::RetryPeriod {
                retry_period,
                renew_deadline,
            });
        }
        Ok(Timing {
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }
}

/// The Lease's `leaseDurationSeconds` for `duration`, rounded up: a standby then never waits
/// less than the leader's own setting.
fn duration_seconds(duration: Duration) -> Option<i32> {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).ok()
}

/// The election's own API client from the controller's configuration: no client-side throttle
/// shared with reconciles (a busy controller must not delay its renewals), no automatic retries
/// (the retry period is the retry, and the renew deadline bounds it), and a User-Agent naming
/// the candidate, so API server logs and audit tell renewals apart.
///
/// # Errors
/// When kube cannot build a client from `config`.
pub fn election_client(
    mut config: kube::Config,
    identity: &str,
) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    let agent = user_agent(identity);
    match http::HeaderValue::from_str(&agent) {
        Ok(value) => config.headers.push((http::header::USER_AGENT, value)),
        // An identity that is no valid header text (control characters): the agent
        // without it.
        Err(_) => config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!(
                "sluice/",
                env!("CARGO_PKG_VERSION"),
                " leader-election"
            )),
        )),
    }
    kube::Client::try_from(config)
}

/// The User-Agent of `identity`'s election client.
pub fn user_agent(identity: &str) -> String {
    format!(
        "sluice/{} leader-election ({identity})",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lease: u64, renew: u64, retry: u64) -> LeaseSettings {
        let mut s = LeaseSettings::new("l".into(), "ns".into(), "me".into());
        s.lease_duration = Duration::from_millis(lease);
        s.renew_deadline = Duration::from_millis(renew);
        s.retry_period = Duration::from_millis(retry);
        s
    }

    #[test]
    fn incoherent_timing_is_refused_naming_the_flag() {
        let defaults = LeaseSettings::new("l".into(), "ns".into(), "me".into());
        assert!(defaults.validate().is_ok());
        let cases = [
            (
                settings(15_000, 15_000, 2_000),
                "--leader-elect-renew-deadline",
            ),
            (
                settings(15_000, 20_000, 2_000),
                "--leader-elect-renew-deadline",
            ),
            (
                settings(15_000, 10_000, 10_000),
                "--leader-elect-retry-period",
            ),
            (settings(15_000, 10_000, 0), "--leader-elect-retry-period"),
            (settings(500, 400, 100), "--leader-elect-lease-duration"),
        ];
        for (s, flag) in cases {
            let error = s.validate().unwrap_err().to_string();
            assert!(error.contains(flag), "{s:?}: {error}");
        }
    }

    #[test]
    fn the_lease_promises_whole_seconds_rounded_up() {
        assert_eq!(duration_seconds(Duration::from_secs(15)), Some(15));
        assert_eq!(duration_seconds(Duration::from_millis(2_500)), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_flag_reads_false_from_the_deadline_on_without_anyone_clearing_it() {
        let leadership = Leadership::follower();
        let mut changes = leadership.subscribe();
        let deadline = Instant::now() + Duration::from_secs(10);
        leadership.lead_until(deadline);
        assert!(leadership.ensure().is_ok());
        assert!(*changes.borrow_and_update());
        tokio::time::sleep_until(deadline - Duration::from_millis(1)).await;
        assert!(leadership.is_leader());
        tokio::time::sleep_until(deadline).await;
        assert!(
            leadership.ensure().is_err(),
            "still writing at the deadline"
        );
        leadership.expire_if_due(Instant::now());
        assert!(!*changes.borrow_and_update(), "watchers are told");
        assert_eq!(leadership.deadline(), None);
    }

    #[test]
    fn always_leads_without_a_deadline() {
        let leadership = Leadership::always();
        assert!(leadership.is_leader());
        assert_eq!(leadership.deadline(), None);
    }
}
