//! The demo's second part: the Rollout `judged` of `examples/playground/judge.yaml` routes
//! through an HTTPRoute with a baseline, and its analysis step asks the canary judge. A canary
//! that serves like the baseline is promoted (the score is printed); one that is 30 % slower
//! and fails 2.4× as often is aborted by the judge (the failing metrics and the score are
//! printed) and its traffic goes back to stable.

use super::watch::{follow, healthy, moved, phase, stable};
use super::{NAMESPACE, create_all, patch_template};
use crate::crd::{AnalysisRun, Rollout, RolloutPhase};
use crate::playground::traffic::{ERROR_RATE_ANNOTATION, LATENCY_MEDIAN_ANNOTATION};
use anyhow::{Context as _, bail};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::{Value, json};
use sluice_analysis::classify::Classification;
use std::time::{Duration, Instant};

/// The minimal HTTPRoute CRD the playground installs (it has no Gateway API of its own).
pub(super) const HTTPROUTE_CRD: &str =
    include_str!("../../examples/playground/gateway-api-crd.yaml");
const MANIFESTS: &str = include_str!("../../examples/playground/judge.yaml");
const NAME: &str = "judged";
const LIMIT: Duration = Duration::from_secs(90);

/// The judge promotes a good canary and aborts a bad one.
///
/// # Errors
/// When an object cannot be created, or the judge does not decide as the story expects.
pub(super) async fn scenario(client: &kube::Client) -> anyhow::Result<()> {
    create_all(client, MANIFESTS).await?;
    println!(
        "\n▶ applied examples/playground/judge.yaml: Rollout `{NAME}` behind HTTPRoute `{NAME}`,"
    );
    println!("  with a baseline (judged-baseline) and an analysis step asking the canary judge");
    println!("  watch it with `kubectl sluice get rollout {NAME} -w`");
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let first = follow(client, NAME, "first revision of judged", LIMIT, healthy).await?;
    let v1 = stable(&first).unwrap_or_default();

    println!(
        "\n▶ a good canary: `kubectl sluice set image {NAME} web=example/shop:1.1` (serves like 1.0)"
    );
    let rollout = rollouts.get(NAME).await?;
    patch_template(
        &rollouts,
        NAME,
        template(&rollout, "example/shop:1.1", None)?,
    )
    .await?;
    let promoted = follow(client, NAME, "the judged canary 1.1", LIMIT, |r| {
        (healthy(r) && moved(r, &v1)) || aborted(r)
    })
    .await?;
    let run = latest_run(client).await?;
    if aborted(&promoted) {
        bail!(
            "the judge failed the good canary 1.1 ({}): {}",
            judgement_text(&run),
            run_message(&run)
        );
    }
    println!(
        "✔ the judge passed 1.1 ({}) and it was promoted: demo traffic now all goes to {}",
        judgement_text(&run),
        stable(&promoted).unwrap_or_default()
    );

    let v2 = stable(&promoted).unwrap_or_default();
    println!(
        "\n▶ a bad canary: `kubectl sluice set image {NAME} web=example/shop:1.2`, whose pods answer 30 % slower and fail 2.4× as often"
    );
    let rollout = rollouts.get(NAME).await?;
    let bad = template(&rollout, "example/shop:1.2", Some(("130", "0.0024")))?;
    patch_template(&rollouts, NAME, bad).await?;
    follow(client, NAME, "the judge's abort of 1.2", LIMIT, aborted).await?;
    let run = latest_run(client).await?;
    println!(
        "✘ the judge failed 1.2 ({}) and the Rollout aborted; failing metrics:",
        judgement_text(&run)
    );
    println!("{}", failing_text(&run));
    wait_all_on_stable(client).await?;
    println!("✔ HTTPRoute `{NAME}` sends everything to judged-stable ({v2}) again");
    println!(
        "  (a person would now fix 1.2, or `kubectl sluice retry {NAME}`, or `kubectl sluice promote {NAME}` to overrule the judge)"
    );
    Ok(())
}

