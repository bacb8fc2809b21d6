//! One connected client as the hub sees it, whatever carries its frames:
//! the rooms it joined, where it asked to resume, its typing, and its sends
//! waiting for the store. A transport reads frames, hands them to
//! [`Client::handle`], and writes what the client's [`Outbox`] queues.
//!
//! Every answer, refusal included, is queued to the outbox, so that the
//! client sees them in order with the room's frames.

use super::admission::{self, Caller, MAX_ROOMS_PER_CONNECTION};
use super::{Actor, Alter, Hub, HubError, Outbox, Post, Via, encode};
use crate::protocol::{ClientFrame, ErrorCode, HISTORY_PAGE, MemberState, Resume, ServerFrame};
use crate::store::Appended;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A connection's typing notices in one room are relayed at most this often;
/// the repeats say nothing new (the page sends one every 3 s).
const TYPING_EVERY: Duration = Duration::from_secs(1);
/// Typing notices one connection may have relayed per second over all its
/// rooms, and at once: a person types in one room at a time.
const TYPING_PER_SEC: u32 = 2;
const TYPING_BURST: u32 = 4;

/// A send the store is answering: its nonce and room, and the answer.
type InFlight = JoinHandle<Answer>;
type Answer = (Option<String>, String, Result<Appended, HubError>);

/// One client of the hub, after `hello`.
pub struct Client {
    actor: Actor,
    ip: Option<IpAddr>,
    outbox: Outbox,
    joined: HashSet<String>,
    /// Where the client's `hello` asked each room to resume from.
    resume: BTreeMap<String, Resume>,
    /// Sends waiting for the store; made on the first send, since most
    /// clients only read.
    in_flight: Option<FuturesUnordered<InFlight>>,
    /// Per room (a hash of its name), when its last typing notice was
    /// relayed; at most one entry per room joined.
    typed: Vec<(u64, Instant)>,
    /// The typing allowance over all rooms; made on the first notice, since
    /// most clients never type.
    typing_allowance: Option<Box<governor::DefaultDirectRateLimiter>>,
}

/// A short key for a room name, for per-room bookkeeping of a client.
fn room_hash(room: &str) -> u64 {
    let mut hash = std::hash::DefaultHasher::new();
    room.hash(&mut hash);
    hash.finish()
}

impl Client {
    /// A client acting as `actor` from `ip`, its frames queued to `outbox`,
    /// resuming rooms from the ids its `hello` gave.
    pub fn new(
        actor: Actor,
        ip: Option<IpAddr>,
        outbox: Outbox,
        resume: BTreeMap<String, Resume>,
    ) -> Self {
        Client {
            actor,
            ip,
            outbox,
            joined: HashSet::new(),
            resume,
            in_flight: None,
            typed: Vec::new(),
            typing_allowance: None,
        }
    }

