//! Leader election against the playground with the real kube client.
//!
//! The binary: outside a cluster the Lease goes to the kubeconfig context's namespace when
//! `--lease-namespace` is not given, and a set-up the election could never work with (a missing
//! Lease namespace, incoherent timing flags) stops the controller at once with one error naming
//! the flag, instead of a warning repeated for ever.
//!
//! The election itself, on tokio's paused clock with the playground on the test's own runtime
//! (so the virtual clock only moves when every task waits on a timer): remote clock skew does
//! not move a takeover, a leader whose renewals hang stops writing at its renew deadline, and a
//! partitioned leader stops writing before a standby takes over, then follows once healed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use sluice::controller::leader::{election_client, user_agent};
use sluice::controller::{Leadership, LeaseSettings, run_election};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

async fn playground() -> sluice::playground::PlaygroundHandle {
    let pg = Playground::start(PlaygroundOptions::default())
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(pg.client());
    for crd in sluice::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    pg
}

fn controller(
    pg: &sluice::playground::PlaygroundHandle,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("controller")
        .arg("--kubeconfig")
        .arg(pg.kubeconfig_path())
        .args(["--metrics-addr", "127.0.0.1:0", "--identity", "lease-test"])
        .args(extra)
        .env_remove("SLUICE_LEASE_NAMESPACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn a_missing_lease_namespace_is_one_clear_error_naming_the_flag() {
    let pg = playground().await;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        controller(&pg, &["--lease-namespace", "sluice-system"]).output(),
    )
    .await
    .expect("the controller exits instead of retrying for ever")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"sluice-system\" does not exist") && stderr.contains("--lease-namespace"),
        "{stderr}"
    );
    pg.shutdown().await;
}

#[tokio::test]
async fn without_the_flag_the_lease_is_in_the_kubeconfig_contexts_namespace() {
    let pg = playground().await;
    let mut child = controller(&pg, &[]).spawn().unwrap();
    let leases: Api<Lease> = Api::namespaced(pg.client(), "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(lease) = leases.get_opt("sluice-controller-lock").await.unwrap() {
            let holder = lease.spec.and_then(|s| s.holder_identity);
            assert_eq!(holder.as_deref(), Some("lease-test"));
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use tokio::io::AsyncReadExt;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .await
                .unwrap();
            panic!("the controller exited ({status}): {stderr}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Lease in default"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().await.unwrap();
    pg.shutdown().await;
}

#[tokio::test]
async fn a_renew_deadline_not_shorter_than_the_lease_is_refused_naming_the_flag() {
    let pg = playground().await;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        controller(
            &pg,
            &[
                "--leader-elect-lease-duration",
                "10s",
                "--leader-elect-renew-deadline",
                "10s",
            ],
        )
        .output(),
    )
    .await
    .expect("the controller exits at once")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--leader-elect-renew-deadline")
            && stderr.contains("shorter than --leader-elect-lease-duration"),
        "{stderr}"
    );
    let leases: Api<Lease> = Api::namespaced(pg.client(), "default");
    assert!(
        leases
            .get_opt("sluice-controller-lock")
            .await
            .unwrap()
            .is_none(),
        "no Lease written with refused settings"
    );
    pg.shutdown().await;
}

// ---- The election on a paused clock ----

const LEASE: &str = "election-test";
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// Far beyond anything the election needs, in virtual time: a bound that turns a hang into a
/// failure.
const PATIENCE: Duration = Duration::from_secs(3600);

/// One candidate running `run_election` on its own client, as the controller does.
struct Candidate {
    leadership: Leadership,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    agent: String,
}

fn candidate(pg: &PlaygroundHandle, identity: &str) -> Candidate {
    let mut config = kube::Config::new(pg.base_url().parse().unwrap());
    config.default_namespace = "default".into();
    let client = election_client(config, identity).unwrap();
    // Kubernetes' defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    let settings = LeaseSettings::new(LEASE.into(), "default".into(), identity.into());
    let leadership = Leadership::follower();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run_election(client, settings, leadership.clone(), stopped));
    Candidate {
        leadership,
        stop,
        task,
        agent: user_agent(identity),
    }
}

