//! The demo's first part: the Rollout `demo` of `examples/playground/rollout.yaml` rolls out a
//! new image step by step to Healthy, then a second new image is aborted and retried.

use super::watch::{follow, healthy, moved, moved_current, phase, stable, wait_selector};
use super::{NAMESPACE, create_all, patch_status, set_image};
use crate::crd::{Rollout, RolloutPhase};
use kube::api::Api;
use serde_json::json;
use std::time::Duration;

const MANIFESTS: &str = include_str!("../../examples/playground/rollout.yaml");
const SERVICES: &str = include_str!("../../examples/playground/services.yaml");
const NAME: &str = "demo";
const LIMIT: Duration = Duration::from_secs(60);

/// Canary to 2.0, then 3.0 aborted and retried.
///
/// # Errors
/// When an object cannot be created or the Rollout does not reach a state in time.
pub(super) async fn scenario(client: &kube::Client) -> anyhow::Result<()> {
    create_all(client, SERVICES).await?;
    create_all(client, MANIFESTS).await?;
    println!(
        "▶ applied examples/playground/ (Rollout `demo`, Services demo-stable and demo-canary)"
    );
    println!("  watch it with `kubectl sluice get rollout {NAME} -w`");
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let v1 = follow(client, NAME, "first revision", LIMIT, healthy).await?;
    let v1 = stable(&v1).unwrap_or_default();

    println!("\n▶ `kubectl sluice set image {NAME} web=example/demo:2.0`");
    set_image(&rollouts, NAME, "example/demo:2.0").await?;
    let r = follow(client, NAME, "canary to 2.0", LIMIT, |r| {
        healthy(r) && moved(r, &v1)
    })
    .await?;
    let v2 = stable(&r).unwrap_or_default();
    println!("✔ 2.0 is stable: every pod runs it, demo-stable selects {v2}");

    println!("\n▶ `kubectl sluice set image {NAME} web=example/demo:3.0`, then aborting it");
    set_image(&rollouts, NAME, "example/demo:3.0").await?;
    follow(client, NAME, "canary to 3.0", LIMIT, |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.current_step_index.unwrap_or(0) >= 2)
            && moved_current(r, &v2)
    })
    .await?;
    patch_status(&rollouts, NAME, json!({"abort": true})).await?;
    println!(
        "  ⏹ `kubectl sluice abort {NAME}` (the demo makes the same patch: status.abort = true)"
    );
    follow(client, NAME, "abort", LIMIT, |r| {
        phase(r) == Some(RolloutPhase::Degraded) && r.status.as_ref().is_some_and(|s| s.abort)
    })
    .await?;
    wait_selector(client, "demo-canary", &v2, LIMIT).await?;
    println!("✔ aborted: demo-canary selects the stable pods again ({v2}); 2.0 keeps serving");

    println!(
        "\n▶ `kubectl sluice retry {NAME}` (the demo makes the same patch: status.abort = false)"
    );
    patch_status(&rollouts, NAME, json!({"abort": false})).await?;
    let r = follow(client, NAME, "retry of 3.0", LIMIT, |r| {
        healthy(r) && moved(r, &v2)
    })
    .await?;
    println!("✔ 3.0 is stable ({})", stable(&r).unwrap_or_default());
    Ok(())
}
