//! `kubectl_complete-sluice`: kubectl's plugin-completion hook. With it on PATH beside
//! `kubectl-sluice`, `kubectl sluice <TAB>` completes verbs and flags in every shell kubectl's
//! own completion is installed in.

fn main() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    for line in sluice::plugin::completion::complete(&words) {
        println!("{line}");
    }
}
