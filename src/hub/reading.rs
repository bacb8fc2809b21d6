//! Read positions and notification levels, kept by the store per account
//! and room: every session of the account hears where it now stands, on
//! every node, with the room's counts from there.
//!
//! A public room counts unread messages from the moment the account first
//! read it (before that it is a room they only pass by); private and
//! direct rooms, being theirs, count from the start.

use super::admission::{self, Caller};
use super::{Actor, Hub, HubError, Identity, encode};
use crate::protocol::{Kind, NotifyLevel, RoomEntry, ServerFrame};
use crate::store::Unread;
use std::collections::HashMap;

/// Most unread messages counted in a room: more shows as that many.
pub const UNREAD_CAP: u64 = 100;

impl Hub {
    /// Moves the caller's read position in `room` up to `id`. Every session
    /// of theirs is told where it now stands; when it does not move (a
    /// position behind the one kept), only the asking session is.
    /// Returns the `read` frame for that session, if it must be answered.
    pub async fn read(
        &self,
        caller: Caller<'_>,
        room: &str,
        id: i64,
    ) -> Result<Option<ServerFrame>, HubError> {
        let actor = caller.actor;
        must_keep_reads(actor)?;
        admission::take_request(&self.admission, &self.metrics, caller)?;
        self.check_access(actor, room).await?;
        let last = self.store.last_id(room).await?;
        if id < 1 || id > last {
            return Err(HubError::ReadBeyond(last));
        }
        let (now, moved) = self.store.mark_read(&actor.name, room, id).await?;
        let unread = self
            .store
            .unread(&actor.name, room, now, UNREAD_CAP)
            .await?;
        let frame = ServerFrame::Read {
            room: room.to_string(),
            id: now,
            unread: unread.messages,
            mentions: unread.mentions,
        };
        if !moved {
            return Ok(Some(frame));
        }
        self.tell_person(&actor.name, &encode(&frame));
        Ok(None)
    }

    /// Sets the caller's notification level in `room`; every session of
    /// theirs gets a fresh `rooms` frame.
    pub async fn set_notify(
        &self,
        caller: Caller<'_>,
        room: &str,
        level: NotifyLevel,
    ) -> Result<(), HubError> {
        let actor = caller.actor;
        must_keep_reads(actor)?;
        admission::take_request(&self.admission, &self.metrics, caller)?;
        self.check_access(actor, room).await?;
        // Only a room that is stored: a level never makes one.
        if self.store.room_meta(room).await?.is_none() {
            return Err(HubError::NoRoom(room.to_string()));
        }
        self.store.set_notify(&actor.name, room, level).await?;
        self.send_rooms(&actor.name).await;
        Ok(())
    }

    /// Fills in an account's read positions, counts and levels.
    pub(super) async fn add_read_states(
        &self,
        actor: &Actor,
        rooms: &mut [RoomEntry],
    ) -> Result<(), HubError> {
        if actor.identity != Identity::Account {
            return Ok(());
        }
        let states: HashMap<String, _> = self
            .store
            .read_states(&actor.name)
            .await?
            .into_iter()
            .map(|s| (s.room.clone(), s))
            .collect();
        for entry in rooms {
            let state = states.get(&entry.room);
            if let Some(level) = state.and_then(|s| s.notify) {
                entry.notify = level;
            }
            let last_read = state.map_or(0, |s| s.last_read);
            entry.last_read = last_read;
            let counted = last_read > 0 || entry.kind != Kind::Public;
            let Unread { messages, mentions } = if counted {
                self.store
                    .unread(&actor.name, &entry.room, last_read, UNREAD_CAP)
                    .await?
            } else {
                Unread::default()
            };
            entry.unread = messages;
            entry.mentions = mentions;
        }
        Ok(())
    }
}

/// Read state on the server is an account's: guests keep theirs in the
/// browser, and a bot reads nothing.
fn must_keep_reads(actor: &Actor) -> Result<(), HubError> {
    if actor.identity == Identity::Account {
        Ok(())
    } else {
        Err(HubError::ReadsNeedAccount)
    }
}
