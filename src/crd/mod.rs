//! API types of group `sluice.dev`, version `v1alpha1`, and the CRD generator behind
//! `sluice crds`. Doc comments on fields become the schema descriptions.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Every CRD Sluice serves, in install order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    Vec::new()
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
