//! Who is in which room, and what changes it: private rooms made, people
//! added and removed, topics set, and the list of rooms each person sees.
//!
//! A private room's members are kept by the store; the hub tells everyone
//! concerned, on every node, as soon as the store has the change: the
//! room's connections and the person's own get a `member` frame, the person
//! a fresh `rooms` frame, and someone removed loses the room's connections
//! at once (so no message of the room reaches them afterwards).

use super::admission::{self, Caller};
use super::{Actor, Hub, HubError, Identity, encode, lock};
use crate::backplane::Notice;
use crate::names::name_key;
use crate::protocol::{
    self, Kind, MemberState, NotifyLevel, RoomEntry, RoomKind, ServerFrame, clean_topic,
};

/// Most rooms of each kind a `rooms` frame lists.
const LISTED: usize = 200;
/// Most people a `create` may add at once (more can be invited after).
pub const MAX_FIRST_MEMBERS: usize = 50;

/// The key every connection of a person is bound with (see
/// [`super::Outboxes::bind`]): frames meant for a person reach all of
/// their connections, on every node.
pub fn person_key(name: &str) -> String {
    format!("person:{}", name_key(name))
}

impl Hub {
    /// Whether an actor may see and enter a room: anyone a public room;
    /// its members a direct room (others are refused: `forbidden`); its
    /// members a private room (to others it does not exist: `not_found`).
    pub async fn check_access(&self, actor: &Actor, room: &str) -> Result<(), HubError> {
        match protocol::parse_room(room)? {
            RoomKind::Public => Ok(()),
            RoomKind::Private => {
                if actor.identity == Identity::Account
                    && self.store.is_room_member(room, &actor.name).await?
                {
                    Ok(())
                } else {
                    Err(HubError::NoRoom(room.to_string()))
                }
            }
            RoomKind::Direct(names) => {
                if !names.contains(&actor.name.as_str()) {
                    Err(HubError::NotMember)
                } else if !actor.can_dm() {
                    Err(HubError::GuestDm)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Makes a private room with its owner (the caller), a topic and its
    /// first members, who are told; the caller's connection then joins it.
    pub async fn create_private(
        &self,
        caller: Caller<'_>,
        room: &str,
        members: &[String],
        topic: Option<&str>,
    ) -> Result<(), HubError> {
        let actor = caller.actor;
        match protocol::parse_room(room)? {
            RoomKind::Private => {}
            _ => return Err(HubError::NotPrivate),
        }
        if actor.identity != Identity::Account {
            return Err(HubError::NeedsAccount);
        }
        let topic = clean_topic(topic.unwrap_or(""))?;
        let mut others: Vec<String> = members
            .iter()
            .filter(|m| **m != actor.name)
            .cloned()
            .collect();
        others.sort();
        others.dedup();
        if others.len() > MAX_FIRST_MEMBERS {
            return Err(HubError::TooManyMembers);
        }
        admission::take_request(&self.admission, &self.metrics, caller)?;
        for m in &others {
            self.must_be_account(m).await?;
        }
        admission::take_new_room(&self.admission, &self.metrics, caller)?;
        if !self
            .store
            .create_private_room(room, &actor.name, topic, &others)
            .await?
        {
            return Err(HubError::Taken(room.to_string()));
        }
        for m in &others {
            self.tell_person(m, &member_frame(room, m, MemberState::Added, &actor.name));
            self.send_rooms(m).await;
        }
        self.send_rooms(&actor.name).await;
        Ok(())
    }

    /// Adds an account to a private room the caller is in.
    pub async fn invite(&self, caller: Caller<'_>, room: &str, user: &str) -> Result<(), HubError> {
        self.private_room_of(caller.actor, room).await?;
        admission::take_request(&self.admission, &self.metrics, caller)?;
        self.must_be_account(user).await?;
        if !self.store.add_room_member(room, user).await? {
            return Err(HubError::AlreadyIn(user.to_string(), room.to_string()));
        }
        let frame = member_frame(room, user, MemberState::Added, &caller.actor.name);
        self.tell_room(room, &frame);
        self.tell_person(user, &frame);
        self.send_rooms(user).await;
        Ok(())
    }

    /// Takes someone out of a private room: anyone may leave; the owner or
    /// an admin may remove anyone. Their connections leave the room at once,
    /// on every node.
    pub async fn remove(&self, caller: Caller<'_>, room: &str, user: &str) -> Result<(), HubError> {
        let actor = caller.actor;
        let meta = self.private_room_of(actor, room).await?;
        admission::take_request(&self.admission, &self.metrics, caller)?;
        if user != actor.name
            && meta.owner.as_deref() != Some(actor.name.as_str())
            && !self.admission.is_admin(actor).await?
        {
            return Err(HubError::NotOwner);
        }
        if !self.store.remove_room_member(room, user).await? {
            return Err(HubError::NotIn(user.to_string(), room.to_string()));
        }
        let frame = member_frame(room, user, MemberState::Removed, &actor.name);
        // The room hears of it before the person's connections leave it, so
        // that the person's own connections in it are told too; those not in
        // it are told through the person's key.
        self.tell_room_except(room, &frame, user);
        self.tell_person(user, &frame);
        self.evict(room, user);
        self.backplane.publish_notice(&Notice::Evict {
            room: room.to_string(),
            user: user.to_string(),
        });
        self.send_rooms(user).await;
        Ok(())
    }

    /// Sets a room's topic: a private room's owner, an admin, or (direct
    /// rooms have no owner) any of a direct room's members. Everyone in the
    /// room is told.
    pub async fn set_topic(
        &self,
        caller: Caller<'_>,
        room: &str,
        topic: &str,
    ) -> Result<(), HubError> {
        let actor = caller.actor;
        let topic = clean_topic(topic)?;
        self.check_access(actor, room).await?;
        admission::take_request(&self.admission, &self.metrics, caller)?;
        let meta = self
            .store
            .room_meta(room)
            .await?
            .ok_or_else(|| HubError::NoRoom(room.to_string()))?;
        let direct = matches!(protocol::parse_room(room)?, RoomKind::Direct(_));
        let owner = meta.owner.as_deref() == Some(actor.name.as_str())
            && actor.identity == Identity::Account;
        if !direct && !owner && !self.admission.is_admin(actor).await? {
            return Err(HubError::NotOwner);
        }
        self.store.set_topic(room, topic).await?;
        let frame = encode(&ServerFrame::Topic {
            room: room.to_string(),
            topic: topic.to_string(),
            by: actor.name.clone(),
        });
        self.tell_room(room, &frame);
        Ok(())
    }

    /// Whether the actor is an admin.
    pub async fn is_admin(&self, actor: &Actor) -> Result<bool, HubError> {
        self.admission.is_admin(actor).await
    }

    /// The rooms an actor sees: the public ones, and the private and
    /// direct rooms they are in, with their topics.
    pub async fn rooms_of(&self, actor: &Actor) -> Result<Vec<RoomEntry>, HubError> {
        let mut names = self.store.public_rooms(LISTED).await?;
        if actor.identity == Identity::Account {
            names.extend(self.store.private_rooms(&actor.name, LISTED).await?);
        }
        if actor.can_dm() {
            names.extend(self.store.dm_rooms(&actor.name, LISTED).await?);
        }
        let topics: std::collections::HashMap<String, String> =
            self.store.room_topics(&names).await?.into_iter().collect();
        // Private rooms are few per person: one read each for its owner.
        let mut owners = std::collections::HashMap::new();
        for room in names.iter().filter(|r| r.starts_with('~')) {
            if let Some(owner) = self.store.room_meta(room).await?.and_then(|m| m.owner) {
                owners.insert(room.clone(), owner);
            }
        }
        let mut entries: Vec<RoomEntry> = names
            .into_iter()
            .filter_map(|room| {
                let kind = protocol::parse_room(&room).ok()?.kind();
                Some(RoomEntry {
                    owner: owners.remove(&room),
                    topic: topics.get(&room).cloned().unwrap_or_default(),
                    room,
                    kind,
                    unread: 0,
                    mentions: 0,
                    last_read: 0,
                    notify: if kind == Kind::Direct {
                        NotifyLevel::All
                    } else {
                        NotifyLevel::Mentions
                    },
                })
            })
            .collect();
        self.add_read_states(actor, &mut entries).await?;
        Ok(entries)
    }

    /// A private room the actor is in, with its owner; `not_found` for any
    /// other private room, `bad_request` for the other kinds (their members
    /// do not change).
    async fn private_room_of(
        &self,
        actor: &Actor,
        room: &str,
    ) -> Result<crate::store::RoomMeta, HubError> {
        match protocol::parse_room(room)? {
            RoomKind::Private => {}
            RoomKind::Direct(_) => return Err(HubError::FixedMembers),
            RoomKind::Public => return Err(HubError::PublicRoom),
        }
        self.check_access(actor, room).await?;
        self.store
            .room_meta(room)
            .await?
            .ok_or_else(|| HubError::NoRoom(room.to_string()))
    }

    /// Refuses a name that is not an account's: no one by that name, or a
    /// guest or a bot (private rooms are for accounts).
    async fn must_be_account(&self, name: &str) -> Result<(), HubError> {
        if self.admission.is_account(name).await? {
            Ok(())
        } else if self.admission.is_someone(name).await? {
            Err(HubError::NotAnAccount(name.to_string()))
        } else {
            Err(HubError::NoOne(name.to_string()))
        }
    }

    /// Queues a frame to every connection in a room, on every node.
    fn tell_room(&self, room: &str, frame: &super::Frame) {
        self.tell_room_but(room, frame, None);
    }

    /// Like [`tell_room`](Self::tell_room), but for `user`'s connections.
    fn tell_room_except(&self, room: &str, frame: &super::Frame, user: &str) {
        self.tell_room_but(room, frame, Some(user));
    }

    fn tell_room_but(&self, room: &str, frame: &super::Frame, except: Option<&str>) {
        self.room_frame(room, frame, except);
        self.backplane.publish_notice(&Notice::Room {
            room: room.to_string(),
            frame: frame.to_string(),
            except: except.map(str::to_string),
        });
    }

    fn room_frame(&self, room: &str, frame: &super::Frame, except: Option<&str>) {
        if let Some(r) = self.existing_room(room) {
            lock(&r).broadcast(frame, |o| except.is_none_or(|u| &*o.user != u));
        }
    }

    /// Queues a frame to every connection of a person, on every node.
    pub(super) fn tell_person(&self, name: &str, frame: &super::Frame) {
        let key = person_key(name);
        self.outboxes.push_to(&key, frame);
        self.backplane.publish_notice(&Notice::Person {
            key,
            frame: frame.to_string(),
        });
    }

    /// Sends a person a fresh `rooms` frame, on every node. A store that
    /// cannot list them leaves the person's list as it was (logged): the
    /// change itself is made.
    pub(super) async fn send_rooms(&self, name: &str) {
        let someone = Actor {
            name: name.to_string(),
            identity: Identity::Account,
        };
        match self.rooms_of(&someone).await {
            Ok(rooms) => self.tell_person(name, &encode(&ServerFrame::Rooms { rooms })),
            Err(e) => tracing::warn!(user = name, error = %e, "could not list a person's rooms"),
        }
    }

    /// Takes a person's connections on this node out of a room.
    pub(super) fn evict(&self, room: &str, user: &str) {
        let Some(r) = self.existing_room(room) else {
            return;
        };
        let conns = lock(&r).connections_of(user);
        for conn in conns {
            self.leave(conn, room);
        }
    }

    /// Acts on another node's notice.
    pub(super) fn take_notice(&self, notice: Notice) {
        match notice {
            Notice::Room {
                room,
                frame,
                except,
            } => self.room_frame(&room, &frame.into(), except.as_deref()),
            Notice::Person { key, frame } => {
                self.outboxes.push_to(&key, &frame.into());
            }
            Notice::Evict { room, user } => self.evict(&room, &user),
            Notice::Changed { room, rev, message } => self.deliver_change(&room, rev, *message),
        }
    }
}

fn member_frame(room: &str, user: &str, state: MemberState, by: &str) -> super::Frame {
    encode(&ServerFrame::Member {
        room: room.to_string(),
        user: user.to_string(),
        state,
        by: by.to_string(),
    })
}
