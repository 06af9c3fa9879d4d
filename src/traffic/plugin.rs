//! Out-of-process routers over HTTP and JSON (the protocol is `docs/plugins.md`): every call
//! POSTs the full Rollout, the plugin's configuration and the call's arguments to
//! `<address>/v1/<call>`, with a timeout and bounded retries of transient failures, never past the
//! controller's `PluginLimits` (a deadline around the whole call, a cap on the answer's size,
//! redirects refused). The address comes from the controller's `PluginRegistry`, never from the
//! Rollout. Failures become `TrafficError::Plugin`.

use super::{PluginLimits, RouteContext, TrafficError, TrafficRouter};
use crate::crd::{SetHeaderRoute, SetMirrorRoute, TrafficWeights};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// The protocol version, the first segment of every call's path.
pub const PROTOCOL_VERSION: &str = "v1";
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const DEFAULT_RETRIES: u32 = 2;
const MAX_DETAIL_CHARS: usize = 512;
const BACKOFF_BASE: Duration = Duration::from_millis(200);

/// A plugin's entry in `trafficRouting.plugins`. It has no address: the controller's registry
/// (`--traffic-plugin NAME=URL`) says where the plugin named by the entry's key lives.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginConfig {
    /// Per-attempt timeout in seconds (default 10; capped by the controller's
    /// `--plugin-timeout-max`).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Retries of a call that timed out, could not connect, or got 429 or 5xx (default 2;
    /// capped by the controller's `--plugin-retries-max`).
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
    limits: PluginLimits,
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
        limits: PluginLimits,
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
            limits,
        })
    }

    fn error(&self, message: String) -> TrafficError {
        TrafficError::Plugin {
            plugin: self.name.clone(),
            message,
        }
    }

    /// POSTs one call, retrying transient failures with exponential backoff, all within
    /// `call_deadline`: however a plugin behaves, the call returns by then.
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
        let (timeout, retries) = self.bounds();
        let deadline = call_deadline(timeout, retries);
        tokio::time::timeout(
            deadline,
            self.attempts(&url, method, &body, timeout, retries),
        )
        .await
        .unwrap_or_else(|_| {
            Err(self.error(format!(
                "{method}: no answer within {}s (the controller's bound on one call, \
                     retries included)",
                deadline.as_secs()
            )))
        })
    }

    /// The timeout of one attempt and the retries: the Rollout's values (or the defaults),
    /// capped by the controller's limits.
    fn bounds(&self) -> (Duration, u32) {
        let asked = Duration::from_secs(
            self.config
                .timeout_seconds
                .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
                .max(1),
        );
        let retries = self.config.retries.unwrap_or(DEFAULT_RETRIES);
        (
            asked.min(self.limits.timeout_max),
            retries.min(self.limits.retries_max),
        )
    }

    async fn attempts(
        &self,
        url: &str,
        method: &str,
        body: &Value,
        timeout: Duration,
        retries: u32,
    ) -> Result<Value, TrafficError> {
        let mut attempt = 0;
        loop {
            let (message, transient) = match self.attempt(url, method, body, timeout).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            if !transient || attempt >= retries {
                tracing::warn!(plugin = %self.name, method, attempt, "traffic plugin call failed");
                return Err(self.error(message));
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// One POST. A failure is its message and whether it is worth retrying.
    async fn attempt(
        &self,
        url: &str,
        method: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, (String, bool)> {
        let resp = match self.http.post(url).timeout(timeout).json(body).send().await {
            Ok(resp) => resp,
            Err(e) => {
                let transient = e.is_timeout() || e.is_connect() || e.is_request();
                return Err((
                    format!("{method}: {}", send_failure(&e, timeout)),
                    transient,
                ));
            }
        };
        let status = resp.status();
        let moved = reqwest::Url::parse(url).is_ok_and(|asked| asked != *resp.url());
        if status.is_redirection() || moved {
            // The registered address is the only one contacted: redirects are never followed.
            return Err((
                format!(
                    "{method}: HTTP {}: the plugin answered with a redirect, which the \
                     controller never follows; register the plugin's final address with \
                     --traffic-plugin",
                    status.as_u16()
                ),
                false,
            ));
        }
        let text = read_bounded(resp, self.limits.body_max)
            .await
            .map_err(|e| (format!("{method}: reading the answer: {e}"), false))?;
        if !status.is_success() {
            let detail = serde_json::from_str::<ErrorResponse>(&text).map_or(text, |e| e.error);
            // The message goes into the status and an Event: keep it short.
            let detail: String = detail.chars().take(MAX_DETAIL_CHARS).collect();
            let transient =
                status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
            return Err((
                format!("{method}: HTTP {}: {detail}", status.as_u16()),
                transient,
            ));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| (format!("{method}: the answer is not JSON: {e}"), false))
    }
}

/// What went wrong sending a call: a timeout said as one (reqwest's own text only says the
/// request could not be sent), anything else with its cause (connection refused, reset…).
fn send_failure(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("timed out: no answer within {}s", timeout.as_secs());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

fn backoff(attempt: u32) -> Duration {
    BACKOFF_BASE.saturating_mul(2u32.saturating_pow(attempt))
}

/// The longest one call may take: every attempt timing out, and the back-off between them.
pub fn call_deadline(timeout: Duration, retries: u32) -> Duration {
    let waits: Duration = (0..retries).map(backoff).sum();
    timeout
        .saturating_mul(retries.saturating_add(1))
        .saturating_add(waits)
}

/// The body as text, refused once it grows past `limit` bytes.
async fn read_bounded(mut resp: reqwest::Response, limit: usize) -> Result<String, String> {
    let too_large =
        || format!("the answer is larger than the limit of {limit} bytes (--plugin-body-max)");
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if bytes.len().saturating_add(chunk.len()) > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|e| format!("the answer is not UTF-8: {e}"))
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
