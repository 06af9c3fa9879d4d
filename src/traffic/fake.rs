//! A fake router for controller tests: it records every call, keeps the weights and managed
//! routes it was given, and can be told to fail or what verification to report. No I/O.

use super::{RouteContext, TrafficError, TrafficRouter};
use crate::crd::{SetHeaderRoute, SetMirrorRoute, TrafficWeights};
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One recorded call.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// `set_weight`.
    SetWeight(TrafficWeights),
    /// `set_header_route`.
    SetHeaderRoute(SetHeaderRoute),
    /// `set_mirror_route`.
    SetMirrorRoute(SetMirrorRoute),
    /// `verify_weight`.
    VerifyWeight(TrafficWeights),
    /// `remove_managed_routes`.
    RemoveManagedRoutes,
}

/// What the fake has seen and will answer.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Every call, in order.
    pub calls: Vec<Call>,
    /// The last weights set.
    pub weights: Option<TrafficWeights>,
    /// Managed routes currently in place.
    pub routes: BTreeSet<String>,
    /// What `verify_weight` answers.
    pub verified: Option<bool>,
    /// When set, every call fails with a `Plugin` error carrying this message.
    pub fail: Option<String>,
}

/// A recording router; clones share their state, so a test keeps one and hands one out.
#[derive(Clone, Debug)]
pub struct FakeRouter {
    name: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeRouter {
    /// A fake called `name` that verifies nothing (`None`) and never fails.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: Arc::default(),
        }
    }

    /// The shared state, to inspect or to script.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether all traffic is on stable: no canary or additional weight, no managed route.
    pub fn all_on_stable(&self) -> bool {
        let s = self.state();
        s.routes.is_empty()
            && s.weights
                .as_ref()
                .is_none_or(|w| w.canary.weight == 0 && w.additional.iter().all(|a| a.weight == 0))
    }

    fn record(&self, call: Call) -> Result<MutexGuard<'_, FakeState>, TrafficError> {
        let mut s = self.state();
        s.calls.push(call);
        match &s.fail {
            Some(message) => Err(TrafficError::Plugin {
                plugin: self.name.clone(),
                message: message.clone(),
            }),
            None => Ok(s),
        }
    }
}

#[async_trait]
impl TrafficRouter for FakeRouter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn set_weight(
        &self,
        _ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<(), TrafficError> {
        self.record(Call::SetWeight(weights.clone()))?.weights = Some(weights.clone());
        Ok(())
    }

    async fn set_header_route(
        &self,
        _ctx: &RouteContext,
        route: &SetHeaderRoute,
    ) -> Result<(), TrafficError> {
        let mut s = self.record(Call::SetHeaderRoute(route.clone()))?;
        if route.matches.is_empty() {
            s.routes.remove(&route.name);
        } else {
            s.routes.insert(route.name.clone());
        }
        Ok(())
    }

    async fn set_mirror_route(
        &self,
        _ctx: &RouteContext,
        route: &SetMirrorRoute,
    ) -> Result<(), TrafficError> {
        let mut s = self.record(Call::SetMirrorRoute(route.clone()))?;
        if route.matches.is_empty() {
            s.routes.remove(&route.name);
        } else {
            s.routes.insert(route.name.clone());
        }
        Ok(())
    }

    async fn verify_weight(
        &self,
        _ctx: &RouteContext,
        weights: &TrafficWeights,
    ) -> Result<Option<bool>, TrafficError> {
        Ok(self.record(Call::VerifyWeight(weights.clone()))?.verified)
    }

    async fn remove_managed_routes(&self, _ctx: &RouteContext) -> Result<(), TrafficError> {
        self.record(Call::RemoveManagedRoutes)?.routes.clear();
        Ok(())
    }
}