    /// Who the client is.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Its queue.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn caller(&self) -> Caller<'_> {
        Caller {
            actor: &self.actor,
            ip: self.ip,
        }
    }

    /// Queues a frame for this client alone.
    pub fn reply(&self, frame: ServerFrame) {
        self.outbox.push(&encode(&frame));
    }

    /// Queues a refusal, about `room` when there is one.
    fn refuse(&self, e: &HubError, room: Option<&str>, nonce: Option<String>) {
        self.reply(match room {
            Some(room) => ServerFrame::room_error(e.code(), e.to_string(), nonce, room),
            None => ServerFrame::error(e.code(), e.to_string(), nonce),
        });
    }

    /// Sends waiting for the store.
    pub fn in_flight(&self) -> usize {
        self.in_flight.as_ref().map_or(0, FuturesUnordered::len)
    }

    /// Queues the answers the store has given so far; registers `cx` for
    /// the next. When the last is answered the set is dropped: an idle
    /// client keeps no allocation for it.
    pub fn poll_answers(&mut self, cx: &mut Context<'_>) {
        while let Some(set) = &mut self.in_flight
            && let Poll::Ready(Some(done)) = set.poll_next_unpin(cx)
        {
            if set.is_empty() {
                self.in_flight = None;
            }
            self.answer(done);
        }
    }

    /// Waits for every send in flight and queues its answer.
    pub async fn answer_all(&mut self) {
        while let Some(set) = &mut self.in_flight {
            let done = set.next().await;
            if set.is_empty() {
                self.in_flight = None;
            }
            match done {
                Some(done) => self.answer(done),
                None => self.in_flight = None,
            }
        }
    }

    fn answer(&self, done: Result<Answer, tokio::task::JoinError>) {
        match done {
            Ok((nonce, _, Ok(a))) => self.reply(ServerFrame::Ack {
                nonce,
                room: a.message.room,
                id: a.message.id,
                ts: a.message.ts,
            }),
            Ok((nonce, room, Err(e))) => self.refuse(&e, Some(&room), nonce),
            Err(e) => {
                tracing::error!(error = %e, "send task failed");
                self.reply(ServerFrame::error(
                    ErrorCode::Unavailable,
                    "the message could not be stored",
                    None,
                ));
            }
        }
    }

    /// Acts on one frame from the client. Answers are queued to the outbox;
    /// a send's ack comes later, through [`Client::poll_answers`].
    pub async fn handle(&mut self, hub: &Arc<Hub>, frame: ClientFrame) {
        match frame {
            ClientFrame::Hello { .. } => self.reply(ServerFrame::error(
                ErrorCode::BadRequest,
                "hello was already said on this connection",
                None,
            )),
            ClientFrame::Join { room } => {
                if let Err(e) = self.join(hub, &room).await {
                    self.refuse(&e, Some(&room), None);
                }
            }
            ClientFrame::Leave { room } => {
                if self.joined.remove(&room) {
                    hub.leave(self.outbox.id, &room);
                } else {
                    self.refuse(&HubError::NotJoined(room.clone()), Some(&room), None);
                }
            }
            ClientFrame::Send {
                room,
                body,
                nonce,
                reply_to,
                attachments,
            } => {
                let post = Post {
                    room,
                    body,
                    nonce,
                    reply_to,
                    attachments,
                };
                self.send(hub, post).await
            }
            ClientFrame::History {
                room,
                before,
                limit,
            } => {
                let limit = limit.map(|l| l as usize).unwrap_or(HISTORY_PAGE);
                let page =
                    match admission::take_request(&hub.admission, &hub.metrics, self.caller()) {
                        Ok(()) => hub.history(&self.actor, &room, before, limit).await,
                        Err(e) => Err(e),
                    };
                match page {
                    Ok(page) => self.reply(ServerFrame::History {
                        room,
                        messages: page.messages,
                        more: page.more,
                    }),
                    Err(e) => self.refuse(&e, Some(&room), None),
                }
            }
            ClientFrame::Typing { room } => {
                // The hub's word, not only ours: a removal takes a connection
                // out of a room without asking it.
                if !self.joined.contains(&room) || !hub.is_member(self.outbox.id, &room) {
                    self.joined.remove(&room);
                    return self.refuse(&HubError::NotJoined(room.clone()), Some(&room), None);
                }
                // Clients repeat the notice while someone types; relaying
                // more than one a second would multiply a flood by the room.
                if self.typing_is_news(&room) {
                    hub.typing(&self.actor, &room);
                }
            }
            ClientFrame::Create {
                room,
                members,
                topic,
            } => {
                let made = hub
                    .create_private(self.caller(), &room, &members, topic.as_deref())
                    .await;
                // Answered by `joined`, as a join of the new room.
                if let Err(e) = match made {
                    Ok(()) => self.join(hub, &room).await,
                    Err(e) => Err(e),
                } {
                    self.refuse(&e, Some(&room), None);
                }
            }
            ClientFrame::Invite { room, user } => {
                match hub.invite(self.caller(), &room, &user).await {
                    Ok(()) => self.confirm(&room, &user, MemberState::Added),
                    Err(e) => self.refuse(&e, Some(&room), None),
                }
            }
            ClientFrame::Remove { room, user } => {
                match hub.remove(self.caller(), &room, &user).await {
                    Ok(()) if user == self.actor.name => {
                        // Told through the person's key; the room is gone from here.
                        self.joined.remove(&room);
                    }
                    Ok(()) => self.confirm(&room, &user, MemberState::Removed),
                    Err(e) => self.refuse(&e, Some(&room), None),
                }
            }
            ClientFrame::Topic { room, topic } => {
                match hub.set_topic(self.caller(), &room, &topic).await {
                    Ok(()) if !self.joined.contains(&room) => self.reply(ServerFrame::Topic {
                        room,
                        topic: topic.trim().to_string(),
                        by: self.actor.name.clone(),
                    }),
                    Ok(()) => {}
                    Err(e) => self.refuse(&e, Some(&room), None),
                }
            }
            ClientFrame::Edit { room, id, body } => {
                self.alter(hub, &room, id, Alter::Edit(body)).await
            }
            ClientFrame::Delete { room, id } => self.alter(hub, &room, id, Alter::Delete).await,
            ClientFrame::React {
                room,
                id,
                emoji,
                on,
            } => self.alter(hub, &room, id, Alter::React { emoji, on }).await,
            ClientFrame::Read { room, id } => match hub.read(self.caller(), &room, id).await {
                Ok(Some(answer)) => self.reply(answer),
                Ok(None) => {}
                Err(e) => self.refuse(&e, Some(&room), None),
            },
            ClientFrame::Notify { room, level } => {
                if let Err(e) = hub.set_notify(self.caller(), &room, level).await {
                    self.refuse(&e, Some(&room), None);
                }
            }
        }
    }

    async fn alter(&mut self, hub: &Arc<Hub>, room: &str, id: i64, alter: Alter) {
        if let Err(e) = hub
            .alter(self.caller(), self.outbox.id, room, id, alter)
            .await
        {
            self.refuse(&e, Some(room), None);
        }
    }

    /// Tells a client that changed a room's members it is not in on this
    /// connection: those in the room hear of it from the room.
    fn confirm(&self, room: &str, user: &str, state: MemberState) {
        if !self.joined.contains(room) {
            self.reply(ServerFrame::Member {
                room: room.to_string(),
                user: user.to_string(),
                state,
                by: self.actor.name.clone(),
            });
        }
    }

    async fn join(&mut self, hub: &Arc<Hub>, room: &str) -> Result<(), HubError> {
        admission::take_request(&hub.admission, &hub.metrics, self.caller())?;
        if self.joined.contains(room) {
            // Joining twice answers like the first time, without a second presence.
            hub.leave(self.outbox.id, room);
            self.joined.remove(room);
        } else if self.joined.len() >= MAX_ROOMS_PER_CONNECTION {
            return Err(HubError::TooManyJoined);
        }
        hub.open_room(self.caller(), room).await?;
        let resume = self.resume.remove(room);
        hub.join(&self.outbox, &self.actor, room, resume).await?;
        self.joined.insert(room.to_string());
        Ok(())
    }

    async fn send(&mut self, hub: &Arc<Hub>, post: Post) {
        let typed_in = room_hash(&post.room);
        let room = post.room.clone();
        let nonce = post.nonce.clone();
        // Queued here, in the order the client sent them; finished in a task
        // of its own, so a client that disconnects mid-send cancels neither
        // the store's work nor the fan-out.
        match hub
            .post(self.caller(), post, Via::Connection(self.outbox.id))
            .await
        {
            Ok(posted) => {
                // The message ends the others' "is typing": the next notice
                // is news again.
                self.typed.retain(|(r, _)| *r != typed_in);
                self.in_flight
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(tokio::spawn(async move { (nonce, room, posted.await) }));
            }
            Err(e) => {
                if let HubError::NotJoined(_) = e {
                    // Taken out of the room meanwhile (removed from it).
                    self.joined.remove(&room);
                }
                self.refuse(&e, Some(&room), nonce)
            }
        }
    }

    /// Whether a typing notice in `room` should be relayed: the room has
    /// not heard one from this client in the last [`TYPING_EVERY`], and the
    /// client is within its allowance over all rooms. If so, it is taken as
    /// said.
    fn typing_is_news(&mut self, room: &str) -> bool {
        let room = room_hash(room);
        let now = Instant::now();
        self.typed
            .retain(|(_, at)| now.duration_since(*at) < TYPING_EVERY);
        if self.typed.iter().any(|(r, _)| *r == room) {
            return false;
        }
        let allowance = self.typing_allowance.get_or_insert_with(|| {
            let quota = governor::Quota::per_second(
                NonZeroU32::new(TYPING_PER_SEC).unwrap_or(NonZeroU32::MIN),
            )
            .allow_burst(NonZeroU32::new(TYPING_BURST).unwrap_or(NonZeroU32::MIN));
            Box::new(governor::RateLimiter::direct(quota))
        });
        if allowance.check().is_err() {
            return false;
        }
        self.typed.push((room, now));
        true
    }

    /// Leaves every room the client is in; call it once, when it goes.
    pub fn leave_all(&mut self, hub: &Hub) {
        for room in self.joined.drain() {
            hub.leave(self.outbox.id, &room);
        }
    }
}
