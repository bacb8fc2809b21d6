//! A message body as text and links. Bodies are plain text: they are split
//! into pieces that the view renders as text nodes and `<a>` elements, never
//! as HTML. Only `http://` and `https://` addresses become links.

/// A piece of a message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Link(String),
}

/// Characters that end an address.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`' | '\u{0}'..='\u{1f}')
}

/// Splits a body into text and http(s) links.
pub fn pieces(body: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let bytes = body.as_bytes();
    while i < body.len() {
        let rest = &body[i..];
        let scheme = if starts_with_ci(rest, "https://") {
            8
        } else if starts_with_ci(rest, "http://") {
            7
        } else {
            0
        };
        // An address starts a word: "xhttp://" is not one.
        let at_word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric());
        if scheme > 0 && at_word_start {
            let len = rest.find(ends_url).unwrap_or(rest.len());
            let url = trim_trailing(&rest[..len]);
            let host = &url[scheme..];
            if host
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '[')
            {
                if text_start < i {
                    out.push(Piece::Text(body[text_start..i].to_string()));
                }
                out.push(Piece::Link(url.to_string()));
                i += url.len();
                text_start = i;
                continue;
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    if text_start < body.len() {
        out.push(Piece::Text(body[text_start..].to_string()));
    }
    out
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Drops punctuation that ends a sentence rather than the address, and a
/// closing bracket that has no opening one inside the address.
fn trim_trailing(url: &str) -> &str {
    let mut end = url.len();
    loop {
        let s = &url[..end];
        let Some(last) = s.chars().last() else { break };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*' => true,
            ')' => s.matches('(').count() < s.matches(')').count(),
            ']' => s.matches('[').count() < s.matches(']').count(),
            '}' => s.matches('{').count() < s.matches('}').count(),
            _ => false,
        };
        if !drop {
            break;
        }
        end -= last.len_utf8();
    }
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::Piece::{Link, Text};
    use super::*;

    fn t(s: &str) -> super::Piece {
        Text(s.into())
    }
    fn l(s: &str) -> super::Piece {
        Link(s.into())
    }

    #[test]
    fn plain_text_stays_whole() {
        assert_eq!(pieces("hello"), vec![t("hello")]);
        assert_eq!(pieces(""), vec![]);
        assert_eq!(
            pieces("<img src=x onerror=alert(1)>"),
            vec![t("<img src=x onerror=alert(1)>")]
        );
    }

    #[test]
    fn links_are_found() {
        assert_eq!(
            pieces("see https://example.com/a?b=1&c=2#x, then http://x.test."),
            vec![
                t("see "),
                l("https://example.com/a?b=1&c=2#x"),
                t(", then "),
                l("http://x.test"),
                t("."),
            ]
        );
        assert_eq!(
            pieces("(https://en.wikipedia.org/wiki/Rust_(language))"),
            vec![
                t("("),
                l("https://en.wikipedia.org/wiki/Rust_(language)"),
                t(")")
            ]
        );
        assert_eq!(
            pieces("HTTPS://EXAMPLE.COM"),
            vec![l("HTTPS://EXAMPLE.COM")]
        );
        assert_eq!(
            pieces("https://a.b\nhttps://c.d"),
            vec![l("https://a.b"), t("\n"), l("https://c.d")]
        );
    }

    #[test]
    fn other_schemes_and_fakes_are_text() {
        for s in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.com",
            "https://",
            "http:///etc",
            "xhttps://example.com",
            "https://\"onmouseover=alert(1)",
        ] {
            assert!(
                pieces(s).iter().all(|p| matches!(p, Text(_))),
                "{s}: {:?}",
                pieces(s)
            );
        }
        // A quote ends the address: no attribute can be smuggled.
        assert_eq!(pieces("https://a.b\"x"), vec![l("https://a.b"), t("\"x")]);
        // Multibyte text around links.
        assert_eq!(
            pieces("été https://é.fr ok"),
            vec![t("été "), l("https://é.fr"), t(" ok")]
        );
    }
}
