//! The endpoints an administrator registered with the controller: Prometheus servers by name
//! (`--prometheus NAME=URL`, a default), URL prefixes web metrics may call
//! (`--web-metric-allow`), and per endpoint whether TLS verification may be skipped and which CA
//! bundle to trust. A metric names a registered endpoint; anything else fails the measurement
//! with a message listing what is registered, and no request is sent. Pure data: no I/O (the
//! HTTP clients, which read the CA files, are in `clients`).
//!
//! The controller flags (each repeatable where it says so):
//!
//! - `--prometheus NAME=URL` (repeatable): a Prometheus server metrics may query, by `server:
//!   NAME` or by an `address` equal to `URL` (trailing slashes ignored). `URL` is `http://` or
//!   `https://`, may have a path (`https://thanos.example/prometheus`), no query.
//! - `--prometheus-default NAME`: the server a metric with neither `server` nor `address` uses;
//!   the first `--prometheus` when unset.
//! - `--web-metric-allow URL-PREFIX` (repeatable): web metrics may call URLs under this prefix.
//!   Scheme, host and port must be equal; the path must start with the prefix's path at a
//!   segment boundary (`http://a.b/x` allows `http://a.b/x` and `http://a.b/x/y`, not
//!   `http://a.b/xy`; a prefix ending in `/` allows exactly what is under it). No query, no
//!   fragment, no `=` in a prefix.
//! - `--metric-insecure-tls ENDPOINT` (repeatable): metrics of this endpoint (a Prometheus
//!   `NAME` or a web `URL-PREFIX` as registered) may set `insecure: true`; without it such a
//!   measurement errors.
//! - `--metric-ca-bundle ENDPOINT=PATH` (repeatable): trust the PEM certificates in `PATH`
//!   (besides the built-in roots) for this endpoint. The first `=` separates.

mod clients;

pub use clients::EndpointClients;

use crate::crd::PrometheusMetric;
use crate::providers::ProviderError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use url::Url;

/// A malformed registry entry (a flag's value), saying what is expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RegistryError(pub String);

impl RegistryError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        "InvalidMetricEndpointRegistry"
    }
}

/// One `NAME=URL` value of `--prometheus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusEntry {
    /// The name metrics use as `server`.
    pub name: String,
    /// The server's base URL, trailing slashes removed.
    pub url: String,
}

impl FromStr for PrometheusEntry {
    type Err = RegistryError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let malformed = || {
            RegistryError(format!(
                "prometheus {entry:?}: expected NAME=URL, such as main=http://prometheus.monitoring.svc:9090"
            ))
        };
        let (name, url) = entry.split_once('=').ok_or_else(malformed)?;
        let (name, url) = (name.trim(), url.trim());
        if name.is_empty() || url.is_empty() {
            return Err(malformed());
        }
        let parsed = parse_http_url(url)
            .map_err(|why| RegistryError(format!("prometheus {name}: address {url:?} {why}")))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(RegistryError(format!(
                "prometheus {name}: address {url:?} must not have a query or fragment"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
        })
    }
}

/// One `ENDPOINT=PATH` value of `--metric-ca-bundle`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaBundleEntry {
    /// A Prometheus name or a web URL prefix, as registered.
    pub endpoint: String,
    /// A PEM file of certificates to trust.
    pub path: PathBuf,
}

impl FromStr for CaBundleEntry {
    type Err = RegistryError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        // A URL prefix has `://`; its `=` cannot come before that, so split after it.
        let search_from = entry.find("://").map_or(0, |at| at + 3);
        let (endpoint, path) = entry[search_from..]
            .find('=')
            .map(|at| entry.split_at(search_from + at))
            .map(|(endpoint, path)| (endpoint.trim(), path[1..].trim()))
            .filter(|(endpoint, path)| !endpoint.is_empty() && !path.is_empty())
            .ok_or_else(|| {
                RegistryError(format!(
                    "metric CA bundle {entry:?}: expected ENDPOINT=PATH, such as main=/etc/sluice/ca/prometheus.pem"
                ))
            })?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            path: PathBuf::from(path),
        })
    }
}

/// Everything the endpoint flags say, as parsed by the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointFlags {
    /// `--prometheus NAME=URL`, in order.
    pub prometheus: Vec<PrometheusEntry>,
    /// `--prometheus-default NAME`.
    pub prometheus_default: Option<String>,
    /// `--web-metric-allow URL-PREFIX`.
    pub web_allow: Vec<String>,
    /// `--metric-insecure-tls ENDPOINT`.
    pub insecure: Vec<String>,
    /// `--metric-ca-bundle ENDPOINT=PATH`.
    pub ca_bundles: Vec<CaBundleEntry>,
}

