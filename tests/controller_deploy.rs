//! The install manifests in `deploy/`: the CRD copies equal the generator's output, every
//! document parses, and the ClusterRole grants no wildcard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn deploy_crds_match_the_generator() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds");
    for (name, generated) in sluice::crd::crd_files().unwrap() {
        let on_disk = std::fs::read_to_string(dir.join(&name))
            .unwrap_or_else(|e| panic!("deploy/crds/{name}: {e}"));
        assert_eq!(
            on_disk, generated,
            "deploy/crds/{name} drifted: run `sluice crds --out-dir deploy/crds`"
        );
    }
}

#[test]
fn manifests_parse_and_rbac_has_no_wildcards() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let kustomization: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    let resources = kustomization["resources"].as_sequence().unwrap();
    for resource in resources {
        let path = dir.join(resource.as_str().unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                value["kind"].is_string(),
                "{}: a document without kind",
                path.display()
            );
            if value["kind"] == "ClusterRole" || value["kind"] == "Role" {
                for rule in value["rules"].as_sequence().unwrap() {
                    for field in ["apiGroups", "resources", "verbs"] {
                        for item in rule[field].as_sequence().unwrap() {
                            assert_ne!(item.as_str(), Some("*"), "wildcard in {rule:?}");
                        }
                    }
                }
            }
        }
    }
}
