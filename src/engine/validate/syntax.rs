//! The lexical rules of the Kubernetes API for the values a pod template carries: resource
//! quantities, DNS-1123 labels, label keys and values, port names. Pure string checks, each
//! returning the problem in the API server's words; used by the engine's validation and by the
//! playground, which answers like kube-apiserver.

/// The regular expression kube-apiserver quotes when a quantity does not parse.
pub const QUANTITY_PATTERN: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// Splits `[sign]digits[.digits]` off the front; `None` when there is no digit at all.
fn signed_number(s: &str) -> Option<(bool, &str)> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let whole = digits(rest);
    let mut used = whole;
    let mut fraction = 0;
    if rest.as_bytes().get(whole) == Some(&b'.') {
        fraction = digits(&rest[whole + 1..]);
        used = whole + 1 + fraction;
    }
    (whole + fraction > 0).then_some((negative, &rest[used..]))
}

fn valid_suffix(suffix: &str) -> bool {
    const SUFFIXES: [&str; 14] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T",
    ];
    if SUFFIXES.contains(&suffix) || matches!(suffix, "P" | "E") {
        return true;
    }
    // A decimal exponent: `e` or `E` and a signed integer.
    match suffix.strip_prefix(['e', 'E']) {
        Some(exp) => {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !exp.is_empty() && digits(exp) == exp.len()
        }
        None => false,
    }
}

/// Parses a resource quantity (`500m`, `1.5Gi`, `2e3`); `Ok(true)` when it is negative.
///
/// # Errors
/// The API server's message when it does not parse.
pub fn quantity(s: &str) -> Result<bool, String> {
    let bad = || format!("quantities must match the regular expression '{QUANTITY_PATTERN}'");
    let (negative, suffix) = signed_number(s).ok_or_else(bad)?;
    if valid_suffix(suffix) {
        Ok(negative)
    } else {
        Err(bad())
    }
}

fn alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS-1123 label (container names, port names' charset, Service names).
///
/// # Errors
/// The API server's message.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum);
    if ok {
        Ok(())
    } else if s.len() > 63 {
        Err("must be no more than 63 characters".into())
    } else {
        Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into())
    }
}

fn dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|part| dns1123_label(part).is_ok())
}

fn name_part(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(edge)
        && s.ends_with(edge)
}

const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// A label or annotation key: `[prefix/]name`, prefix a DNS-1123 subdomain.
///
/// # Errors
/// The API server's message.
pub fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !dns1123_subdomain(prefix)
    {
        return Err("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
    }
    if name_part(name) {
        Ok(())
    } else if name.len() > 63 {
        Err("name part must be no more than 63 characters".into())
    } else {
        Err(format!(
            "name part {NAME_RULE} (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ))
    }
}

/// A label value: empty, or at most 63 characters of the name-part alphabet.
///
/// # Errors
/// The API server's message.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || name_part(value) {
        Ok(())
    } else if value.len() > 63 {
        Err("must be no more than 63 characters".into())
    } else {
        Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into())
    }
}

/// An IANA service name, as container port names must be.
///
/// # Errors
/// The API server's message.
pub fn port_name(name: &str) -> Result<(), String> {
    if name.len() > 15 {
        return Err("must be no more than 15 characters".into());
    }
    if !name.chars().all(|c| alnum(c) || c == '-') {
        return Err(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
        );
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("must contain at least one letter (a-z)".into());
    }
    if name.contains("--") {
        return Err("must not contain consecutive hyphens".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must not begin or end with a hyphen".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_follow_the_api_grammar() {
        for ok in [
            "1",
            "500m",
            "1.5Gi",
            "0.5",
            ".5",
            "5.",
            "2e3",
            "1E-2",
            "+1k",
            "128974848",
            "129M",
            "123Mi",
            "1Ei",
        ] {
            assert_eq!(quantity(ok), Ok(false), "{ok} parses");
        }
        assert_eq!(quantity("-1"), Ok(true));
        for bad in [
            "invalid", "", "1.5.5", "Mi", "1mi", "1 Gi", "1e", "1ee2", "1Gib", ".",
        ] {
            assert!(quantity(bad).is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn names_labels_and_ports() {
        assert!(dns1123_label("web-1").is_ok());
        for bad in ["Web", "-web", "web-", "web_1", "", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad:?}");
        }
        for ok in ["app", "app.kubernetes.io/name", "a_b.c-d", "example.com/X"] {
            assert!(qualified_name(ok).is_ok(), "{ok}");
        }
        for bad in ["-app", "app/", "a/b/c", "UPPER.com/x", "bad key"] {
            assert!(qualified_name(bad).is_err(), "{bad:?}");
        }
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        for bad in ["-x", "x y", &"v".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad:?}");
        }
        assert!(port_name("http").is_ok());
        for bad in ["HTTP", "123", "a--b", "-a", "averyveryverylongname"] {
            assert!(port_name(bad).is_err(), "{bad:?}");
        }
    }
}
