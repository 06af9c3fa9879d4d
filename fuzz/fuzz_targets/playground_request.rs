//! The playground API server's request handling: arbitrary method, path, query (labelSelector,
//! fieldSelector, resourceVersion, watch, limit, continue, ...), headers and body (JSON, YAML,
//! each patch type, protobuf) go through the same routing and parsing as a request over HTTP.
//! Properties: no panic, and no request earns a `5xx`: whatever a client sends, the answer is
//! a `4xx` naming what is wrong, or a success.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use sluice::playground::simulation::SimulationOptions;
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions};
use std::sync::OnceLock;

/// Bases of resource paths, so that mutations start from routes the registry serves.
const PREFIXES: [&str; 8] = [
    "/api/v1/",
    "/api/v1/namespaces/default/",
    "/apis/apps/v1/namespaces/default/",
    "/apis/sluice.dev/v1alpha1/namespaces/default/",
    "/apis/batch/v1/namespaces/fuzz/",
    "/apis/",
    "/openapi/v3/",
    "/",
];

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

const CONTENT_TYPES: [&str; 9] = [
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
    "text/plain",
];

const ACCEPTS: [&str; 4] = [
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    "*/*",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    prefix: u8,
    content_type: u8,
    accept: u8,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
}

struct Server {
    runtime: tokio::runtime::Runtime,
    playground: PlaygroundHandle,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
        let options = PlaygroundOptions {
            simulation: SimulationOptions::disabled(),
            ..PlaygroundOptions::default()
        };
        let playground = runtime
            .block_on(Playground::start(options))
            .unwrap_or_else(|e| panic!("starting the playground: {e}"));
        Server {
            runtime,
            playground,
        }
    })
}

fn pick<T: Copy>(items: &[T], at: u8) -> T {
    items[usize::from(at) % items.len()]
}

fuzz_target!(|input: Input<'_>| {
    let uri = format!(
        "{}{}?{}",
        pick(&PREFIXES, input.prefix),
        input.path,
        input.query
    );
    let Ok(request) = http::Request::builder()
        .method(pick(&METHODS, input.method))
        .uri(&uri)
        .header(
            http::header::CONTENT_TYPE,
            pick(&CONTENT_TYPES, input.content_type),
        )
        .header(http::header::ACCEPT, pick(&ACCEPTS, input.accept))
        .body(Bytes::copy_from_slice(input.body))
    else {
        return;
    };
    let server = server();
    let described = format!(
        "{request:?} with body {:?}",
        String::from_utf8_lossy(input.body)
    );
    let response = server
        .runtime
        .block_on(server.playground.serve_request(request));
    let status = response.status();
    if status.is_server_error() {
        let body = server
            .runtime
            .block_on(response.into_body().collect())
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        panic!("{described} answered {status}: {body}");
    }
});
