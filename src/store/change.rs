//! The rules of a change to a stored message (who may edit or delete, what
//! a deleted message refuses, what changes nothing, how many emoji), and
//! the words a search looks for. Pure, so that every store decides them
//! the same way, inside its own atomic step.

use super::{Change, Changed, MAX_REACTIONS, format_ts};
use crate::protocol::Message;
use unicode_normalization::UnicodeNormalization;

/// What a change to a message comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Store this as the message now, at the room's next revision.
    Store(Message),
    /// Store nothing; answer this.
    Answer(Changed),
}

/// What `change` does to `current` (the message as it stands) at `now_ms`.
///
/// An edit by anyone but the author is refused before anything else; a
/// deleted message then refuses edits and reactions. Deleting a deleted
/// message (by its author or an admin) changes nothing.
pub fn decide(current: &Message, change: &Change, now_ms: i64) -> Verdict {
    let mut next = current.clone();
    match change {
        Change::Edit { by, body, mentions } => {
            if *by != current.author {
                return Verdict::Answer(Changed::NotAuthor);
            }
            if current.deleted {
                return Verdict::Answer(Changed::Deleted);
            }
            if *body == current.body {
                return Verdict::Answer(Changed::Unchanged(current.clone()));
            }
            next.body = body.clone();
            next.mentions = mentions.clone();
            next.edited = Some(format_ts(now_ms));
        }
        Change::Delete { by, admin } => {
            if *by != current.author && !admin {
                return Verdict::Answer(Changed::NotAuthor);
            }
            if current.deleted {
                return Verdict::Answer(Changed::Unchanged(current.clone()));
            }
            next = Message {
                room: current.room.clone(),
                id: current.id,
                author: current.author.clone(),
                ts: current.ts.clone(),
                // The sender's own token, kept so that a retried send finds
                // the deleted message instead of storing its text again.
                nonce: current.nonce.clone(),
                deleted: true,
                ..Default::default()
            };
        }
        Change::React { by, emoji, on } => {
            if current.deleted {
                return Verdict::Answer(Changed::Deleted);
            }
            let names = next.reactions.get(emoji);
            let has = names.is_some_and(|n| n.contains(by));
            if has == *on {
                return Verdict::Answer(Changed::Unchanged(current.clone()));
            }
            if *on {
                if names.is_none() && next.reactions.len() >= MAX_REACTIONS {
                    return Verdict::Answer(Changed::TooManyReactions);
                }
                next.reactions
                    .entry(emoji.clone())
                    .or_default()
                    .push(by.clone());
            } else if let Some(names) = next.reactions.get_mut(emoji) {
                names.retain(|n| n != by);
                if names.is_empty() {
                    next.reactions.remove(emoji);
                }
            }
        }
    }
    Verdict::Store(next)
}

/// The stored edit time (ms) after `change`, from the one before.
pub fn edited_ms(change: &Change, before: Option<i64>, now_ms: i64) -> Option<i64> {
    match change {
        Change::Edit { .. } => Some(now_ms),
        Change::Delete { .. } => None,
        Change::React { .. } => before,
    }
}

/// Most different words a search looks for: the hub caps queries at 200
/// characters, and this keeps a longer one from costing more.
pub const MAX_SEARCH_WORDS: usize = 32;

