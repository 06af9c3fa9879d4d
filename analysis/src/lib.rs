//! The Sluice canary judge: compares canary (experiment) samples with baseline or stable
//! (control) samples and scores the comparison. Pure computation: no Kubernetes, async
//! runtime or HTTP may be imported here.
//!
//! Pipeline: [`input::parse`] (JSON → validated [`config::JudgeRequest`]) →
//! [`classify::classify`] per metric (cleaning, [`compare()`] or [`rate_ratio::rate_ratio`],
//! decision rule) → [`score::score`] → [`judge::Judgement`].

pub mod classify;
pub mod compare;
pub mod config;
pub mod hodges_lehmann;
pub mod input;
/// Public only for the fuzz targets (`fuzz/`), which check the fast sample reader against
/// `str::parse::<f64>`; not part of the crate's API.
#[doc(hidden)]
pub mod json_samples;
mod json_skeleton;
pub mod judge;
pub mod mann_whitney;
pub mod nullable;
mod parallel;
pub mod rate_ratio;
pub mod sample;
pub mod score;
pub mod selection;
mod sort;
pub mod spec;

pub use compare::{CompareError, Comparison, compare};
pub use judge::{Judgement, judge, judge_owned};
