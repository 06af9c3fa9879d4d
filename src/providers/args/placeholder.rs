//! Splitting a template into text and `{{args.NAME}}` placeholders (spaces allowed inside the
//! braces). Pure.

/// The prefix of a judge metric's scope placeholders, kept in the argument's name.
pub(crate) const SCOPE_PREFIX: &str = "scope.";

/// A piece of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// Text as written.
    Text(&'a str),
    /// A placeholder naming this argument.
    Arg(&'a str),
}

/// The pieces of `template`, in order. Text in braces that is not an `args.` placeholder (such
/// as PromQL's `{job="x"}` or another tool's `{{ .Values }}`) stays text.
pub(super) fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut search_from = 0;
    while let Some(offset) = template[search_from..].find("{{") {
        let open = search_from + offset;
        match placeholder_at(&template[open..]) {
            Some((name, len)) => {
                if open > text_start {
                    out.push(Piece::Text(&template[text_start..open]));
                }
                out.push(Piece::Arg(name));
                text_start = open + len;
                search_from = text_start;
            }
            None => search_from = open + 1,
        }
    }
    if text_start < template.len() {
        out.push(Piece::Text(&template[text_start..]));
    }
    out
}

/// The argument named by a placeholder at the start of `text`, and the placeholder's length.
fn placeholder_at(text: &str) -> Option<(&str, usize)> {
    let rest = text.strip_prefix("{{")?;
    let inner = rest.trim_start_matches(' ');
    // `{{scope.NAME}}` (a judge metric's side) keeps its prefix: args named `scope.NAME`.
    let (skip, name_and_rest) = match inner.strip_prefix("args.") {
        Some(rest) => (0, rest),
        None => (
            SCOPE_PREFIX.len(),
            inner.strip_prefix(SCOPE_PREFIX).map(|_| inner)?,
        ),
    };
    let name_len = name_and_rest[skip..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map_or(name_and_rest.len(), |n| n + skip);
    if name_len == skip {
        return None;
    }
    let name = &name_and_rest[..name_len];
    let after = name_and_rest[name_len..].trim_start_matches(' ');
    let after = after.strip_prefix("}}")?;
    (!name.is_empty()).then_some((name, text.len() - after.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_with_and_without_spaces_are_found_and_other_braces_are_text() {
        assert_eq!(
            pieces(r#"up{job="{{args.job}}",i="{{ args.in-st.x }}"} {{ .Values.x }} {{args.}}"#),
            vec![
                Piece::Text(r#"up{job=""#),
                Piece::Arg("job"),
                Piece::Text(r#"",i=""#),
                Piece::Arg("in-st.x"),
                Piece::Text(r#""} {{ .Values.x }} {{args.}}"#),
            ]
        );
        assert_eq!(
            pieces("{{args.a}}{{args.b}}"),
            vec![Piece::Arg("a"), Piece::Arg("b")]
        );
        assert_eq!(
            pieces("{{{args.a}}}"),
            vec![Piece::Text("{"), Piece::Arg("a"), Piece::Text("}")]
        );
        assert_eq!(pieces(""), vec![]);
    }

    #[test]
    fn scope_placeholders_keep_their_prefix() {
        assert_eq!(
            pieces(r#"x{h="{{scope.podTemplateHash}}"}[{{ scope.window }}] {{scope.}}"#),
            vec![
                Piece::Text(r#"x{h=""#),
                Piece::Arg("scope.podTemplateHash"),
                Piece::Text(r#""}["#),
                Piece::Arg("scope.window"),
                Piece::Text("] {{scope.}}"),
            ]
        );
    }
}
