//! The `web` metric provider: one HTTP request (GET, POST or PUT) to a URL under a prefix an
//! administrator registered, its JSON response read with a size cap, and the value at the
//! metric's JSONPath as the result. Touches only the network, through the `reqwest::Client`
//! it is given; never follows a redirect, so the allow-list cannot be escaped.

use super::registry::EndpointClients;
use super::{Args, MeasureRequest, MetricEndpoints, MetricProvider, Outcome, ProviderError};
use crate::crd::WebMetric;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest response body read by default: status documents are small, and a bigger body is
/// more likely a wrong URL than a metric.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Timeout when the metric sets none (`timeoutSeconds`), as in Argo Rollouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `web` provider.
pub struct WebProvider {
    endpoints: Arc<MetricEndpoints>,
    clients: EndpointClients,
    max_body: usize,
}

impl WebProvider {
    /// A provider that calls only URLs under the prefixes registered in `endpoints`, with the
    /// client `clients` holds for each prefix's TLS settings (none of them follows redirects).
    pub fn new(endpoints: Arc<MetricEndpoints>, clients: EndpointClients) -> Self {
        WebProvider {
            endpoints,
            clients,
            max_body: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Changes the response size cap (bytes).
    #[must_use]
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The client for a prepared request: its URL must be under a registered prefix.
    fn client_for(&self, p: &Prepared, insecure: bool) -> Result<&reqwest::Client, ProviderError> {
        let endpoint = self.endpoints.web_allowed(p.url.as_str()).map_err(|_| {
            let prefixes: Vec<&str> = self.endpoints.web().map(|w| w.prefix.as_str()).collect();
            ProviderError::NotRegistered(format!(
                "the web metric URL {} is not under a prefix registered with the controller \
                 (registered: {}); an administrator allows prefixes with --web-metric-allow URL-PREFIX",
                p.shown_url,
                if prefixes.is_empty() { "none".to_string() } else { prefixes.join(", ") }
            ))
        })?;
        self.clients
            .client(&endpoint.prefix, &endpoint.tls, insecure)
    }
}

/// Whether a field holds an `{{args.NAME}}` placeholder. A field without one is used as
/// written: nothing of the run's arguments can be in it, so there is nothing to escape or
/// redact.
fn has_placeholder(text: &str) -> bool {
    text.contains("{{")
}

/// A request ready to send, every field substituted.
struct Prepared {
    method: Method,
    url: Url,
    shown_url: String,
    headers: HeaderMap,
    body: Option<String>,
    timeout: Duration,
    json_path: String,
}

fn method_of(metric: &WebMetric) -> Result<Method, ProviderError> {
    match metric
        .method
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("GET") => Ok(Method::GET),
        Some("POST") => Ok(Method::POST),
        Some("PUT") => Ok(Method::PUT),
        Some(other) => Err(ProviderError::Config(format!(
            "web metric method {other:?} is not supported; use GET, POST or PUT"
        ))),
    }
}

fn url_of(metric: &WebMetric, args: &Args) -> Result<(Url, String), ProviderError> {
    let (text, shown) = if has_placeholder(&metric.url) {
        let text = args.substitute_url(&metric.url)?;
        let shown = args.redact(&text);
        (text, shown)
    } else {
        (metric.url.clone(), metric.url.clone())
    };
    let url = Url::parse(&text)
        .map_err(|e| ProviderError::Config(format!("web metric URL {shown} is invalid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::Config(format!(
            "web metric URL {shown} is not http or https"
        )));
    }
    Ok((url, shown))
}

fn headers_of(metric: &WebMetric, args: &Args) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::new();
    for h in &metric.headers {
        let name = HeaderName::from_bytes(h.key.as_bytes()).map_err(|_| {
            ProviderError::Config(format!("web metric header name {:?} is invalid", h.key))
        })?;
        let value = if has_placeholder(&h.value) {
            args.substitute_plain(&h.value)?
        } else {
            h.value.clone()
        };
        // The value is not shown: it may hold a secret.
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ProviderError::Config(format!(
                "web metric header {:?} has an invalid value",
                h.key
            ))
        })?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

/// The body with arguments substituted: as JSON string content when it parses as JSON (so a
/// value cannot change the document's shape), else as plain text. JSON bodies get a JSON
/// content type unless the metric sets one.
fn body_of(
    metric: &WebMetric,
    args: &Args,
    method: &Method,
    headers: &mut HeaderMap,
) -> Result<Option<String>, ProviderError> {
    let Some(body) = &metric.body else {
        return Ok(None);
    };
    if *method == Method::GET {
        return Err(ProviderError::Config(
            "a web metric body needs method POST or PUT".to_string(),
        ));
    }
    let json = serde_json::from_str::<Value>(body).ok();
    if json.is_some() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if !has_placeholder(body) {
        return Ok(Some(body.clone()));
    }
    match json {
        Some(v) => Ok(Some(args.substitute_json(&v)?.to_string())),
        None => Ok(Some(args.substitute_plain(body)?)),
    }
}

/// Argo writes Kubernetes-style paths (`{$.data.ok}`, `{.data.ok}`); the JSONPath crate takes
/// RFC 9535 paths rooted at `$`.
fn normalise_json_path(path: Option<&str>) -> String {
    let p = path.unwrap_or("{$}").trim();
    let p = p
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(p)
        .trim();
    if p.starts_with('$') {
        p.to_string()
    } else if p.is_empty() {
        "$".to_string()
    } else if p.starts_with('.') || p.starts_with('[') {
        format!("${p}")
    } else {
        format!("$.{p}")
    }
}

