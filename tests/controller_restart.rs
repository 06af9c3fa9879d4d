//! End-to-end `spec.restartAt` (`kubectl argo rollouts restart`): every pod of a Healthy
//! Rollout is evicted through `pods/eviction` and replaced, never more than maxUnavailable
//! (0 here, so one) unavailable at a time, then `status.restartedAt` and a `RolloutRestarted`
//! Event record it. Plus the playground's eviction subresource on its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use controller_support::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, EvictParams, ListParams};
use kube::runtime::watcher;
use serde_json::json;
use sluice::crd::{POD_TEMPLATE_HASH_LABEL, RolloutPhase};
use sluice::playground::SimulationOptions;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn pod_names(h: &Harness, ns: &str) -> BTreeSet<String> {
    Api::<Pod>::namespaced(h.client.clone(), ns)
        .list(&ListParams::default().labels(POD_TEMPLATE_HASH_LABEL))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.metadata.name.unwrap())
        .collect()
}

/// Watch the namespace's pods and keep the largest number of unavailable pods (desired minus
/// live Ready pods) seen after the initial list, and how many pods were deleted.
fn watch_unavailability(
    h: &Harness,
    ns: &str,
    desired: usize,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let worst = Arc::new(AtomicUsize::new(0));
    let deleted = Arc::new(AtomicUsize::new(0));
    let api: Api<Pod> = Api::namespaced(h.client.clone(), ns);
    let (w, d) = (worst.clone(), deleted.clone());
    let task = tokio::spawn(async move {
        let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
        let mut synced = false;
        let mut events = watcher(
            api,
            watcher::Config::default().labels(POD_TEMPLATE_HASH_LABEL),
        )
        .boxed();
        while let Ok(Some(event)) = events.try_next().await {
            match event {
                watcher::Event::Init => pods.clear(),
                watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                    pods.insert(p.metadata.name.clone().unwrap(), p);
                }
                watcher::Event::InitDone => synced = true,
                watcher::Event::Delete(p) => {
                    pods.remove(p.metadata.name.as_deref().unwrap());
                    if synced {
                        d.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            if synced {
                let up = pods
                    .values()
                    .filter(|p| p.metadata.deletion_timestamp.is_none() && ready(p))
                    .count();
                w.fetch_max(desired.saturating_sub(up), Ordering::SeqCst);
            }
        }
    });
    (worst, deleted, task)
}

#[tokio::test]
async fn restart_at_replaces_every_pod_one_at_a_time() {
    restart_every_pod("restart-at", 0).await;
}

/// A PodDisruptionBudget's refusal (429) holds the restart back without an error; the
/// restart's poll comes back and finishes it.
#[tokio::test]
async fn an_eviction_refused_by_a_disruption_budget_is_retried_later() {
    restart_every_pod("restart-refused", 1).await;
}

/// Restart a Rollout of three pods, the first `refused` evictions answered 429, and check every
/// pod was replaced, one at a time, with the restart recorded and no error.
async fn restart_every_pod(ns: &str, refused: usize) {
    let h = Harness::start_with(SimulationOptions {
        pod_ready_delay: Duration::from_millis(400),
        ..SimulationOptions::default()
    })
    .await;
    let controller = h.controller();
    let name = "web";
    h.namespace(ns).await;
    h.apply_yaml(
        ns,
        &canary_yaml(name, 3, "        - setWeight: 50\n        - pause: {}\n"),
    )
    .await;
    h.wait_rollout(ns, name, "healthy", |r| {
        phase(r) == Some(RolloutPhase::Healthy)
            && r.status.as_ref().unwrap().available_replicas == Some(3)
    })
    .await;
    let before = pod_names(&h, ns).await;
    assert_eq!(before.len(), 3, "three pods before the restart: {before:?}");

    let (worst, deleted, watch) = watch_unavailability(&h, ns, 3);
    h.playground
        .faults()
        .fail_next(Some("create"), Some("pods/eviction"), 429, refused);
    // Whole seconds, rounded up: pods created before carry an earlier creationTimestamp, and
    // every replacement (created after this instant) one at least as late.
    let at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 1).unwrap();
    h.patch_spec(ns, name, json!({"spec": {"restartAt": at.to_string()}}))
        .await;
    h.wait_rollout_for(ns, name, "restart recorded", Duration::from_secs(90), |r| {
        r.status
            .as_ref()
            .and_then(|s| s.restarted_at.as_ref())
            .is_some_and(|t| t.0 == at)
    })
    .await;
    // Recorded once no old pod is left; the last replacement may still be starting.
    h.wait_rollout(ns, name, "healthy again", |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await;

    eventually("three ready replacements", || async {
        let after = pod_names(&h, ns).await;
        after.len() == 3 && after.is_disjoint(&before)
    })
    .await;
    let after = pod_names(&h, ns).await;
    assert!(
        after.is_disjoint(&before),
        "old pods remain: {before:?} / {after:?}"
    );
    assert_eq!(deleted.load(Ordering::SeqCst), 3, "one eviction per pod");
    assert!(
        worst.load(Ordering::SeqCst) <= 1,
        "more than maxUnavailable (1) pods unavailable at once: {}",
        worst.load(Ordering::SeqCst)
    );
    wait_event(&h, ns, "RolloutRestarted", "").await;
    let events = events(&h, ns).await;
    assert_eq!(h.playground.faults().pending(), 0, "every refusal was met");
    let errors: Vec<_> = events.iter().filter(|(r, _)| r.contains("Error")).collect();
    assert!(errors.is_empty(), "errors: {errors:?}");
    watch.abort();
    controller.stop().await;
}

#[tokio::test]
async fn the_playground_evicts_a_pod_and_its_replica_set_replaces_it() {
    let h = Harness::start().await;
    let ns = "evict";
    h.namespace(ns).await;
    let controller = h.controller();
    h.apply_yaml(ns, &canary_yaml("web", 2, "        - pause: {}\n"))
        .await;
    h.wait_rollout(ns, "web", "healthy", |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await;
    controller.stop().await;
    let before = pod_names(&h, ns).await;
    let victim = before.iter().next().unwrap().clone();
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), ns);

    let wrong = pods.evict("no-such-pod", &EvictParams::default()).await;
    assert!(
        matches!(&wrong, Err(kube::Error::Api(s)) if s.code == 404),
        "evicting a missing pod: {wrong:?}"
    );
    let status = pods.evict(&victim, &EvictParams::default()).await.unwrap();
    assert_eq!(status.code, 201, "{status:?}");
    eventually("the evicted pod replaced", || async {
        let now = pod_names(&h, ns).await;
        now.len() == 2 && !now.contains(&victim)
    })
    .await;
}
