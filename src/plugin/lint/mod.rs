//! `kubectl sluice lint -f FILE|-`: offline checks of the Sluice objects in a YAML file: the
//! fields fit our generated CRD schemas (`schema`) and parse as our types, the CRDs' CEL rules
//! hold, each Rollout passes the engine's validation against the Services and Deployments in
//! the same file, and the Services and routing objects it names there fit it (`routing`).
//! Talks to no cluster.

use crate::crd::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, GROUP, Rollout};
use crate::engine::{Observed, ObservedService, ObservedWorkload};
use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;
use std::io::Read as _;
use std::path::PathBuf;

pub mod routing;
pub mod schema;

/// Check Sluice manifests offline.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The YAML file; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs the verb: one line per Sluice object, `ok` or each problem.
///
/// # Errors
/// When the file cannot be read or parsed, or any object has a problem (exit code 1).
pub fn run(args: &LintArgs) -> anyhow::Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc).context("the file is not YAML")?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    let observed = observed(&docs);
    let mut problems = 0;
    let mut checked = 0;
    for doc in &docs {
        let Some(kind) = sluice_kind(doc) else {
            continue;
        };
        checked += 1;
        let name = doc["metadata"]["name"].as_str().unwrap_or("<no name>");
        let found = check(kind, doc, &observed, &docs);
        if found.is_empty() {
            println!("{}/{name}: ok", kind.to_lowercase());
        }
        for problem in &found {
            println!("{}/{name}: {problem}", kind.to_lowercase());
        }
        problems += found.len();
    }
    if checked == 0 {
        bail!(
            "no Sluice objects (apiVersion {GROUP}/...) in {}",
            args.file.display()
        );
    }
    if problems > 0 {
        bail!("{problems} problem(s) in {}", args.file.display());
    }
    Ok(())
}

fn sluice_kind(doc: &Value) -> Option<&str> {
    let group = doc["apiVersion"].as_str()?.split('/').next()?;
    (group == GROUP).then(|| doc["kind"].as_str()).flatten()
}

/// The Services and Deployments of the file, as the engine would observe them.
fn observed(docs: &[Value]) -> Observed {
    let mut observed = Observed::default();
    for doc in docs {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
            (Some("v1"), Some("Service")) => {
                let selector =
                    serde_json::from_value(doc["spec"]["selector"].clone()).unwrap_or_default();
                let service = ObservedService {
                    selector,
                    managed_by: None,
                };
                observed.services.insert(name, Some(service));
            }
            (Some("apps/v1"), Some("Deployment")) => {
                if let Ok(template) = serde_json::from_value(doc["spec"]["template"].clone()) {
                    let replicas = doc["spec"]["replicas"].as_i64().unwrap_or(1);
                    observed.workload = Some(ObservedWorkload {
                        template,
                        generation: 1,
                        replicas: i32::try_from(replicas).unwrap_or(1),
                    });
                }
            }
            _ => {}
        }
    }
    observed
}

/// The problems of one object: type errors first (nothing else can be checked then), then
/// the CEL rules, then the engine's validation for a Rollout.
fn check(kind: &str, doc: &Value, observed: &Observed, docs: &[Value]) -> Vec<String> {
    let parsed = match kind {
        "Rollout" => parse::<Rollout>(doc).map(Some),
        "AnalysisTemplate" => parse::<AnalysisTemplate>(doc).map(|_| None),
        "ClusterAnalysisTemplate" => parse::<ClusterAnalysisTemplate>(doc).map(|_| None),
        "AnalysisRun" => parse::<AnalysisRun>(doc).map(|_| None),
        other => return vec![format!("kind {other:?} is not a Sluice kind")],
    };
    let rollout = match parsed {
        Ok(rollout) => rollout,
        Err(problem) => return vec![problem],
    };
    // Types are the parse's (with serde's message); the schema adds what serde ignores:
    // fields the API server would prune.
    let structural = crd_schema(kind)
        .map(|s| schema::check(&s, doc))
        .unwrap_or_default();
    if !structural.is_empty() {
        return structural;
    }
    let mut problems = cel(kind, doc);
    if let Some(rollout) = rollout
        && problems.is_empty()
        && let Err(invalid) = crate::engine::validate(&rollout, observed)
    {
        problems.push(invalid.to_string());
    }
    if kind == "Rollout" && problems.is_empty() {
        problems.extend(routing::check(doc, docs));
    }
    problems
}

/// The openAPIV3Schema of our CRD for `kind`.
fn crd_schema(kind: &str) -> Option<Value> {
    crate::crd::crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .and_then(|crd| crd.spec.versions.into_iter().next())
        .and_then(|v| v.schema)
        .and_then(|s| s.open_api_v3_schema)
        .and_then(|s| serde_json::to_value(s).ok())
}

fn parse<T: serde::de::DeserializeOwned>(doc: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(doc.clone())
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// The CRD's `x-kubernetes-validations` rules that fail on the object.
fn cel(kind: &str, doc: &Value) -> Vec<String> {
    let Some(schema) = crd_schema(kind) else {
        return Vec::new();
    };
    let validator = kube::core::cel::Validator::new();
    match validator.validate(&schema, doc, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    kube::core::cel::ErrorKind::ValidationFailure
                        | kube::core::cel::ErrorKind::InvalidResult
                )
            })
            .map(|e| format!("{}: {}", e.field_path, e.message))
            .collect(),
    }
}
