//! The order of a room's changes (edits, deletions, reactions): each has
//! the room's next revision, and members get them strictly in revision
//! order, never before the message they change.
//!
//! Unlike message ids, revisions may go missing for good: the store keeps
//! only a message's last revision, so a change superseded before it reached
//! this node is never read back. Reading the store says up to which
//! revision everything is known ([`Revisions::cover`]); missing revisions at
//! or below that are not waited for.

use crate::protocol::Message;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// The change sequencer of one room; lives in the room's state, under its lock.
#[derive(Debug, Default)]
pub struct Revisions {
    /// The last revision handed to members; `None` until read from the store.
    last: Option<i64>,
    /// Every revision at or below this is known: those missing are superseded.
    covered: i64,
    /// Changes that wait for a missing revision, or for their message.
    pending: BTreeMap<i64, Message>,
    /// Since when a change has waited.
    pub waiting_since: Option<Instant>,
}

impl Revisions {
    /// The last revision handed to members, if known.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// Sets the starting point once the store has said where the room is.
    pub fn init(&mut self, rev: i64) {
        if self.last.is_none() {
            self.last = Some(rev);
            self.covered = self.covered.max(rev);
        }
    }

    /// Takes a change from this node or another.
    pub fn take(&mut self, rev: i64, message: Message) {
        if self.last.is_some_and(|l| rev <= l) {
            return; // already handed out, or superseded
        }
        self.pending.insert(rev, message);
    }

    /// Everything up to `rev` was read from the store and taken: revisions
    /// still missing below it will never come.
    pub fn cover(&mut self, rev: i64) {
        self.covered = self.covered.max(rev);
    }

    /// The changes that may go to members now that messages up to
    /// `delivered` have, in revision order.
    pub fn ready(&mut self, delivered: Option<i64>) -> Vec<(i64, Message)> {
        let mut out = Vec::new();
        while let Some(last) = self.last {
            let Some((&rev, msg)) = self.pending.first_key_value() else {
                break;
            };
            if rev <= last {
                self.pending.pop_first();
                continue;
            }
            let next = rev == last + 1 || rev <= self.covered;
            if !next || delivered.is_none_or(|d| msg.id > d) {
                break;
            }
            if let Some((rev, msg)) = self.pending.pop_first() {
                self.last = Some(rev);
                out.push((rev, msg));
            }
        }
        self.waiting_since = match (self.pending.is_empty(), self.waiting_since) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, since) => since,
        };
        out
    }

    /// Gives up waiting: what is pending goes in order, missing revisions
    /// before it skipped (the store had none of them).
    pub fn skip(&mut self) {
        if let Some(&first) = self.pending.keys().next() {
            self.covered = self.covered.max(first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: i64, body: &str) -> Message {
        Message {
            room: "general".into(),
            id,
            body: body.into(),
            ..Message::default()
        }
    }

    fn revs(out: &[(i64, Message)]) -> Vec<i64> {
        out.iter().map(|(r, _)| *r).collect()
    }

    #[tokio::test]
    async fn changes_go_in_revision_order_and_wait_for_gaps() {
        let mut r = Revisions::default();
        r.take(2, change(1, "b"));
        assert!(r.ready(Some(10)).is_empty(), "the start is not known yet");
        r.init(0);
        r.take(3, change(1, "c"));
        assert!(r.ready(Some(10)).is_empty(), "1 is missing");
        assert!(r.waiting_since.is_some());
        r.take(1, change(2, "a"));
        assert_eq!(revs(&r.ready(Some(10))), [1, 2, 3]);
        assert!(r.waiting_since.is_none());
        r.take(3, change(1, "again"));
        assert!(r.ready(Some(10)).is_empty(), "a revision goes once");
    }

    #[tokio::test]
    async fn a_change_waits_for_its_message() {
        let mut r = Revisions::default();
        r.init(5);
        r.take(6, change(12, "edited"));
        assert!(r.ready(Some(11)).is_empty());
        assert_eq!(revs(&r.ready(Some(12))), [6]);
    }

    #[tokio::test]
    async fn superseded_revisions_are_not_waited_for_once_covered() {
        let mut r = Revisions::default();
        r.init(0);
        // Revisions 1 and 2 changed message 4 before this node heard of
        // them; the store gives its last state, at 3.
        r.take(3, change(4, "latest"));
        r.take(5, change(4, "later"));
        assert!(r.ready(Some(9)).is_empty());
        r.cover(3);
        assert_eq!(revs(&r.ready(Some(9))), [3]);
        r.skip();
        assert_eq!(revs(&r.ready(Some(9))), [5]);
    }
}
