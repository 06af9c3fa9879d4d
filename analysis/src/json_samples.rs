//! A fast reader for the common shape of a sample in the judge's input: a JSON array whose
//! elements are numbers, `null` or one of the strings `input` accepts for NaN and ±∞. It
//! checks the array's JSON grammar itself, so it can read text serde_json has not scanned
//! (see `json_skeleton`); anything else (invalid JSON, a nested value, another string, a
//! number too large for a double) gives `None`, and `input` then takes the general path,
//! which produces the same values or the error message naming the field.
//!
//! One pass over the text: each element is found, checked, read and stored before the next.
//! Numbers are read with the standard library's `f64` parser, which rounds correctly: every
//! value equals the double that R, Python and scipy read from the same text.

/// The elements of `text` (a JSON value) as doubles, NaN for a missing point; `None` when
/// `text` is not an array of the recognised element forms.
pub fn sample_array(text: &str) -> Option<Vec<f64>> {
    let bytes = text.as_bytes();
    let (values, end) = read_array(text, skip_space(bytes, 0))?;
    (skip_space(bytes, end) == bytes.len()).then_some(values)
}

/// The array starting at byte `start` of `text` (its `[`), when it is a JSON array of the
/// recognised element forms: its values and the position just after its `]`. The JSON
/// grammar of the array is checked here (numbers, separators, whitespace), so the text need
/// not have been validated: `None` for anything that is not valid JSON or not recognised.
pub fn read_array(text: &str, start: usize) -> Option<(Vec<f64>, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&b'[') {
        return None;
    }
    let mut i = skip_space(bytes, start + 1);
    let mut values = Vec::new();
    if bytes.get(i) == Some(&b']') {
        return Some((values, i + 1));
    }
    loop {
        let (value, next) = element(text, i)?;
        values.push(value);
        i = skip_space(bytes, next);
        match bytes.get(i)? {
            b',' => i = skip_space(bytes, i + 1),
            b']' => return Some((values, i + 1)),
            _ => return None,
        }
    }
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(i) {
        i += 1;
    }
    i
}

/// The element starting at byte `i` and the position just after it.
fn element(text: &str, i: usize) -> Option<(f64, usize)> {
    let bytes = text.as_bytes();
    match bytes.get(i)? {
        b'-' | b'0'..=b'9' => {
            let end = number_end(bytes, i)?;
            let value = text.get(i..end)?.parse::<f64>().ok()?;
            value.is_finite().then_some((value, end))
        }
        _ => {
            const WORDS: [(&str, f64); 9] = [
                ("null", f64::NAN),
                ("\"NaN\"", f64::NAN),
                ("\"nan\"", f64::NAN),
                ("\"+Inf\"", f64::INFINITY),
                ("\"Inf\"", f64::INFINITY),
                ("\"Infinity\"", f64::INFINITY),
                ("\"+Infinity\"", f64::INFINITY),
                ("\"-Inf\"", f64::NEG_INFINITY),
                ("\"-Infinity\"", f64::NEG_INFINITY),
            ];
            let rest = &bytes[i..];
            WORDS
                .iter()
                .find(|(word, _)| rest.starts_with(word.as_bytes()))
                .map(|&(word, value)| (value, i + word.len()))
        }
    }
}

