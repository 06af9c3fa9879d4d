//! The web dashboard served by `kubectl sluice dashboard`: a live view of Rollouts, their steps,
//! revisions and AnalysisRuns, and the canary judge's judgements, with promote/abort/retry
//! buttons unless read-only. Touches the cluster through watches (`store`) and, for actions,
//! through the plugin verbs' own functions (`actions`); everything else is pure (`view`).
//!
//! Modules: `server` (the axum router and its guards), `store` (watch-fed caches), `view` (JSON
//! view models), `sse` (server-sent events), `actions` (POST endpoints), `assets` (the page).

mod actions;
mod assets;
mod server;
mod sse;
pub mod store;
pub mod view;

pub use server::{Options, ServeError, router, serve};
