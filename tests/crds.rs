//! The committed CRDs in `crds/` are exactly what the generator produces, and `sluice crds`
//! prints the same documents.

use std::path::Path;

#[test]
fn committed_crds_match_the_generator() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let files = sluice::crd::crd_files().expect("CRDs serialise");
    assert_eq!(
        files.len(),
        4,
        "Rollout, AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun"
    );
    for (name, generated) in &files {
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            committed == *generated,
            "crds/{name} differs from the generator; regenerate with `cargo run -- crds --out-dir crds`"
        );
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "crds/ holds exactly the generated files");
}

#[test]
fn sluice_crds_prints_every_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("crds")
        .output()
        .expect("sluice runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<String> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).expect("a YAML document");
            v["metadata"]["name"].as_str().expect("a name").to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "rollouts.sluice.dev",
            "analysistemplates.sluice.dev",
            "clusteranalysistemplates.sluice.dev",
            "analysisruns.sluice.dev"
        ]
    );
}

#[test]
fn rollout_crd_has_subresources_columns_and_short_name() {
    let crd = sluice::crd::crds().remove(0);
    let v = &crd.spec.versions[0];
    let sub = v.subresources.as_ref().expect("subresources");
    assert!(sub.status.is_some(), "status subresource");
    let scale = sub.scale.as_ref().expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.HPAReplicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
    assert_eq!(crd.spec.names.short_names, Some(vec!["sro".to_owned()]));
    let cols: Vec<&str> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        cols,
        [
            "Desired",
            "Current",
            "Up-to-date",
            "Available",
            "Step",
            "Weight",
            "Phase",
            "Age"
        ]
    );
    // Small enough for client-side `kubectl apply`, whose last-applied annotation is capped.
    let json = serde_json::to_string(&crd).expect("serialises");
    assert!(
        json.len() < 200 * 1024,
        "Rollout CRD is {} bytes",
        json.len()
    );
}

use serde::Deserialize as _;
