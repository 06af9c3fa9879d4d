//! API types of group `sluice.dev`, version `v1alpha1`, and the CRD generator behind
//! `sluice crds`. Doc comments on fields become the schema descriptions; cross-field rules the
//! API server can check are CEL rules (`x-kubernetes-validations`), the rest is checked by the
//! engine's validation and reported as `InvalidSpec`.

mod analysis;
mod bluegreen;
mod canary;
mod rollout;
mod schema;
mod status;
mod traffic_routing;

pub use analysis::*;
pub use bluegreen::*;
pub use canary::*;
pub use rollout::*;
pub use status::*;
pub use traffic_routing::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every Sluice resource.
pub const GROUP: &str = "sluice.dev";
/// The API version of every Sluice resource.
pub const VERSION: &str = "v1alpha1";
/// The label carrying a pod template's hash, on ReplicaSets, their pods and Service selectors.
/// The same key as Argo Rollouts, so dashboards and selectors carry over.
pub const POD_TEMPLATE_HASH_LABEL: &str = "rollouts-pod-template-hash";
/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "sluice-controller";

/// Every CRD Sluice serves, in install order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        Rollout::crd(),
        AnalysisTemplate::crd(),
        ClusterAnalysisTemplate::crd(),
        AnalysisRun::crd(),
    ];
    for crd in &mut crds {
        schema::trim_embedded_descriptions(crd);
    }
    crds
}

/// Every CRD as `(file name, YAML)`, one file per CRD named after it: the content of `crds/`.
///
/// # Errors
/// Fails only if a CRD cannot be serialised, which would be a bug in the generator.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            Ok((format!("{name}.yaml"), serde_yaml::to_string(&crd)?))
        })
        .collect()
}

/// Every CRD as one multi-document YAML stream, the content of `crds/`.
///
/// # Errors
/// Fails only if a CRD cannot be serialised, which would be a bug in the generator.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
