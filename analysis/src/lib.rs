//! The Sluice canary judge: compares canary (experiment) samples with baseline or stable
//! (control) samples and scores the comparison. Pure computation: no Kubernetes, async
//! runtime or HTTP may be imported here.

pub mod compare;
pub mod hodges_lehmann;
pub mod mann_whitney;
pub mod sample;
pub mod selection;

pub use compare::{Comparison, CompareError, compare};
