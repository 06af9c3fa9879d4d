//! Simulated cluster controllers (placeholder until the simulation lands).

use super::ops::Api;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Knobs of the simulated controllers.
#[derive(Debug, Clone, Default)]
pub struct SimulationOptions {
    pub enabled: bool,
}

impl SimulationOptions {
    /// No simulated controllers: a bare API server.
    pub fn disabled() -> Self {
        SimulationOptions { enabled: false }
    }
}

/// Spawn the enabled controllers.
pub fn spawn(
    _api: Arc<Api>,
    _options: SimulationOptions,
    _stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    Vec::new()
}
