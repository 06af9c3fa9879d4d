//! The playground: an embedded Kubernetes API server and simulated cluster controllers, used by
//! `sluice playground`, the integration tests and the scale benchmarks.
