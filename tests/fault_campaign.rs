//! The fault campaign at its CI size (`sluice::bench::faults`): two Rollouts of every scenario
//! (timed pauses, a passing and a failing analysis, an abort and a full promotion by a person,
//! a promotion by hand, a second update mid-way) through their updates while the real
//! controller is killed at random times and at failpoints before its writes, 5 % of its API
//! requests fail, its HTTPRoutes are cut off and come back and watches drop. The checker, fed
//! by watches, must find no step skipped or repeated, no traffic left on an aborted canary once
//! the routers answer, and every Rollout ending as its scenario says. The seed is printed;
//! `SLUICE_FAULT_SEED` repeats a run's draws.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sluice::bench::faults::{Config, campaign};

fn seed() -> u64 {
    match std::env::var("SLUICE_FAULT_SEED") {
        Ok(seed) => seed.parse().expect("SLUICE_FAULT_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_kills_api_errors_and_router_outages_no_invariant_breaks() {
    let seed = seed();
    // The campaign's progress, for a run that hangs or fails (`--nocapture`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("sluice::bench=debug")
        .with_test_writer()
        .try_init();
    println!("fault campaign seed {seed} (SLUICE_FAULT_SEED={seed} repeats its draws)");
    let report = campaign(&Config::small(seed)).await.unwrap();
    println!("{report}");
    let violations: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    // The campaign did hit the controller, or the empty list would prove nothing.
    assert!(
        report.random_kills + report.failpoint_kills >= 2,
        "{report}"
    );
    assert!(report.failpoint_kills >= 1, "{report}");
    assert!(report.injected_errors > 0 && report.outages > 0, "{report}");
    assert!(report.checked.abort_route_checks > 0, "{report}");
}