fn prepare(metric: &WebMetric, args: &Args) -> Result<Prepared, ProviderError> {
    let method = method_of(metric)?;
    let (url, shown_url) = url_of(metric, args)?;
    let mut headers = headers_of(metric, args)?;
    let body = body_of(metric, args, &method, &mut headers)?;
    let timeout = match metric.timeout_seconds {
        None => DEFAULT_TIMEOUT,
        Some(s) if s >= 1 => Duration::from_secs(s.unsigned_abs()),
        Some(s) => {
            return Err(ProviderError::Config(format!(
                "web metric timeoutSeconds must be at least 1, not {s}"
            )));
        }
    };
    Ok(Prepared {
        method,
        url,
        shown_url,
        headers,
        body,
        timeout,
        json_path: normalise_json_path(metric.json_path.as_deref()),
    })
}

/// The value at `path` in `doc`: one match is that value, several an array of them.
///
/// # Errors
/// `Config` for a path that does not parse, `Response` when nothing matches.
pub fn select(doc: &Value, path: &str) -> Result<Value, ProviderError> {
    use jsonpath_rust::JsonPath;
    let found = doc.query(path).map_err(|e| {
        ProviderError::Config(format!("web metric jsonPath {path:?} is invalid: {e}"))
    })?;
    match found.as_slice() {
        [] => Err(ProviderError::Response(format!(
            "web metric jsonPath {path:?} matched nothing in the response"
        ))),
        [one] => Ok((*one).clone()),
        many => Ok(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
    }
}

/// Reads at most `cap` bytes of the body, failing as soon as it grows past that.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    shown: &str,
) -> Result<Vec<u8>, ProviderError> {
    let too_big = || {
        ProviderError::Response(format!(
            "the response of {shown} is larger than {cap} bytes"
        ))
    };
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        ProviderError::Request(format!(
            "reading the response of {shown} failed: {}",
            e.without_url()
        ))
    })? {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl WebProvider {
    /// Sends the request and returns the response's JSON document.
    async fn fetch(&self, p: &Prepared, insecure: bool) -> Result<Value, ProviderError> {
        let shown = &p.shown_url;
        let mut request = self
            .client_for(p, insecure)?
            .request(p.method.clone(), p.url.clone())
            .headers(p.headers.clone());
        if let Some(body) = &p.body {
            request = request.body(body.clone());
        }
        // `without_url`: the URL may hold a substituted secret; the message shows it redacted.
        let response = request.send().await.map_err(|e| {
            ProviderError::Request(format!("{} {shown} failed: {}", p.method, e.without_url()))
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(ProviderError::Request(format!(
                "{} {shown} answered {status}: redirects are not followed, register and use \
                 the final URL",
                p.method
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Request(format!(
                "{} {shown} answered {status}",
                p.method
            )));
        }
        // A client that follows redirects would have left the allow-list already; refuse its
        // answer rather than judge by an endpoint nobody registered.
        if response.url() != &p.url {
            return Err(ProviderError::Request(format!(
                "{} {shown} was redirected; redirects are not followed",
                p.method
            )));
        }
        let body = read_capped(response, self.max_body, shown).await?;
        serde_json::from_slice(&body).map_err(|e| {
            ProviderError::Response(format!("the response of {shown} is not JSON: {e}"))
        })
    }
}

#[async_trait::async_trait]
impl MetricProvider for WebProvider {
    fn kind(&self) -> &'static str {
        "web"
    }

    async fn measure(&self, req: &MeasureRequest<'_>) -> Result<Outcome, ProviderError> {
        let metric = req.metric.provider.web.as_ref().ok_or_else(|| {
            ProviderError::Config(format!("metric {} has no web provider", req.metric.name))
        })?;
        let p = prepare(metric, req.args)?;
        // Checked before any request: an unregistered URL sends nothing.
        self.client_for(&p, metric.insecure)?;
        let doc = tokio::time::timeout(p.timeout, self.fetch(&p, metric.insecure))
            .await
            .map_err(|_| {
                ProviderError::Request(format!(
                    "{} {} timed out after {} s",
                    p.method,
                    p.shown_url,
                    p.timeout.as_secs()
                ))
            })??;
        let result = select(&doc, &p.json_path)?;
        let metadata = BTreeMap::from([
            ("method".to_string(), p.method.to_string()),
            ("url".to_string(), p.shown_url),
        ]);
        Ok(Outcome::Value { result, metadata })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubernetes_style_paths_are_read_as_rfc_9535() {
        assert_eq!(normalise_json_path(None), "$");
        assert_eq!(normalise_json_path(Some("{$.data.ok}")), "$.data.ok");
        assert_eq!(normalise_json_path(Some("{.data.ok}")), "$.data.ok");
        assert_eq!(normalise_json_path(Some("$.items[0]")), "$.items[0]");
        let doc = json!({"data": {"ok": true, "items": [1, 2]}});
        assert_eq!(select(&doc, "$.data.ok").unwrap(), json!(true));
        assert_eq!(select(&doc, "$.data.items[*]").unwrap(), json!([1, 2]));
        assert!(matches!(
            select(&doc, "$.data.missing"),
            Err(ProviderError::Response(_))
        ));
        assert!(matches!(
            select(&doc, "$.data[?("),
            Err(ProviderError::Config(_))
        ));
    }

    #[test]
    fn only_get_post_and_put_are_accepted_and_get_takes_no_body() {
        let mut m = WebMetric {
            url: "http://h/".into(),
            method: Some("DELETE".into()),
            ..WebMetric::default()
        };
        assert!(matches!(
            prepare(&m, &Args::default()),
            Err(ProviderError::Config(_))
        ));
        m.method = None;
        m.body = Some("{}".into());
        assert!(matches!(
            prepare(&m, &Args::default()),
            Err(ProviderError::Config(_))
        ));
        m.method = Some("put".into());
        assert_eq!(prepare(&m, &Args::default()).unwrap().method, Method::PUT);
    }
}
