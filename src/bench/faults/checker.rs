//! The fault campaign's invariant checker, fed continuously by watches (kube-runtime watchers
//! on the campaign's own client, which no fault reaches) on Rollouts, HTTPRoutes and Events:
//! - per Rollout and revision the step index never goes back, and it moves past a step only
//!   when that step could complete: a timed pause that was seen to start and has lasted its
//!   duration, an indefinite pause someone promoted, an analysis that passes; except after an
//!   abort or a full promotion, which end the walk on purpose;
//! - a pause, once started, keeps its start time (a restart does not start it again);
//! - no `RolloutStepCompleted` Event is published twice;
//! - once the controller has written an aborted status that shows every router answering,
//!   the HTTPRoute as of that write gives the canary weight 0: the reconcile in which the
//!   routers answer again takes the traffic off the canary ("one reconcile" is observable as
//!   that status write; the route version before it is found by resourceVersion, which the
//!   playground orders globally);
//! - every Rollout ends as its scenario says (`check_end`).
//!
//! Violations are collected with their context. Reads nothing but what the watches deliver.

use super::scenario::{End, FAILING};
use crate::crd::{PauseReason, Rollout};
use crate::engine::duration::parse_pause_duration;
use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The Rollout.
    pub rollout: String,
    /// What was wrong, with the values seen.
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rollout, self.what)
    }
}

/// What the checker saw of one Rollout.
#[derive(Default)]
struct Track {
    /// The revision (pod-template hash) and step index of the last status.
    at: Option<(String, i32)>,
    /// When each (revision, step) pause started.
    pauses: HashMap<(String, i32), jiff::Timestamp>,
    /// Revisions whose walk an abort or a full promotion ended.
    ended: HashSet<String>,
    /// Each status seen, in short, for the context of a violation.
    trail: Vec<String>,
}

#[derive(Default)]
struct Checker {
    latest: HashMap<String, Rollout>,
    tracks: HashMap<String, Track>,
    /// Each HTTPRoute's canary weight by resourceVersion, in watch order.
    routes: HashMap<String, Vec<(u64, i64)>>,
    /// Step Events by name: (Rollout, note, times published).
    step_events: HashMap<String, (String, String, i32)>,
    /// (Rollout, resourceVersion) of aborted statuses with every router answering.
    aborted_answering: Vec<(String, u64)>,
    promoted: HashSet<String>,
    violations: Vec<Violation>,
    statuses: u64,
}

/// The checker, shared by its watches, the scenario drivers and the campaign.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Checker>>);

