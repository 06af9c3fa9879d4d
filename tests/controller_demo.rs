//! The README's first command, `sluice playground`, runs to completion: the demo canary reaches
//! Healthy, the abort returns traffic to stable and the retry promotes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_demo_runs_to_completion() {
    if let Err(error) = sluice::controller::demo::run().await {
        panic!("demo failed: {error:#}");
    }
}
