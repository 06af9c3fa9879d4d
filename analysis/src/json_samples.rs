//! A fast reader for the common shape of a sample in the judge's input: a JSON array whose
//! elements are numbers, `null` or one of the strings `input` accepts for NaN and ±∞. The text
//! has already been checked to be valid JSON (it is a `RawValue`), so the reader only has to
//! recognise these element forms; anything else (a nested value, another string, a number
//! too large for a double) gives `None`, and `input` then takes the general path, which
//! produces the same values or the error message naming the field.
//!
//! Numbers are read with the standard library's `f64` parser, which rounds correctly: every
//! value equals the double that R, Python and scipy read from the same text.

/// The elements of `text` (a valid JSON value) as doubles, NaN for a missing point; `None` when
/// `text` is not an array of the recognised element forms.
pub(crate) fn sample_array(text: &str) -> Option<Vec<f64>> {
    let inner = text
        .strip_prefix('[')?
        .strip_suffix(']')?
        .trim_matches(is_space);
    if inner.is_empty() {
        return Some(Vec::new());
    }
    let mut values = Vec::with_capacity(inner.bytes().filter(|b| *b == b',').count() + 1);
    // A `,` inside a string would split it, but then the first piece starts with `"` and does
    // not end with one, so it matches no recognised form and the whole array goes the general
    // way: when every piece is recognised, the split was at the array's own commas.
    for token in inner.split(',') {
        values.push(element(token.trim_matches(is_space))?);
    }
    Some(values)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn element(token: &str) -> Option<f64> {
    match token.as_bytes().first()? {
        b'-' | b'0'..=b'9' => token.parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => match token {
            "null" | "\"NaN\"" | "\"nan\"" => Some(f64::NAN),
            "\"+Inf\"" | "\"Inf\"" | "\"Infinity\"" | "\"+Infinity\"" => Some(f64::INFINITY),
            "\"-Inf\"" | "\"-Infinity\"" => Some(f64::NEG_INFINITY),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn recognised_and_general_forms() {
        let nan = f64::NAN;
        let cases: [(&str, Option<Vec<f64>>); 12] = [
            ("[]", Some(vec![])),
            ("[ \n ]", Some(vec![])),
            ("[1,2.5,-3e2, 0]", Some(vec![1.0, 2.5, -300.0, 0.0])),
            ("[ null , \"NaN\",\"nan\" ]", Some(vec![nan, nan, nan])),
            (
                "[\"+Inf\",\"-Infinity\"]",
                Some(vec![f64::INFINITY, f64::NEG_INFINITY]),
            ),
            ("[1E+2,-0]", Some(vec![100.0, -0.0])),
            ("[\"1,2\"]", None),
            ("[\"a\\\",\\\"NaN\\\",\\\"b\"]", None),
            ("[[1,2]]", None),
            ("[{\"a\":1}]", None),
            ("[1e400]", None),
            ("{\"events\":1}", None),
        ];
        for (text, want) in cases {
            let got = sample_array(text);
            let ok = match (&got, &want) {
                (Some(g), Some(w)) => same(g, w),
                (None, None) => true,
                _ => false,
            };
            assert!(ok, "{text}: {got:?}, want {want:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn agrees_with_serde_json_on_numbers(v in prop::collection::vec(any::<f64>().prop_filter("finite", |x| x.is_finite()), 0..50)) {
            let text = serde_json::to_string(&v).unwrap();
            let got = sample_array(&text);
            prop_assert!(got.as_deref().is_some_and(|g| same(g, &v)), "{}: {:?}", text, got);
        }
    }
}
