//! The `prometheus` metric provider.
