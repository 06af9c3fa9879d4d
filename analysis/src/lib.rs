//! The Sluice canary judge: compares canary (experiment) samples with baseline or stable
//! (control) samples and scores the comparison. Pure computation: no Kubernetes, async
//! runtime or HTTP may be imported here.

pub mod sample;
pub mod selection;
