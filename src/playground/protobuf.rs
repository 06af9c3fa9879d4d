//! A small decoder for the Kubernetes protobuf envelope, for the request bodies kubectl's typed
//! clients send as `application/vnd.kubernetes.protobuf` (`kubectl create namespace`,
//! `configmap`, `secret`). Other kinds are answered with `415`. Pure.

use super::defaults::base64;
use super::error::ApiError;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\x00";

fn bad(what: &str) -> ApiError {
    ApiError::BadRequest(format!("the protobuf body could not be decoded: {what}"))
}

/// One decoded protobuf field.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(bad("varint too long"))
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| bad("length"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| bad("truncated field"))?;
                let bytes = &buf[pos..end];
                pos = end;
                Field::Bytes(bytes)
            }
            1 => {
                pos += 8;
                Field::Fixed
            }
            5 => {
                pos += 4;
                Field::Fixed
            }
            _ => return Err(bad("unsupported wire type")),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// Insert a string field unless it is empty (gogo-protobuf encodes empty strings).
fn put(m: &mut Map<String, Value>, k: &str, b: &[u8]) {
    if !b.is_empty() {
        m.insert(k.into(), text(b));
    }
}

/// A `map<string, string>` (or bytes, base64-encoded) entry list.
fn map_entry(b: &[u8], bytes_value: bool, into: &mut Map<String, Value>) -> Result<(), ApiError> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = String::from_utf8_lossy(x).into_owned(),
            (2, Field::Bytes(x)) => {
                v = if bytes_value {
                    json!(base64(x))
                } else {
                    text(x)
                }
            }
            _ => {}
        }
    }
    into.insert(k, v);
    Ok(())
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    let (mut labels, mut annotations, mut finalizers, mut owners) =
        (Map::new(), Map::new(), Vec::new(), Vec::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => put(&mut m, "name", x),
            (2, Field::Bytes(x)) => put(&mut m, "generateName", x),
            (3, Field::Bytes(x)) => put(&mut m, "namespace", x),
            (5, Field::Bytes(x)) => put(&mut m, "uid", x),
            (6, Field::Bytes(x)) => put(&mut m, "resourceVersion", x),
            (11, Field::Bytes(x)) => map_entry(x, false, &mut labels)?,
            (12, Field::Bytes(x)) => map_entry(x, false, &mut annotations)?,
            (13, Field::Bytes(x)) => {
                let mut r = Map::new();
                for (rn, rf) in fields(x)? {
                    match (rn, rf) {
                        (1, Field::Bytes(v)) => _ = r.insert("kind".into(), text(v)),
                        (3, Field::Bytes(v)) => _ = r.insert("name".into(), text(v)),
                        (4, Field::Bytes(v)) => _ = r.insert("uid".into(), text(v)),
                        (5, Field::Bytes(v)) => _ = r.insert("apiVersion".into(), text(v)),
                        (6, Field::Varint(v)) => _ = r.insert("controller".into(), json!(v != 0)),
                        (7, Field::Varint(v)) => {
                            _ = r.insert("blockOwnerDeletion".into(), json!(v != 0))
                        }
                        _ => {}
                    }
                }
                owners.push(Value::Object(r));
            }
            (14, Field::Bytes(x)) => finalizers.push(text(x)),
            _ => {}
        }
    }
    for (k, v) in [
        ("labels", Value::Object(labels)),
        ("annotations", Value::Object(annotations)),
        ("finalizers", Value::Array(finalizers)),
        ("ownerReferences", Value::Array(owners)),
    ] {
        let empty =
            v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty);
        if !empty {
            m.insert(k.into(), v);
        }
    }
    Ok(Value::Object(m))
}

/// Decode a protobuf request body into the JSON object it encodes.
///
/// # Errors
/// `UnsupportedMediaType` for kinds this decoder does not know; `BadRequest` for malformed bodies.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s envelope"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (tn, tf) in fields(tm)? {
                    match (tn, tf) {
                        (1, Field::Bytes(x)) => {
                            api_version = String::from_utf8_lossy(x).into_owned()
                        }
                        (2, Field::Bytes(x)) => kind = String::from_utf8_lossy(x).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    let (mut data, mut binary, mut string_data) = (Map::new(), Map::new(), Map::new());
    for (n, f) in fields(raw)? {
        match (kind.as_str(), n, f) {
            (_, 1, Field::Bytes(x)) => _ = obj.insert("metadata".into(), object_meta(x)?),
            ("ConfigMap", 2, Field::Bytes(x)) => map_entry(x, false, &mut data)?,
            ("ConfigMap", 3, Field::Bytes(x)) => map_entry(x, true, &mut binary)?,
            ("ConfigMap", 4, Field::Varint(v)) | ("Secret", 5, Field::Varint(v)) => {
                _ = obj.insert("immutable".into(), json!(v != 0))
            }
            ("Secret", 2, Field::Bytes(x)) => map_entry(x, true, &mut data)?,
            ("Secret", 3, Field::Bytes(x)) => put(&mut obj, "type", x),
            ("Secret", 4, Field::Bytes(x)) => map_entry(x, false, &mut string_data)?,
            ("Namespace", 2, Field::Bytes(x)) => {
                let finalizers: Vec<Value> = fields(x)?
                    .into_iter()
                    .filter_map(|(fn_, ff)| match (fn_, ff) {
                        (1, Field::Bytes(v)) => Some(text(v)),
                        _ => None,
                    })
                    .collect();
                if !finalizers.is_empty() {
                    obj.insert("spec".into(), json!({"finalizers": finalizers}));
                }
            }
            ("ConfigMap" | "Secret" | "Namespace", _, _) => {}
            _ => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the playground decodes protobuf only for ConfigMap, Secret and Namespace (got {kind}); send JSON (e.g. kubectl apply)"
                )));
            }
        }
    }
    for (k, v) in [
        ("data", data),
        ("binaryData", binary),
        ("stringData", string_data),
    ] {
        if !v.is_empty() {
            obj.insert(k.into(), Value::Object(v));
        }
    }
    Ok(Value::Object(obj))
}
