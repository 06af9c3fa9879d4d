//! Thin I/O shared by the in-cluster routers: read a routing object, apply a pure
//! transformation, and write back only what changed as a JSON patch guarded by a
//! `resourceVersion` test, with field manager `sluice-controller`; conflicts are retried.

use super::TrafficError;
use crate::crd::FIELD_MANAGER;
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch as JsonPatch, PatchOperation, TestOperation};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::Value;

/// How often a write is retried when the object changed under us.
const CONFLICT_RETRIES: usize = 5;

/// One routing object: where it lives and how to name it in errors.
#[derive(Clone, Debug)]
pub struct Target {
    /// The router.
    pub provider: &'static str,
    /// The object's kind (for errors).
    pub kind: &'static str,
    /// Group, version and plural.
    pub resource: ApiResource,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Target {
    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), &self.namespace, &self.resource)
    }

    fn api_error(&self, verb: &'static str, source: kube::Error) -> TrafficError {
        TrafficError::Api {
            provider: self.provider,
            verb,
            kind: self.kind,
            name: format!("{}/{}", self.namespace, self.name),
            source: Box::new(source),
        }
    }

    /// `NotFound` for this object.
    pub fn not_found(&self) -> TrafficError {
        TrafficError::NotFound {
            provider: self.provider,
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// `Unusable` for this object.
    pub fn unusable(&self, reason: impl Into<String>) -> TrafficError {
        TrafficError::Unusable {
            provider: self.provider,
            kind: self.kind,
            name: format!("{}/{}", self.namespace, self.name),
            reason: reason.into(),
        }
    }
}

/// Reads the object as JSON; `None` when it does not exist.
///
/// # Errors
/// `Api` when the read fails for another reason.
pub async fn get(client: &kube::Client, target: &Target) -> Result<Option<Value>, TrafficError> {
    let found = target
        .api(client)
        .get_opt(&target.name)
        .await
        .map_err(|e| target.api_error("get", e))?;
    found
        .map(|o| {
            serde_json::to_value(o).map_err(|e| target.unusable(format!("cannot encode: {e}")))
        })
        .transpose()
}

/// Reads the object, computes the desired object with `desired`, and writes the difference.
/// Writes nothing when nothing changes. With `create`, a missing object is created from
/// `desired(None)`; without it, a missing object is `NotFound`.
///
/// # Errors
/// `NotFound`, `Unusable` from the transformation, or `Api` when a write fails (conflicts are
/// retried first).
pub async fn update(
    client: &kube::Client,
    target: &Target,
    create: bool,
    desired: impl Fn(Option<&Value>) -> Result<Value, TrafficError>,
) -> Result<(), TrafficError> {
    let api = target.api(client);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(current) = get(client, target).await? else {
            if !create {
                return Err(target.not_found());
            }
            let object: DynamicObject = serde_json::from_value(desired(None)?)
                .map_err(|e| target.unusable(format!("cannot decode the desired object: {e}")))?;
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..Default::default()
            };
            match api.create(&params, &object).await {
                Err(kube::Error::Api(ae)) if ae.code == 409 && attempt < CONFLICT_RETRIES => {
                    continue;
                }
                other => {
                    other.map_err(|e| target.api_error("create", e))?;
                    tracing::debug!(provider = target.provider, kind = target.kind, name = %target.name, "routing object created");
                    return Ok(());
                }
            }
        };
        let wanted = desired(Some(&current))?;
        let patch = diff_guarded(&current, &wanted);
        if patch.0.len() <= 1 {
            return Ok(());
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        match api
            .patch(&target.name, &params, &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                tracing::debug!(provider = target.provider, kind = target.kind, name = %target.name, "routing object patched");
                return Ok(());
            }
            // 409: a conflict; 422: our resourceVersion test failed (or the patch is invalid,
            // which the next attempt reports again).
            Err(kube::Error::Api(ae))
                if (ae.code == 409 || ae.code == 422) && attempt < CONFLICT_RETRIES =>
            {
                tracing::debug!(provider = target.provider, name = %target.name, code = ae.code, "routing object changed, retrying");
            }
            Err(e) => return Err(target.api_error("patch", e)),
        }
    }
}

/// The JSON patch from `current` to `wanted`, led by a test of `metadata.resourceVersion` so
/// that it applies only to the version it was computed from. A patch of length 1 changes
/// nothing.
pub fn diff_guarded(current: &Value, wanted: &Value) -> JsonPatch {
    let mut ops = Vec::new();
    if let Some(rv) = current.pointer("/metadata/resourceVersion") {
        ops.push(PatchOperation::Test(TestOperation {
            path: PointerBuf::from_tokens(["metadata", "resourceVersion"]),
            value: rv.clone(),
        }));
    } else {
        ops.push(PatchOperation::Test(TestOperation {
            path: PointerBuf::from_tokens(["metadata", "name"]),
            value: current
                .pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null),
        }));
    }
    ops.extend(json_patch::diff(current, wanted).0);
    JsonPatch(ops)
}
