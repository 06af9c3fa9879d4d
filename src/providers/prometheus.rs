//! The `prometheus` metric provider: one instant query at `now` (or a range query over a window
//! before `now`) against a Prometheus server an administrator registered, with the metric's
//! headers, timeout and TLS setting. Sends HTTP requests; touches nothing else.
//!
//! Requests are built by `prometheus-http-query` over the controller's reqwest client (one per
//! TLS setting, `registry::EndpointClients`), so TLS is our rustls with the registered CA
//! bundle. The crate has no per-request client timeout (its `timeout` is Prometheus's own
//! evaluation limit) and drops the body of a non-JSON error answer, so this provider sends with
//! `get_raw`/`post_raw` under a tokio timeout and reads the answer itself, using the crate's
//! result types.
//!
//! What `result` holds (see `convert`): a scalar is a number; a vector is an array with one
//! number per series (`[]` when nothing matched); a range query's matrix is every sample of
//! every series, flattened (series in Prometheus's order, each in time order), which is what
//! the canary judge wants as a sample. NaN and ±Inf, which JSON cannot hold, are the strings
//! `"NaN"`, `"+Inf"` and `"-Inf"` (Prometheus's own spelling in its API).

mod convert;

use crate::crd::PrometheusMetric;
use crate::providers::registry::{EndpointClients, MetricEndpoints, PrometheusEndpoint};
use crate::providers::{Args, MeasureRequest, MetricProvider, Outcome, ProviderError};
use convert::{Window, result_value};
use prometheus_http_query::response::Data;
use reqwest::header::{HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The timeout when a metric sets none, as in Argo Rollouts.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a non-Prometheus error answer (a proxy's page) a message quotes.
const QUOTED_BODY_CHARS: usize = 300;

/// Takes measurements from registered Prometheus servers.
pub struct PrometheusProvider {
    endpoints: Arc<MetricEndpoints>,
    clients: EndpointClients,
}

/// A query ready to send.
struct Prepared<'a> {
    endpoint: &'a PrometheusEndpoint,
    client: prometheus_http_query::Client,
    query: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    window: Option<Window>,
    timeout: Duration,
}

/// Prometheus's answer envelope (`status`, `data` or `errorType`/`error`).
#[derive(serde::Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl PrometheusProvider {
    /// A provider querying the servers in `endpoints` with `clients`.
    pub fn new(endpoints: Arc<MetricEndpoints>, clients: EndpointClients) -> Self {
        Self { endpoints, clients }
    }

    /// Everything checked and substituted before a request is sent: an unregistered server, a
    /// refused argument or an unusable field sends nothing.
    fn prepare<'a>(
        &'a self,
        spec: &PrometheusMetric,
        args: &Args,
        now: jiff::Timestamp,
    ) -> Result<Prepared<'a>, ProviderError> {
        // `server` and `address` may take arguments too; the registry still decides.
        let target = PrometheusMetric {
            server: spec
                .server
                .as_deref()
                .map(|s| args.substitute_plain(s))
                .transpose()?,
            address: spec
                .address
                .as_deref()
                .map(|a| args.substitute_plain(a))
                .transpose()?,
            ..PrometheusMetric::default()
        };
        let endpoint = self.endpoints.prometheus_for(&target)?;
        let http = self
            .clients
            .client(&endpoint.name, &endpoint.tls, spec.insecure)?;
        let client =
            prometheus_http_query::Client::from(http.clone(), &endpoint.url).map_err(|error| {
                ProviderError::Config(format!(
                    "prometheus {}: URL {}: {error}",
                    endpoint.name, endpoint.url
                ))
            })?;
        let window = spec
            .range_query
            .as_ref()
            .map(|range| Window::before(now, range, args))
            .transpose()?;
        let timeout = match spec.timeout {
            Some(seconds) if seconds >= 1 => Duration::from_secs(seconds.unsigned_abs()),
            Some(seconds) => {
                return Err(ProviderError::Config(format!(
                    "timeout {seconds}: a prometheus metric's timeout is at least 1 second"
                )));
            }
            None => DEFAULT_TIMEOUT,
        };
        Ok(Prepared {
            endpoint,
            client,
            query: args.substitute_promql(&spec.query)?,
            headers: headers(spec, args)?,
            window,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl MetricProvider for PrometheusProvider {
    fn kind(&self) -> &'static str {
        "prometheus"
    }

    async fn measure(&self, req: &MeasureRequest<'_>) -> Result<Outcome, ProviderError> {
        let spec = req.metric.provider.prometheus.as_ref().ok_or_else(|| {
            ProviderError::Config(format!(
                "metric {} has no prometheus provider",
                req.metric.name
            ))
        })?;
        let prepared = self.prepare(spec, req.args, req.now)?;
        let data = send(&prepared, req.now, req.args).await?;
        let mut metadata = BTreeMap::from([
            (
                "resolvedQuery".to_string(),
                req.args.redact(&prepared.query),
            ),
            ("server".to_string(), prepared.endpoint.name.clone()),
        ]);
        if let Some(window) = &prepared.window {
            metadata.extend(window.metadata());
        }
        Ok(Outcome::Value {
            result: result_value(&data),
            metadata,
        })
    }
}

/// The metric's headers with arguments substituted; a value holding a secret is marked
/// sensitive so it is never logged by the HTTP stack.
fn headers(
    spec: &PrometheusMetric,
    args: &Args,
) -> Result<Vec<(HeaderName, HeaderValue)>, ProviderError> {
    spec.headers
        .iter()
        .map(|header| {
            let name = HeaderName::from_bytes(header.key.trim().as_bytes()).map_err(|_| {
                ProviderError::Config(format!("header name {:?} is not a valid HTTP header name", header.key))
            })?;
            let text = args.substitute_plain(&header.value)?;
            let mut value = HeaderValue::from_str(&text).map_err(|_| {
                ProviderError::Config(format!(
                    "header {name}: the value is not a valid HTTP header value (visible ASCII expected)"
                ))
            })?;
            value.set_sensitive(args.redact(&text) != text);
            Ok((name, value))
        })
        .collect()
}

/// Sends the query by POST (the query stays out of URLs and access logs) and reads the answer,
/// all within the metric's timeout.
async fn send(
    prepared: &Prepared<'_>,
    now: jiff::Timestamp,
    args: &Args,
) -> Result<Data, ProviderError> {
    let name = &prepared.endpoint.name;
    let exchange = async {
        let response = match &prepared.window {
            None => {
                // `at` takes whole seconds; evaluating up to a second before now would miss
                // the latest scrape, so the time goes as a parameter with milliseconds.
                let at = format!("{:.3}", now.as_millisecond() as f64 / 1000.0);
                let builder = prepared.client.query(&prepared.query).query("time", at);
                let builder = prepared.headers.iter().fold(builder, |b, (name, value)| {
                    b.header(name.clone(), value.clone())
                });
                // Prometheus stops evaluating at the same limit.
                let builder = builder.timeout(millis(prepared.timeout));
                builder.post_raw().await
            }
            Some(window) => {
                // The crate takes whole seconds here; a window's edges may move by less than a
                // second, which a range query's step makes immaterial.
                let builder = prepared.client.query_range(
                    &prepared.query,
                    window.start.as_second(),
                    window.end.as_second(),
                    window.step.as_secs_f64(),
                );
                let builder = prepared.headers.iter().fold(builder, |b, (name, value)| {
                    b.header(name.clone(), value.clone())
                });
                builder.timeout(millis(prepared.timeout)).post_raw().await
            }
        }
        .map_err(|error| {
            ProviderError::Request(args.redact(&format!("prometheus {name}: {}", describe(&error))))
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|error| {
            ProviderError::Request(format!(
                "prometheus {name}: reading the answer: {}",
                sources(&error)
            ))
        })?;
        Ok::<_, ProviderError>((status, body))
    };
    let (status, body) = tokio::time::timeout(prepared.timeout, exchange)
        .await
        .map_err(|_| {
            ProviderError::Request(format!(
                "prometheus {name} did not answer within {}s (the metric's timeout)",
                prepared.timeout.as_secs()
            ))
        })??;
    read_answer(name, status, &body, args)
}

/// The result in Prometheus's answer, or an error with Prometheus's own text.
fn read_answer(
    name: &str,
    status: reqwest::StatusCode,
    body: &str,
    args: &Args,
) -> Result<Data, ProviderError> {
    match serde_json::from_str::<Envelope>(body) {
        Ok(Envelope {
            status: s,
            data: Some(data),
            ..
        }) if s == "success" => Ok(data),
        Ok(envelope) => Err(ProviderError::Request(args.redact(&format!(
            "prometheus {name} answered HTTP {status}: {}: {}",
            envelope.error_type.as_deref().unwrap_or("error"),
            envelope.error.as_deref().unwrap_or("no error text")
        )))),
        Err(_) if !status.is_success() => {
            let quoted: String = body.trim().chars().take(QUOTED_BODY_CHARS).collect();
            Err(ProviderError::Request(args.redact(&format!(
                "prometheus {name} answered HTTP {status}: {quoted}"
            ))))
        }
        Err(error) => Err(ProviderError::Response(format!(
            "prometheus {name}: the answer is not a query result this provider reads \
             (a string or native histogram result?): {error}"
        ))),
    }
}

/// A send error without the request's URL (which would be noise, and may hold arguments).
fn describe(error: &prometheus_http_query::Error) -> String {
    use std::error::Error as _;
    match error
        .source()
        .and_then(|s| s.downcast_ref::<reqwest::Error>())
    {
        Some(reqwest) if reqwest.is_connect() => format!("cannot connect: {}", sources(reqwest)),
        Some(reqwest) => format!("{error}: {}", sources(reqwest)),
        None => error.to_string(),
    }
}

/// The causes of a reqwest error, innermost last, leaving out reqwest's own message (which
/// names the URL).
fn sources(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut causes = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    if causes.is_empty() {
        return error
            .status()
            .map_or_else(|| "request failed".into(), |s| format!("HTTP {s}"));
    }
    causes.join(": ")
}

fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn secret_args() -> Args {
        let mut args = Args::default();
        args.insert("token", Some("hunter2".into()), true);
        args
    }

    #[test]
    fn error_answers_carry_the_server_text_without_secrets() {
        let args = secret_args();
        let table = [
            (
                StatusCode::BAD_REQUEST,
                r#"{"status":"error","errorType":"bad_data","error":"parse error near \"hunter2\""}"#,
                "prometheus main answered HTTP 400 Bad Request: bad_data: parse error near \"<redacted>\"",
            ),
            (
                StatusCode::BAD_GATEWAY,
                "<html>upstream hunter2 unreachable</html>\n",
                "prometheus main answered HTTP 502 Bad Gateway: <html>upstream <redacted> unreachable</html>",
            ),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"error","errorType":"unavailable","error":"too many queries"}"#,
                "prometheus main answered HTTP 503 Service Unavailable: unavailable: too many queries",
            ),
        ];
        for (status, body, want) in table {
            let err = read_answer("main", status, body, &args).unwrap_err();
            assert!(matches!(err, ProviderError::Request(_)), "{err}");
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn a_result_this_provider_cannot_read_is_a_response_error() {
        let body = r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        let err = read_answer("main", StatusCode::OK, body, &Args::default()).unwrap_err();
        assert!(matches!(err, ProviderError::Response(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("prometheus main: the answer is not a query result"),
            "{err}"
        );
    }
}
