//! Pause durations: a bare integer is seconds; a string is one or more `<number><unit>` pairs
//! with units `ms`, `s`, `m`, `h` (`30s`, `5m`, `1h30m`, `500ms`, `1.5h`). Pure parsing, no I/O.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;

/// Parses a pause duration as Argo Rollouts reads it.
///
/// # Errors
/// Returns a human-readable problem when the value is negative, empty, has no unit after a
/// number, or uses an unknown unit.
pub fn parse_pause_duration(value: &IntOrString) -> Result<Duration, String> {
    match value {
        IntOrString::Int(secs) => u64::try_from(*secs)
            .map(Duration::from_secs)
            .map_err(|_| format!("{secs} is negative")),
        IntOrString::String(text) => parse_text(text),
    }
}

fn parse_text(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration".to_string());
    }
    // A string of digits only is seconds, as the integer form (Argo accepts "30").
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| format!("{text:?}: {e}"));
    }
    let bytes = trimmed.as_bytes();
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(format!("{text:?}: expected a number at position {start}"));
        }
        let number = &trimmed[start..i];
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let nanos_per_unit: u128 = match &trimmed[unit_start..i] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("{text:?}: missing unit after {number}")),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        let term =
            term(number, nanos_per_unit).map_err(|problem| format!("{text:?}: {problem}"))?;
        total = total
            .checked_add(term)
            .ok_or_else(|| format!("{text:?}: longer than {} seconds", u64::MAX))?;
    }
    Ok(total)
}

/// Most digits after the point that are read; later ones cannot move the result by a whole
/// nanosecond except in contrived spellings, and are ignored (Go's parser drops them too).
const MAX_FRACTION_DIGITS: usize = 24;

/// `number` (digits with at most one `.`) of a unit of `nanos_per_unit` nanoseconds, read
/// exactly as a decimal and truncated to whole nanoseconds, as Go's `time.ParseDuration` does.
/// Floating point rounded large values (`5124095576030431h`) and fractions (`0.000001ms`) to a
/// neighbouring duration, and overflowed into a panic on sums past `u64::MAX` seconds.
fn term(number: &str, nanos_per_unit: u128) -> Result<Duration, String> {
    let not_a_number = || format!("{number:?} is not a number");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return Err(not_a_number());
    }
    let too_long = || format!("{number} is longer than {} seconds", u64::MAX);
    // Only digits are left, so a failed parse is an overflow.
    let whole: u128 = match whole {
        "" => 0,
        digits => digits.parse().map_err(|_| too_long())?,
    };
    let fraction = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
    let (fraction, scale) = fraction
        .bytes()
        .fold((0u128, 1u128), |(value, scale), digit| {
            (value * 10 + u128::from(digit - b'0'), scale * 10)
        });
    // Below 10^24 · 3.6·10^12 < 2^128: the fraction's product cannot overflow.
    let nanos = whole
        .checked_mul(nanos_per_unit)
        .and_then(|n| n.checked_add(fraction * nanos_per_unit / scale))
        .ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    // The remainder is below 10^9, so it fits.
    let subsec = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_durations_parse_like_argo() {
        let cases: &[(IntOrString, Option<u64>)] = &[
            (IntOrString::Int(30), Some(30_000)),
            (IntOrString::Int(0), Some(0)),
            (IntOrString::Int(-1), None),
            (IntOrString::String("30".into()), Some(30_000)),
            (IntOrString::String("30s".into()), Some(30_000)),
            (IntOrString::String("5m".into()), Some(300_000)),
            (IntOrString::String("1h30m".into()), Some(5_400_000)),
            (IntOrString::String("500ms".into()), Some(500)),
            (IntOrString::String("1.5h".into()), Some(5_400_000)),
            (IntOrString::String("".into()), None),
            (IntOrString::String("10x".into()), None),
            (IntOrString::String("m".into()), None),
            (IntOrString::String("1h30".into()), None),
        ];
        for (input, want) in cases {
            let got = parse_pause_duration(input)
                .ok()
                .map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "parsing {input:?}");
        }
    }

    fn text(t: &str) -> Result<Duration, String> {
        parse_pause_duration(&IntOrString::String(t.into()))
    }

    /// Seen while writing the `duration` fuzz target and replayed on it (docs/fuzzing.md): a
    /// sum past `u64::MAX` seconds panicked ("overflow when adding durations"); it is now an
    /// error naming the limit.
    #[test]
    fn durations_too_long_for_a_duration_are_refused_not_a_panic() {
        for t in [
            "10000000000000000000s10000000000000000000s",
            "18446744073709551615s1s",
            "5124095576030432h",
            "99999999999999999999999999999999999999999h",
            "307445734561825861m1m",
        ] {
            let problem = text(t).expect_err(t);
            assert!(problem.contains("longer than"), "{t}: {problem}");
        }
        assert_eq!(
            text("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    /// Found by the `duration` fuzz target: numbers went through `f64`, so large whole numbers
    /// and fractions came back as a neighbouring duration; they are now read exactly, and
    /// digits below a nanosecond are dropped (as Go's `time.ParseDuration` does).
    #[test]
    fn numbers_are_read_exactly_to_the_nanosecond() {
        let cases = [
            (
                "5124095576030431h",
                Duration::from_secs(5_124_095_576_030_431 * 3600),
            ),
            ("0.000001ms", Duration::from_nanos(1)),
            ("4.000005ms", Duration::from_nanos(4_000_005)),
            ("1h2m3s4.000005ms", Duration::new(3723, 4_000_005)),
            ("0.1s", Duration::from_millis(100)),
            (".5s", Duration::from_millis(500)),
            ("5.s", Duration::from_secs(5)),
            ("0.0000000019s", Duration::from_nanos(1)),
        ];
        for (t, want) in cases {
            assert_eq!(text(t), Ok(want), "{t}");
        }
        for t in ["1.2.3s", ".s", "1..s"] {
            let problem = text(t).expect_err(t);
            assert!(problem.contains("is not a number"), "{t}: {problem}");
        }
    }
}