/// How to reach one endpoint over TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointTls {
    /// Whether metrics may skip certificate verification (`insecure: true`).
    pub insecure_allowed: bool,
    /// Certificates to trust besides the built-in roots.
    pub ca_bundle: Option<PathBuf>,
}

/// A registered Prometheus server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusEndpoint {
    /// Its name.
    pub name: String,
    /// Its base URL, without trailing slashes.
    pub url: String,
    /// TLS settings.
    pub tls: EndpointTls,
}

/// A registered URL prefix web metrics may call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebEndpoint {
    /// The prefix as registered.
    pub prefix: String,
    /// TLS settings.
    pub tls: EndpointTls,
    parsed: Url,
}

/// The registered metric endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricEndpoints {
    prometheus: BTreeMap<String, PrometheusEndpoint>,
    default: Option<String>,
    web: Vec<WebEndpoint>,
}

impl MetricEndpoints {
    /// The endpoints the flags register.
    ///
    /// # Errors
    /// A name registered twice with different URLs, a default or an insecure/CA entry naming
    /// nothing registered, a malformed web prefix.
    pub fn new(flags: EndpointFlags) -> Result<Self, RegistryError> {
        let mut endpoints = Self::default();
        for entry in flags.prometheus {
            endpoints.add_prometheus(entry)?;
        }
        // The first `--prometheus` is the default unless one is named.
        if let Some(name) = flags.prometheus_default {
            if !endpoints.prometheus.contains_key(&name) {
                return Err(RegistryError(format!(
                    "prometheus default {name:?} is not registered; registered: {}",
                    endpoints.prometheus_list()
                )));
            }
            endpoints.default = Some(name);
        }
        for prefix in flags.web_allow {
            endpoints.add_web(&prefix)?;
        }
        for endpoint in flags.insecure {
            endpoints
                .tls_mut(&endpoint, "metric insecure TLS")?
                .insecure_allowed = true;
        }
        for entry in flags.ca_bundles {
            endpoints
                .tls_mut(&entry.endpoint, "metric CA bundle")?
                .ca_bundle = Some(entry.path);
        }
        Ok(endpoints)
    }

    /// The Prometheus server a metric queries: by `server` name, by an `address` equal to a
    /// registered URL (trailing slashes ignored), or the default when both are unset.
    ///
    /// # Errors
    /// `NotRegistered` listing the registered servers, when it names none of them.
    pub fn prometheus_for(
        &self,
        metric: &PrometheusMetric,
    ) -> Result<&PrometheusEndpoint, ProviderError> {
        let found = match (&metric.server, &metric.address) {
            (Some(_), Some(_)) => {
                return Err(ProviderError::Config(
                    "a prometheus metric names a registered server or gives its address, not both"
                        .into(),
                ));
            }
            (Some(name), None) => self.prometheus.get(name),
            (None, Some(address)) => self
                .prometheus
                .values()
                .find(|endpoint| same_base_url(&endpoint.url, address)),
            (None, None) => self
                .default
                .as_ref()
                .and_then(|name| self.prometheus.get(name)),
        };
        found.ok_or_else(|| ProviderError::NotRegistered(self.not_registered(metric)))
    }

    /// The registered prefix `url` is under (the longest, when several are).
    ///
    /// # Errors
    /// `NotRegistered` listing the registered prefixes, when `url` is under none of them or is
    /// not a URL.
    pub fn web_allowed(&self, url: &str) -> Result<&WebEndpoint, ProviderError> {
        let parsed = Url::parse(url).map_err(|error| {
            ProviderError::Config(format!("web metric URL {url:?} is not a URL: {error}"))
        })?;
        self.web
            .iter()
            .filter(|endpoint| under_prefix(&endpoint.parsed, &parsed))
            .max_by_key(|endpoint| endpoint.parsed.path().len())
            .ok_or_else(|| {
                let prefixes: Vec<&str> = self.web.iter().map(|w| w.prefix.as_str()).collect();
                let registered = if prefixes.is_empty() {
                    "none".to_string()
                } else {
                    prefixes.join(", ")
                };
                ProviderError::NotRegistered(format!(
                    "web metric URL {url:?} is not under a prefix registered with the controller; \
                     registered: {registered}; an administrator allows prefixes with --web-metric-allow URL-PREFIX"
                ))
            })
    }

    /// The registered Prometheus servers, by name.
    pub fn prometheus(&self) -> impl Iterator<Item = &PrometheusEndpoint> {
        self.prometheus.values()
    }

    /// The registered web prefixes, in the order given.
    pub fn web(&self) -> impl Iterator<Item = &WebEndpoint> {
        self.web.iter()
    }

    /// The default Prometheus server's name.
    pub fn default_prometheus(&self) -> Option<&str> {
        self.default.as_deref()
    }