/// The end of the JSON number starting at byte `i`:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. The standard library's parser
/// accepts more (`1.`, `01`, `.5`), which JSON does not.
fn number_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    match bytes.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(bytes, i + 1),
        _ => return None,
    }
    if bytes.get(i) == Some(&b'.') {
        let end = digits(bytes, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = bytes.get(i) {
            i += 1;
        }
        let end = digits(bytes, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// The end of the run of ASCII digits starting at byte `i`.
fn digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
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

    /// The previous reader (split at commas, trim, `str::parse`), kept as the reference the
    /// one-pass reader must equal.
    fn split_reader(text: &str) -> Option<Vec<f64>> {
        let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
        let inner = text
            .trim_matches(space)
            .strip_prefix('[')?
            .strip_suffix(']')?
            .trim_matches(space);
        if inner.is_empty() {
            return Some(Vec::new());
        }
        inner
            .split(',')
            .map(|token| {
                let token = token.trim_matches(space);
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

    /// JSON number texts: shortest round-trip, exponent forms, long and odd mantissas, integers
    /// beyond 2^53, subnormals and values that overflow a double.
    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:?}")),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:e}")),
            (any::<i64>(), 0u32..25).prop_map(|(m, d)| format!("{m}.{}", "7".repeat(d as usize))),
            (-99_999i64..99_999, -330i32..330, any::<bool>())
                .prop_map(|(m, e, big)| format!("{m}{}{e}", if big { "E" } else { "e" })),
            "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?",
        ]
    }

    fn element_text() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => number_text(),
            1 => prop::sample::select(vec![
                "null", "\"NaN\"", "\"nan\"", "\"Inf\"", "\"-Infinity\"", "\"+Inf\"",
                "\"x\"", "\"1,2\"", "[1]", "{}", "true",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn space() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", "", " ", "\n  ", "\t", "\r\n"]).prop_map(str::to_owned)
    }

    /// Valid JSON by serde_json's grammar (a `RawValue` does not check number ranges).
    fn is_json(text: &str) -> bool {
        serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok()
    }

    /// Forms `str::parse` or a lenient scan would take but JSON does not: the reader checks
    /// the grammar itself, since the skeleton parse gives it text serde_json never saw.
    #[test]
    fn invalid_json_is_declined() {
        for text in [
            "[1.]",
            "[01]",
            "[.5]",
            "[-.5]",
            "[+1]",
            "[1.e5]",
            "[1e]",
            "[1e+]",
            "[-]",
            "[1.5.3]",
            "[1 2]",
            "[1,]",
            "[,1]",
            "[1,,2]",
            "[nullx]",
            "[null,]",
            "[\"NaN\" 1]",
            "[1",
            "[1,2",
            "[inf]",
            "[NaN]",
            "[1\u{b}]",
            "[1]]",
            "[0x10]",
            "[1e5x]",
            "[--1]",
        ] {
            assert_eq!(sample_array(text), None, "{text}");
            assert!(!is_json(text), "{text} is JSON after all");
        }
        assert_eq!(read_array("[1, 2] tail", 0), Some((vec![1.0, 2.0], 6)));
        assert_eq!(read_array("x[3]", 1), Some((vec![3.0], 4)));
        assert_eq!(read_array("[3]", 1), None);
    }

    fn equal(a: Option<&[f64]>, b: Option<&[f64]>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Each number token reads as `str::parse::<f64>` reads it (None when not finite, or
        /// not a JSON number, as serde_json judges it).
        #[test]
        fn numbers_read_as_str_parse(token in number_text()) {
            let want = token
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && is_json(&token));
            let got = sample_array(&format!("[{token}]"));
            prop_assert!(
                equal(got.as_deref(), want.as_ref().map(std::slice::from_ref)),
                "{}: {:?}, want {:?}", token, got, want
            );
        }

        /// Whole arrays with any spacing equal the previous split-based reader on valid JSON,
        /// and are declined otherwise.
        #[test]
        fn arrays_equal_the_split_reader(
            items in prop::collection::vec((space(), element_text(), space()), 0..40),
            outer in space(),
        ) {
            let body: Vec<String> = items.iter().map(|(a, e, b)| format!("{a}{e}{b}")).collect();
            let text = format!("{outer}[{}]{outer}", body.join(","));
            let text = text.trim();
            let got = sample_array(text);
            let want = split_reader(text).filter(|_| is_json(text));
            prop_assert!(equal(got.as_deref(), want.as_deref()), "{}: {:?}, want {:?}", text, got, want);
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
