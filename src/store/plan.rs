//! Batch planning: which messages of a batch are new, and which repeat a
//! send already stored or an earlier one of the same batch (same author and
//! nonce). Pure, so that both writers decide it the same way.

use super::NewMessage;
use crate::protocol::Message;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// What to do with one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Store it under a new id.
    New,
    /// Answer with `stored[i]`: an earlier send with its author and nonce.
    Stored(usize),
    /// Answer with what message `i` of this batch (an earlier one, with the
    /// same author and nonce) comes to.
    SameAs(usize),
}

/// One step per message of `batch`, in order. `stored` holds the messages
/// already stored under any (author, nonce) of the batch; a message without
/// a nonce is always new.
pub fn plan<'a>(batch: impl IntoIterator<Item = &'a NewMessage>, stored: &[Message]) -> Vec<Step> {
    let stored: HashMap<(&str, &str), usize> = stored
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some(((s.author.as_str(), s.nonce.as_deref()?), i)))
        .collect();
    let mut firsts: HashMap<(&str, &str), usize> = HashMap::new();
    batch
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let Some(nonce) = m.nonce.as_deref() else {
                return Step::New;
            };
            let key = (m.author.as_str(), nonce);
            if let Some(&s) = stored.get(&key) {
                return Step::Stored(s);
            }
            match firsts.entry(key) {
                Entry::Occupied(first) => Step::SameAs(*first.get()),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    Step::New
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(author: &str, nonce: Option<&str>) -> NewMessage {
        NewMessage {
            room: "general".into(),
            author: author.into(),
            body: "hi".into(),
            nonce: nonce.map(str::to_string),
            ..Default::default()
        }
    }

    fn stored(author: &str, nonce: &str) -> Message {
        Message {
            room: "general".into(),
            id: 7,
            author: author.into(),
            body: "hi".into(),
            ts: String::new(),
            nonce: Some(nonce.into()),
            ..Default::default()
        }
    }

    #[test]
    fn messages_without_nonce_are_always_new() {
        let batch = [new("ann", None), new("ann", None)];
        assert_eq!(plan(&batch, &[]), [Step::New, Step::New]);
    }

    #[test]
    fn a_repeat_in_the_batch_answers_as_the_first() {
        let batch = [
            new("ann", Some("a")),
            new("bob", Some("a")),
            new("ann", Some("a")),
            new("ann", Some("b")),
            new("ann", Some("a")),
        ];
        assert_eq!(
            plan(&batch, &[]),
            [
                Step::New,
                Step::New,
                Step::SameAs(0),
                Step::New,
                Step::SameAs(0)
            ]
        );
    }

    #[test]
    fn a_send_already_stored_is_answered_from_the_store() {
        let batch = [
            new("ann", Some("a")),
            new("ann", Some("a")),
            new("bob", Some("b")),
        ];
        let found = [stored("bob", "x"), stored("ann", "a")];
        assert_eq!(
            plan(&batch, &found),
            [Step::Stored(1), Step::Stored(1), Step::New]
        );
    }

    #[test]
    fn the_nonce_belongs_to_its_author() {
        let batch = [new("bob", Some("a"))];
        assert_eq!(plan(&batch, &[stored("ann", "a")]), [Step::New]);
    }
}
