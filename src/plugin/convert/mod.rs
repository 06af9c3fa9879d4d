//! `kubectl sluice convert -f FILE|DIR|-`: Argo Rollouts (`Rollout`, `AnalysisTemplate`,
//! `ClusterAnalysisTemplate`, `AnalysisRun`) and Flagger (`Canary`, `MetricTemplate`)
//! manifests to Sluice objects, as YAML on stdout; every field that cannot be carried on
//! stderr, one line each. Other documents pass through unchanged. Offline: reads files only.

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;
use std::io::Read as _;
use std::path::{Path, PathBuf};

pub mod argo_analysis;
pub mod argo_rollout;
pub mod carry;
pub mod flagger_canary;
pub mod flagger_metrics;
pub mod flagger_routing;
pub mod report;

use report::Conversion;

/// The apiVersion of every Sluice object.
pub const API_VERSION: &str = "sluice.dev/v1alpha1";

/// Convert Argo Rollouts and Flagger manifests to Sluice.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A YAML file, a directory of them (`*.yaml`, `*.yml`, `*.json`, not recursive), or `-`
    /// for standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub file: PathBuf,
}

/// One document of the input, with the file it came from.
#[derive(Debug)]
pub struct Document {
    /// The file's name as given (`<stdin>` for `-`).
    pub file: String,
    /// The document.
    pub value: Value,
}

/// The converted stream and the stderr lines.
#[derive(Debug, Default)]
pub struct Output {
    /// The documents to print, in order.
    pub documents: Vec<Value>,
    /// One line per field that could not be carried.
    pub lines: Vec<String>,
    /// How many Argo or Flagger objects were converted to at least one Sluice object.
    pub converted: usize,
    /// How many Argo or Flagger objects the input had.
    pub sources: usize,
}

/// Runs the verb.
///
/// # Errors
/// When the input cannot be read, or nothing in it could be converted (exit code 1).
pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let (documents, mut unreadable) = read(&args.file)?;
    let output = convert_all(&documents);
    for document in &output.documents {
        print!(
            "---\n{}",
            serde_yaml::to_string(document).context("writing YAML")?
        );
    }
    unreadable.extend(output.lines);
    for line in &unreadable {
        eprintln!("{line}");
    }
    if output.converted == 0 {
        bail!(
            "nothing in {} could be converted ({} Argo Rollouts or Flagger object(s) found)",
            args.file.display(),
            output.sources
        );
    }
    Ok(())
}

/// The source of a document: Argo Rollouts, Flagger, or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Argo,
    Flagger,
    Other,
}

fn source_of(doc: &Value) -> Source {
    match doc["apiVersion"].as_str().and_then(|v| v.split('/').next()) {
        Some("argoproj.io") => Source::Argo,
        Some("flagger.app") => Source::Flagger,
        _ => Source::Other,
    }
}

/// Converts every document; pure, for tests.
#[must_use]
pub fn convert_all(documents: &[Document]) -> Output {
    let inputs = flagger_canary::Inputs {
        deployments: of_kind(documents, Source::Other, "Deployment"),
        metric_templates: of_kind(documents, Source::Flagger, "MetricTemplate"),
    };
    let conversions: Vec<Option<Conversion>> = documents
        .iter()
        .map(|doc| match source_of(&doc.value) {
            Source::Other => None,
            source => Some(convert_one(source, &doc.value, &inputs)),
        })
        .collect();
    // Flagger manages the Services and routing objects it generates, taking over any that
    // exist; so do the converted ones.
    let generated: std::collections::BTreeMap<(String, String), String> = documents
        .iter()
        .zip(&conversions)
        .filter_map(|(doc, c)| Some((doc, c.as_ref()?)))
        .flat_map(|(doc, c)| {
            let from = format!(
                "{}/{}",
                doc.value["kind"].as_str().unwrap_or(""),
                name_of(&doc.value)
            );
            c.objects
                .iter()
                .filter(|o| o["apiVersion"] != API_VERSION)
                .map(move |o| (key(o), from.clone()))
        })
        .collect();
    let mut out = Output::default();
    for (doc, conversion) in documents.iter().zip(conversions) {
        let kind = doc.value["kind"].as_str().unwrap_or("<no kind>");
        let name = name_of(&doc.value);
        let Some(conversion) = conversion else {
            match generated.get(&key(&doc.value)) {
                Some(from) => out.lines.push(format!(
                    "{}: {kind}/{name}: spec: replaced by the one converted from {from}, which Flagger manages",
                    doc.file
                )),
                None => out.documents.push(doc.value.clone()),
            }
            continue;
        };
        out.sources += 1;
        out.lines
            .extend(conversion.findings.lines(&doc.file, kind, name));
        if !conversion.objects.is_empty() {
            out.converted += 1;
        }
        out.documents.extend(conversion.objects);
    }
    out
}