/// Figures of what the checker checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checked {
    /// Rollout statuses seen.
    pub statuses: u64,
    /// Aborted statuses with answering routers whose route weight was checked.
    pub abort_route_checks: usize,
    /// Step Events seen.
    pub step_events: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Checker> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Rollout as last seen.
    pub fn latest(&self, name: &str) -> Option<Rollout> {
        self.lock().latest.get(name).cloned()
    }

    /// Record that the campaign promoted `name` past an indefinite pause.
    pub fn promoted(&self, name: &str) {
        self.lock().promoted.insert(name.to_string());
    }

    /// Wait until `done` holds for the Rollout as last seen.
    ///
    /// # Errors
    /// When it does not within `limit`; the message holds its status.
    pub async fn wait(
        &self,
        name: &str,
        limit: Duration,
        done: impl Fn(&Rollout) -> bool,
    ) -> anyhow::Result<Rollout> {
        let deadline = Instant::now() + limit;
        loop {
            let latest = self.latest(name);
            if let Some(r) = latest.as_ref().filter(|r| done(r)) {
                return Ok(r.clone());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{name} did not get there in {}s; status: {}",
                    limit.as_secs(),
                    serde_json::to_string(&latest.and_then(|r| r.status)).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Start the three watches in `namespace`; abort the tasks to stop them.
    pub fn watch(
        &self,
        client: &kube::Client,
        namespace: &str,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let rollouts: Api<Rollout> = Api::namespaced(client.clone(), namespace);
        let events: Api<Event> = Api::namespaced(client.clone(), namespace);
        let routes = super::world::routes(client);
        let (a, b, c) = (self.clone(), self.clone(), self.clone());
        vec![
            tokio::spawn(follow(rollouts, move |r: Rollout| a.on_rollout(&r))),
            tokio::spawn(follow(routes, move |o: DynamicObject| b.on_route(&o))),
            tokio::spawn(follow(events, move |e: Event| c.on_event(&e))),
        ]
    }

    fn on_rollout(&self, r: &Rollout) {
        let now = jiff::Timestamp::now();
        let mut checker = self.lock();
        checker.latest.insert(r.name_any(), r.clone());
        checker.statuses += 1;
        let found = see_rollout(&mut checker, r, now);
        checker.violations.extend(found);
    }

    fn on_route(&self, route: &DynamicObject) {
        let Some(rv) = route.resource_version().and_then(|v| v.parse::<u64>().ok()) else {
            return;
        };
        let weight = canary_weight(&route.data);
        let mut checker = self.lock();
        let history = checker.routes.entry(route.name_any()).or_default();
        if history.last().is_none_or(|(last, _)| *last < rv) {
            history.push((rv, weight));
        }
    }

    fn on_event(&self, event: &Event) {
        if event.reason.as_deref() != Some("RolloutStepCompleted") {
            return;
        }
        let rollout = event
            .regarding
            .as_ref()
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        let count = event.series.as_ref().map_or(1, |s| s.count);
        let note = event.note.clone().unwrap_or_default();
        self.lock()
            .step_events
            .insert(event.name_any(), (rollout, note, count));
    }

    /// The canary weight on the Rollout's HTTPRoute as last seen.
    pub fn route_weight(&self, name: &str) -> Option<i64> {
        self.lock().routes.get(name)?.last().map(|(_, w)| *w)
    }

    /// Wait until `name` ended as `end` says (`v1_hash`: its first revision).
    ///
    /// # Errors
    /// When it does not within `limit`.
    pub async fn wait_end(
        &self,
        name: &str,
        end: &End,
        v1_hash: &str,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let latest = self.latest(name);
            let weight = self.route_weight(name);
            let wrong = match latest.as_ref() {
                Some(r) => wrong_end(r, end, v1_hash, weight),
                None => Some("never seen".to_string()),
            };
            let Some(wrong) = wrong else {
                return Ok(());
            };
            if Instant::now() > deadline {
                anyhow::bail!("{name}: {wrong}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Check how `name` ended against `end` (`v1_hash`: its first revision).
    pub fn check_end(&self, name: &str, end: &End, v1_hash: &str) {
        let latest = self.latest(name);
        let weight = self.route_weight(name);
        if let Some(what) = latest
            .as_ref()
            .and_then(|r| wrong_end(r, end, v1_hash, weight))
        {
            let mut checker = self.lock();
            let trail = checker
                .tracks
                .get(name)
                .map(|t| t.trail.join("; "))
                .unwrap_or_default();
            checker.violations.push(Violation {
                rollout: name.to_string(),
                what: format!("{what}; statuses seen: {trail}"),
            });
        }
    }

    /// Record a violation found outside the watches (a scenario that could not run).
    pub fn report(&self, rollout: &str, what: String) {
        self.lock().violations.push(Violation {
            rollout: rollout.to_string(),
            what,
        });
    }

    /// Run the checks that need the whole history (repeated Events, the route weight at
    /// each aborted status), and return every violation with the figures.
    pub fn finish(&self) -> (Vec<Violation>, Checked) {
        let mut checker = self.lock();
        let mut found = repeated_events(&checker.step_events);
        for (rollout, rv) in &checker.aborted_answering {
            let before = checker
                .routes
                .get(rollout)
                .and_then(|h| h.iter().rev().find(|(v, _)| v < rv));
            match before {
                Some((_, 0)) => {}
                Some((route_rv, weight)) => found.push(Violation {
                    rollout: rollout.clone(),
                    what: format!(
                        "aborted status (resourceVersion {rv}) says every router answers, but the \
                         HTTPRoute (resourceVersion {route_rv}) still gives the canary {weight}"
                    ),
                }),
                None => found.push(Violation {
                    rollout: rollout.clone(),
                    what: format!("no HTTPRoute seen before aborted status {rv}"),
                }),
            }
        }
        checker.violations.extend(found);
        let checked = Checked {
            statuses: checker.statuses,
            abort_route_checks: checker.aborted_answering.len(),
            step_events: checker.step_events.len(),
        };
        (checker.violations.clone(), checked)
    }
}

/// Follow one kind through a watcher that restarts with back-off, handing each object seen to
/// `see`.
async fn follow<K>(api: Api<K>, see: impl Fn(K))
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        if let Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) = event {
            see(obj);
        }
    }
}

/// The canary's weight in an HTTPRoute (-1 when it has none).
fn canary_weight(route: &Value) -> i64 {
    route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .and_then(|refs| {
            refs.iter()
                .find(|b| b["name"].as_str().is_some_and(|n| n.ends_with("-canary")))
        })
        .and_then(|b| b["weight"].as_i64())
        .unwrap_or(-1)
}

/// Check one status against what was seen before; update the track.
fn see_rollout(checker: &mut Checker, r: &Rollout, now: jiff::Timestamp) -> Vec<Violation> {
    let name = r.name_any();
    let promoted = checker.promoted.contains(&name);
    let Some(status) = r.status.as_ref() else {
        return Vec::new();
    };
    let Some(hash) = status.current_pod_hash.clone() else {
        return Vec::new();
    };
    let index = status.current_step_index.unwrap_or(0);
    let mut found = Vec::new();
    let mut violation = |what: String| {
        found.push(Violation {
            rollout: name.clone(),
            what,
        })
    };
    let track = checker.tracks.entry(name.clone()).or_default();
    track.trail.push(format!(
        "rv {} {hash}@{index}{}{}{} {:?}",
        r.resource_version().unwrap_or_default(),
        if status.abort { " abort" } else { "" },
        if status.aborted_at.is_some() {
            " abortedAt"
        } else {
            ""
        },
        if status.promote_full {
            " promoteFull"
        } else {
            ""
        },
        status.phase
    ));
    if status.abort || status.promote_full {
        track.ended.insert(hash.clone());
    }
    for pause in &status.pause_conditions {
        if pause.reason != PauseReason::CanaryPauseStep {
            continue;
        }
        let start = *track
            .pauses
            .entry((hash.clone(), index))
            .or_insert(pause.start_time.0);
        if start != pause.start_time.0 {
            violation(format!(
                "the pause at step {index} of {hash} started again: {start} then {}",
                pause.start_time.0
            ));
        }
    }
    let same_walk = track
        .at
        .as_ref()
        .filter(|(h, _)| *h == hash && !track.ended.contains(&hash))
        .map(|(_, i)| *i);
    if let Some(before) = same_walk {
        if index < before {
            violation(format!(
                "step index of {hash} went back from {before} to {index}"
            ));
        } else if index > before && status.observed_generation == r.metadata.generation {
            let steps = steps_of(r);
            for j in before..index {
                let step = steps.get(usize::try_from(j).unwrap_or(usize::MAX));
                if let Some(why) = cannot_complete(step, track, &hash, j, now, promoted) {
                    violation(format!(
                        "moved from step {before} to {index} of {hash}: {why}"
                    ));
                }
            }
        }
    }
    track.at = Some((hash, index));
    let answering = status
        .canary
        .as_ref()
        .is_some_and(|c| !c.routers.is_empty() && c.routers.iter().all(|s| s.last_error.is_none()));
    if status.abort
        && status.aborted_at.is_some()
        && answering
        && let Some(rv) = r.resource_version().and_then(|v| v.parse().ok())
    {
        checker.aborted_answering.push((name, rv));
    }
    found
}

fn steps_of(r: &Rollout) -> Vec<Value> {
    serde_json::to_value(&r.spec.strategy)
        .ok()
        .and_then(|s| s["canary"]["steps"].as_array().cloned())
        .unwrap_or_default()
}

/// Why step `j` of `hash` could not have completed by `now`; `None` when it could.
fn cannot_complete(
    step: Option<&Value>,
    track: &Track,
    hash: &str,
    j: i32,
    now: jiff::Timestamp,
    promoted: bool,
) -> Option<String> {
    let step = step?;
    if let Some(pause) = step.get("pause") {
        let Some(start) = track.pauses.get(&(hash.to_string(), j)) else {
            return Some(format!("step {j} is a pause that was never seen to start"));
        };
        let duration = pause
            .get("duration")
            .and_then(|d| serde_json::from_value::<IntOrString>(d.clone()).ok());
        return match duration {
            Some(d) => {
                let d = parse_pause_duration(&d).ok()?;
                let end = start
                    .checked_add(jiff::SignedDuration::try_from(d).ok()?)
                    .ok()?;
                (now < end).then(|| format!("the pause at step {j} ends at {end}, seen at {now}"))
            }
            None => (!promoted).then(|| format!("nobody promoted the pause at step {j}")),
        };
    }
    let failing = step["analysis"]["templates"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["templateName"] == FAILING));
    failing.then(|| format!("step {j} is an analysis that fails"))
}

fn repeated_events(events: &HashMap<String, (String, String, i32)>) -> Vec<Violation> {
    let mut counts: BTreeMap<(&str, &str), i32> = BTreeMap::new();
    for (rollout, note, count) in events.values() {
        *counts.entry((rollout, note)).or_default() += count;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((rollout, note), n)| Violation {
            rollout: rollout.to_string(),
            what: format!("Event published {n} times: {note}"),
        })
        .collect()
}

/// What is wrong with how `r` ended; `None` when it ended as `end` says.
fn wrong_end(r: &Rollout, end: &End, v1_hash: &str, route_weight: Option<i64>) -> Option<String> {
    let status = r.status.clone().unwrap_or_default();
    let image = r
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    let ok = match end {
        End::Healthy(want) => {
            crate::bench::healthy(r, Some(want)) && !status.abort && image.as_deref() == Some(*want)
        }
        End::Aborted => {
            status.abort
                && status.aborted_at.is_some()
                && status.stable_rs.as_deref() == Some(v1_hash)
                && status.current_pod_hash.as_deref() != Some(v1_hash)
        }
    };
    if !ok {
        return Some(format!(
            "ended as {}, expected {end:?}; status {}",
            image.unwrap_or_default(),
            serde_json::to_string(&status).unwrap_or_default()
        ));
    }
    (route_weight != Some(0)).then(|| {
        format!("ended {end:?} with the canary's weight on the HTTPRoute at {route_weight:?}")
    })
}
