//! The playground's simulated controllers seen through the real `kube` client: rolling updates
//! within maxSurge/maxUnavailable, staged bad canaries (never-ready and crash-looping pods),
//! endpoints from ready pods, routing acceptance status, and dropping watches on demand.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only covers test bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod playground_common;
use playground_common::eventually;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};
use sluice::playground::simulation::{PodBehaviour, PodRule};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions, SimulationOptions};
use std::collections::BTreeMap;
use std::time::Duration;

async fn start(rules: Vec<PodRule>) -> PlaygroundHandle {
    let simulation = SimulationOptions {
        pod_ready_delay: Duration::from_millis(30),
        pod_rules: rules,
        ..SimulationOptions::default()
    };
    Playground::start(PlaygroundOptions {
        simulation,
        ..PlaygroundOptions::default()
    })
    .await
    .expect("playground starts")
}

fn deployment(name: &str, replicas: i32, labels: Value, strategy: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "strategy": strategy, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}]}}}
    }))
    .unwrap()
}

async fn rolled_out(deps: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually(&format!("{name} to roll out"), || async {
        let d = deps.get(name).await.ok()?;
        let s = d.status.clone()?;
        let done = s.observed_generation == d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && s.replicas == Some(replicas);
        done.then_some(d)
    })
    .await
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_stays_within_max_surge_and_max_unavailable() {
    let pg = start(Vec::new()).await;
    let deps: Api<Deployment> = Api::default_namespaced(pg.client());
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    deps.create(
        &PostParams::default(),
        &deployment("web", 4, json!({"app": "web"}), strategy),
    )
    .await
    .unwrap();
    let first = rolled_out(&deps, "web", 4).await;
    let first_hash = first.metadata.generation;

    let pods: Api<Pod> = Api::default_namespaced(pg.client());
    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut live: BTreeMap<String, Pod> = BTreeMap::new();
    // Consume the initial list.
    loop {
        match events.next().await.unwrap().unwrap() {
            watcher::Event::InitApply(p) => _ = live.insert(p.metadata.name.clone().unwrap(), p),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(live.len(), 4);
    deps.patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}})))
        .await
        .unwrap();
    let (mut max_pods, mut min_ready) = (0, usize::MAX);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the rollout finishes within 15s")
            .unwrap()
            .unwrap();
        match next {
            watcher::Event::Apply(p) => _ = live.insert(p.metadata.name.clone().unwrap(), p),
            watcher::Event::Delete(p) => _ = live.remove(p.metadata.name.as_ref().unwrap()),
            _ => {}
        }
        max_pods = max_pods.max(live.len());
        min_ready = min_ready.min(live.values().filter(|p| ready(p)).count());
        let new_ready = live
            .values()
            .filter(|p| {
                ready(p) && p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("app:2")
            })
            .count();
        if new_ready == 4 && live.len() == 4 {
            break;
        }
    }
    assert!(
        max_pods <= 5,
        "never more than replicas + maxSurge pods: saw {max_pods}"
    );
    assert!(
        min_ready >= 4,
        "never fewer than replicas - maxUnavailable ready pods: saw {min_ready}"
    );
    let done = rolled_out(&deps, "web", 4).await;
    assert!(done.metadata.generation > first_hash);
    let hashes: Vec<String> = live
        .values()
        .map(|p| p.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone())
        .collect();
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "all pods from the new ReplicaSet: {hashes:?}"
    );
    let owner = &live
        .values()
        .next()
        .unwrap()
        .metadata
        .owner_references
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("ReplicaSet", Some(true))
    );
    assert!(
        owner.name.starts_with("web-") && owner.name.ends_with(&hashes[0]),
        "{owner:?}"
    );
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_canaries_never_become_ready_and_endpoints_follow_readiness() {
    let rules = vec![PodRule {
        label: "track".into(),
        value: "canary".into(),
        behaviour: PodBehaviour::NeverReady,
    }];
    let pg = start(rules).await;
    let deps: Api<Deployment> = Api::default_namespaced(pg.client());
    let rolling = json!({"type": "RollingUpdate"});
    deps.create(
        &PostParams::default(),
        &deployment(
            "stable",
            2,
            json!({"app": "stable", "svc": "shop"}),
            rolling.clone(),
        ),
    )
    .await
    .unwrap();
    deps.create(
        &PostParams::default(),
        &deployment(
            "canary",
            1,
            json!({"app": "canary", "svc": "shop", "track": "canary"}),
            rolling.clone(),
        ),
    )
    .await
    .unwrap();
    deps.create(
        &PostParams::default(),
        &deployment(
            "crashy",
            1,
            json!({"app": "crashy", "playground.sluice.dev/behaviour": "crash-loop"}),
            rolling,
        ),
    )
    .await
    .unwrap();
    let svcs: Api<Service> = Api::default_namespaced(pg.client());
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "shop"}, "spec": {"selector": {"svc": "shop"}, "ports": [{"port": 80, "targetPort": 8080}]}})).unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    rolled_out(&deps, "stable", 2).await;

    let pods: Api<Pod> = Api::default_namespaced(pg.client());
    let canary = eventually("the canary pod to run", || async {
        let list = pods
            .list(&ListParams::default().labels("app=canary"))
            .await
            .ok()?;
        list.items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    assert!(
        !ready(&canary),
        "the canary never becomes ready: {:?}",
        canary.status
    );
    let crashy = eventually("the crash-looping pod to report restarts", || async {
        let list = pods
            .list(&ListParams::default().labels("app=crashy"))
            .await
            .ok()?;
        list.items.into_iter().find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some()
        })
    })
    .await;
    let cs = &crashy.status.unwrap().container_statuses.unwrap()[0];
    assert!(cs.restart_count > 0 && !cs.ready, "{cs:?}");
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CrashLoopBackOff")
    );
    let d = deps.get("canary").await.unwrap();
    assert_eq!(
        d.status.unwrap().available_replicas.unwrap_or(0),
        0,
        "the canary Deployment is not available"
    );

    let eps: Api<Endpoints> = Api::default_namespaced(pg.client());
    let ep = eventually("endpoints for two ready and one unready pod", || async {
        let ep = eps.get("shop").await.ok()?;
        let subset = ep.subsets.clone()?.into_iter().next()?;
        (subset.addresses.as_ref().map(Vec::len) == Some(2)
            && subset.not_ready_addresses.as_ref().map(Vec::len) == Some(1))
        .then_some(subset)
    })
    .await;
    assert_eq!(ep.ports.unwrap()[0].port, 8080);
    let slices: Api<EndpointSlice> = Api::default_namespaced(pg.client());
    let slice = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=shop"))
        .await
        .unwrap()
        .items
        .remove(0);
    let ready_count = slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .count();
    assert_eq!((slice.endpoints.len(), ready_count), (3, 2));
    pg.shutdown().await;
}