fn aborted(r: &Rollout) -> bool {
    phase(r) == Some(RolloutPhase::Degraded) && r.status.as_ref().is_some_and(|s| s.abort)
}

/// The run's phase and message, for an unexpected verdict.
fn run_message(run: &AnalysisRun) -> String {
    let status = serde_json::to_value(&run.status).unwrap_or_default();
    format!(
        "AnalysisRun {} is {}: {}",
        run.name_any(),
        status["phase"].as_str().unwrap_or("-"),
        status["message"].as_str().unwrap_or("")
    )
}

/// The Rollout's template with a new image and, for a bad version, new latency and error-rate
/// annotations.
fn template(rollout: &Rollout, image: &str, bad: Option<(&str, &str)>) -> anyhow::Result<Value> {
    let mut template = serde_json::to_value(
        rollout
            .spec
            .template
            .as_ref()
            .context("judged has a template")?,
    )?;
    if let Some(containers) = template
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
    {
        for container in containers {
            container["image"] = json!(image);
        }
    }
    if let Some((median_ms, error_rate)) = bad {
        let annotations = &mut template["metadata"]["annotations"];
        annotations[LATENCY_MEDIAN_ANNOTATION] = json!(median_ms);
        annotations[ERROR_RATE_ANNOTATION] = json!(error_rate);
    }
    Ok(template)
}

/// The most recently created AnalysisRun of the Rollout.
async fn latest_run(client: &kube::Client) -> anyhow::Result<AnalysisRun> {
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), NAMESPACE);
    runs.list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|r| r.owner_references().iter().any(|o| o.name == NAME))
        .max_by_key(|r| r.creation_timestamp().map(|t| t.0))
        .with_context(|| format!("no AnalysisRun of {NAME}"))
}

/// The run's latest judgement, if the judge made one.
fn latest(run: &AnalysisRun) -> Option<&sluice_analysis::Judgement> {
    Some(&run.status.as_ref()?.judgement.as_ref()?.latest)
}

/// `score 100, Pass: latency-p90 Pass, errors Pass` from the run's latest judgement.
fn judgement_text(run: &AnalysisRun) -> String {
    let Some(judgement) = latest(run) else {
        return "no judgement recorded".into();
    };
    let metrics: Vec<String> = judgement
        .metrics
        .iter()
        .map(|m| format!("{} {:?}", m.name, m.classification))
        .collect();
    format!(
        "score {:.0}, {:?}: {}",
        judgement.score,
        judgement.result,
        metrics.join(", ")
    )
}

/// The metrics the latest judgement did not pass, one a line, with the judge's reasons.
fn failing_text(run: &AnalysisRun) -> String {
    let failing: Vec<String> = latest(run)
        .map(|j| &j.metrics[..])
        .unwrap_or_default()
        .iter()
        .filter(|m| m.classification != Classification::Pass)
        .map(|m| match &m.reason {
            Some(reason) => format!("    {}: {:?} ({reason})", m.name, m.classification),
            None => format!("    {}: {:?}", m.name, m.classification),
        })
        .collect();
    failing.join("\n")
}

/// Waits until the HTTPRoute's weights put everything on the stable Service.
async fn wait_all_on_stable(client: &kube::Client) -> anyhow::Result<()> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let routes: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &ApiResource::from_gvk(&gvk));
    let deadline = Instant::now() + LIMIT;
    loop {
        let route = routes.get(NAME).await?;
        let refs = route
            .data
            .pointer("/spec/rules/0/backendRefs")
            .cloned()
            .unwrap_or_default();
        let others: i64 = refs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["name"] != "judged-stable")
            .filter_map(|r| r["weight"].as_i64())
            .sum();
        if others == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("HTTPRoute {NAME} still sends traffic past judged-stable: {refs}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
