//! Which words of a message a search matched, for `<mark>`: case- and
//! accent-insensitive, so that `cafe` marks `café` and `ECOLE` marks
//! `école`. Plain functions of text, tested here; the page builds the
//! marks from the pieces as text nodes, never as HTML.
//!
//! The folding is a small table of Latin letters with diacritics (Latin-1
//! and Latin Extended-A) plus the combining marks of decomposed text: the
//! browser code carries no Unicode normalization tables for it.

use std::ops::Range;

/// A piece of a message: text the search matched or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Plain(&'a str),
    Hit(&'a str),
}

/// Base letters of U+0100..=U+017F (Latin Extended-A); `?` keeps the letter.
const EXTENDED_A: &[u8; 128] = b"aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii??jjkkkllllllllllnnnnnnnnnoooooo??rrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";

/// Whether a character is a combining diacritical mark (as in decomposed text).
fn combining(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}' | '\u{20d0}'..='\u{20ff}')
}

/// Pushes the folded form of one lower-case character.
fn fold_char(c: char, out: &mut impl FnMut(char)) {
    let base = match c {
        'à'..='å' => 'a',
        'æ' => return "ae".chars().for_each(out),
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ð' => 'd',
        'ñ' => 'n',
        'ò'..='ö' | 'ø' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        'ß' => return "ss".chars().for_each(out),
        'œ' => return "oe".chars().for_each(out),
        '\u{100}'..='\u{17f}' => match EXTENDED_A[c as usize - 0x100] {
            b'?' => c,
            b => char::from(b),
        },
        _ => c,
    };
    out(base)
}

/// A text folded for comparison: each folded character with the byte range
/// of the text it comes from (combining marks belong to the letter before).
pub fn fold(text: &str) -> Vec<(char, Range<usize>)> {
    let mut out: Vec<(char, Range<usize>)> = Vec::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        let end = at + c.len_utf8();
        if combining(c) {
            // The mark widens the letter it sits on.
            if let Some(start) = out.last().map(|(_, r)| r.start) {
                for (_, r) in out.iter_mut().rev().take_while(|(_, r)| r.start == start) {
                    r.end = end;
                }
            }
            continue;
        }
        for lower in c.to_lowercase().filter(|l| !combining(*l)) {
            fold_char(lower, &mut |f| out.push((f, at..end)));
        }
    }
    out
}

/// A text folded for comparison, as a string (a query's words).
pub fn folded(text: &str) -> String {
    fold(text).into_iter().map(|(c, _)| c).collect()
}

/// The words of a query, folded; quotes and other punctuation around them go.
fn terms(query: &str) -> Vec<Vec<char>> {
    query
        .split_whitespace()
        .map(|w| {
            folded(w.trim_matches(|c: char| !c.is_alphanumeric()))
                .chars()
                .collect::<Vec<_>>()
        })
        .filter(|w: &Vec<char>| !w.is_empty())
        .collect()
}

/// Byte ranges of `text` that a query's words match, in order, merged:
/// whole words, as the server matches them (`cafe` marks `Café`, not the
/// `cafe` inside `decafe` or `cafés`).
pub fn hits(text: &str, query: &str) -> Vec<Range<usize>> {
    let terms = terms(query);
    if terms.is_empty() {
        return Vec::new();
    }
    let f = fold(text);
    let mut found: Vec<Range<usize>> = Vec::new();
    for i in 0..f.len() {
        if i > 0 && f[i - 1].0.is_alphanumeric() {
            continue;
        }
        for t in &terms {
            let end = i + t.len();
            let whole = end == f.len() || end < f.len() && !f[end].0.is_alphanumeric();
            if whole && f[i..end].iter().map(|(c, _)| c).eq(t.iter()) {
                found.push(f[i].1.start..f[end - 1].1.end);
            }
        }
    }
    found.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
    for r in found {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// `text` cut into plain and matched pieces, in order.
pub fn highlight<'a>(text: &'a str, query: &str) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    let mut at = 0;
    for r in hits(text, query) {
        if r.start > at {
            out.push(Piece::Plain(&text[at..r.start]));
        }
        out.push(Piece::Hit(&text[r.clone()]));
        at = r.end;
    }
    if at < text.len() || out.is_empty() {
        out.push(Piece::Plain(&text[at..]));
    }
    out
}