impl Candidate {
    /// Wait until its flag reads `leading`; the virtual instant it did.
    async fn until(&self, leading: bool) -> Instant {
        let mut changes = self.leadership.subscribe();
        tokio::time::timeout(PATIENCE, changes.wait_for(|l| *l == leading))
            .await
            .unwrap_or_else(|_| panic!("never became leading={leading}"))
            .unwrap();
        Instant::now()
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }
}

async fn lease(pg: &PlaygroundHandle) -> LeaseSpec {
    let leases: Api<Lease> = Api::namespaced(pg.client(), "default");
    leases.get(LEASE).await.unwrap().spec.unwrap()
}

fn at(text: &str) -> MicroTime {
    MicroTime(text.parse().unwrap())
}

/// A Lease held by a replica that is gone, whose last renewTime is `renewed`.
async fn held_by_a_ghost(pg: &PlaygroundHandle, renewed: &str) {
    let leases: Api<Lease> = Api::namespaced(pg.client(), "default");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("ghost".into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(at(renewed)),
            renew_time: Some(at(renewed)),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        }),
    };
    leases.create(&PostParams::default(), &lease).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_remote_renew_time_in_the_future_does_not_stop_a_takeover() {
    let pg = Playground::start(PlaygroundOptions::default())
        .await
        .unwrap();
    // A holder whose clock runs centuries ahead: by its renewTime the Lease never expires.
    held_by_a_ghost(&pg, "2999-12-31T23:59:59Z").await;
    let started = Instant::now();
    let standby = candidate(&pg, "standby");
    let took_over = standby.until(true).await;
    assert!(
        took_over >= started + LEASE_DURATION,
        "took over {:?} after starting, before the Lease could expire",
        took_over - started
    );
    let spec = lease(&pg).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("standby"), "{spec:?}");
    assert_eq!(spec.lease_transitions, Some(5), "{spec:?}");
    assert_ne!(
        spec.acquire_time,
        Some(at("2999-12-31T23:59:59Z")),
        "{spec:?}"
    );
    standby.stop().await;
    pg.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_remote_renew_time_in_the_past_does_not_hasten_a_takeover() {
    let pg = Playground::start(PlaygroundOptions::default())
        .await
        .unwrap();
    // A holder whose clock runs decades behind: by its renewTime the Lease expired long ago.
    held_by_a_ghost(&pg, "1970-01-01T00:00:00Z").await;
    let started = Instant::now();
    let standby = candidate(&pg, "standby");
    // Halfway, the holder renews, still with an ancient renewTime: the change alone restarts
    // the standby's wait.
    tokio::time::sleep(LEASE_DURATION / 2).await;
    assert!(!standby.leadership.is_leader(), "took over a live Lease");
    let leases: Api<Lease> = Api::namespaced(pg.client(), "default");
    let mut renewed = leases.get(LEASE).await.unwrap();
    renewed.spec.as_mut().unwrap().renew_time = Some(at("1970-01-01T00:00:01Z"));
    leases
        .replace(LEASE, &PostParams::default(), &renewed)
        .await
        .unwrap();
    let renewed_at = Instant::now();
    let took_over = standby.until(true).await;
    assert!(
        took_over >= renewed_at + LEASE_DURATION,
        "took over {:?} after the holder's last renewal",
        took_over - renewed_at
    );
    assert!(took_over > started + LEASE_DURATION);
    let spec = lease(&pg).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("standby"), "{spec:?}");
    standby.stop().await;
    pg.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_renewals_hang_stops_writing_at_its_renew_deadline() {
    let pg = Playground::start(PlaygroundOptions::default())
        .await
        .unwrap();
    let leader = candidate(&pg, "leader");
    leader.until(true).await;
    pg.faults().hold_client(&leader.agent);
    // Once a renewal hangs, no later one can succeed: the deadline is final.
    while pg.faults().held() == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = leader
        .leadership
        .deadline()
        .expect("leading with a deadline");
    tokio::time::sleep_until(deadline - Duration::from_millis(1)).await;
    assert!(leader.leadership.is_leader(), "gave up before its deadline");
    assert!(pg.faults().held() > 0, "the renewal call is still hanging");
    let dropped = leader.until(false).await;
    assert!(
        dropped <= deadline,
        "wrote {:?} past its deadline",
        dropped - deadline
    );
    assert!(leader.leadership.ensure().is_err());
    // Served again, it renews the Lease it still holds.
    pg.faults().heal_client(&leader.agent);
    leader.until(true).await;
    let spec = lease(&pg).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("leader"), "{spec:?}");
    assert_eq!(spec.lease_transitions, Some(0), "{spec:?}");
    leader.stop().await;
    pg.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_leader_stops_writing_before_a_standby_takes_over_then_follows() {
    let pg = Playground::start(PlaygroundOptions::default())
        .await
        .unwrap();
    let old = candidate(&pg, "old");
    old.until(true).await;
    let standby = candidate(&pg, "standby");
    // The standby has seen the Lease renewed a few times and follows.
    tokio::time::sleep(LEASE_DURATION).await;
    assert!(old.leadership.is_leader() && !standby.leadership.is_leader());

    pg.faults().fail_client(&old.agent, 503);
    let (dropped, took_over) = tokio::join!(old.until(false), standby.until(true));
    assert!(
        dropped <= took_over,
        "the standby took over {:?} before the partitioned leader stopped writing",
        dropped - took_over
    );
    let spec = lease(&pg).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("standby"), "{spec:?}");
    assert_eq!(spec.lease_transitions, Some(1), "{spec:?}");

    // Healed, the old leader sees the new holder and follows for as long as it renews.
    pg.faults().heal_client(&old.agent);
    let mut old_changes = old.leadership.subscribe();
    old_changes.borrow_and_update();
    tokio::time::sleep(LEASE_DURATION * 3).await;
    assert!(
        !old_changes.has_changed().unwrap() && !old.leadership.is_leader(),
        "the old leader led again while the standby held the Lease"
    );
    assert!(standby.leadership.is_leader());
    let spec = lease(&pg).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("standby"), "{spec:?}");
    assert_eq!(spec.lease_transitions, Some(1), "{spec:?}");

    // It is a live follower: when the standby steps down and releases, it takes over.
    standby.stop().await;
    old.until(true).await;
    assert_eq!(lease(&pg).await.holder_identity.as_deref(), Some("old"));
    old.stop().await;
    pg.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn candidates_racing_for_a_new_lease_elect_exactly_one() {
    let pg = Playground::start(PlaygroundOptions::default())
        .await
        .unwrap();
    let candidates: Vec<Candidate> = ["a", "b", "c"]
        .into_iter()
        .map(|id| candidate(&pg, id))
        .collect();
    tokio::time::sleep(LEASE_DURATION * 2).await;
    let leaders: Vec<&str> = ["a", "b", "c"]
        .into_iter()
        .zip(&candidates)
        .filter(|(_, c)| c.leadership.is_leader())
        .map(|(id, _)| id)
        .collect();
    let spec = lease(&pg).await;
    assert_eq!(leaders.len(), 1, "{leaders:?} {spec:?}");
    assert_eq!(
        spec.holder_identity.as_deref(),
        Some(leaders[0]),
        "{spec:?}"
    );
    assert_eq!(spec.lease_transitions, Some(0), "{spec:?}");
    for c in candidates {
        c.stop().await;
    }
    pg.shutdown().await;
}
