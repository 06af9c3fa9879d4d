//! The controller's registry of traffic router plugins: plugin name → base URL, set by whoever
//! installs the controller (`--traffic-plugin NAME=URL`, or `SLUICE_TRAFFIC_PLUGINS`). A
//! Rollout names a plugin only; the address always comes from here, so writing a Rollout can
//! never make the controller send requests to an address of the writer's choosing. It also
//! carries the controller-wide limits of every plugin call (`PluginLimits`), which a Rollout's
//! own settings cannot exceed. Pure data: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Controller-wide bounds of every plugin call, set by whoever installs the controller
/// (`--plugin-timeout-max`, `--plugin-retries-max`, `--plugin-body-max`). A Rollout's
/// `timeoutSeconds` and `retries` are capped by them, so no Rollout can hold a reconcile
/// longer than `call_deadline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    /// The longest timeout of one attempt.
    pub timeout_max: Duration,
    /// The most retries of one call.
    pub retries_max: u32,
    /// The largest answer body read, in bytes; a larger answer is refused.
    pub body_max: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            timeout_max: Duration::from_secs(10),
            retries_max: 2,
            body_max: 1024 * 1024,
        }
    }
}

/// One `NAME=URL` entry of `--traffic-plugin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginEntry {
    /// The name Rollouts use under `trafficRouting.plugins`.
    pub name: String,
    /// The plugin's base URL (`http://` or `https://`).
    pub address: String,
}

/// A malformed registry entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// Not of the form `NAME=URL`.
    #[error(
        "traffic plugin {entry:?}: expected NAME=URL, such as acme/router=http://acme-router.sluice-system.svc:8181"
    )]
    Malformed {
        /// The entry as given.
        entry: String,
    },
    /// The URL is not `http://` or `https://`.
    #[error("traffic plugin {name}: address {address:?} must be an http:// or https:// URL")]
    Scheme {
        /// The plugin's name.
        name: String,
        /// The address as given.
        address: String,
    },
    /// The same name registered twice with different addresses.
    #[error("traffic plugin {name} is registered twice ({first} and {second})")]
    Duplicate {
        /// The plugin's name.
        name: String,
        /// The first address.
        first: String,
        /// The second address.
        second: String,
    },
}

impl RegistryError {
    /// A static category, used as metric label and Event reason.
    pub fn category(&self) -> &'static str {
        "InvalidTrafficPluginRegistry"
    }
}

impl FromStr for PluginEntry {
    type Err = RegistryError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let malformed = || RegistryError::Malformed {
            entry: entry.to_owned(),
        };
        let (name, address) = entry.split_once('=').ok_or_else(malformed)?;
        let (name, address) = (name.trim(), address.trim());
        if name.is_empty() || address.is_empty() {
            return Err(malformed());
        }
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(RegistryError::Scheme {
                name: name.to_owned(),
                address: address.to_owned(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            address: address.trim_end_matches('/').to_owned(),
        })
    }
}

/// The plugins this controller may call, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, String>,
    limits: PluginLimits,
}

impl PluginRegistry {
    /// A registry of `entries`.
    ///
    /// # Errors
    /// `Duplicate` when one name is given two different addresses.
    pub fn new(entries: impl IntoIterator<Item = PluginEntry>) -> Result<Self, RegistryError> {
        let mut plugins: BTreeMap<String, String> = BTreeMap::new();
        for entry in entries {
            if let Some(first) = plugins.get(&entry.name)
                && *first != entry.address
            {
                return Err(RegistryError::Duplicate {
                    name: entry.name,
                    first: first.clone(),
                    second: entry.address,
                });
            }
            plugins.insert(entry.name, entry.address);
        }
        Ok(Self {
            plugins,
            limits: PluginLimits::default(),
        })
    }

    /// The same registry with `limits` on every call.
    #[must_use]
    pub fn with_limits(mut self, limits: PluginLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The bounds of every plugin call.
    pub fn limits(&self) -> PluginLimits {
        self.limits
    }

    /// Parses `NAME=URL` entries (the flag's values).
    ///
    /// # Errors
    /// The first malformed or duplicate entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, RegistryError> {
        let entries = entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<Vec<PluginEntry>, _>>()?;
        Self::new(entries)
    }

    /// The base URL of the plugin `name`, when registered.
    pub fn address(&self, name: &str) -> Option<&str> {
        self.plugins.get(name).map(String::as_str)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// Whether no plugin is registered.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

impl fmt::Display for PluginRegistry {
    /// The registered names, comma-separated, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.names().collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_look_up_by_name() {
        let registry = PluginRegistry::parse(&[
            "acme/router=http://acme.sluice-system.svc:8181/",
            " example/gateway = https://gw.example:443 ",
        ])
        .unwrap();
        assert_eq!(
            registry.address("acme/router"),
            Some("http://acme.sluice-system.svc:8181")
        );
        assert_eq!(
            registry.address("example/gateway"),
            Some("https://gw.example:443")
        );
        assert_eq!(registry.address("other"), None);
        assert_eq!(registry.to_string(), "acme/router, example/gateway");
        assert_eq!(PluginRegistry::default().to_string(), "none");
    }

    #[test]
    fn malformed_entries_say_what_is_expected() {
        for bad in ["acme", "=http://x", "acme=", ""] {
            let err = PluginRegistry::parse(&[bad]).unwrap_err();
            assert!(
                matches!(err, RegistryError::Malformed { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("NAME=URL"), "{err}");
        }
        let err = PluginRegistry::parse(&["acme=unix:///tmp/s"]).unwrap_err();
        assert!(matches!(err, RegistryError::Scheme { .. }), "{err}");
        let err = PluginRegistry::parse(&["a=http://x", "a=http://y"]).unwrap_err();
        assert!(matches!(err, RegistryError::Duplicate { .. }), "{err}");
        assert_eq!(err.category(), "InvalidTrafficPluginRegistry");
        // The same entry twice (flag and environment both set) is harmless.
        assert!(PluginRegistry::parse(&["a=http://x", "a=http://x/"]).is_ok());
    }
}
