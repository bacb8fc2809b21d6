//! Messages that change (edit, delete, react) and finding messages again
//! (search, the page around one).
//!
//! A change is admitted like a send (joined room, valid input, the same
//! allowance), applied by the store, which decides the rules that must hold
//! at that moment (author, deleted) and gives it the room's next revision,
//! then fanned out to the room's members in revision order on every node.

use super::{Caller, ConnId, Hub, HubError, admission, lock};
use crate::backplane::Notice;
use crate::protocol::{self, Invalid, Message, SearchPage};
use crate::store::{Around, Change, Changed, SearchAfter};
use std::sync::Arc;

/// Most rooms a search looks in (public rooms, most recently active
/// first, then the caller's private and direct rooms).
const SEARCHED_ROOMS: usize = 10_000;
/// Most results one search page carries.
const MAX_SEARCH_LIMIT: usize = 50;

/// What a person asks to change in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alter {
    Edit(String),
    Delete,
    React { emoji: String, on: bool },
}

/// Checks that a reaction is one emoji (with its skin tone or variation
/// selector, if any) and returns it as sent.
pub fn check_emoji(emoji: &str) -> Result<&str, Invalid> {
    // The longest emoji sequences (families, flags of regions) are under
    // 40 bytes; a longer string is not one emoji, whatever it holds.
    if emoji.is_empty() || emoji.len() > 40 {
        return Err(Invalid::Emoji);
    }
    let known = emojis::get(emoji).is_some()
        || emojis::get(emoji.trim_end_matches('\u{fe0f}')).is_some()
        || emojis::get(&format!("{emoji}\u{fe0f}")).is_some();
    if known {
        Ok(emoji)
    } else {
        Err(Invalid::Emoji)
    }
}

impl Hub {
    /// Admits and applies a change to message `id` of a room the
    /// connection joined; members (the sender's connections included) get
    /// the `changed` frame. A change that changes nothing (a reaction
    /// already there, the same text) is no error and sends nothing.
    pub async fn alter(
        self: &Arc<Self>,
        caller: Caller<'_>,
        conn: ConnId,
        room: &str,
        id: i64,
        alter: Alter,
    ) -> Result<(), HubError> {
        if !self.is_member(conn, room) {
            return Err(HubError::NotJoined(room.to_string()));
        }
        let by = caller.actor.name.clone();
        let change = match alter {
            Alter::Edit(body) => {
                let body = match protocol::clean_body(&body) {
                    Ok(b) => b.to_string(),
                    // A message with files may lose its caption.
                    Err(protocol::Invalid::EmptyBody)
                        if self
                            .store
                            .message(room, id)
                            .await?
                            .is_some_and(|m| !m.attachments.is_empty()) =>
                    {
                        String::new()
                    }
                    Err(e) => return Err(e.into()),
                };
                Change::Edit {
                    by,
                    mentions: protocol::find_mentions(&body),
                    body,
                }
            }
            Alter::Delete => Change::Delete {
                by,
                admin: self.admission.is_admin(caller.actor).await?,
            },
            Alter::React { emoji, on } => Change::React {
                by,
                emoji: check_emoji(&emoji)?.to_string(),
                on,
            },
        };
        admission::take_send(
            &self.admission,
            self.backplane.as_ref(),
            &self.metrics,
            caller,
        )
        .await?;
        match self.store.change(room, id, change).await? {
            Changed::Done { rev, message } => {
                self.metrics.changes.inc();
                self.deliver_change(room, rev, message.clone());
                self.backplane.publish_notice(&Notice::Changed {
                    room: room.to_string(),
                    rev,
                    message: Box::new(message),
                });
                Ok(())
            }
            Changed::Unchanged(_) => Ok(()),
            Changed::NotFound => Err(HubError::NoMessage(id)),
            Changed::NotAuthor => Err(HubError::NotAuthor),
            Changed::Deleted => Err(HubError::MessageDeleted),
            Changed::TooManyReactions => Err(HubError::TooManyReactions),
        }
    }

    /// Hands a stored change to this node's members of the room, in
    /// revision order.
    pub(super) fn deliver_change(&self, room: &str, rev: i64, message: Message) {
        let Some(state) = self.existing_room(room) else {
            return; // nobody here is in that room
        };
        let n = lock(&state).deliver_change(rev, message);
        self.metrics.deliveries.inc_by(n as u64);
    }