    fn add_prometheus(&mut self, entry: PrometheusEntry) -> Result<(), RegistryError> {
        if let Some(first) = self.prometheus.get(&entry.name) {
            if first.url == entry.url {
                return Ok(());
            }
            return Err(RegistryError(format!(
                "prometheus {} is registered twice ({} and {})",
                entry.name, first.url, entry.url
            )));
        }
        if self.prometheus.is_empty() {
            self.default = Some(entry.name.clone());
        }
        self.prometheus.insert(
            entry.name.clone(),
            PrometheusEndpoint {
                name: entry.name,
                url: entry.url,
                tls: EndpointTls::default(),
            },
        );
        Ok(())
    }

    fn add_web(&mut self, prefix: &str) -> Result<(), RegistryError> {
        let prefix = prefix.trim();
        let parsed = parse_http_url(prefix)
            .map_err(|why| RegistryError(format!("web metric prefix {prefix:?} {why}")))?;
        if parsed.query().is_some() || parsed.fragment().is_some() || prefix.contains('=') {
            return Err(RegistryError(format!(
                "web metric prefix {prefix:?} must not have a query, a fragment or an `=`"
            )));
        }
        if !self.web.iter().any(|w| w.parsed == parsed) {
            self.web.push(WebEndpoint {
                prefix: prefix.to_owned(),
                tls: EndpointTls::default(),
                parsed,
            });
        }
        Ok(())
    }

    /// The TLS settings of the endpoint an insecure or CA entry names.
    fn tls_mut(&mut self, endpoint: &str, flag: &str) -> Result<&mut EndpointTls, RegistryError> {
        let endpoint = endpoint.trim();
        if let Some(prometheus) = self.prometheus.get_mut(endpoint) {
            return Ok(&mut prometheus.tls);
        }
        let parsed = Url::parse(endpoint).ok();
        if let Some(web) = self
            .web
            .iter_mut()
            .find(|w| Some(&w.parsed) == parsed.as_ref())
        {
            return Ok(&mut web.tls);
        }
        Err(RegistryError(format!(
            "{flag} {endpoint:?}: no Prometheus server of that name (--prometheus) and no web prefix \
             (--web-metric-allow) equal to it"
        )))
    }

    fn not_registered(&self, metric: &PrometheusMetric) -> String {
        let what = match (&metric.server, &metric.address) {
            (Some(name), _) => {
                format!("Prometheus server {name:?} is not registered with the controller")
            }
            (None, Some(address)) => format!(
                "Prometheus address {address:?} is not the URL of a server registered with the controller"
            ),
            (None, None) => {
                "the metric names no Prometheus server and no default is registered".into()
            }
        };
        format!(
            "{what}; registered: {}; an administrator registers servers with --prometheus NAME=URL",
            self.prometheus_list()
        )
    }

    /// `name (url), ...` or `none`.
    fn prometheus_list(&self) -> String {
        if self.prometheus.is_empty() {
            return "none".into();
        }
        let entries: Vec<String> = self
            .prometheus
            .values()
            .map(|p| format!("{} ({})", p.name, p.url))
            .collect();
        entries.join(", ")
    }
}

impl WebEndpoint {
    /// Whether `url` is under this prefix (scheme, host and port equal, the path at a segment
    /// boundary).
    pub fn allows(&self, url: &Url) -> bool {
        under_prefix(&self.parsed, url)
    }
}

impl fmt::Display for MetricEndpoints {
    /// The registered servers and prefixes, for the controller's start-up log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let web: Vec<&str> = self.web.iter().map(|w| w.prefix.as_str()).collect();
        write!(
            f,
            "prometheus: {} (default {}); web: {}",
            self.prometheus_list(),
            self.default.as_deref().unwrap_or("none"),
            if web.is_empty() {
                "none".into()
            } else {
                web.join(", ")
            }
        )
    }
}

/// `text` parsed as an `http://` or `https://` URL with a host and no user info.
fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("is not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials; give them as headers".into());
    }
    Ok(url)
}

/// Whether two base URLs name the same server path, compared parsed (scheme, host, port, path
/// without trailing slashes), so `http://Prom:80/` equals `http://prom`.
fn same_base_url(registered: &str, given: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(given)) else {
        return false;
    };
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        && b.query().is_none()
        && b.fragment().is_none()
        && b.username().is_empty()
        && b.password().is_none()
}

/// Whether `url` is under `prefix`. Both are parsed, so dot segments are already resolved.
fn under_prefix(prefix: &Url, url: &Url) -> bool {
    if prefix.scheme() != url.scheme()
        || prefix.host() != url.host()
        || prefix.port_or_known_default() != url.port_or_known_default()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return false;
    }
    let (base, path) = (prefix.path(), url.path());
    match path.strip_prefix(base) {
        None => false,
        Some(rest) => base.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

#[cfg(test)]
mod tests;
