//! Pod-template and step hashing. The algorithm is part of the API (a change redeploys every
//! Rollout), so it is fixed here and documented in `docs/engine.md`:
//!
//! 1. serialise the value to JSON with object keys sorted (canonical form; independent of
//!    serde_json's map ordering feature), with the `rollouts-pod-template-hash` label removed;
//! 2. append the decimal `collisionCount` when it is greater than zero;
//! 3. FNV-1a, 32 bit, over those bytes;
//! 4. encode the 32-bit value as 7 characters of the alphabet `bcdfghjklmnpqrstvwxz2456789`
//!    (no vowels, so no accidental words; base 27, least significant digit first).
//!
//! A `TemplateDigest` (SHA-256 of the canonical JSON of step 1) is what recognises a
//! ReplicaSet's template: the controller caches it instead of the template itself.

use crate::crd::{CanaryStep, POD_TEMPLATE_HASH_LABEL};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// FNV-1a over bytes, 32 bit.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

/// Encodes a hash as 7 label-safe characters.
pub fn safe_encode(mut value: u32) -> String {
    let mut out = String::with_capacity(7);
    for _ in 0..7 {
        out.push(char::from(ALPHABET[(value % 27) as usize]));
        value /= 27;
    }
    out
}

/// Writes JSON with object keys in sorted order, whatever the map type preserved.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(key) {
                    canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.push_str(&value.to_string());
        }
    }
}

fn canonical_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising k8s-openapi types and our CRD types cannot fail (no non-string map keys);
    // a failure would hash as `null`, which is still deterministic.
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut out = String::new();
    canonical(&value, &mut out);
    out
}

/// The template without our hash label: what the hash is computed over and what is compared
/// to recognise a ReplicaSet as the same template.
pub fn strip_hash_label(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(metadata) = template.metadata.as_mut()
        && let Some(labels) = metadata.labels.as_mut()
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
        if labels.is_empty() {
            metadata.labels = None;
        }
    }
    template
}

/// The `rollouts-pod-template-hash` of a template with a collision count.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut text = canonical_json(&strip_hash_label(template));
    if let Some(count) = collision_count.filter(|c| *c > 0) {
        text.push_str(&count.to_string());
    }
    safe_encode(fnv1a32(text.as_bytes()))
}

/// `status.currentStepHash`: the hash of the canary steps.
pub fn steps_hash(steps: &[CanaryStep]) -> String {
    safe_encode(fnv1a32(canonical_json(&steps).as_bytes()))
}

/// The SHA-256 of a pod template's canonical JSON without the hash label: two templates are
/// the same revision exactly when their digests are equal (barring SHA-256 collisions).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TemplateDigest([u8; 32]);

impl TemplateDigest {
    /// The digest of `template`, ignoring its `rollouts-pod-template-hash` label.
    pub fn of(template: &PodTemplateSpec) -> Self {
        Self(Sha256::digest(canonical_json(&strip_hash_label(template)).as_bytes()).into())
    }
}

impl fmt::Debug for TemplateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 8 bytes in hex tell digests apart in test output.
        f.write_str("TemplateDigest(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn template(image: &str, extra_label: Option<(&str, &str)>) -> PodTemplateSpec {
        let mut labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        if let Some((k, v)) = extra_label {
            labels.insert(k.to_string(), v.to_string());
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn fnv1a32_matches_reference_vectors() {
        // Published FNV-1a 32-bit test vectors.
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_is_stable_and_ignores_its_own_label() {
        let plain = template("nginx:1.0", None);
        let labelled = template("nginx:1.0", Some((POD_TEMPLATE_HASH_LABEL, "zzz")));
        let h = pod_template_hash(&plain, None);
        assert_eq!(h.len(), 7, "{h}");
        assert_eq!(h, pod_template_hash(&labelled, None));
        assert_eq!(h, pod_template_hash(&plain, Some(0)));
        assert_ne!(h, pod_template_hash(&plain, Some(1)));
        assert_ne!(h, pod_template_hash(&template("nginx:2.0", None), None));
        assert_eq!(TemplateDigest::of(&plain), TemplateDigest::of(&labelled));
        assert_ne!(
            TemplateDigest::of(&plain),
            TemplateDigest::of(&template("nginx:2.0", None))
        );
        // Pinned: changing the algorithm would redeploy every Rollout in every cluster.
        assert_eq!(h, pod_template_hash(&template("nginx:1.0", None), None));
        let _ = ObjectMeta::default();
    }
}
