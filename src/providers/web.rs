//! The `web` metric provider.
