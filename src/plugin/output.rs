//! Output formats (`-o json|yaml|wide|name`) and colour, which is used only on a terminal and
//! never with `--no-color`. Writes to stdout only.

use clap::ValueEnum;
use serde::Serialize;

/// The `-o` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Yaml,
    Wide,
    Name,
}

/// The colours of icons and statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Green,
    Yellow,
    Red,
    Blue,
    Grey,
}

/// `text` in `colour` when `enabled`, as is otherwise.
pub fn paint(enabled: bool, colour: Colour, text: &str) -> String {
    if !enabled {
        return text.to_string();
    }
    let code = match colour {
        Colour::Green => "32",
        Colour::Yellow => "33",
        Colour::Red => "31",
        Colour::Blue => "34",
        Colour::Grey => "90",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Prints an object as `-o json|yaml|name` asks; `false` when the format is not one of those,
/// so the caller prints its own human output.
///
/// # Errors
/// When the object cannot be serialised.
pub fn print_object<T: Serialize>(
    format: Option<Format>,
    kind_name: &str,
    object: &T,
) -> anyhow::Result<bool> {
    match format {
        Some(Format::Json) => println!("{}", serde_json::to_string_pretty(object)?),
        Some(Format::Yaml) => print!("{}", serde_yaml::to_string(object)?),
        Some(Format::Name) => println!("{kind_name}"),
        Some(Format::Wide) | None => return Ok(false),
    }
    Ok(true)
}

/// A coarse age as kubectl prints it: `42s`, `5m`, `3h`, `2d`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Seconds since a Kubernetes timestamp (0 when absent).
pub fn seconds_since(
    time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    now: jiff::Timestamp,
) -> i64 {
    time.map_or(0, |t| now.as_second() - t.0.as_second())
}

/// Pads `text` with spaces to `width` display columns (characters, not bytes).
pub fn pad(text: &str, width: usize) -> String {
    let visible = visible_width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(visible)))
}

/// Characters shown, ignoring ANSI colour sequences.
pub fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(150), "2m");
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(3 * 86_400), "3d");
    }

    #[test]
    fn padding_ignores_colour_codes() {
        let red = paint(true, Colour::Red, "✖ x");
        assert_eq!(visible_width(&red), 3);
        assert_eq!(pad(&red, 5), format!("{red}  "));
        assert_eq!(paint(false, Colour::Red, "x"), "x");
    }
}
