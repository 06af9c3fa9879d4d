//! Sluice: a progressive delivery controller for Kubernetes.
//!
//! Layout (see `DESIGN.md` §4 of the shared design): `crd` holds the API types, `engine` the
//! pure decision engine, `controller` the kube-runtime wiring (observe → decide → act →
//! status), `traffic` the traffic routers, `providers` the metric providers, `plugin` the
//! `kubectl sluice` verbs, `dashboard` the web dashboard, `playground` the embedded
//! Kubernetes API server and simulated cluster, and `demo` and `bench` the `sluice playground`
//! story and the `sluice bench*` commands that run on it.

pub mod bench;
pub mod controller;
pub mod crd;
pub mod dashboard;
pub mod demo;
pub mod engine;
pub mod playground;
pub mod plugin;
pub mod providers;
pub mod traffic;
