//! Engine tests: builders and a simulator (`fixtures`), table tests per behaviour, and
//! property tests of the invariants.

mod analysis_tests;
mod baseline_tests;
mod bluegreen_tests;
mod canary_tests;
mod fixtures;
mod misc_tests;
mod props;
mod restart_tests;
mod traffic_tests;
mod validate_tests;
