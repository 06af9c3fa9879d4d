//! The `fake` metric provider.
