//! The controller: kube-runtime wiring of observe → decide → act → status. The only layer
//! that reads the clock and talks to the API server on behalf of Rollouts.
//!
//! Pipeline per Rollout (`reconcile.rs`): guard (leadership, caches synced, stale cache) →
//! finalizer (`cleanup.rs`) → observe (`observe.rs`, from reflector stores) → decide (the
//! engine, a pure function) → act (`act.rs`, each `Action` idempotently) → status
//! (`status.rs`, one patch when changed) → events (`events.rs`). `run.rs` builds the watches (`cache.rs` the compact
//! ReplicaSet they cache), `index.rs` their reverse indexes (children by owner, Rollouts by the
//! names they reference), `leader/` the Lease election, `metrics.rs` and `http.rs` the
//! observability endpoints, `failpoint.rs` the fault campaign's stop before a write.

pub mod act;
pub mod analysis_run;
pub mod backoff;
pub mod cache;
pub mod cleanup;
pub mod cli;
pub mod client_metrics;
pub mod context;
pub mod embedded;
pub mod events;
pub mod failpoint;
pub mod http;
pub mod index;
pub mod leader;
pub mod measure;
pub mod metrics;
pub mod observe;
pub mod owner;
pub mod queue;
pub mod reconcile;
pub mod restart;
pub mod routing_condition;
pub mod routing_watch;
pub mod run;
pub mod status;
pub mod templates;
pub mod throttle;

pub use context::{Context, DecideFn, RoutersFn, Settings, Stores, no_routers};
pub use leader::{Leadership, LeaseSettings, run_election};
pub use metrics::Metrics;
pub use run::{INSTANCE_ID_LABEL, Wiring, run};
