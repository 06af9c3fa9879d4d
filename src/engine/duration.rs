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
        let number: f64 = trimmed[start..i]
            .parse()
            .map_err(|_| format!("{text:?}: {:?} is not a number", &trimmed[start..i]))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let seconds_per_unit = match &trimmed[unit_start..i] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{text:?}: missing unit after {number}")),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        total += Duration::try_from_secs_f64(number * seconds_per_unit)
            .map_err(|e| format!("{text:?}: {e}"))?;
    }
    Ok(total)
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
}