/// The words of what a person typed, as a search looks for them: runs of
/// letters and digits (anything else separates, so search syntax is only
/// ever a separator), composed (NFC), each once, at most
/// [`MAX_SEARCH_WORDS`]. Case and accents are left to the index.
pub fn search_words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    // Composed first: a decomposed accent (a combining mark) would split
    // its word in two.
    let composed: String = query.nfc().collect();
    for word in composed.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || words.iter().any(|w| w == word) {
            continue;
        }
        words.push(word.to_string());
        if words.len() == MAX_SEARCH_WORDS {
            break;
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            room: "general".into(),
            id: 3,
            author: "ann".into(),
            body: "hello @bob".into(),
            ts: format_ts(1_000),
            nonce: Some("n".into()),
            reply_to: Some(1),
            mentions: vec!["bob".into()],
            ..Default::default()
        }
    }

    fn react(by: &str, emoji: &str, on: bool) -> Change {
        Change::React {
            by: by.into(),
            emoji: emoji.into(),
            on,
        }
    }

    fn stored(v: Verdict) -> Message {
        match v {
            Verdict::Store(m) => m,
            other => panic!("expected a change to store, got {other:?}"),
        }
    }

    #[test]
    fn only_the_author_edits_and_the_same_body_is_no_change() {
        let m = message();
        let edit = |by: &str, body: &str| Change::Edit {
            by: by.into(),
            body: body.into(),
            mentions: vec![],
        };
        assert_eq!(
            decide(&m, &edit("bob", "x"), 2_000),
            Verdict::Answer(Changed::NotAuthor)
        );
        assert_eq!(
            decide(&m, &edit("ann", "hello @bob"), 2_000),
            Verdict::Answer(Changed::Unchanged(m.clone()))
        );
        let edited = stored(decide(&m, &edit("ann", "bye"), 2_000));
        assert_eq!(edited.body, "bye");
        assert!(edited.mentions.is_empty());
        assert_eq!(edited.edited, Some(format_ts(2_000)));
        assert_eq!(edited.reply_to, Some(1));
    }

    #[test]
    fn a_delete_keeps_id_author_and_time_only() {
        let mut m = message();
        m.reactions.insert("👍".into(), vec!["bob".into()]);
        m.edited = Some(format_ts(1_500));
        let by = |by: &str, admin| Change::Delete {
            by: by.into(),
            admin,
        };
        assert_eq!(
            decide(&m, &by("bob", false), 2_000),
            Verdict::Answer(Changed::NotAuthor)
        );
        let gone = stored(decide(&m, &by("bob", true), 2_000));
        assert_eq!((gone.id, gone.author.as_str()), (3, "ann"));
        assert_eq!(gone.ts, m.ts);
        assert!(gone.deleted && gone.body.is_empty());
        assert!(gone.mentions.is_empty() && gone.reactions.is_empty());
        assert_eq!((gone.reply_to, gone.edited.as_deref()), (None, None));
        assert_eq!(
            decide(&gone, &by("ann", false), 3_000),
            Verdict::Answer(Changed::Unchanged(gone.clone()))
        );
        assert_eq!(
            decide(&gone, &react("bob", "👍", true), 3_000),
            Verdict::Answer(Changed::Deleted)
        );
        let edit = Change::Edit {
            by: "ann".into(),
            body: "back".into(),
            mentions: vec![],
        };
        assert_eq!(
            decide(&gone, &edit, 3_000),
            Verdict::Answer(Changed::Deleted)
        );
    }

    #[test]
    fn reactions_keep_their_order_and_a_bound() {
        let m = message();
        let one = stored(decide(&m, &react("bob", "👍", true), 2_000));
        let two = stored(decide(&one, &react("cy", "👍", true), 2_000));
        assert_eq!(two.reactions["👍"], ["bob", "cy"]);
        assert_eq!(two.edited, None);
        assert_eq!(
            decide(&two, &react("cy", "👍", true), 2_000),
            Verdict::Answer(Changed::Unchanged(two.clone()))
        );
        assert_eq!(
            decide(&two, &react("cy", "🎉", false), 2_000),
            Verdict::Answer(Changed::Unchanged(two.clone()))
        );
        let back = stored(decide(&two, &react("bob", "👍", false), 2_000));
        assert_eq!(back.reactions["👍"], ["cy"]);
        let none = stored(decide(&back, &react("cy", "👍", false), 2_000));
        assert!(none.reactions.is_empty());

        let mut full = message();
        for i in 0..MAX_REACTIONS {
            full.reactions.insert(format!("e{i}"), vec!["bob".into()]);
        }
        assert_eq!(
            decide(&full, &react("cy", "new", true), 2_000),
            Verdict::Answer(Changed::TooManyReactions)
        );
        // One more name on an emoji already there is no new emoji.
        let more = stored(decide(&full, &react("cy", "e0", true), 2_000));
        assert_eq!(more.reactions["e0"], ["bob", "cy"]);
    }

    #[test]
    fn search_words_are_letters_and_digits_only() {
        assert_eq!(search_words("Café, l'été!"), ["Café", "l", "été"]);
        assert_eq!(
            search_words(r#""a" NEAR(b c) * -d AND (e) a"#),
            ["a", "NEAR", "b", "c", "d", "AND", "e"]
        );
        assert!(search_words(" \"*-() 👍 ").is_empty());
        // A decomposed accent stays in its word.
        assert_eq!(search_words("e\u{301}te\u{301}"), ["été"]);
        assert_eq!(search_words(&"ab ".repeat(5_000)), ["ab"]);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(search_words(&many).len(), MAX_SEARCH_WORDS);
    }
}
