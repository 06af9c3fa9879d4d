//! The `job` metric provider.
