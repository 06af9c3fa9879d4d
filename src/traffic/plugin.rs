//! Out-of-process routers over HTTP and JSON (the protocol is `docs/plugins.md`): every call
//! POSTs the full Rollout, the plugin's configuration and the call's arguments to
//! `<address>/v1/<call>`, with a timeout and bounded retries of transient failures. The address
//! comes from the controller's `PluginRegistry`, never from the Rollout. Failures become
//! `TrafficError::Plugin`.

use super::{RouteContext, TrafficError, TrafficRouter};
use crate::crd::{SetHeaderRoute, SetMirrorRoute, TrafficWeights};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// The protocol version, the first segment of every call's path.
pub const PROTOCOL_VERSION: &str = "v1";
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const DEFAULT_RETRIES: u32 = 2;
const MAX_RETRIES: u32 = 5;
const MAX_TIMEOUT_SECONDS: u64 = 60;
const BACKOFF_BASE: Duration = Duration::from_millis(200);

/// A plugin's entry in `trafficRouting.plugins`. It has no address: the controller's registry
/// (`--traffic-plugin NAME=URL`) says where the plugin named by the entry's key lives.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginConfig {
    /// Per-call timeout in seconds (default 10, at most 60).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Retries of a call that timed out, could not connect, or got 429 or 5xx (default 2,
    /// at most 5).
    #[serde(default)]
    pub retries: Option<u32>,
    /// The plugin's own configuration, passed through unchanged.
    #[serde(default)]
    pub config: Value,
}

/// What a plugin answers to `verifyWeight`.
#[derive(Debug, Deserialize)]
struct VerifyResponse {
    #[serde(default)]
    verified: Option<bool>,
}

/// What a plugin answers on failure.
#[derive(Debug, Deserialize)]
struct ErrorResponse {
    error: String,
}

/// A router served by another process.
pub struct PluginRouter {
    name: String,
    address: String,
    config: PluginConfig,
    http: reqwest::Client,
}

impl PluginRouter {
    /// A router for the plugin `name`, served at `address` (from the controller's registry),
    /// with the Rollout's `trafficRouting.plugins` entry.
    ///
    /// # Errors
    /// `Plugin` when the entry is not a valid plugin configuration (an `address` in it
    /// included: addresses belong to the controller's registry).
    pub fn new(
        name: &str,
        address: &str,
        config: &Value,
        http: reqwest::Client,
    ) -> Result<Self, TrafficError> {
        let invalid = |message: String| TrafficError::Plugin {
            plugin: name.to_owned(),
            message,
        };
        if config.get("address").is_some() {
            return Err(invalid(
                "trafficRouting.plugins must not set `address`: the controller's registry \
                 (--traffic-plugin NAME=URL) says where each plugin lives; remove it"
                    .to_owned(),
            ));
        }
        let config: PluginConfig = if config.is_null() {
            PluginConfig::default()
        } else {
            serde_json::from_value(config.clone()).map_err(|e| {
                invalid(format!(
                    "invalid configuration in trafficRouting.plugins: {e}"
                ))
            })?
        };
        Ok(Self {
            name: name.to_owned(),
            address: address.trim_end_matches('/').to_owned(),
            config,
            http,
        })
    }

    fn error(&self, message: String) -> TrafficError {
        TrafficError::Plugin {
            plugin: self.name.clone(),
            message,
        }
    }

    /// POSTs one call, retrying transient failures with exponential backoff.
    async fn call(
        &self,
        ctx: &RouteContext,
        method: &str,
        args: Value,
    ) -> Result<Value, TrafficError> {
        let url = format!("{}/{PROTOCOL_VERSION}/{method}", self.address);
        let mut body = json!({
            "rollout": &*ctx.rollout,
            "config": self.config.config,
            "canaryHash": ctx.canary_hash,
            "stableHash": ctx.stable_hash,
        });
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), args) {
            b.extend(extra);
        }
        let timeout = Duration::from_secs(
            self.config
                .timeout_seconds
                .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
                .clamp(1, MAX_TIMEOUT_SECONDS),
        );
        let retries = self
            .config
            .retries
            .unwrap_or(DEFAULT_RETRIES)
            .min(MAX_RETRIES);
        let mut attempt = 0;
        loop {
            let outcome = self
                .http
                .post(&url)
                .timeout(timeout)
                .json(&body)
                .send()
                .await;
            let (message, transient) = match outcome {
                Ok(resp) if resp.status().is_success() => {
                    let text = resp
                        .text()
                        .await
                        .map_err(|e| self.error(format!("{method}: reading the answer: {e}")))?;
                    if text.trim().is_empty() {
                        return Ok(Value::Null);
                    }
                    return serde_json::from_str(&text)
                        .map_err(|e| self.error(format!("{method}: the answer is not JSON: {e}")));
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let detail =
                        serde_json::from_str::<ErrorResponse>(&text).map_or(text, |e| e.error);
                    (
                        format!("{method}: HTTP {}: {detail}", status.as_u16()),
                        status.is_server_error()
                            || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
                    )
                }
                Err(e) => (
                    format!("{method}: {e}"),
                    e.is_timeout() || e.is_connect() || e.is_request(),
                ),
            };
            if !transient || attempt >= retries {
                tracing::warn!(plugin = %self.name, method, attempt, "traffic plugin call failed");
                return Err(self.error(message));
            }
            tokio::time::sleep(BACKOFF_BASE * 2u32.pow(attempt)).await;
            attempt += 1;
        }
    }
}

#[async_trait]
impl TrafficRouter for PluginRouter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn set_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<(), TrafficError> {
        self.call(ctx, "setWeight", json!({"weights": weights}))
            .await
            .map(drop)
    }

    async fn set_header_route(
        &self,
        ctx: &RouteContext,
        route: &SetHeaderRoute,
    ) -> Result<(), TrafficError> {
        self.call(ctx, "setHeaderRoute", json!({"headerRoute": route}))
            .await
            .map(drop)
    }

    async fn set_mirror_route(
        &self,
        ctx: &RouteContext,
        route: &SetMirrorRoute,
    ) -> Result<(), TrafficError> {
        self.call(ctx, "setMirrorRoute", json!({"mirrorRoute": route}))
            .await
            .map(drop)
    }

    async fn verify_weight(
        &self,
        ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError> {
        let answer = self
            .call(ctx, "verifyWeight", json!({"weights": weights}))
            .await?;
        if answer.is_null() {
            return Ok(None);
        }
        let parsed: VerifyResponse = serde_json::from_value(answer)
            .map_err(|e| self.error(format!("verifyWeight: unexpected answer: {e}")))?;
        Ok(parsed.verified)
    }

    async fn remove_managed_routes(&self, ctx: &RouteContext) -> Result<(), TrafficError> {
        self.call(ctx, "removeManagedRoutes", json!({}))
            .await
            .map(drop)
    }
}
