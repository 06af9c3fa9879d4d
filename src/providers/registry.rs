//! The endpoints an administrator registered with the controller: Prometheus servers by name
//! (`--prometheus NAME=URL`, a default), URL prefixes web metrics may call
//! (`--web-metric-allow`), and per endpoint whether TLS verification may be skipped and which CA
//! bundle to trust. A metric names a registered endpoint; anything else fails the measurement
//! with a message listing what is registered, and no request is sent. Pure data: no I/O.

/// A malformed registry entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RegistryError(pub String);

/// The registered metric endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricEndpoints {}
