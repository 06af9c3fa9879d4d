//! The `sluice playground` demo (the README's first command): start the embedded playground,
//! install the CRDs, run this controller in-process against it, apply `examples/playground/`,
//! roll out a new image step by step to Healthy, then abort one and retry it, printing what
//! happens; leave nothing behind. A CLI entry point: errors are `anyhow`.

use super::embedded::{Embedded, EmbeddedOptions};
use crate::crd::{POD_TEMPLATE_HASH_LABEL, Rollout, RolloutPhase};
use crate::playground::{Playground, PlaygroundOptions, SimulationOptions};
use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

const SERVICES: &str = include_str!("../../examples/playground/services.yaml");
const ROLLOUT: &str = include_str!("../../examples/playground/rollout.yaml");
const NAMESPACE: &str = "default";
const NAME: &str = "demo";
const LIMIT: Duration = Duration::from_secs(60);

/// Run the demo.
///
/// # Errors
/// When the playground cannot start or the rollout does not reach the expected state in time.
pub async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let options = PlaygroundOptions {
        simulation: SimulationOptions {
            pod_ready_delay: Duration::from_millis(400),
            ..SimulationOptions::default()
        },
        ..PlaygroundOptions::default()
    };
    let playground = Playground::start(options)
        .await
        .context("starting the playground")?;
    println!("▶ playground API server on {}", playground.base_url());
    println!(
        "  kubeconfig: {}  (try `KUBECONFIG={} kubectl sluice get rollout demo --watch` while it runs)",
        playground.kubeconfig_path().display(),
        playground.kubeconfig_path().display()
    );
    let client = playground.client();
    let result = demo(&client).await;
    playground.shutdown().await;
    println!(
        "■ playground stopped and its kubeconfig removed ({:.1}s in all)",
        started.elapsed().as_secs_f64()
    );
    result
}

async fn demo(client: &kube::Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::crd::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .with_context(|| format!("installing CRD {}", crd.name_any()))?;
    }
    println!("▶ installed the Sluice CRDs");
    let controller = Embedded::spawn(client.clone(), EmbeddedOptions::default());
    println!("▶ started the Sluice controller in this process");
    let result = scenario(client).await;
    controller.stop().await;
    result
}

async fn scenario(client: &kube::Client) -> anyhow::Result<()> {
    apply(client).await?;
    println!(
        "▶ applied examples/playground/ (Rollout `demo`, Services demo-stable and demo-canary)"
    );
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let v1 = follow(client, "first revision", |r| healthy(r, None)).await?;
    let v1 = stable(&v1).unwrap_or_default();

    println!("\n▶ changing the image to example/demo:2.0");
    set_image(&rollouts, "example/demo:2.0").await?;
    let r = follow(client, "canary to 2.0", |r| {
        healthy(r, Some(&v1)) && moved(r, &v1)
    })
    .await?;
    let v2 = stable(&r).unwrap_or_default();
    println!("✔ 2.0 is stable: every pod runs it, demo-stable selects {v2}");

    println!("\n▶ changing the image to example/demo:3.0, then aborting it");
    set_image(&rollouts, "example/demo:3.0").await?;
    follow(client, "canary to 3.0", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.current_step_index.unwrap_or(0) >= 2)
            && moved_current(r, &v2)
    })
    .await?;
    patch_status(&rollouts, json!({"abort": true})).await?;
    println!(
        "  ⏹ `kubectl sluice abort demo` (the demo makes the same patch: status.abort = true)"
    );
    follow(client, "abort", |r| {
        phase(r) == Some(RolloutPhase::Degraded) && r.status.as_ref().is_some_and(|s| s.abort)
    })
    .await?;
    wait_selector(client, "demo-canary", &v2).await?;
    println!("✔ aborted: demo-canary selects the stable pods again ({v2}); 2.0 keeps serving");

    println!(
        "\n▶ `kubectl sluice retry demo` (the demo makes the same patch: status.abort = false)"
    );
    patch_status(&rollouts, json!({"abort": false})).await?;
    let r = follow(client, "retry of 3.0", |r| {
        healthy(r, Some(&v2)) && moved(r, &v2)
    })
    .await?;
    println!(
        "✔ 3.0 is stable ({}); the demo is done",
        stable(&r).unwrap_or_default()
    );
    Ok(())
}

