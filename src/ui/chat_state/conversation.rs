//! Conversations (version 1.1): replies, reactions, edits and deletions,
//! @mentions, and the room revisions that let a page come back without
//! missing a change. Methods of [`ChatState`], kept apart from the rest.

use super::{Access, ChatState, Delivery, Line, Status};
use crate::protocol::{ClientFrame, ErrorCode, Message, clean_caption};

/// Most pages of history a reply's quote loads to find its original.
pub const MAX_SEEK_PAGES: u32 = 20;
/// Most names the mention list offers.
pub const MAX_CANDIDATES: usize = 8;

/// A change to a message the person asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Edit,
    Delete,
    React,
}

/// Whether `mentions` name `me` (names compare without case, as the
/// server finds them).
pub fn mentions_me(mentions: &[String], me: Option<&str>) -> bool {
    let Some(me) = me else { return false };
    let me = me.to_lowercase();
    mentions.iter().any(|m| m.to_lowercase() == me)
}

/// Messages of others after `last_read` among `lines` that mention `me`.
pub fn unread_mentions(last_read: Option<i64>, lines: &[Line], me: Option<&str>) -> usize {
    let Some(read) = last_read else { return 0 };
    lines
        .iter()
        .filter(|l| {
            l.id.is_some_and(|id| id > read)
                && !l.deleted
                && Some(l.author.as_str()) != me
                && mentions_me(&l.mentions, me)
        })
        .count()
}

/// Whether `emoji` may be sent as a reaction: one short run of
/// non-letters, no spaces (the server has the last word).
fn looks_like_emoji(emoji: &str) -> bool {
    let n = emoji.chars().count();
    (1..=16).contains(&n)
        && !emoji
            .chars()
            .any(|c| c.is_whitespace() || c.is_ascii_alphanumeric() || c.is_control())
}

impl ChatState {
    fn line(&self, room: &str, id: i64) -> Option<&Line> {
        self.rooms
            .get(room)?
            .lines
            .iter()
            .find(|l| l.id == Some(id))
    }

    /// Whether the person may edit this line: their own, stored, not deleted.
    pub fn may_edit(&self, line: &Line) -> bool {
        line.id.is_some()
            && !line.deleted
            && line.delivery == Delivery::Stored
            && self.name.as_deref() == Some(line.author.as_str())
    }

    /// Whether the person may delete this line: their own, or any as an admin.
    pub fn may_delete(&self, line: &Line) -> bool {
        line.id.is_some()
            && !line.deleted
            && (self.may_edit(line) || (self.admin && self.signed_in))
    }

    /// Sets (or, with `None`, clears) the message the composer answers.
    pub fn set_reply(&mut self, room: &str, id: Option<i64>) {
        let ok = id.is_none_or(|id| self.line(room, id).is_some_and(|l| !l.deleted));
        if ok {
            self.room_mut(room).reply_to = id;
        }
    }

    /// Opens one of the person's messages for editing; whether it opened.
    pub fn start_edit(&mut self, room: &str, id: i64) -> bool {
        let ok = self.line(room, id).is_some_and(|l| self.may_edit(l));
        if ok {
            self.room_mut(room).editing = Some(id);
        }
        ok
    }

    /// Opens the person's last message in the room for editing (the
    /// composer's Up arrow); whether there was one.
    pub fn edit_last(&mut self, room: &str) -> bool {
        let last = self.rooms.get(room).and_then(|r| {
            r.lines
                .iter()
                .rev()
                .find(|l| self.may_edit(l))
                .and_then(|l| l.id)
        });
        last.is_some_and(|id| self.start_edit(room, id))
    }

