//! The composer's `@` under the caret: what is being typed after it, and
//! the text once a name is chosen. Plain text in, plain text out; the
//! browser counts the caret in UTF-16 units, hence the conversions.

/// Whether `c` can be part of a name (see `protocol::validate_name`).
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The `@` being typed just before `caret` (a byte offset): its byte
/// offset and what follows it up to the caret. An `@` inside a word (an
/// address) is not one.
pub fn mention_query(text: &str, caret: usize) -> Option<(usize, &str)> {
    let before = text.get(..caret)?;
    let (at, c) = before.char_indices().rev().find(|(_, c)| !name_char(*c))?;
    if c != '@' {
        return None;
    }
    let prev = before[..at].chars().next_back();
    if prev.is_some_and(|p| name_char(p) || p == '@') {
        return None;
    }
    Some((at, &before[at + 1..]))
}

/// `text` with the `@query` at `at` (up to `caret`) replaced by
/// `@name `, and the caret after it.
pub fn insert_mention(text: &str, at: usize, caret: usize, name: &str) -> (String, usize) {
    let rest = text.get(caret..).unwrap_or("");
    let rest = rest.trim_start_matches(name_char);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let head = format!("{}@{name} ", text.get(..at).unwrap_or(""));
    let caret = head.len();
    (format!("{head}{rest}"), caret)
}

/// A UTF-16 offset (the browser's) as a byte offset of `text`.
pub fn byte_offset(text: &str, utf16: usize) -> usize {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units >= utf16 {
            return i;
        }
        units += c.len_utf16();
    }
    text.len()
}

/// A byte offset of `text` as a UTF-16 offset.
pub fn utf16_offset(text: &str, byte: usize) -> usize {
    text.get(..byte).unwrap_or(text).encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_what_follows_an_at_sign_up_to_the_caret() {
        assert_eq!(mention_query("@", 1), Some((0, "")));
        assert_eq!(mention_query("hi @bo", 6), Some((3, "bo")));
        assert_eq!(mention_query("hi @bo there", 6), Some((3, "bo")));
        assert_eq!(mention_query("(@élo", 6), Some((1, "élo")));
        // A caret in the middle of the name: what is before it.
        assert_eq!(mention_query("hi @bob", 5), Some((3, "b")));
        assert_eq!(mention_query("mail x@y", 8), None);
        assert_eq!(mention_query("hi bob", 6), None);
        assert_eq!(mention_query("@bob done", 9), None);
        assert_eq!(mention_query("@@x", 3), None);
        // A caret past the end or inside a character is none.
        assert_eq!(mention_query("@é", 2), None);
        assert_eq!(mention_query("@", 5), None);
    }

    #[test]
    fn choosing_a_name_replaces_the_query() {
        assert_eq!(
            insert_mention("hi @bo", 3, 6, "bob"),
            ("hi @bob ".into(), 8)
        );
        assert_eq!(
            insert_mention("@b, and more", 0, 2, "bea"),
            ("@bea , and more".into(), 5)
        );
        // The rest of a partly typed name goes, and no double space.
        assert_eq!(
            insert_mention("@bxx yes", 0, 2, "bob"),
            ("@bob yes".into(), 5)
        );
    }

    #[test]
    fn offsets_convert_between_utf16_and_bytes() {
        let t = "é😀@b";
        assert_eq!(byte_offset(t, 0), 0);
        assert_eq!(byte_offset(t, 1), 2);
        assert_eq!(byte_offset(t, 3), 6);
        assert_eq!(byte_offset(t, 5), 8);
        assert_eq!(byte_offset(t, 99), t.len());
        assert_eq!(utf16_offset(t, 6), 3);
        assert_eq!(utf16_offset(t, t.len()), 5);
    }
}