async fn apply(client: &kube::Client) -> anyhow::Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    for doc in serde_yaml::Deserializer::from_str(SERVICES) {
        let svc: Service = serde::Deserialize::deserialize(doc)?;
        services.create(&PostParams::default(), &svc).await?;
    }
    let rollout: Rollout = serde_yaml::from_str(ROLLOUT)?;
    Api::<Rollout>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &rollout)
        .await?;
    Ok(())
}

async fn set_image(rollouts: &Api<Rollout>, image: &str) -> anyhow::Result<()> {
    let rollout = rollouts.get(NAME).await?;
    let mut template = rollout.spec.template.context("demo has a template")?;
    if let Some(spec) = template.spec.as_mut() {
        for container in &mut spec.containers {
            container.image = Some(image.into());
        }
    }
    rollouts
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": template}})),
        )
        .await?;
    Ok(())
}

async fn patch_status(rollouts: &Api<Rollout>, patch: serde_json::Value) -> anyhow::Result<()> {
    rollouts
        .patch_status(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": patch })),
        )
        .await?;
    Ok(())
}

fn phase(r: &Rollout) -> Option<RolloutPhase> {
    r.status.as_ref()?.phase
}

fn stable(r: &Rollout) -> Option<String> {
    r.status.as_ref()?.stable_rs.clone()
}

fn healthy(r: &Rollout, _previous: Option<&str>) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.phase == Some(RolloutPhase::Healthy)
            && s.stable_rs.is_some()
            && s.stable_rs == s.current_pod_hash
            && s.observed_generation == r.metadata.generation
    })
}

fn moved(r: &Rollout, from: &str) -> bool {
    stable(r).is_some_and(|s| s != from)
}

fn moved_current(r: &Rollout, from: &str) -> bool {
    r.status
        .as_ref()
        .and_then(|s| s.current_pod_hash.as_deref())
        .is_some_and(|c| c != from)
}

async fn wait_selector(client: &kube::Client, service: &str, hash: &str) -> anyhow::Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + LIMIT;
    loop {
        let svc = services.get(service).await?;
        let selected = svc
            .spec
            .and_then(|s| s.selector)
            .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL).cloned());
        if selected.as_deref() == Some(hash) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{service} never selected {hash}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Print a line whenever the Rollout's step, phase, weight or pods change, until `done`.
async fn follow(
    client: &kube::Client,
    what: &str,
    done: impl Fn(&Rollout) -> bool,
) -> anyhow::Result<Rollout> {
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + LIMIT;
    let mut last = String::new();
    loop {
        let rollout = rollouts.get(NAME).await?;
        let line = describe(&rollout, &replica_sets).await?;
        if line != last {
            println!("  {line}");
            last = line;
        }
        if done(&rollout) {
            return Ok(rollout);
        }
        if Instant::now() > deadline {
            bail!("{what} did not finish within {}s", LIMIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn describe(rollout: &Rollout, replica_sets: &Api<ReplicaSet>) -> anyhow::Result<String> {
    let status = rollout.status.clone().unwrap_or_default();
    let steps = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .map_or(0, |c| c.steps.len());
    let step = status.current_step_index.unwrap_or(0);
    let step_text = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.steps.get(usize::try_from(step).unwrap_or(usize::MAX)))
        .map(|s| match (s.set_weight, &s.pause) {
            (Some(w), _) => format!("setWeight {w}"),
            (None, Some(p)) => match &p.duration {
                Some(d) => format!("pause {}", intstr(d)),
                None => "pause".into(),
            },
            _ => "step".into(),
        })
        .unwrap_or_else(|| "done".into());
    let phase = status.phase.map_or("-".to_string(), |p| format!("{p:?}"));
    let mut pods = Vec::new();
    let mut list = replica_sets.list(&ListParams::default()).await?.items;
    list.sort_by_key(|rs| rs.creation_timestamp().map(|t| t.0));
    for rs in list {
        let hash = rs
            .labels()
            .get(POD_TEMPLATE_HASH_LABEL)
            .cloned()
            .unwrap_or_default();
        let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let ready = rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if want == 0 && ready == 0 {
            continue;
        }
        let role = if Some(&hash) == status.stable_rs.as_ref() {
            "stable"
        } else {
            "canary"
        };
        pods.push(format!("{role} {hash} {ready}/{want} ready"));
    }
    Ok(format!(
        "{phase:<11} step {step}/{steps} ({step_text:<13}) pods: {}",
        pods.join(", ")
    ))
}

fn intstr(value: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    match value {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => format!("{i}s"),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    }
}
