//! Pause and interval durations (`engine::duration::parse_pause_duration`): any text or
//! integer is either parsed or rejected with a message, never a panic; a duration written in
//! the canonical form (`1h2m3s4.000005ms`) parses back to itself; and whatever the parser
//! accepts, written canonically, parses back to the same duration.
#![no_main]

use arbitrary::Arbitrary;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use libfuzzer_sys::fuzz_target;
use sluice::engine::duration::parse_pause_duration;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    int: i32,
    secs: u64,
    nanos: u32,
}

fuzz_target!(|input: Input<'_>| {
    let _ = parse_pause_duration(&IntOrString::Int(input.int));
    if let Ok(parsed) = parse(input.text) {
        round_trip(parsed);
    }
    round_trip(Duration::new(input.secs, input.nanos % 1_000_000_000));
});

fn parse(text: &str) -> Result<Duration, String> {
    parse_pause_duration(&IntOrString::String(text.to_string()))
}

fn round_trip(duration: Duration) {
    let text = canonical(duration);
    assert_eq!(
        parse(&text),
        Ok(duration),
        "{duration:?} written as {text:?}"
    );
}

/// Hours, minutes, seconds and milliseconds, the nanoseconds below a millisecond as its
/// fraction: every `Duration` has exactly one such spelling.
fn canonical(duration: Duration) -> String {
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    let mut out = String::new();
    for (value, unit) in [
        (secs / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    let (ms, below) = (nanos / 1_000_000, nanos % 1_000_000);
    match (ms, below) {
        (0, 0) => {}
        (ms, 0) => out.push_str(&format!("{ms}ms")),
        (ms, below) => out.push_str(&format!("{ms}.{below:06}ms")),
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}
