//! Blue/green behaviour.
