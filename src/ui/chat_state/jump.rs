//! Opening a room at one message (a search result, `/r/{room}?around=ID`):
//! when the message is not among the lines shown, the page asks `history`
//! pages before the first line until it is, within a bound. The page
//! scrolls to it once [`ChatState::jump_found`] says it is there.

use super::{Access, ChatState, Status};
use crate::protocol::ClientFrame;

/// Most `history` pages asked for one jump.
pub const JUMP_PAGES: u32 = 40;
/// Messages per `history` page when jumping (the most the server gives).
pub const JUMP_PAGE: u32 = 200;

/// The message the page is to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub room: String,
    pub id: i64,
    /// `history` pages still to ask before giving up.
    pages_left: u32,
    /// The room's history was read back past the id, or as far as the
    /// bound allows, without finding it (deleted, or too old).
    pub missing: bool,
}

impl ChatState {
    /// Opens `room` at message `id`: the frames that load it, if any. The
    /// room need not be joined yet: its `joined` continues the jump.
    pub fn jump_to(&mut self, room: &str, id: i64) -> Vec<ClientFrame> {
        let same = self
            .jump
            .as_ref()
            .is_some_and(|j| j.room == room && j.id == id && !j.missing);
        if !same {
            self.jump = Some(Jump {
                room: room.to_string(),
                id,
                pages_left: JUMP_PAGES,
                missing: false,
            });
        }
        self.continue_jump()
    }

    /// Whether the message of the jump is among its room's lines.
    pub fn jump_found(&self) -> bool {
        self.jump.as_ref().is_some_and(|j| {
            self.rooms
                .get(&j.room)
                .is_some_and(|r| r.lines.iter().any(|l| l.id == Some(j.id)))
        })
    }

    /// The page showed the message (or gave up): the jump is over.
    pub fn jump_done(&mut self) {
        self.jump = None;
    }

    /// The next `history` page the jump needs, if it needs one now; called
    /// again whenever a page or the room's `joined` comes.
    pub(super) fn continue_jump(&mut self) -> Vec<ClientFrame> {
        if self.jump_found() {
            return Vec::new();
        }
        let connected = self.status == Status::Connected;
        let Some(jump) = self.jump.as_mut().filter(|j| !j.missing) else {
            return Vec::new();
        };
        let Some(room) = self.rooms.get_mut(&jump.room) else {
            return Vec::new();
        };
        if !connected || room.access != Access::Joined || room.loading_older {
            // `joined`, or the page already asked, brings the next chance.
            return Vec::new();
        }
        let before = match room.first_id() {
            Some(first) if room.more && first > jump.id && jump.pages_left > 0 => first,
            _ => {
                jump.missing = true;
                return Vec::new();
            }
        };
        jump.pages_left -= 1;
        room.loading_older = true;
        vec![ClientFrame::History {
            room: jump.room.clone(),
            before: Some(before),
            limit: Some(JUMP_PAGE),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Message, ServerFrame, UserInfo};

    fn msg(room: &str, id: i64) -> Message {
        Message {
            room: room.into(),
            id,
            author: "bob".into(),
            body: format!("m{id}"),
            ts: "2026-11-21T10:15:30.123Z".into(),
            ..Default::default()
        }
    }

    fn page(room: &str, ids: std::ops::RangeInclusive<i64>) -> Vec<Message> {
        ids.map(|id| msg(room, id)).collect()
    }

    fn history(room: &str, before: i64) -> ClientFrame {
        ClientFrame::History {
            room: room.into(),
            before: Some(before),
            limit: Some(JUMP_PAGE),
        }
    }

    /// alice, connected, `general` in view and joining.
    fn connected() -> ChatState {
        let mut s = ChatState::default();
        s.set_name(Some("alice".into()), false);
        s.set_current("general");
        s.connecting();
        let welcome = ServerFrame::Welcome {
            user: UserInfo {
                name: "alice".into(),
                guest: true,
                bot: false,
                admin: false,
            },
            rooms: vec!["general".into()],
        };
        s.apply(welcome, 0.0);
        s
    }

    fn joined(s: &mut ChatState, history: Vec<Message>, more: bool) -> Vec<ClientFrame> {
        let frame = ServerFrame::Joined {
            room: "general".into(),
            online: vec!["alice".into()],
            history,
            more,
            changed: Vec::new(),
            rev: None,
        };
        s.apply(frame, 0.0).send
    }

    fn older(s: &mut ChatState, messages: Vec<Message>, more: bool) -> Vec<ClientFrame> {
        let frame = ServerFrame::History {
            room: "general".into(),
            messages,
            more,
        };
        s.apply(frame, 0.0).send
    }

    #[test]
    fn a_message_shown_needs_nothing() {
        let mut s = connected();
        joined(&mut s, page("general", 951..=1000), true);
        assert!(s.jump_to("general", 960).is_empty());
        assert!(s.jump_found());
        s.jump_done();
        assert_eq!(s.jump, None);
    }

    #[test]
    fn older_pages_come_until_the_message_is_there() {
        let mut s = connected();
        joined(&mut s, page("general", 951..=1000), true);
        assert_eq!(s.jump_to("general", 600), vec![history("general", 951)]);
        assert!(!s.jump_found());
        // Asking again while the page is on its way asks nothing more.
        assert!(s.jump_to("general", 600).is_empty());
        assert_eq!(
            older(&mut s, page("general", 751..=950), true),
            vec![history("general", 751)]
        );
        assert!(older(&mut s, page("general", 551..=750), true).is_empty());
        assert!(s.jump_found());
        assert!(!s.with_room("general", |r| r.loading_older));
    }

    #[test]
    fn the_room_joined_later_continues_the_jump() {
        let mut s = connected();
        // Before `joined`: nothing to ask yet.
        assert!(s.jump_to("general", 10).is_empty());
        assert_eq!(
            joined(&mut s, page("general", 951..=1000), true),
            vec![history("general", 951)]
        );
    }

    #[test]
    fn a_message_not_in_the_history_is_missing() {
        let mut s = connected();
        joined(&mut s, page("general", 951..=1000), true);
        s.jump_to("general", 5);
        // The beginning of the room, without it (deleted, say).
        assert!(older(&mut s, page("general", 6..=950), false).is_empty());
        assert!(s.jump.as_ref().is_some_and(|j| j.missing));
        assert!(!s.jump_found());
        // An id between lines shown (not there) is missing at once.
        let mut s = connected();
        joined(&mut s, vec![msg("general", 1), msg("general", 3)], false);
        assert!(s.jump_to("general", 2).is_empty());
        assert!(s.jump.as_ref().is_some_and(|j| j.missing));
    }

    #[test]
    fn jumps_are_bounded() {
        let mut s = connected();
        let mut first = 100_000;
        joined(&mut s, page("general", first..=first + 49), true);
        let mut asked = s.jump_to("general", 1);
        let mut pages = 0;
        while let [ClientFrame::History { before, .. }] = asked.as_slice() {
            assert_eq!(*before, Some(first));
            pages += 1;
            first -= 200;
            asked = older(&mut s, page("general", first..=first + 199), true);
        }
        assert_eq!(pages, JUMP_PAGES);
        assert!(s.jump.as_ref().is_some_and(|j| j.missing));
    }
}
