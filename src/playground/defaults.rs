//! Defaults and validation the real API server applies to the built-in kinds we serve
//! (the subset controllers and kubectl users notice). Pure.

use super::error::{ApiError, Cause};
use super::selectors::LabelSelector;
use serde_json::{Map, Value, json};

fn obj_at<'a>(v: &'a mut Value, keys: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut node = v;
    for k in keys {
        let map = node.as_object_mut()?;
        node = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    node.as_object_mut()
}

fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_string()).or_insert(value);
}

fn pod_spec_defaults(spec: &mut Map<String, Value>) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "securityContext", json!({}));
    for field in ["containers", "initContainers"] {
        for c in spec
            .get_mut(field)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let latest = image.ends_with(":latest")
                || !image.rsplit('/').next().unwrap_or_default().contains(':');
            default(
                c,
                "imagePullPolicy",
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            default(c, "terminationMessagePath", json!("/dev/termination-log"));
            default(c, "terminationMessagePolicy", json!("File"));
            default(c, "resources", json!({}));
            for p in c
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

/// Standard base64 (RFC 4648) for `Secret.stringData`.
pub(super) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The labels the API server gives a Job's selector and pod template.
pub const JOB_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The label naming a pod's Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// Job defaults, including what the API server generates without `manualSelector`: a selector
/// on the Job's uid and the matching (and job-name) labels on the pod template.
fn job_defaults(obj: &mut Value) {
    let uid = obj.pointer("/metadata/uid").cloned().unwrap_or_default();
    let name = obj.pointer("/metadata/name").cloned().unwrap_or_default();
    let manual = obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true);
    if let Some(spec) = obj_at(obj, &["spec"]) {
        default(spec, "parallelism", json!(1));
        default(spec, "completions", json!(1));
        default(spec, "backoffLimit", json!(6));
        default(spec, "completionMode", json!("NonIndexed"));
        default(spec, "suspend", json!(false));
        if !manual {
            default(
                spec,
                "selector",
                json!({"matchLabels": {JOB_UID_LABEL: uid}}),
            );
        }
    }
    if !manual && let Some(labels) = obj_at(obj, &["spec", "template", "metadata", "labels"]) {
        default(labels, JOB_UID_LABEL, uid.clone());
        default(labels, "controller-uid", uid);
        default(labels, JOB_NAME_LABEL, name.clone());
        default(labels, "job-name", name);
    }
    if let Some(pod) = obj_at(obj, &["spec", "template", "spec"]) {
        pod_spec_defaults(pod);
    }
}

/// A pod template must have containers (the API server's `Required value`).
fn require_containers(obj: &Value, causes: &mut Vec<Cause>) {
    if obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        causes.push(cause(
            "FieldValueRequired",
            "spec.template.spec.containers",
            "Required value".into(),
        ));
    }
}

fn job_causes(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    require_containers(obj, causes);
    let policy = obj
        .pointer("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(policy, "Never" | "OnFailure") {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy",
            format!("Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""),
        ));
    }
    if let Some(old) = old
        && old.pointer("/spec/selector") != obj.pointer("/spec/selector")
    {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.selector",
            "Invalid value: field is immutable".into(),
        ));
    }
}

