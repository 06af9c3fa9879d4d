//! Validation, conditions, deadlines, history, restart.
