//! The HTTP front of the API server: hyper/HTTP1 on a TCP listener, URL routing to discovery
//! and resource handlers, query and header parsing, content negotiation, fault injection, and
//! `Status` error responses. Delegates semantics to `ops` and streams to `watch`.

use super::discovery;
use super::error::ApiError;
use super::eviction;
use super::faults::Faults;
use super::holds::Holds;
use super::openapi;
use super::ops::{Api, DeleteOpts, ListOpts, PatchType, Target, WriteOpts};
use super::protobuf;
use super::selectors::{FieldSelector, LabelSelector};
use super::table;
use super::watch::{self, WatchOpts};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Shared state of the HTTP server.
pub struct Server {
    pub api: Arc<Api>,
    pub faults: Arc<Faults>,
    pub holds: Arc<Holds>,
    pub addr: SocketAddr,
    pub bookmark_every: Duration,
}

/// Accept connections until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let server = server.clone();
                let mut stop = shutdown.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(server.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn json_response(code: u16, value: &Value, content_type: &str) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn ok(code: u16, value: &Value) -> Response<Body> {
    json_response(code, value, "application/json")
}

fn error_response(e: &ApiError) -> Response<Body> {
    ok(e.code(), &e.to_status())
}

async fn handle(server: Arc<Server>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match route(&server, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    Ok(resp)
}

struct Parsed {
    method: Method,
    segments: Vec<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
}

impl Parsed {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }

    fn header(&self, k: header::HeaderName) -> &str {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Serves one request given whole, without a connection (`PlaygroundHandle::serve_request`).
pub(super) async fn serve_one(server: &Server, req: Request<Bytes>) -> Response<Body> {
    match route(server, req.map(Full::new)).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn route<B>(server: &Server, req: Request<B>) -> Result<Response<Body>, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (parts, body) = req.into_parts();
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    server.faults.admit(agent).await?;
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let p = Parsed {
        method: parts.method,
        segments,
        query,
        headers: parts.headers,
    };
    if let Some(resp) = discovery_route(server, &p)? {
        return Ok(resp);
    }
    let (target, collection_level) = resolve(server, &p)?;
    let watching = p.flag("watch");
    let verb = match (&p.method, collection_level, watching) {
        (&Method::GET, _, true) => "watch",
        (&Method::GET, true, false) => "list",
        (&Method::GET, false, false) => "get",
        (&Method::POST, true, _) => "create",
        (&Method::POST, false, _)
            if target.subresource.as_deref() == Some(eviction::SUBRESOURCE) =>
        {
            "create"
        }
        (&Method::PUT, false, _) => "update",
        (&Method::PATCH, false, _) => "patch",
        (&Method::DELETE, false, _) => "delete",
        (&Method::DELETE, true, _) => "deletecollection",
        (m, _, _) => {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource: {m}"
            )));
        }
    };
    let resource = match &target.subresource {
        Some(s) => format!("{}/{s}", target.def.plural),
        None => target.def.plural.clone(),
    };
    if let Some(e) = server
        .faults
        .check_request(verb, &resource, p.header(header::USER_AGENT))
    {
        return Err(e);
    }
    let bytes = body
        .collect()
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?
        .to_bytes();
    let api = &server.api;
    let opts = WriteOpts {
        field_manager: field_manager(&p),
        dry_run: p.q("dryRun") == Some("All"),
        force: p.flag("force"),
        strict: p.q("fieldValidation") == Some("Strict"),
    };
    server
        .holds
        .pass(verb, &resource, &opts.field_manager, &bytes)
        .await;
    let as_table = p.header(header::ACCEPT).contains("as=Table");
    match verb {
        "watch" => Ok(watch_response(server, &p, &target)?),
        "list" => {
            if p.q("resourceVersionMatch") == Some("Exact") {
                exact_list_possible(server, &target, p.q("resourceVersion").unwrap_or_default())?;
            }
            if as_table {
                let list = api.list(&target, &list_opts(&p)?)?;
                Ok(ok(200, &table::from_list(&target.def, &list)))
            } else {
                let body = api.list_json(&target, &list_opts(&p)?)?;
                let mut resp = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                Ok(resp)
            }
        }
        "get" => {
            let obj = api.get(&target)?;
            if as_table && target.subresource.is_none() {
                Ok(ok(200, &table::from_object(&target.def, &obj)))
            } else {
                Ok(ok(200, &obj))
            }
        }
        "create" if target.subresource.is_some() => {
            let body = parse_any(&bytes)?;
            Ok(ok(
                201,
                &eviction::evict(api, &target, &body, opts.dry_run)?,
            ))
        }
        "create" => {
            let body = parse_body(&p, &bytes)?;
            Ok(ok(201, &api.create(&target, body, &opts)?))
        }
        "update" => {
            let body = parse_body(&p, &bytes)?;
            Ok(ok(200, &api.update(&target, body, &opts)?))
        }
        "patch" => {
            let ct = p.header(header::CONTENT_TYPE);
            let kind = match ct.split(';').next().unwrap_or_default().trim() {
                "application/json-patch+json" => PatchType::Json,
                "application/merge-patch+json" => PatchType::Merge,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" => PatchType::Apply,
                other => {
                    return Err(ApiError::UnsupportedMediaType(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                    )));
                }
            };
            let body = parse_any(&bytes)?;
            let existed = kind == PatchType::Apply
                && api
                    .get(&Target {
                        subresource: None,
                        ..target.clone()
                    })
                    .is_ok();
            let out = api.patch(&target, kind, body, &opts)?;
            Ok(ok(
                if kind == PatchType::Apply && !existed {
                    201
                } else {
                    200
                },
                &out,
            ))
        }
        "delete" => {
            let d = delete_opts(&p, &bytes)?;
            let out = api.delete(&target, &d)?;
            let pending = out.get("kind").and_then(Value::as_str) != Some("Status") && !d.dry_run;
            Ok(ok(if pending { 202 } else { 200 }, &out))
        }
        _ => {
            let d = delete_opts(&p, &bytes)?;
            Ok(ok(
                200,
                &api.delete_collection(&target, &list_opts(&p)?, &d)?,
            ))
        }
    }
}