const HTTPROUTE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {plural: httproutes, singular: httproute, kind: HTTPRoute}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_objects_get_their_controllers_acceptance_status() {
    let pg = start(Vec::new()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(pg.client());
    crds.create(
        &PostParams::default(),
        &serde_yaml::from_str(HTTPROUTE_CRD).unwrap(),
    )
    .await
    .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    );
    let routes: Api<DynamicObject> = Api::default_namespaced_with(pg.client(), &ar);
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "shop"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "stable", "port": 80, "weight": 100}, {"name": "canary", "port": 80, "weight": 0}]}]}
    }))
    .unwrap();
    routes.create(&PostParams::default(), &route).await.unwrap();
    let accepted = |generation: i64| {
        let routes = routes.clone();
        async move {
            let r = routes.get("shop").await.ok()?;
            let cond = r
                .data
                .pointer("/status/parents/0/conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Accepted")?
                .clone();
            (cond["status"] == "True" && cond["observedGeneration"] == generation).then_some(r)
        }
    };
    let r = eventually("the route to be accepted", || accepted(1)).await;
    assert_eq!(r.data["status"]["parents"][0]["parentRef"]["name"], "gw");
    routes.patch("shop", &PatchParams::default(), &Patch::Merge(json!({"spec": {"rules": [{"backendRefs": [{"name": "stable", "port": 80, "weight": 90}, {"name": "canary", "port": 80, "weight": 10}]}]}}))).await.unwrap();
    eventually("the new generation to be accepted", || accepted(2)).await;

    let ingresses: Api<Ingress> = Api::default_namespaced(pg.client());
    let ing: Ingress = serde_json::from_value(json!({"metadata": {"name": "shop"}, "spec": {"defaultBackend": {"service": {"name": "stable", "port": {"number": 80}}}}})).unwrap();
    ingresses
        .create(&PostParams::default(), &ing)
        .await
        .unwrap();
    eventually("the ingress to get an address", || async {
        let i = ingresses.get("shop").await.ok()?;
        i.status?.load_balancer?.ingress?.first()?.ip.clone()
    })
    .await;
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_watches_ends_open_streams() {
    let pg = start(Vec::new()).await;
    let pods: Api<Pod> = Api::default_namespaced(pg.client());
    let mut stream = pods
        .watch(&WatchParams::default().timeout(60), "0")
        .await
        .unwrap()
        .boxed();
    pg.drop_watches();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = stream.next().await {
            ev.unwrap();
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the watch stream ends when watches are dropped"
    );
    pg.shutdown().await;
}
