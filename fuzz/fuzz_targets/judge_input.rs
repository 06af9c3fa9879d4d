//! The judge's input (`kubectl sluice judge -f`): `input::parse` never panics, a request it
//! accepts is judged without panicking, and the fast sample reader (`json_samples`) agrees
//! with `str::parse::<f64>` on every JSON value: the same doubles, bit for bit, and the same
//! verdict on which arrays it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use sluice_analysis::json_samples::sample_array;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = sluice_analysis::input::parse(text) {
        let _ = sluice_analysis::judge(&request);
    }
    check_sample_reader(text);
});

/// The reader is only ever given a valid JSON value's text (a `RawValue`).
fn check_sample_reader(text: &str) {
    let Ok(raw) = serde_json::from_str::<&RawValue>(text) else {
        return;
    };
    let got = sample_array(raw.get());
    let want = reference(raw.get());
    let agree = match (&got, &want) {
        (Some(g), Some(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits())
        }
        (None, None) => true,
        _ => false,
    };
    assert!(agree, "{text:?}: read {got:?}, str::parse reads {want:?}");
}

/// What the reader must produce: serde_json splits the array into element texts; a number
/// element is read by `str::parse::<f64>` (finite only), the recognised words by their
/// meaning, and anything else makes the whole array go the general way (`None`).
fn reference(text: &str) -> Option<Vec<f64>> {
    let elements: Vec<&RawValue> = serde_json::from_str(text).ok()?;
    elements
        .iter()
        .map(|element| {
            let token = element.get();
            match token.as_bytes().first()? {
                b'-' | b'0'..=b'9' => token.parse::<f64>().ok().filter(|v| v.is_finite()),
                _ => match token {
                    "null" | "\"NaN\"" | "\"nan\"" => Some(f64::NAN),
                    "\"+Inf\"" | "\"Inf\"" | "\"Infinity\"" | "\"+Infinity\"" => {
                        Some(f64::INFINITY)
                    }
                    "\"-Inf\"" | "\"-Infinity\"" => Some(f64::NEG_INFINITY),
                    _ => None,
                },
            }
        })
        .collect()
}