fn name_of(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or("<no name>")
}

fn key(doc: &Value) -> (String, String) {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let name = doc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (kind, name)
}

fn of_kind<'a>(documents: &'a [Document], source: Source, kind: &str) -> Vec<&'a Value> {
    documents
        .iter()
        .filter(|d| source_of(&d.value) == source && d.value["kind"] == kind)
        .map(|d| &d.value)
        .collect()
}

fn convert_one(source: Source, doc: &Value, inputs: &flagger_canary::Inputs<'_>) -> Conversion {
    let kind = doc["kind"].as_str().unwrap_or_default();
    match (source, kind) {
        (Source::Argo, "Rollout") => argo_rollout::convert(doc, &inputs.deployments),
        (Source::Argo, "AnalysisTemplate" | "ClusterAnalysisTemplate" | "AnalysisRun") => {
            argo_analysis::convert(kind, doc)
        }
        (Source::Argo, "Experiment") => {
            Conversion::refused("kind", "Experiments are not supported by Sluice")
        }
        (Source::Flagger, "Canary") => flagger_canary::convert(doc, inputs),
        (Source::Flagger, "MetricTemplate") => flagger_metrics::convert_template(doc),
        (Source::Flagger, "AlertProvider") => Conversion::refused(
            "kind",
            "Sluice has no alert providers; route its Events and metrics with your alerting",
        ),
        _ => Conversion::refused("kind", format!("{kind} has no Sluice equivalent")),
    }
}

/// The documents of `path` (a file, a directory of YAML files, or `-`), and a line for each
/// file that is not YAML.
///
/// # Errors
/// When the path cannot be read.
pub fn read(path: &Path) -> anyhow::Result<(Vec<Document>, Vec<String>)> {
    let mut documents = Vec::new();
    let mut unreadable = Vec::new();
    for (file, text) in files(path)? {
        match parse(&text) {
            Ok(values) => documents.extend(values.into_iter().map(|value| Document {
                file: file.clone(),
                value,
            })),
            Err(error) => unreadable.push(format!("{file}: not YAML, skipped: {error}")),
        }
    }
    Ok((documents, unreadable))
}

fn files(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
        return Ok(vec![("<stdin>".to_string(), text)]);
    }
    if !path.is_dir() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(vec![(path.display().to_string(), text)]);
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading directory {}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            Ok((p.display().to_string(), text))
        })
        .collect()
}

/// The non-empty documents of a YAML stream.
///
/// # Errors
/// The parser's message when the text is not YAML.
pub fn parse(text: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml: &str) -> Vec<Document> {
        parse(yaml)
            .unwrap_or_default()
            .into_iter()
            .map(|value| Document {
                file: "in.yaml".into(),
                value,
            })
            .collect()
    }

    #[test]
    fn api_version_is_ours() {
        assert_eq!(
            API_VERSION,
            format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION)
        );
    }

    #[test]
    fn other_documents_pass_through_and_findings_name_file_kind_and_name() {
        let out = convert_all(&docs(
            r"
apiVersion: v1
kind: Service
metadata: {name: podinfo-canary}
spec: {ports: [{port: 1}]}
---
apiVersion: argoproj.io/v1alpha1
kind: Experiment
metadata: {name: e}
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: linkerd
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis: {interval: 30s, stepWeight: 50, webhooks: [{name: gate, type: confirm-rollout, url: 'http://x/'}]}
",
        ));
        let kinds: Vec<_> = out
            .documents
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or(""))
            .collect();
        // The converted podinfo-canary Service replaces the user's, as Flagger takes it over.
        assert_eq!(kinds, ["Rollout", "Service", "Service", "Service"]);
        assert_eq!(out.documents[3]["metadata"]["name"], "podinfo-canary");
        assert_eq!(out.documents[3]["spec"]["ports"][0]["port"], 9898);
        assert_eq!(out.converted, 1);
        assert_eq!(out.sources, 2);
        assert_eq!(
            out.lines,
            [
                "in.yaml: Service/podinfo-canary: spec: replaced by the one converted from Canary/podinfo, which Flagger manages",
                "in.yaml: Experiment/e: kind: Experiments are not supported by Sluice",
                "in.yaml: Canary/podinfo: spec.analysis.webhooks[0]: confirm-rollout: not carried: Sluice has no webhooks; use an analysis step with a web or job metric, or a pause step for a manual gate",
            ]
        );
    }
}