/// A list at an exact older resourceVersion can be served only when nothing in the collection
/// changed since (the playground keeps no snapshots); otherwise `410 Expired`, as a real server
/// answers for a compacted version.
fn exact_list_possible(server: &Server, target: &Target, rv: &str) -> Result<(), ApiError> {
    let rv: u64 = rv
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?;
    let collection = server.api.store.collection(&target.def.storage);
    match collection.events_since(rv) {
        Ok(later) if later.is_empty() => Ok(()),
        _ => Err(ApiError::Gone(format!(
            "too old resource version: {rv} ({})",
            server.api.store.current_rv()
        ))),
    }
}

fn field_manager(p: &Parsed) -> String {
    if let Some(m) = p.q("fieldManager") {
        return m.to_string();
    }
    let ua = p.header(header::USER_AGENT);
    let prefix = ua.split('/').next().unwrap_or_default();
    if prefix.is_empty() {
        "unknown".into()
    } else {
        prefix.to_string()
    }
}

fn parse_any(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).or_else(|_| {
        serde_yaml::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body could not be decoded: {e}")))
    })
}

fn parse_body(p: &Parsed, bytes: &[u8]) -> Result<Value, ApiError> {
    let ct = p.header(header::CONTENT_TYPE);
    if ct.contains("protobuf") {
        return protobuf::decode(bytes);
    }
    if ct.contains("cbor") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct})"
        )));
    }
    parse_any(bytes)
}

