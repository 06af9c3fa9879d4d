//! The web dashboard served by `kubectl sluice dashboard`.
