//! The README's first command, `sluice playground`, runs to completion: the demo canary reaches
//! Healthy, the abort returns traffic to stable and the retry promotes; then, with the real
//! `prometheus` scraping the demo traffic, the judge promotes a good canary and aborts a bad one.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_demo_runs_to_completion() {
    let binary = sluice::playground::prometheus::find_binary()
        .unwrap_or_else(|e| panic!("{e} (scripts/test.sh installs it)"));
    let options = sluice::demo::DemoOptions {
        prometheus_binary: Some(binary),
    };
    if let Err(error) = sluice::demo::run(options).await {
        panic!("demo failed: {error:#}");
    }
}
