//! The pure decision engine: `decide(&Rollout, &Observed, now) -> Decision`. No kube client,
//! no async runtime, no clock: everything it needs arrives as arguments.

mod model;

pub use model::*;