/// Where to start showing a long message so that its first match is in
/// view: a byte offset at a word boundary about `context` characters before
/// the match, or 0 when the match is near the start anyway.
pub fn excerpt_start(text: &str, query: &str, context: usize) -> usize {
    let Some(first) = hits(text, query).first().map(|r| r.start) else {
        return 0;
    };
    let before = &text[..first];
    if before.chars().count() <= context * 2 {
        return 0;
    }
    let from = before
        .char_indices()
        .rev()
        .nth(context)
        .map_or(0, |(i, _)| i);
    // Start at the next word.
    text[from..first]
        .find(char::is_whitespace)
        .map_or(from, |i| from + i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(text: &str, query: &str) -> String {
        highlight(text, query)
            .into_iter()
            .map(|p| match p {
                Piece::Plain(t) => t.to_string(),
                Piece::Hit(t) => format!("[{t}]"),
            })
            .collect()
    }

    #[test]
    fn folds_case_and_accents() {
        assert_eq!(folded("Café Crème"), "cafe creme");
        assert_eq!(folded("ÉCOLE Œuvre straße"), "ecole oeuvre strasse");
        assert_eq!(folded("Łódź Žižek Őrs Şişli ſ"), "lodz zizek ors sisli s");
        assert_eq!(folded("naïve façade"), "naive facade");
        // Decomposed: e + U+0301.
        assert_eq!(folded("cafe\u{301}"), "cafe");
        assert_eq!(folded("日本 ĳ"), "日本 ĳ");
        assert_eq!(folded("İstanbul"), "istanbul");
    }

    #[test]
    fn the_table_has_every_letter_of_latin_extended_a() {
        assert_eq!(EXTENDED_A.len(), 0x180 - 0x100);
        assert_eq!(
            folded("ĀāĆćĎďĒēĜĝĤĥĨĩĴĵĶķĹĺŃńŌōŔŕŚśŢţŨũŴŵŶŷŸŹźŽž"),
            "aaccddeegghhiijjkkllnnoorrssttuuwwyyyzzzz"
        );
    }

    #[test]
    fn marks_words_whatever_their_accents() {
        assert_eq!(marked("un café crème", "cafe"), "un [café] crème");
        assert_eq!(marked("Un CAFÉ", "café"), "Un [CAFÉ]");
        assert_eq!(marked("cafés et cafe", "CAFE"), "cafés et [cafe]");
        assert_eq!(marked("café crème", "creme cafe"), "[café] [crème]");
        // Decomposed accents are marked with their letter.
        assert_eq!(marked("cafe\u{301}!", "cafe"), "[cafe\u{301}]!");
        // Whole words only.
        assert_eq!(marked("decafe", "cafe"), "decafe");
        assert_eq!(marked("bonjour bon", "bon"), "bonjour [bon]");
        // Each word its own mark.
        assert_eq!(marked("x bon jour", "bon jour"), "x [bon] [jour]");
        // Quotes and stars around words go.
        assert_eq!(marked("le café", "\"cafe\"*"), "le [café]");
        assert_eq!(marked("Straße", "strasse"), "[Straße]");
        assert_eq!(
            marked("L’école, l'ÉCOLE.", "ecole"),
            "L’[école], l'[ÉCOLE]."
        );
    }

    #[test]
    fn nothing_to_mark() {
        assert_eq!(highlight("hello", ""), vec![Piece::Plain("hello")]);
        assert_eq!(highlight("hello", "  ? "), vec![Piece::Plain("hello")]);
        assert_eq!(highlight("", "a"), vec![Piece::Plain("")]);
        assert_eq!(marked("hello", "bye"), "hello");
    }

    #[test]
    fn excerpts_start_near_the_first_match() {
        assert_eq!(excerpt_start("un café", "cafe", 10), 0);
        let long = format!("{}le café ici", "mot ".repeat(40));
        let at = excerpt_start(&long, "cafe", 12);
        assert!(
            at > 0 && long[at..].starts_with("mot mot le café"),
            "{}",
            &long[at..]
        );
        assert_eq!(excerpt_start(&long, "absent", 12), 0);
    }
}
