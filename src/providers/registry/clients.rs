//! The HTTP clients metric providers send requests with, one per TLS setting of the registered
//! endpoints: the controller's shared client, one per CA bundle (the file is read once, when the
//! controller starts), and one that skips verification for endpoints allowed to. Reads files;
//! sends nothing.

use super::{EndpointTls, MetricEndpoints, RegistryError};
use crate::providers::ProviderError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The clients for every TLS setting the registry holds.
#[derive(Clone, Debug)]
pub struct EndpointClients {
    shared: reqwest::Client,
    by_ca: BTreeMap<PathBuf, reqwest::Client>,
    insecure: Option<reqwest::Client>,
}

impl EndpointClients {
    /// Clients for `endpoints`; endpoints without TLS settings use `shared` (the controller's
    /// one client, which must not follow redirects: a registered endpoint must not be able to
    /// send the controller elsewhere). The clients built here follow none.
    ///
    /// # Errors
    /// A CA bundle that cannot be read or holds no PEM certificate, or a client that cannot be
    /// built.
    pub fn new(
        shared: reqwest::Client,
        endpoints: &MetricEndpoints,
    ) -> Result<Self, RegistryError> {
        let settings: Vec<&EndpointTls> = endpoints
            .prometheus()
            .map(|p| &p.tls)
            .chain(endpoints.web().map(|w| &w.tls))
            .collect();
        let mut by_ca = BTreeMap::new();
        for path in settings.iter().filter_map(|tls| tls.ca_bundle.as_ref()) {
            if !by_ca.contains_key(path) {
                by_ca.insert(path.clone(), client_trusting(path)?);
            }
        }
        let insecure = if settings.iter().any(|tls| tls.insecure_allowed) {
            let client = reqwest::Client::builder()
                .use_rustls_tls()
                .redirect(reqwest::redirect::Policy::none())
                .danger_accept_invalid_certs(true)
                .build()
                .map_err(|error| RegistryError(format!("building an HTTP client: {error}")))?;
            Some(client)
        } else {
            None
        };
        Ok(Self {
            shared,
            by_ca,
            insecure,
        })
    }

    /// Only the shared client: for a registry without TLS settings (tests, the playground).
    pub fn shared_only(shared: reqwest::Client) -> Self {
        Self {
            shared,
            by_ca: BTreeMap::new(),
            insecure: None,
        }
    }

    /// The client for an endpoint (`endpoint` names it in messages), skipping verification when
    /// the metric asks for `insecure` and the administrator allowed it.
    ///
    /// # Errors
    /// `Config` when the metric asks for `insecure` but the endpoint does not allow it.
    pub fn client(
        &self,
        endpoint: &str,
        tls: &EndpointTls,
        insecure: bool,
    ) -> Result<&reqwest::Client, ProviderError> {
        if insecure {
            return match (&self.insecure, tls.insecure_allowed) {
                (Some(client), true) => Ok(client),
                _ => Err(ProviderError::Config(format!(
                    "the metric sets insecure: true, but the administrator has not allowed skipping TLS \
                     verification for {endpoint} (--metric-insecure-tls {endpoint}); remove insecure or \
                     register the server's CA with --metric-ca-bundle"
                ))),
            };
        }
        Ok(tls
            .ca_bundle
            .as_ref()
            .and_then(|path| self.by_ca.get(path))
            .unwrap_or(&self.shared))
    }
}

/// A client trusting the built-in roots and the certificates in the PEM file at `path`.
fn client_trusting(path: &Path) -> Result<reqwest::Client, RegistryError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|error| RegistryError(format!("metric CA bundle {shown}: {error}")))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| RegistryError(format!("metric CA bundle {shown}: {error}")))?;
    if certificates.is_empty() {
        return Err(RegistryError(format!(
            "metric CA bundle {shown}: no PEM certificate in the file"
        )));
    }
    certificates
        .into_iter()
        .fold(
            reqwest::Client::builder()
                .use_rustls_tls()
                .redirect(reqwest::redirect::Policy::none()),
            |builder, certificate| builder.add_root_certificate(certificate),
        )
        .build()
        .map_err(|error| RegistryError(format!("metric CA bundle {shown}: {error}")))
}
