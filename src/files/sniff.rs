//! What a file is, from its first bytes: never the client's word.

/// How many bytes [`mime_of`] looks at.
pub const HEAD_BYTES: usize = 8192;

/// The media type of a file beginning with `head` (its first
/// [`HEAD_BYTES`], or all of it when shorter).
///
/// Known signatures first (PDF, archives, audio, video...), then text: UTF-8
/// without NUL reads as `text/plain`, whatever markup it holds, so that HTML
/// or SVG is never labelled as something a browser would render. The rest is
/// `application/octet-stream`.
pub fn mime_of(head: &[u8], complete: bool) -> String {
    if let Some(kind) = infer::get(head)
        && kind.matcher_type() != infer::MatcherType::Text
    {
        return kind.mime_type().to_string();
    }
    if looks_like_text(head, complete) {
        return "text/plain; charset=utf-8".to_string();
    }
    "application/octet-stream".to_string()
}

/// UTF-8 without NUL; a character cut by the end of `head` is forgiven
/// unless `head` is the whole file.
fn looks_like_text(head: &[u8], complete: bool) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none(),
    }
}

/// Whether a browser may show a file of this type in the page itself: the
/// images the server has decoded and written again, nothing else.
pub fn shown_inline(mime: &str) -> bool {
    matches!(
        mime,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_content() {
        assert_eq!(mime_of(b"%PDF-1.7\n...", true), "application/pdf");
        assert_eq!(mime_of(b"PK\x03\x04\x14\0\0\0", true), "application/zip");
        assert_eq!(
            mime_of(b"2026-12-02 error: disk full\n", true),
            "text/plain; charset=utf-8"
        );
        // Markup is text: it is never served as HTML or SVG.
        assert_eq!(
            mime_of(
                b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>",
                true
            ),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            mime_of(b"<!DOCTYPE html><html><body>hi", true),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            mime_of(b"\0\x01\x02binary", true),
            "application/octet-stream"
        );
        // A character cut at the end of the head, but not of the file.
        assert_eq!(
            mime_of("é".as_bytes()[..1].as_ref(), false),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            mime_of("é".as_bytes()[..1].as_ref(), true),
            "application/octet-stream"
        );
    }

    #[test]
    fn only_decoded_images_show_inline() {
        assert!(shown_inline("image/png"));
        assert!(!shown_inline("image/svg+xml"));
        assert!(!shown_inline("text/html"));
        assert!(!shown_inline("application/pdf"));
    }
}
