//! The pure election decision, with client-go's semantics: a candidate judges a Lease by the
//! LOCAL time it last saw the Lease's record change, never by the remote `renewTime`, so clock
//! skew between replicas cannot move a takeover earlier or later. No I/O and no clock: the
//! observation time and `now` are arguments.

use std::time::Duration;
use tokio::time::Instant;

/// The fields of a Lease that make up the election record. Any change of any of them restarts
/// the candidate's expiry clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds the Lease (`None` also for an empty string: released).
    pub holder: Option<String>,
    /// How long the holder promises to stay away from the Lease without renewing, in seconds.
    pub lease_duration_seconds: Option<i32>,
    /// When the holder acquired it (remote wall clock: informational only).
    pub acquire_time: Option<jiff::Timestamp>,
    /// When the holder last renewed it (remote wall clock: informational only).
    pub renew_time: Option<jiff::Timestamp>,
    /// How many times the Lease changed hands.
    pub lease_transitions: i32,
}

/// The election's timing (see `LeaseSettings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps writing after the start of its last successful renewal.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

/// What a candidate does with the Lease it observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// It holds the Lease: write a new `renewTime`.
    Renew,
    /// The Lease is free or expired: write itself as holder.
    TakeOver,
    /// Someone else holds a Lease that has not expired yet, by the local clock.
    Follow {
        /// When it expires unless its record changes first.
        expires_at: Instant,
    },
}

/// Decide on the Lease record observed (unchanged) since `observed_at`, at `now`.
///
/// The Lease expires `leaseDurationSeconds` (the holder's promise; ours when it gives none)
/// after the local observation, whatever its `renewTime` says. The holder itself always renews:
/// its write carries the resourceVersion it read, so a takeover in between makes it fail.
pub fn decide(
    observed: &LeaseRecord,
    observed_at: Instant,
    me: &str,
    now: Instant,
    timing: &Timing,
) -> Action {
    let Some(holder) = observed.holder.as_deref() else {
        return Action::TakeOver;
    };
    if holder == me {
        return Action::Renew;
    }
    let expires_at = observed_at + observed.duration_or(timing.lease_duration);
    if expires_at < now {
        Action::TakeOver
    } else {
        Action::Follow { expires_at }
    }
}

impl LeaseRecord {
    /// The holder's promised duration, or `fallback` when it gives none (or a nonsensical one).
    fn duration_or(&self, fallback: Duration) -> Duration {
        match self
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
        {
            Some(secs) if secs > 0 => Duration::from_secs(secs),
            _ => fallback,
        }
    }

    /// The record `me` writes for `action` at wall-clock `wall_now`, holding for
    /// `duration_seconds`. `Follow` writes nothing and returns `None`.
    pub fn after(
        &self,
        action: Action,
        me: &str,
        wall_now: jiff::Timestamp,
        duration_seconds: i32,
    ) -> Option<Self> {
        let mut next = self.clone();
        match action {
            Action::Follow { .. } => return None,
            Action::Renew => {}
            Action::TakeOver => {
                next.holder = Some(me.to_string());
                next.acquire_time = Some(wall_now);
                next.lease_transitions = self.lease_transitions.saturating_add(1);
            }
        }
        next.renew_time = Some(wall_now);
        next.lease_duration_seconds = Some(duration_seconds);
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    fn held_by(holder: &str, renewed: &str) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(renewed.parse().unwrap()),
            renew_time: Some(renewed.parse().unwrap()),
            lease_transitions: 3,
        }
    }

    #[test]
    fn expiry_counts_from_the_local_observation_whatever_the_remote_renew_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // The remote renewTime: long past, long future, or plausible; none changes the answer.
        for renewed in [
            "1970-01-01T00:00:00Z",
            "2020-06-01T12:00:00Z",
            "2999-12-31T23:59:59Z",
        ] {
            let lease = held_by("other", renewed);
            let cases = [
                (
                    t0,
                    Action::Follow {
                        expires_at: t0 + s(15),
                    },
                ),
                (
                    t0 + s(14),
                    Action::Follow {
                        expires_at: t0 + s(15),
                    },
                ),
                (
                    t0 + s(15),
                    Action::Follow {
                        expires_at: t0 + s(15),
                    },
                ),
                (t0 + s(16), Action::TakeOver),
            ];
            for (now, expected) in cases {
                assert_eq!(
                    decide(&lease, t0, "me", now, &TIMING),
                    expected,
                    "{lease:?} at +{:?}",
                    now - t0
                );
            }
        }
    }

    #[test]
    fn the_holders_own_duration_decides_then_ours() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut lease = held_by("other", "2020-06-01T12:00:00Z");
        lease.lease_duration_seconds = Some(40);
        assert_eq!(
            decide(&lease, t0, "me", t0 + s(20), &TIMING),
            Action::Follow {
                expires_at: t0 + s(40)
            }
        );
        for nonsense in [None, Some(0), Some(-5)] {
            lease.lease_duration_seconds = nonsense;
            assert_eq!(
                decide(&lease, t0, "me", t0 + s(16), &TIMING),
                Action::TakeOver,
                "{lease:?}"
            );
        }
    }

    #[test]
    fn a_free_lease_is_taken_and_our_own_is_renewed_at_once() {
        let t0 = Instant::now();
        let released = LeaseRecord {
            holder: None,
            ..held_by("x", "2999-01-01T00:00:00Z")
        };
        assert_eq!(decide(&released, t0, "me", t0, &TIMING), Action::TakeOver);
        let ours = held_by("me", "1970-01-01T00:00:00Z");
        assert_eq!(decide(&ours, t0, "me", t0, &TIMING), Action::Renew);
        assert_eq!(
            decide(&ours, t0, "me", t0 + Duration::from_secs(600), &TIMING),
            Action::Renew
        );
    }

    #[test]
    fn a_takeover_counts_a_transition_and_a_renewal_keeps_the_acquire_time() {
        let old = held_by("other", "2020-06-01T12:00:00Z");
        let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let taken = old.after(Action::TakeOver, "me", now, 15).unwrap();
        assert_eq!(taken.holder.as_deref(), Some("me"));
        assert_eq!(taken.lease_transitions, 4);
        assert_eq!(taken.acquire_time, Some(now));
        assert_eq!(taken.renew_time, Some(now));
        let later: jiff::Timestamp = "2024-01-01T00:00:02Z".parse().unwrap();
        let renewed = taken.after(Action::Renew, "me", later, 15).unwrap();
        assert_eq!(renewed.lease_transitions, 4);
        assert_eq!(renewed.acquire_time, Some(now));
        assert_eq!(renewed.renew_time, Some(later));
        let follow = Action::Follow {
            expires_at: Instant::now(),
        };
        assert_eq!(old.after(follow, "me", now, 15), None);
    }
}