/// Apply the defaults of a built-in kind. `cluster_ip` is used for a new Service.
pub fn apply(kind: &str, obj: &mut Value, cluster_ip: &dyn Fn() -> String) {
    match kind {
        "Deployment" => {
            if let Some(spec) = obj_at(obj, &["spec"]) {
                default(spec, "replicas", json!(1));
                default(spec, "revisionHistoryLimit", json!(10));
                default(spec, "progressDeadlineSeconds", json!(600));
                default(spec, "strategy", json!({"type": "RollingUpdate"}));
                if let Some(strategy) = spec.get_mut("strategy").and_then(Value::as_object_mut)
                    && strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                {
                    let ru = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        default(ru, "maxSurge", json!("25%"));
                        default(ru, "maxUnavailable", json!("25%"));
                    }
                }
            }
            if let Some(pod) = obj_at(obj, &["spec", "template", "spec"]) {
                pod_spec_defaults(pod);
            }
        }
        "ReplicaSet" => {
            if let Some(spec) = obj_at(obj, &["spec"]) {
                default(spec, "replicas", json!(1));
            }
            if let Some(pod) = obj_at(obj, &["spec", "template", "spec"]) {
                pod_spec_defaults(pod);
            }
        }
        "Job" => job_defaults(obj),
        "Pod" => {
            if let Some(spec) = obj_at(obj, &["spec"]) {
                pod_spec_defaults(spec);
            }
        }
        "Service" => {
            if let Some(spec) = obj_at(obj, &["spec"]) {
                default(spec, "type", json!("ClusterIP"));
                default(spec, "sessionAffinity", json!("None"));
                if spec.get("type").and_then(Value::as_str) != Some("ExternalName")
                    && !spec.contains_key("clusterIP")
                {
                    let ip = cluster_ip();
                    spec.insert("clusterIP".into(), json!(ip));
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
                for p in spec
                    .get_mut("ports")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(p) = p.as_object_mut() {
                        default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            default(p, "targetPort", port);
                        }
                    }
                }
            }
        }
        "Namespace" => {
            let name = obj.pointer("/metadata/name").cloned().unwrap_or_default();
            if let Some(labels) = obj_at(obj, &["metadata", "labels"]) {
                labels.insert("kubernetes.io/metadata.name".into(), name);
            }
            if let Some(spec) = obj_at(obj, &["spec"]) {
                default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(status) = obj_at(obj, &["status"]) {
                default(status, "phase", json!("Active"));
            }
        }
        "Secret" => {
            if let Some(map) = obj.as_object_mut() {
                default(map, "type", json!("Opaque"));
                if let Some(Value::Object(string_data)) = map.remove("stringData") {
                    let data = map.entry("data").or_insert_with(|| json!({}));
                    if let Some(data) = data.as_object_mut() {
                        for (k, v) in string_data {
                            data.insert(
                                k,
                                json!(base64(v.as_str().unwrap_or_default().as_bytes())),
                            );
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Status set on creation of a built-in kind (the real server initialises these).
pub fn initial_status(kind: &str) -> Option<Value> {
    match kind {
        "Pod" => Some(json!({"phase": "Pending", "qosClass": "BestEffort"})),
        "Namespace" => Some(json!({"phase": "Active"})),
        "Service" => Some(json!({"loadBalancer": {}})),
        _ => None,
    }
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

/// Validate a built-in object (`old` is the stored object on update).
///
/// # Errors
/// `Invalid` with one cause per violation.
pub fn validate(kind: &str, group: &str, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = super::pod_validation::causes(kind, obj)?;
    match kind {
        "Deployment" | "ReplicaSet" => {
            match obj.pointer("/spec/selector") {
                None => causes.push(cause(
                    "FieldValueRequired",
                    "spec.selector",
                    "Required value".into(),
                )),
                Some(sel) => {
                    let selector = LabelSelector::from_object(sel);
                    if selector.is_empty() {
                        causes.push(cause(
                            "FieldValueInvalid",
                            "spec.selector",
                            "Invalid value: {}: empty selector is invalid for deployment".into(),
                        ));
                    } else if !selector
                        .matches_labels(obj.pointer("/spec/template/metadata/labels"))
                    {
                        causes.push(cause(
                            "FieldValueInvalid",
                            "spec.template.metadata.labels",
                            format!(
                                "Invalid value: {}: `selector` does not match template `labels`",
                                obj.pointer("/spec/template/metadata/labels")
                                    .cloned()
                                    .unwrap_or_default()
                            ),
                        ));
                    }
                    if let Some(old_sel) = old.and_then(|o| o.pointer("/spec/selector"))
                        && old_sel != sel
                    {
                        causes.push(cause(
                            "FieldValueInvalid",
                            "spec.selector",
                            format!("Invalid value: {sel}: field is immutable"),
                        ));
                    }
                }
            }
            require_containers(obj, &mut causes);
            if obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .is_some_and(|r| r < 0)
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.replicas",
                    "Invalid value: must be greater than or equal to 0".into(),
                ));
            }
        }
        "Job" => job_causes(obj, old, &mut causes),
        "Pod"
            if obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty) =>
        {
            causes.push(cause(
                "FieldValueRequired",
                "spec.containers",
                "Required value".into(),
            ));
        }
        "Service" => {
            if let (Some(old_ip), Some(new_ip)) = (
                old.and_then(|o| o.pointer("/spec/clusterIP")),
                obj.pointer("/spec/clusterIP"),
            ) && old_ip != new_ip
                && old_ip != "None"
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.clusterIP",
                    format!("Invalid value: {new_ip}: field is immutable"),
                ));
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Err(ApiError::Invalid {
            kind: kind.into(),
            group: group.into(),
            name: name.into(),
            causes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