fn list_opts(p: &Parsed) -> Result<ListOpts, ApiError> {
    Ok(ListOpts {
        labels: LabelSelector::parse(p.q("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(p.q("fieldSelector").unwrap_or_default())?,
        limit: p.q("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0),
        continue_token: p
            .q("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    })
}

fn delete_opts(p: &Parsed, bytes: &[u8]) -> Result<DeleteOpts, ApiError> {
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        parse_any(bytes)?
    };
    let s = |ptr: &str| {
        body.pointer(ptr)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let orphan = body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
        || p.q("orphanDependents") == Some("true");
    Ok(DeleteOpts {
        propagation: p
            .q("propagationPolicy")
            .map(str::to_string)
            .or_else(|| s("/propagationPolicy"))
            .or_else(|| orphan.then(|| "Orphan".to_string())),
        dry_run: p.q("dryRun") == Some("All")
            || body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
        precondition_uid: s("/preconditions/uid"),
        precondition_rv: s("/preconditions/resourceVersion"),
    })
}

fn discovery_route(server: &Server, p: &Parsed) -> Result<Option<Response<Body>>, ApiError> {
    let registry = &server.api.registry;
    let seg: Vec<&str> = p.segments.iter().map(String::as_str).collect();
    let accept = p.header(header::ACCEPT);
    let aggregated = |core: bool| -> Option<Response<Body>> {
        if !accept.contains("as=APIGroupDiscoveryList") {
            return None;
        }
        let v = if accept.contains("v=v2;") || accept.contains("v=v2,") || accept.ends_with("v=v2")
        {
            "v2"
        } else if accept.contains("v=v2beta1") {
            "v2beta1"
        } else {
            return None;
        };
        let ct = format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList");
        Some(json_response(
            200,
            &discovery::aggregated(registry, core, v),
            &ct,
        ))
    };
    if p.method != Method::GET {
        return Ok(None);
    }
    let resp = match seg.as_slice() {
        ["version"] => ok(200, &discovery::version()),
        ["healthz"] | ["readyz"] | ["livez"] => {
            Response::new(Full::new(Bytes::from_static(b"ok")).boxed_unsync())
        }
        ["api"] => aggregated(true)
            .unwrap_or_else(|| ok(200, &discovery::api_versions(&server.addr.to_string()))),
        ["apis"] => {
            aggregated(false).unwrap_or_else(|| ok(200, &discovery::api_group_list(registry)))
        }
        ["api", "v1"] => ok(
            200,
            &discovery::resource_list(registry, "", "v1").unwrap_or_default(),
        ),
        ["apis", group] => match discovery::api_group_doc(registry, group) {
            Some(doc) => ok(200, &doc),
            None => {
                return Err(ApiError::NotFound {
                    resource: "groups".into(),
                    name: group.to_string(),
                });
            }
        },
        ["apis", group, version] => match discovery::resource_list(registry, group, version) {
            Some(doc) => ok(200, &doc),
            None => {
                return Err(ApiError::NotFound {
                    resource: "groupversions".into(),
                    name: format!("{group}/{version}"),
                });
            }
        },
        ["openapi", "v3"] => ok(200, &openapi::root(registry, server.api.store.current_rv())),
        ["openapi", "v3", "api", version] => match openapi::group_version(registry, "", version) {
            Some(doc) => ok(200, &doc),
            None => {
                return Err(ApiError::NotFound {
                    resource: "openapi".into(),
                    name: p.segments.join("/"),
                });
            }
        },
        ["openapi", "v3", "apis", group, version] => {
            match openapi::group_version(registry, group, version) {
                Some(doc) => ok(200, &doc),
                None => {
                    return Err(ApiError::NotFound {
                        resource: "openapi".into(),
                        name: p.segments.join("/"),
                    });
                }
            }
        }
        ["openapi", ..] => {
            return Err(ApiError::NotFound {
                resource: "openapi".into(),
                name: p.segments.join("/"),
            });
        }
        _ => return Ok(None),
    };
    Ok(Some(resp))
}

/// Map a resource URL to its target; the bool says whether it names a collection.
fn resolve(server: &Server, p: &Parsed) -> Result<(Target, bool), ApiError> {
    let seg: Vec<&str> = p.segments.iter().map(String::as_str).collect();
    let not_found = || ApiError::NotFound {
        resource: String::new(),
        name: p.segments.join("/"),
    };
    let (group, version, rest) = match seg.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found()),
    };
    let (namespace, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, resource, ..] if registry_has(server, group, version, resource) => {
            (Some(*ns), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(*n), None),
        [r, n, s] => (*r, Some(*n), Some(*s)),
        _ => return Err(not_found()),
    };
    let def = server
        .api
        .registry
        .get(group, version, plural)
        .ok_or_else(|| ApiError::NotFound {
            resource: String::new(),
            name: format!(
                "the server could not find the requested resource ({plural}.{group}/{version})"
            ),
        })?;
    if let Some(s) = sub {
        let allowed = (s == "status" && def.status)
            || (s == "scale" && def.scale.is_some())
            || (s == eviction::SUBRESOURCE && eviction::served(group, plural));
        if !allowed {
            return Err(ApiError::NotFound {
                resource: def.storage.display(),
                name: format!("{}/{s}", name.unwrap_or_default()),
            });
        }
    }
    if def.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::NotFound {
            resource: def.storage.display(),
            name: name.unwrap_or_default().to_string(),
        });
    }
    let target = Target {
        def,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    };
    Ok((target, name.is_none()))
}

fn registry_has(server: &Server, group: &str, version: &str, plural: &str) -> bool {
    server.api.registry.get(group, version, plural).is_some()
}

fn watch_response(
    server: &Server,
    p: &Parsed,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    if target.name.is_some() {
        return Err(ApiError::MethodNotAllowed(
            "watch of a single object: use a fieldSelector on metadata.name".into(),
        ));
    }
    let list = list_opts(p)?;
    let opts = WatchOpts {
        namespace: target.namespace.clone(),
        labels: list.labels,
        fields: list.fields,
        resource_version: p.q("resourceVersion").map(str::to_string),
        bookmarks: p.flag("allowWatchBookmarks"),
        send_initial_events: p.flag("sendInitialEvents"),
        timeout: p
            .q("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map(Duration::from_secs),
        table: p.header(header::ACCEPT).contains("as=Table"),
    };
    let api = &server.api;
    let collection = api.store.collection(&target.def.storage);
    let rx = watch::start(
        api.store.clone(),
        target.def.clone(),
        collection,
        opts,
        server.bookmark_every,
    );
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
