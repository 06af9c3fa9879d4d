//! The `pods/eviction` subresource: `POST .../pods/NAME/eviction` with a `policy/v1` (or
//! `v1beta1`) `Eviction` deletes the pod as the real API server does when no
//! PodDisruptionBudget objects (the playground serves none, so none are consulted). The
//! simulated ReplicaSet controller then replaces the pod. Touches the store through `ops`.

use super::error::ApiError;
use super::ops::{Api, DeleteOpts, Target};
use serde_json::{Value, json};

/// The subresource's name.
pub const SUBRESOURCE: &str = "eviction";

/// Whether `plural` in `group` has the eviction subresource (core pods only).
pub fn served(group: &str, plural: &str) -> bool {
    group.is_empty() && plural == "pods"
}

/// Evict the pod `t` names. Returns the `Status` the real server answers with (201).
///
/// # Errors
/// `BadRequest` when the body is not an Eviction for this pod, `NotFound` when the pod does
/// not exist, and whatever the delete fails with (a failed uid or resourceVersion
/// precondition from `deleteOptions`).
pub fn evict(api: &Api, t: &Target, body: &Value, dry_run: bool) -> Result<Value, ApiError> {
    let pod = t.name.as_deref().unwrap_or_default();
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    let kind = body.get("kind").and_then(Value::as_str);
    // Like the real server, a body without apiVersion and kind is read as the endpoint's type
    // (kube-rs sends one).
    let kind_ok = matches!(kind, None | Some("Eviction"));
    let version_ok = matches!(api_version, None | Some("policy/v1" | "policy/v1beta1"));
    if !kind_ok || !version_ok {
        return Err(ApiError::BadRequest(format!(
            "expected an Eviction of policy/v1 or policy/v1beta1, got {} {}",
            api_version.unwrap_or("<none>"),
            kind.unwrap_or("<none>")
        )));
    }
    let named = body.pointer("/metadata/name").and_then(Value::as_str);
    if named != Some(pod) {
        return Err(ApiError::BadRequest(
            "name in URL does not match name in Eviction object".into(),
        ));
    }
    let s = |ptr: &str| {
        body.pointer(ptr)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let opts = DeleteOpts {
        propagation: s("/deleteOptions/propagationPolicy"),
        dry_run: dry_run
            || body
                .pointer("/deleteOptions/dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
        precondition_uid: s("/deleteOptions/preconditions/uid"),
        precondition_rv: s("/deleteOptions/preconditions/resourceVersion"),
    };
    let pod_target = Target {
        subresource: None,
        ..t.clone()
    };
    api.delete(&pod_target, &opts)?;
    Ok(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Success", "code": 201,
    }))
}