    /// Closes the edit without saving.
    pub fn cancel_edit(&mut self, room: &str) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.editing = None;
        }
    }

    /// Saves the message being edited: an `edit` frame when the body
    /// changed. The line shows the new body when the server's `changed`
    /// comes.
    pub fn save_edit(&mut self, room: &str, body: &str) -> Vec<ClientFrame> {
        let Some(id) = self.rooms.get(room).and_then(|r| r.editing) else {
            return Vec::new();
        };
        let files = self.line(room, id).map_or(0, |l| l.attachments.len());
        let Ok(body) = clean_caption(body, files) else {
            return Vec::new();
        };
        let same = self.line(room, id).is_none_or(|l| l.body == body);
        self.cancel_edit(room);
        if same {
            return Vec::new();
        }
        self.ask_change(
            room,
            Change::Edit,
            ClientFrame::Edit {
                room: room.to_string(),
                id,
                body: body.to_string(),
            },
        )
    }

    /// Deletes a message (asked to confirm before).
    pub fn delete(&mut self, room: &str, id: i64) -> Vec<ClientFrame> {
        if !self.line(room, id).is_some_and(|l| self.may_delete(l)) {
            return Vec::new();
        }
        if let Some(r) = self.rooms.get_mut(room)
            && r.editing == Some(id)
        {
            r.editing = None;
        }
        self.ask_change(
            room,
            Change::Delete,
            ClientFrame::Delete {
                room: room.to_string(),
                id,
            },
        )
    }

    /// Adds the person's reaction to a message, or takes it back when they
    /// had reacted with that emoji already.
    pub fn toggle_reaction(&mut self, room: &str, id: i64, emoji: &str) -> Vec<ClientFrame> {
        let emoji = emoji.trim();
        let Some(me) = self.name.clone() else {
            return Vec::new();
        };
        if !looks_like_emoji(emoji) {
            self.refused = Some((Change::React, ErrorCode::BadRequest));
            return Vec::new();
        }
        let Some(line) = self.line(room, id).filter(|l| !l.deleted) else {
            return Vec::new();
        };
        let mine = line
            .reactions
            .get(emoji)
            .is_some_and(|who| who.contains(&me));
        self.ask_change(
            room,
            Change::React,
            ClientFrame::React {
                room: room.to_string(),
                id,
                emoji: emoji.to_string(),
                on: !mine,
            },
        )
    }

    /// Sends a change if the room is live; else says at once it cannot.
    fn ask_change(&mut self, room: &str, kind: Change, frame: ClientFrame) -> Vec<ClientFrame> {
        let live = self.status == Status::Connected
            && self
                .rooms
                .get(room)
                .is_some_and(|r| r.access == Access::Joined);
        if !live {
            self.refused = Some((kind, ErrorCode::Unavailable));
            return Vec::new();
        }
        self.refused = None;
        self.asked = Some((room.to_string(), kind));
        vec![frame]
    }

    /// Hides the last refused change.
    pub fn dismiss_refused(&mut self) {
        self.refused = None;
    }

    /// Takes an error as the refusal of the change last asked, when one is
    /// waiting for its answer; whether it was.
    pub(super) fn change_refused(&mut self, code: ErrorCode, room: Option<&str>) -> bool {
        let Some((asked_room, kind)) = self.asked.clone() else {
            return false;
        };
        let about = matches!(
            code,
            ErrorCode::Forbidden
                | ErrorCode::NotFound
                | ErrorCode::BadRequest
                | ErrorCode::TooLarge
                | ErrorCode::RateLimited
                | ErrorCode::Unavailable
        );
        if !about || room.is_some_and(|r| r != asked_room) {
            return false;
        }
        self.asked = None;
        self.refused = Some((kind, code));
        true
    }

    /// A message changed: the line of that id takes its new form (a line
    /// not shown stays unshown); the room's revision moves on.
    pub(super) fn on_changed(&mut self, room: &str, rev: i64, m: Message) {
        if self.asked.as_ref().is_some_and(|(r, _)| r == room) {
            self.asked = None;
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if !matches!(r.access, Access::Joined | Access::Joining) {
            return;
        }
        if r.rev.is_none_or(|old| old < rev) {
            r.rev = Some(rev);
        }
        let id = m.id;
        if let Some(l) = r.lines.iter_mut().find(|l| l.id == Some(id)) {
            l.update(m);
        }
        let gone = r.lines.iter().any(|l| l.id == Some(id) && l.deleted);
        if gone {
            if r.editing == Some(id) {
                r.editing = None;
            }
            if r.reply_to == Some(id) {
                r.reply_to = None;
            }
        }
    }

    /// After `joined`: what changed while the page was away, and the
    /// revision the room now stands at.
    pub(super) fn on_joined_changes(
        &mut self,
        room: &str,
        changed: Vec<Message>,
        rev: Option<i64>,
    ) {
        if self
            .rooms
            .get(room)
            .is_none_or(|r| r.access != Access::Joined)
        {
            return;
        }
        for m in changed {
            let at = self.rooms.get(room).and_then(|r| r.rev).unwrap_or(0);
            self.on_changed(room, at, m);
        }
        if let Some(r) = self.rooms.get_mut(room)
            && rev.is_some()
        {
            r.rev = rev;
        }
    }

    /// Brings a message into view: shown already, it is marked found;
    /// else older pages are asked for until it is (at most
    /// [`MAX_SEEK_PAGES`]).
    pub fn seek(&mut self, room: &str, id: i64) -> Vec<ClientFrame> {
        let shown = self.line(room, id).is_some();
        let Some(r) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        if shown {
            r.seeking = Some((id, None));
            return Vec::new();
        }
        if r.first_id().is_some_and(|first| id > first) {
            // Within what is shown, and not there: nothing older holds it.
            return Vec::new();
        }
        r.seeking = Some((id, Some(0)));
        self.seek_further(room)
    }

    /// The message sought was brought into view: stop seeking.
    pub fn sought(&mut self, room: &str) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.seeking = None;
        }
    }

    /// While seeking a message not shown: found, or the next page.
    pub(super) fn seek_further(&mut self, room: &str) -> Vec<ClientFrame> {
        let Some(r) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        let Some((id, Some(pages))) = r.seeking else {
            return Vec::new();
        };
        if r.lines.iter().any(|l| l.id == Some(id)) {
            r.seeking = Some((id, None));
            return Vec::new();
        }
        if pages >= MAX_SEEK_PAGES || !r.more {
            r.seeking = None;
            return Vec::new();
        }
        let out = self.load_older(room);
        let Some(r) = self.rooms.get_mut(room) else {
            return out;
        };
        if out.is_empty() && !r.loading_older {
            r.seeking = None;
        } else if !out.is_empty() {
            r.seeking = Some((id, Some(pages + 1)));
        }
        out
    }

    /// The people the composer's `@` list offers for `query`: those online
    /// first, then others the page knows (members, recent authors), each
    /// with whether they are online. Not the person themself.
    pub fn mention_candidates(&self, room: &str, query: &str) -> Vec<(String, bool)> {
        let q = query.to_lowercase();
        let me = self.name.as_deref();
        let mut out: Vec<(String, bool)> = Vec::new();
        let Some(r) = self.rooms.get(room) else {
            return out;
        };
        let authors = r.lines.iter().rev().map(|l| &l.author);
        let online = r.online.iter().map(|n| (n, true));
        let others = r.members.iter().chain(authors).map(|n| (n, false));
        for (name, on) in online.chain(others) {
            if Some(name.as_str()) == me || out.iter().any(|(n, _)| n == name) {
                continue;
            }
            if name.to_lowercase().starts_with(&q) {
                out.push((name.clone(), on));
            }
        }
        out.truncate(MAX_CANDIDATES);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Resume, ServerFrame, UserInfo};
    use std::collections::BTreeMap;

    const TS: &str = "2026-11-21T10:15:30.123Z";

    fn msg(id: i64, author: &str, body: &str) -> Message {
        Message {
            room: "general".into(),
            id,
            author: author.into(),
            body: body.into(),
            ts: TS.into(),
            ..Default::default()
        }
    }

    /// `me` in `general`, joined, with these messages shown.
    fn live(me: &str, history: Vec<Message>, more: bool, rev: Option<i64>) -> ChatState {
        let mut s = ChatState::default();
        s.set_name(Some(me.into()), false);
        s.set_current("general");
        s.connecting();
        s.apply(
            ServerFrame::Welcome {
                user: UserInfo {
                    name: me.into(),
                    guest: true,
                    bot: false,
                    admin: false,
                },
                rooms: vec!["general".into()],
            },
            0.0,
        );
        s.apply(
            ServerFrame::Joined {
                room: "general".into(),
                online: vec![me.into(), "bob".into()],
                history,
                more,
                changed: Vec::new(),
                rev,
            },
            0.0,
        );
        s
    }

    fn line(s: &ChatState, id: i64) -> Line {
        s.line("general", id).cloned().expect("shown")
    }

    fn changed(rev: i64, m: Message) -> ServerFrame {
        ServerFrame::Changed {
            room: "general".into(),
            rev,
            message: m,
        }
    }

    fn refusal(code: ErrorCode) -> ServerFrame {
        ServerFrame::Error {
            code,
            message: "no".into(),
            nonce: None,
            room: Some("general".into()),
        }
    }

    #[test]
    fn lines_carry_replies_mentions_reactions_edits_and_deletions() {
        let mut m = msg(2, "bob", "hi @alice");
        m.reply_to = Some(1);
        m.mentions = vec!["alice".into()];
        m.reactions = BTreeMap::from([("👍".to_string(), vec!["carol".to_string()])]);
        m.edited = Some(TS.into());
        let mut gone = msg(3, "bob", "");
        gone.deleted = true;
        let s = live(
            "alice",
            vec![msg(1, "alice", "hello"), m, gone],
            false,
            Some(5),
        );
        let l = line(&s, 2);
        assert_eq!(l.reply_to, Some(1));
        assert_eq!(l.mentions, vec!["alice"]);
        assert_eq!(l.reactions["👍"], vec!["carol"]);
        assert_eq!(l.edited.as_deref(), Some(TS));
        assert!(line(&s, 3).deleted);
        assert_eq!(s.room("general").unwrap().rev, Some(5));
    }

    #[test]
    fn changed_replaces_the_line_in_place_and_moves_the_revision() {
        let mut s = live(
            "alice",
            vec![msg(1, "bob", "a"), msg(2, "bob", "b"), msg(3, "bob", "c")],
            false,
            Some(4),
        );
        let mut edited = msg(2, "bob", "b, edited");
        edited.edited = Some(TS.into());
        s.apply(changed(5, edited), 0.0);
        let r = s.room("general").unwrap();
        let ids: Vec<i64> = r.lines.iter().filter_map(|l| l.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(r.lines[1].body, "b, edited");
        assert_eq!(r.lines[1].edited.as_deref(), Some(TS));
        assert_eq!(r.rev, Some(5));
        // A change of a message not shown shows nothing, but is seen.
        s.apply(changed(6, msg(99, "bob", "old")), 0.0);
        let r = s.room("general").unwrap();
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.rev, Some(6));
        // An older revision does not take the room back.
        s.apply(changed(3, msg(1, "bob", "a2")), 0.0);
        assert_eq!(s.room("general").unwrap().rev, Some(6));
        // Rooms not joined are not changed.
        s.apply(
            ServerFrame::Changed {
                room: "random".into(),
                rev: 1,
                message: msg(1, "bob", "x"),
            },
            0.0,
        );
        assert!(s.room("random").is_none());
    }

    #[test]
    fn hello_resumes_with_the_revision_once_known() {
        let mut s = live("alice", vec![msg(7, "bob", "a")], false, None);
        s.on_disconnect();
        let ClientFrame::Hello { resume, .. } = s.hello() else {
            panic!("not a hello")
        };
        // Version 1's integer while no revision is known.
        assert_eq!(resume["general"], Resume::Id(7));
        let mut s = live("alice", vec![msg(7, "bob", "a")], false, Some(3));
        s.apply(changed(9, msg(7, "bob", "a2")), 0.0);
        s.on_disconnect();
        let ClientFrame::Hello { resume, .. } = s.hello() else {
            panic!("not a hello")
        };
        assert_eq!(resume["general"], Resume::At { id: 7, rev: 9 });
        assert_eq!(
            serde_json::to_string(&s.hello()).unwrap(),
            r#"{"type":"hello","name":"alice","resume":{"general":{"id":7,"rev":9}}}"#
        );
    }

    #[test]
    fn joined_after_a_resume_applies_what_changed_meanwhile() {
        let mut s = live(
            "alice",
            vec![msg(1, "bob", "a"), msg(2, "bob", "b")],
            false,
            Some(3),
        );
        s.on_disconnect();
        s.connecting();
        s.apply(
            ServerFrame::Welcome {
                user: UserInfo {
                    name: "alice".into(),
                    guest: true,
                    bot: false,
                    admin: false,
                },
                rooms: vec!["general".into()],
            },
            0.0,
        );
        let mut gone = msg(1, "bob", "");
        gone.deleted = true;
        let mut liked = msg(2, "bob", "b");
        liked.reactions = BTreeMap::from([("🎉".to_string(), vec!["carol".to_string()])]);
        s.apply(
            ServerFrame::Joined {
                room: "general".into(),
                online: vec![],
                history: vec![msg(3, "carol", "new")],
                more: false,
                changed: vec![gone, liked],
                rev: Some(8),
            },
            0.0,
        );
        assert!(line(&s, 1).deleted && line(&s, 1).body.is_empty());
        assert_eq!(line(&s, 2).reactions["🎉"], vec!["carol"]);
        assert_eq!(line(&s, 3).body, "new");
        assert_eq!(s.room("general").unwrap().rev, Some(8));
    }

    #[test]
    fn history_shows_messages_as_they_now_stand() {
        let mut s = live("alice", vec![msg(5, "bob", "a")], true, None);
        s.load_older("general");
        let mut now = msg(5, "bob", "a, edited");
        now.edited = Some(TS.into());
        s.apply(
            ServerFrame::History {
                room: "general".into(),
                messages: vec![msg(4, "bob", "z"), now],
                more: false,
            },
            0.0,
        );
        assert_eq!(line(&s, 5).body, "a, edited");
        assert_eq!(line(&s, 4).body, "z");
    }

    #[test]
    fn a_reply_is_sent_with_its_target_and_keeps_it_across_retries() {
        let mut s = live("alice", vec![msg(1, "bob", "question?")], false, None);
        s.set_reply("general", Some(1));
        assert_eq!(s.room("general").unwrap().reply_to, Some(1));
        // Cleared with ×.
        s.set_reply("general", None);
        assert_eq!(s.room("general").unwrap().reply_to, None);
        // A message not shown cannot be answered from here.
        s.set_reply("general", Some(42));
        assert_eq!(s.room("general").unwrap().reply_to, None);
        s.set_reply("general", Some(1));
        let out = s.send_message("answer", Vec::new(), "n-1".into());
        assert!(matches!(
            &out[..],
            [ClientFrame::Send { reply_to: Some(1), body, .. }] if body == "answer"
        ));
        // The composer answers nothing any more; the pending line does.
        assert_eq!(s.room("general").unwrap().reply_to, None);
        assert_eq!(s.room("general").unwrap().lines[1].reply_to, Some(1));
        // Refused, retried: the same target.
        s.apply(
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message: "slow".into(),
                nonce: Some("n-1".into()),
                room: Some("general".into()),
            },
            0.0,
        );
        let out = s.retry("general", "n-1");
        assert!(matches!(
            &out[..],
            [ClientFrame::Send {
                reply_to: Some(1),
                ..
            }]
        ));
        // After a reconnect, the outbox sends it again with its target.
        s.on_disconnect();
        s.connecting();
        s.apply(
            ServerFrame::Welcome {
                user: UserInfo {
                    name: "alice".into(),
                    guest: true,
                    bot: false,
                    admin: false,
                },
                rooms: vec![],
            },
            0.0,
        );
        let out = s.apply(
            ServerFrame::Joined {
                room: "general".into(),
                online: vec![],
                history: vec![],
                more: false,
                changed: vec![],
                rev: None,
            },
            0.0,
        );
        assert!(matches!(
            &out.send[..],
            [ClientFrame::Send {
                reply_to: Some(1),
                ..
            }]
        ));
    }

    #[test]
    fn edits_start_save_and_cancel_only_on_my_messages() {
        let mut s = live(
            "alice",
            vec![
                msg(1, "alice", "first"),
                msg(2, "alice", "tpyo"),
                msg(3, "bob", "theirs"),
            ],
            false,
            None,
        );
        assert!(!s.start_edit("general", 3));
        assert_eq!(s.room("general").unwrap().editing, None);
        // Up arrow: my last message.
        assert!(s.edit_last("general"));
        assert_eq!(s.room("general").unwrap().editing, Some(2));
        s.cancel_edit("general");
        assert_eq!(s.room("general").unwrap().editing, None);
        assert!(s.start_edit("general", 2));
        // Unchanged: nothing to send, and the edit closes.
        assert!(s.save_edit("general", " tpyo ").is_empty());
        assert_eq!(s.room("general").unwrap().editing, None);
        s.start_edit("general", 2);
        // Empty: refused here, the edit stays open.
        assert!(s.save_edit("general", "  ").is_empty());
        assert_eq!(s.room("general").unwrap().editing, Some(2));
        assert_eq!(
            s.save_edit("general", "typo\n"),
            vec![ClientFrame::Edit {
                room: "general".into(),
                id: 2,
                body: "typo".into()
            }]
        );
        assert_eq!(s.room("general").unwrap().editing, None);
        // Nothing saved without an open edit.
        assert!(s.save_edit("general", "x").is_empty());
        // Deleted, it is no longer my last message to edit.
        let mut gone = msg(2, "alice", "");
        gone.deleted = true;
        s.apply(changed(1, gone), 0.0);
        s.edit_last("general");
        assert_eq!(s.room("general").unwrap().editing, Some(1));
        // A message being edited that gets deleted closes its edit.
        let mut gone = msg(1, "alice", "");
        gone.deleted = true;
        s.apply(changed(2, gone), 0.0);
        assert_eq!(s.room("general").unwrap().editing, None);
        assert!(!s.edit_last("general"));
    }

    #[test]
    fn delete_is_for_the_author_or_an_admin() {
        let mut s = live(
            "alice",
            vec![msg(1, "alice", "mine"), msg(2, "bob", "theirs")],
            false,
            None,
        );
        assert!(s.delete("general", 2).is_empty());
        assert_eq!(
            s.delete("general", 1),
            vec![ClientFrame::Delete {
                room: "general".into(),
                id: 1
            }]
        );
        s.signed_in = true;
        s.admin = true;
        assert!(s.may_delete(&line(&s, 2)));
        assert!(!s.may_edit(&line(&s, 2)));
        assert_eq!(s.delete("general", 2).len(), 1);
    }

    #[test]
    fn a_reaction_toggles_on_unless_already_mine() {
        let mut liked = msg(1, "bob", "news");
        liked.reactions = BTreeMap::from([("👍".to_string(), vec!["alice".to_string()])]);
        let mut s = live("alice", vec![liked], false, None);
        assert_eq!(
            s.toggle_reaction("general", 1, "👍"),
            vec![ClientFrame::React {
                room: "general".into(),
                id: 1,
                emoji: "👍".into(),
                on: false
            }]
        );
        assert_eq!(
            s.toggle_reaction("general", 1, " 🎉 "),
            vec![ClientFrame::React {
                room: "general".into(),
                id: 1,
                emoji: "🎉".into(),
                on: true
            }]
        );
        // Not an emoji: said at once, nothing sent.
        assert!(s.toggle_reaction("general", 1, "lol").is_empty());
        assert_eq!(s.refused, Some((Change::React, ErrorCode::BadRequest)));
        // Not connected: said at once.
        s.on_disconnect();
        assert!(s.toggle_reaction("general", 1, "👍").is_empty());
        assert_eq!(s.refused, Some((Change::React, ErrorCode::Unavailable)));
    }

    #[test]
    fn a_refused_change_shows_what_was_refused() {
        let mut s = live("alice", vec![msg(1, "bob", "news")], false, None);
        s.toggle_reaction("general", 1, "👍");
        s.apply(refusal(ErrorCode::BadRequest), 0.0);
        assert_eq!(s.refused, Some((Change::React, ErrorCode::BadRequest)));
        assert_eq!(s.notice, None);
        s.dismiss_refused();
        assert_eq!(s.refused, None);
        // Answered by `changed`: a later error is not about it.
        s.toggle_reaction("general", 1, "👍");
        let mut liked = msg(1, "bob", "news");
        liked.reactions = BTreeMap::from([("👍".to_string(), vec!["alice".to_string()])]);
        s.apply(changed(1, liked), 0.0);
        s.apply(refusal(ErrorCode::Forbidden), 0.0);
        assert_eq!(s.refused, None);
        assert_eq!(s.notice, Some(ErrorCode::Forbidden));
        // An admin-only deletion refused.
        s.signed_in = true;
        s.admin = true;
        s.delete("general", 1);
        s.apply(refusal(ErrorCode::Forbidden), 0.0);
        assert_eq!(s.refused, Some((Change::Delete, ErrorCode::Forbidden)));
    }

    #[test]
    fn seeking_a_reply_original_loads_older_pages_until_it_shows() {
        let page = |from: i64| (from..from + 2).map(|i| msg(i, "bob", "x")).collect();
        let mut s = live("alice", page(100), true, None);
        // Shown already: found at once.
        assert!(s.seek("general", 101).is_empty());
        assert_eq!(s.room("general").unwrap().seeking, Some((101, None)));
        s.sought("general");
        assert_eq!(s.room("general").unwrap().seeking, None);
        // Older: one page after another.
        let out = s.seek("general", 95);
        assert!(matches!(
            &out[..],
            [ClientFrame::History {
                before: Some(100),
                ..
            }]
        ));
        let history = |messages, more| ServerFrame::History {
            room: "general".into(),
            messages,
            more,
        };
        let out = s.apply(history(page(98), true), 0.0);
        assert!(matches!(
            &out.send[..],
            [ClientFrame::History {
                before: Some(98),
                ..
            }]
        ));
        let out = s.apply(history(page(95), true), 0.0);
        assert!(out.send.is_empty());
        assert_eq!(s.room("general").unwrap().seeking, Some((95, None)));
        // Within what is shown and missing: nothing to load.
        s.sought("general");
        assert!(s.seek("general", 97).is_empty());
        assert_eq!(s.room("general").unwrap().seeking, None);
    }

    #[test]
    fn seeking_gives_up_after_the_last_page_or_the_bound() {
        let mut s = live("alice", vec![msg(10_000, "bob", "x")], true, None);
        s.seek("general", 1);
        let mut first = 10_000;
        for n in 1..=MAX_SEEK_PAGES {
            first -= 1;
            let out = s.apply(
                ServerFrame::History {
                    room: "general".into(),
                    messages: vec![msg(first, "bob", "x")],
                    more: true,
                },
                0.0,
            );
            assert_eq!(out.send.is_empty(), n == MAX_SEEK_PAGES, "page {n}");
        }
        assert_eq!(s.room("general").unwrap().seeking, None);
        // The start of the room reached: gives up too.
        let mut s = live("alice", vec![msg(10, "bob", "x")], true, None);
        s.seek("general", 1);
        s.apply(
            ServerFrame::History {
                room: "general".into(),
                messages: vec![msg(9, "bob", "x")],
                more: false,
            },
            0.0,
        );
        assert_eq!(s.room("general").unwrap().seeking, None);
    }

    #[test]
    fn unread_mentions_count_apart() {
        let mut s = live("alice", vec![msg(1, "bob", "hi")], false, None);
        assert_eq!(s.room("general").unwrap().last_read, Some(1));
        let mut m = msg(2, "bob", "@Alice look");
        m.mentions = vec!["Alice".into()];
        s.apply(ServerFrame::Message(m), 0.0);
        s.apply(ServerFrame::Message(msg(3, "bob", "plain")), 0.0);
        let mut mine = msg(4, "alice", "@alice me");
        mine.mentions = vec!["alice".into()];
        s.apply(ServerFrame::Message(mine), 0.0);
        let r = s.room("general").unwrap();
        assert_eq!(r.unread(Some("alice")), 2);
        assert_eq!(r.unread_mentions(Some("alice")), 1);
        assert!(mentions_me(&r.lines[1].mentions, Some("alice")));
        // Deleted, it no longer counts.
        let mut gone = msg(2, "bob", "");
        gone.deleted = true;
        s.apply(changed(1, gone), 0.0);
        assert_eq!(s.room("general").unwrap().unread_mentions(Some("alice")), 0);
        s.mark_read("general", i64::MAX);
        assert_eq!(s.room("general").unwrap().unread_mentions(Some("alice")), 0);
    }

    #[test]
    fn mention_candidates_put_those_online_first() {
        let mut s = live(
            "alice",
            vec![
                msg(1, "dave", "a"),
                msg(2, "bea", "b"),
                msg(3, "alice", "c"),
            ],
            false,
            None,
        );
        let names =
            |s: &ChatState, q: &str| -> Vec<(String, bool)> { s.mention_candidates("general", q) };
        assert_eq!(
            names(&s, ""),
            vec![
                ("bob".to_string(), true),
                ("bea".to_string(), false),
                ("dave".to_string(), false)
            ]
        );
        assert_eq!(
            names(&s, "B"),
            vec![("bob".into(), true), ("bea".into(), false)]
        );
        assert!(names(&s, "zz").is_empty());
        // Not oneself.
        assert!(names(&s, "ali").is_empty());
        s.room_mut("general").members = vec!["carl".into()];
        assert_eq!(names(&s, "c"), vec![("carl".to_string(), false)]);
    }
}
