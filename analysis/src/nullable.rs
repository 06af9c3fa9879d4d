//! Serde for numbers that may be undefined: NaN and ±∞ are written as JSON `null` (JSON has no
//! such numbers) and `null` reads back as NaN, so judgements survive a round trip through the
//! Kubernetes API (an AnalysisRun's status) and their schema says `nullable`.

use serde::{Deserialize, Deserializer, Serializer};

/// Writes a non-finite value as `null`.
///
/// # Errors
/// Those of the serializer.
pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

/// Reads `null` as NaN.
///
/// # Errors
/// When the value is neither a number nor `null`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Same for a list of such numbers.
pub mod list {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&x.is_finite().then_some(*x))?;
        }
        seq.end()
    }

    /// # Errors
    /// When an element is neither a number nor `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|x| x.unwrap_or(f64::NAN))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    struct T {
        #[serde(with = "super")]
        v: f64,
    }

    #[test]
    fn non_finite_round_trips_as_null() {
        for (v, text) in [
            (f64::NAN, r#"{"v":null}"#),
            (f64::INFINITY, r#"{"v":null}"#),
            (1.5, r#"{"v":1.5}"#),
        ] {
            let written = serde_json::to_string(&T { v }).unwrap_or_default();
            assert_eq!(written, text);
            let back: T = serde_json::from_str(&written).unwrap_or(T { v: 0.0 });
            assert!(back.v == v || (back.v.is_nan() && !v.is_finite()));
        }
    }
}