    /// Reads the room's changes after the last one delivered here from the
    /// store and delivers them: after a lost event, or a change that
    /// waited too long for a missing revision.
    pub(super) async fn fill_changes(&self, room: &str) {
        let Some(state) = self.existing_room(room) else {
            return;
        };
        let Some(after) = lock(&state).revs.last() else {
            return; // a join is reading the store right now
        };
        match self
            .store
            .changes(room, after, i64::MAX, super::MAX_RESUME)
            .await
        {
            Ok(changes) => {
                let mut st = lock(&state);
                match changes.last().map(|(rev, _)| *rev) {
                    Some(top) => st.revs.cover(top),
                    // The store has none of the revisions waited for.
                    None => st.revs.skip(),
                }
                let mut n = 0;
                for (rev, message) in changes {
                    n += st.deliver_change(rev, message);
                }
                n += st.drain_changes();
                self.metrics.deliveries.inc_by(n as u64);
            }
            Err(e) => tracing::warn!(room, error = %e, "reading changes failed"),
        }
    }

    /// Messages matching `query` in the rooms the actor may read (or in
    /// `room` alone), newest first; `cursor` continues a previous page.
    pub async fn search(
        &self,
        caller: Caller<'_>,
        query: &str,
        room: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<SearchPage, HubError> {
        let query = query.trim();
        if query.is_empty() || query.chars().count() > protocol::MAX_QUERY_CHARS {
            return Err(Invalid::Query.into());
        }
        let after = match cursor {
            Some(c) => Some(decode_cursor(c).ok_or(HubError::BadCursor)?),
            None => None,
        };
        admission::take_request(&self.admission, &self.metrics, caller)?;
        let rooms = match room {
            Some(room) => {
                self.check_access(caller.actor, room).await?;
                vec![room.to_string()]
            }
            None => self.readable_rooms(caller.actor).await?,
        };
        let found = self
            .store
            .search(
                &rooms,
                query,
                after.as_ref(),
                limit.clamp(1, MAX_SEARCH_LIMIT),
            )
            .await?;
        Ok(SearchPage {
            messages: found.messages,
            next: found.next.as_ref().map(encode_cursor),
        })
    }

    /// The messages around one, for a reader of the room.
    pub async fn around(
        &self,
        actor: &super::Actor,
        room: &str,
        id: i64,
        limit: usize,
    ) -> Result<Around, HubError> {
        self.check_access(actor, room).await?;
        Ok(self.store.around(room, id, limit.clamp(1, 200)).await?)
    }

    /// Every room the actor may read: the public ones, and their own
    /// private and direct rooms.
    async fn readable_rooms(&self, actor: &super::Actor) -> Result<Vec<String>, HubError> {
        let mut rooms = self.store.public_rooms(SEARCHED_ROOMS).await?;
        if actor.identity == super::Identity::Account {
            rooms.extend(
                self.store
                    .private_rooms(&actor.name, SEARCHED_ROOMS)
                    .await?,
            );
        }
        if actor.can_dm() {
            rooms.extend(self.store.dm_rooms(&actor.name, SEARCHED_ROOMS).await?);
        }
        Ok(rooms)
    }
}

/// A search cursor as the client sees it: opaque, but only text.
fn encode_cursor(after: &SearchAfter) -> String {
    hex::encode(format!("{}:{}", after.id, after.room))
}

fn decode_cursor(cursor: &str) -> Option<SearchAfter> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let (id, room) = text.split_once(':')?;
    let id = id.parse().ok()?;
    protocol::parse_room(room).ok()?;
    Some(SearchAfter {
        room: room.to_string(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaction_is_one_emoji() {
        for ok in ["👍", "❤️", "❤", "👍🏽", "🇫🇷", "👨‍👩‍👧", "✅", "🎉"]
        {
            assert_eq!(check_emoji(ok), Ok(ok), "{ok}");
        }
        let two_hundred = "👍".repeat(200);
        for bad in [
            "",
            "a",
            "ok",
            "👍👍",
            ":+1:",
            "<b>",
            two_hundred.as_str(),
            " 👍",
        ] {
            assert_eq!(check_emoji(bad), Err(Invalid::Emoji), "{bad}");
        }
    }

    #[test]
    fn cursors_read_back_and_refuse_garbage() {
        let after = SearchAfter {
            room: "dm:alice:bob".into(),
            id: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(&after)), Some(after));
        for bad in [
            "",
            "zz",
            "3a3a",
            &hex::encode("2:Not A Room"),
            &hex::encode("x:general"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
