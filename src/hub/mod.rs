//! Rooms, membership, presence, typing, per-room ordering and fan-out.
//!
//! The hub holds no SQL and no socket: it talks to a [`Store`] for history
//! and a [`Backplane`] for other nodes, and hands connections pre-encoded
//! frames through their [`Outbox`].
//!
//! With several nodes, each hub also keeps who is online on the others
//! (from their presence events and periodic snapshots), so that online
//! lists, counts and presence frames speak of the whole cluster, and reads
//! a room from the store whenever an event from another node may have been
//! lost: pub/sub is never the guarantee, the store is.

pub mod admission;
mod away;
mod changes;
pub mod client;
mod membership;
pub mod outbox;
mod reading;
mod revisions;
mod room;

pub use admission::{Admission, Caller, MAX_ROOMS_PER_CONNECTION, People};
pub use away::Notifier;
pub use changes::{Alter, check_emoji};
pub use client::Client;
pub use membership::{MAX_FIRST_MEMBERS, person_key};
pub use outbox::{ConnId, Frame, Outbox, OutboxReader, Outboxes, Queued, encode};

use crate::backplane::{Backplane, PresenceMap, Remote};
use crate::metrics::Metrics;
use crate::protocol::{
    self, ErrorCode, HISTORY_PAGE, Message, PresenceState, RoomKind, ServerFrame,
};
use crate::store::{Appended, NewMessage, Page, Store, StoreError};
use room::RoomState;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A resuming client gets at most this many missed messages; further behind,
/// it gets the newest page with `more: true` and must scroll back.
pub const MAX_RESUME: usize = 10_000;
/// How long the sequencer waits for a missing id before reading it from the store.
const GAP_WAIT: Duration = Duration::from_millis(150);
/// How often presence batches are flushed and gaps looked at.
const TICK: Duration = Duration::from_millis(100);
/// Coalesced presence goes out at most once per this many ticks.
const PRESENCE_TICKS: u32 = 10;
/// With other nodes, every active room is compared with the store this
/// often (in ticks), in case an event was lost without any sign.
const CATCH_UP_TICKS: u32 = 150;

/// What stands behind a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// A guest whose browser keeps the name (the guest cookie).
    Guest,
    /// A guest without a cookie: the name is theirs only while connected.
    PassingGuest,
    /// A registered account.
    Account,
    /// An operator's bot token.
    Bot,
}

/// Who is acting: the author of a message, the member of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub identity: Identity,
}

impl Actor {
    /// Whether the actor is a guest of either kind.
    pub fn is_guest(&self) -> bool {
        matches!(self.identity, Identity::Guest | Identity::PassingGuest)
    }

    /// Whether the name will still be this actor's tomorrow, which DMs need.
    pub fn can_dm(&self) -> bool {
        self.identity != Identity::PassingGuest
    }
}

/// Why the hub refused a request; each maps to a protocol error code.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Invalid(#[from] protocol::Invalid),
    #[error("direct-message rooms can be joined only by their two members")]
    NotMember,
    #[error("direct messages need an account, or a browser that keeps your guest name")]
    GuestDm,
    #[error("no room {0:?}")]
    NoRoom(String),
    #[error("the connection is too slow to keep up")]
    TooSlow,
    #[error("slow down: too many messages; this one was not sent")]
    RateLimited,
    #[error("slow down: too many new rooms; this one was not made")]
    RoomRate,
    #[error("slow down: too many room requests; this one was not done")]
    RequestRate,
    #[error("join {0:?} first")]
    NotJoined(String),
    #[error("a connection may be in at most {MAX_ROOMS_PER_CONNECTION} rooms; leave one first")]
    TooManyJoined,
    #[error("this server has as many rooms as it allows; join an existing one")]
    TooManyRooms,
    #[error("there is no one called {0:?} here")]
    NoOne(String),
    #[error("create makes private rooms, named ~name; join opens public and direct rooms")]
    NotPrivate,
    #[error("private rooms are for accounts: sign in to make one")]
    NeedsAccount,
    #[error("the room name {0:?} is taken")]
    Taken(String),
    #[error("{0:?} has no account: only accounts can be in private rooms")]
    NotAnAccount(String),
    #[error("only the room's owner or an admin may do that")]
    NotOwner,
    #[error("{0:?} is already in {1:?}")]
    AlreadyIn(String, String),
    #[error("{0:?} is not in {1:?}")]
    NotIn(String, String),
    #[error("a direct room keeps the members its name lists; open another for other people")]
    FixedMembers,
    #[error("anyone may join a public room: there is no one to add or remove")]
    PublicRoom,
    #[error(
        "a new room takes at most {MAX_FIRST_MEMBERS} members at once; invite the others after"
    )]
    TooManyMembers,
    #[error("there is no message {0} in this room")]
    NoMessage(i64),
    #[error("only its author may edit a message, and only its author or an admin delete it")]
    NotAuthor,
    #[error("that message was deleted")]
    MessageDeleted,
    #[error("that message has as many different reactions as it may carry")]
    TooManyReactions,
    #[error("that search cursor is not one this server gave")]
    BadCursor,
    #[error("read positions go up to the room's last message, {0}")]
    ReadBeyond(i64),
    #[error("read positions and notification levels are kept for accounts: sign in to keep them")]
    ReadsNeedAccount,
    #[error(
        "there is no file {0:?} to send: upload it first (it may have gone after a day unsent)"
    )]
    NoFile(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl HubError {
    /// The protocol's code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::Invalid(protocol::Invalid::LongBody) => ErrorCode::TooLarge,
            HubError::Invalid(_) => ErrorCode::BadRequest,
            HubError::NotMember | HubError::GuestDm => ErrorCode::Forbidden,
            HubError::NoRoom(_) => ErrorCode::NotFound,
            HubError::TooSlow => ErrorCode::Unavailable,
            HubError::RateLimited | HubError::RoomRate | HubError::RequestRate => {
                ErrorCode::RateLimited
            }
            HubError::NotJoined(_) => ErrorCode::NotJoined,
            HubError::TooManyJoined => ErrorCode::Forbidden,
            HubError::TooManyRooms => ErrorCode::Forbidden,
            HubError::NoOne(_)
            | HubError::NotIn(..)
            | HubError::NoMessage(_)
            | HubError::NoFile(_) => ErrorCode::NotFound,
            HubError::Taken(_) => ErrorCode::BadName,
            HubError::NeedsAccount | HubError::NotOwner | HubError::NotAuthor => {
                ErrorCode::Forbidden
            }
            HubError::MessageDeleted
            | HubError::TooManyReactions
            | HubError::BadCursor
            | HubError::ReadBeyond(_) => ErrorCode::BadRequest,
            HubError::ReadsNeedAccount => ErrorCode::Forbidden,
            HubError::NotPrivate
            | HubError::NotAnAccount(_)
            | HubError::AlreadyIn(..)
            | HubError::FixedMembers
            | HubError::PublicRoom
            | HubError::TooManyMembers => ErrorCode::BadRequest,
            HubError::Store(_) => ErrorCode::Unavailable,
        }
    }
}

/// A message to post: what a `send` frame or `POST .../messages` carries.
#[derive(Debug, Clone)]
pub struct Post {
    pub room: String,
    pub body: String,
    pub nonce: Option<String>,
    /// A message of the same room this one answers.
    pub reply_to: Option<i64>,
    /// Ids of uploaded files to carry.
    pub attachments: Vec<String>,
}

/// How a post arrives: from a connection, which must have joined the room,
/// or straight (HTTP), which opens the room if it must.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    Connection(ConnId),
    Straight,
}

/// A post the store has queued; await it for the stored message.
pub type Posted = std::pin::Pin<Box<dyn Future<Output = Result<Appended, HubError>> + Send>>;

/// The hub of one node.
pub struct Hub {
    store: Arc<dyn Store>,
    backplane: Arc<dyn Backplane>,
    metrics: Arc<Metrics>,
    /// Lock order: `rooms`, then one room, then `remote`.
    rooms: Mutex<HashMap<String, Arc<Mutex<RoomState>>>>,
    /// Who is online on the other nodes, per room.
    remote: Mutex<PresenceMap>,
    /// Whether other nodes exist (a backplane other than `Local`).
    distributed: bool,
    /// Rooms to compare with the store (after a lost subscription, a lost
    /// node, or a tip): room → the id to read up to, when known.
    stale: Mutex<HashMap<String, Option<i64>>>,
    /// Every live connection of this node, to close those whose
    /// credentials end.
    outboxes: Arc<Outboxes>,
    /// The rules and allowances every request passes.
    admission: Admission,
    /// Told of committed messages, for people who are away.
    notifier: std::sync::OnceLock<Arc<dyn Notifier>>,
}

/// Puts changes read late into a `joined` answer: a message of the history
/// is replaced in place, one before it goes (once, as it now stands) to
/// `changed`. Changes of messages newer than the history are left out: they
/// come as messages, read from the store as they stand.
fn fold_changes(
    history: &mut [Message],
    changed: &mut Vec<Message>,
    resume: Option<i64>,
    late: Vec<(i64, Message)>,
) {
    for (_, m) in late {
        if let Some(h) = history.iter_mut().find(|h| h.id == m.id) {
            *h = m;
        } else if resume.is_some_and(|after| m.id <= after) {
            changed.retain(|c| c.id != m.id);
            changed.push(m);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a room lock leaves plain data; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A hub over a store and a backplane; call [`Hub::run_ticker`] once.
    pub fn new(
        store: Arc<dyn Store>,
        backplane: Arc<dyn Backplane>,
        metrics: Arc<Metrics>,
        outboxes: Arc<Outboxes>,
        admission: Admission,
    ) -> Arc<Self> {
        Arc::new(Hub {
            outboxes,
            admission,
            distributed: backplane.kind() != "local",
            store,
            backplane,
            metrics,
            rooms: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
            stale: Mutex::new(HashMap::new()),
            notifier: std::sync::OnceLock::new(),
        })
    }

    /// The store behind the hub, for read-only HTTP pages.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the backplane answers.
    pub async fn backplane_ping(&self) -> Result<(), String> {
        self.backplane.ping().await
    }

    /// Closes, on every node, the connections whose identity rests on
    /// `key` (see [`Outboxes::bind`]); returns how many were here.
    pub fn end_connections(&self, key: &str, why: protocol::Ended) -> usize {
        self.end_connections_except(key, None, why)
    }

    /// Like [`end_connections`](Self::end_connections), sparing the
    /// connections also bound to `except`.
    pub fn end_connections_except(
        &self,
        key: &str,
        except: Option<&str>,
        why: protocol::Ended,
    ) -> usize {
        self.backplane.publish_end(key, except, why);
        let n = self.outboxes.end_except(key, except, why);
        if n > 0 {
            tracing::info!(
                connections = n,
                reason = why.reason(),
                "closed connections whose credentials ended"
            );
        }
        n
    }

    /// Makes sure a room the caller may enter exists before a join or a
    /// post: an existing room costs nothing; a new one takes one from the
    /// caller's allowance for new rooms, must (when direct) be with
    /// someone, and (when public) fit under the bound; it is recorded with
    /// its maker, so that an empty one made by a guest can expire.
    pub async fn open_room(&self, caller: Caller<'_>, room_name: &str) -> Result<(), HubError> {
        let kind = protocol::parse_room(room_name)?;
        self.check_access(caller.actor, room_name).await?;
        if self.existing_room(room_name).is_some() || self.store.room_exists(room_name).await? {
            return Ok(());
        }
        admission::take_new_room(&self.admission, &self.metrics, caller)?;
        match kind {
            RoomKind::Private => return Err(HubError::NoRoom(room_name.to_string())),
            RoomKind::Direct(names) => {
                for other in names.into_iter().filter(|n| *n != caller.actor.name) {
                    if !self.admission.is_someone(other).await? {
                        return Err(HubError::NoOne(other.to_string()));
                    }
                }
            }
            RoomKind::Public => {
                if self.store.public_room_count().await? >= self.admission.max_public_rooms() {
                    return Err(HubError::TooManyRooms);
                }
            }
        }
        self.store
            .create_room_by(room_name, &caller.actor.name, caller.actor.is_guest())
            .await?;
        if let Ok(RoomKind::Direct(names)) = protocol::parse_room(room_name) {
            // The others' lists of rooms changed: a new conversation is theirs.
            for other in names.into_iter().filter(|n| *n != caller.actor.name) {
                self.send_rooms(other).await;
            }
        }
        Ok(())
    }

    /// Deletes the empty rooms guests made before `older_than` ago, but
    /// those someone is in on this node; returns how many went.
    pub async fn expire_empty_rooms(&self, older_than: Duration) -> Result<u64, HubError> {
        let keep: Vec<String> = lock(&self.rooms).keys().cloned().collect();
        let before = crate::store::now_ms() - older_than.as_millis() as i64;
        Ok(self.store.expire_empty_rooms(before, &keep).await?)
    }

    fn room(&self, name: &str) -> Arc<Mutex<RoomState>> {
        lock(&self.rooms)
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(RoomState::new(name))))
            .clone()
    }

    fn existing_room(&self, name: &str) -> Option<Arc<Mutex<RoomState>>> {
        lock(&self.rooms).get(name).cloned()
    }

    /// Adds a connection to a room and queues its `joined` frame with the
    /// newest history, or with everything after `resume`. Live messages
    /// follow, with neither a gap nor a duplicate between the two.
    pub async fn join(
        &self,
        outbox: &Outbox,
        actor: &Actor,
        room_name: &str,
        resume: Option<protocol::Resume>,
    ) -> Result<(), HubError> {
        self.check_access(actor, room_name).await?;
        // The room's state may be forgotten (its last member gone) while
        // this join reads the store; a member added to a forgotten state
        // would hear nothing, so such a join starts over with the new one.
        while !self.join_once(outbox, room_name, resume).await? {}
        Ok(())
    }

    /// One attempt at [`Hub::join`]: false when the room's state was
    /// forgotten meanwhile and nothing was done.
    async fn join_once(
        &self,
        outbox: &Outbox,
        room_name: &str,
        resume: Option<protocol::Resume>,
    ) -> Result<bool, HubError> {
        let resume_rev = resume.and_then(protocol::Resume::rev);
        let resume = resume.map(protocol::Resume::id);
        if self.existing_room(room_name).is_none() {
            // A room someone is in here is known to the store already.
            self.store.create_room(room_name).await?;
        }
        let room = self.room(room_name);
        let known_rev = lock(&room).revs.last();
        match known_rev {
            None => {
                let rev = self.store.last_rev(room_name).await?;
                lock(&room).revs.init(rev);
            }
            Some(r) if self.distributed && self.store.last_rev(room_name).await? > r => {
                // Changes another node made and this one has not heard of.
                self.fill_changes(room_name).await;
            }
            Some(_) => {}
        }
        let mut rev = lock(&room).revs.last().unwrap_or(0);
        let known = lock(&room).last();
        let mut last = match known {
            Some(l) if self.distributed => {
                // Another node may have committed messages this one has not
                // heard of (its announcement lost, or the node dead): the
                // newcomer must not wait for the next catch-up to see them.
                let tip = self.store.last_id(room_name).await?;
                if tip > l {
                    self.fill_gap(room_name, l, tip).await;
                }
                lock(&room).last().unwrap_or(l)
            }
            Some(l) => l,
            None => {
                let l = self.store.last_id(room_name).await?;
                let mut st = lock(&room);
                st.init_last(l);
                st.last().unwrap_or(l)
            }
        };
        // History up to what the room has delivered; then catch up with what
        // was delivered meanwhile, until the two meet under the lock.
        // `paged`: the history is "the newest page" (PROTOCOL: at most 50),
        // not every message a resuming client missed.
        let (mut history, mut more, paged) = match resume {
            Some(after) if after < last => {
                let missed = self
                    .store
                    .range(room_name, after, last, MAX_RESUME + 1)
                    .await?;
                if missed.len() > MAX_RESUME {
                    let p = self
                        .store
                        .page_before(room_name, Some(last + 1), HISTORY_PAGE)
                        .await?;
                    (p.messages, true, true)
                } else {
                    (missed, after > 0, false)
                }
            }
            Some(_) => (Vec::new(), last > 0, false),
            None => {
                let p = self
                    .store
                    .page_before(room_name, Some(last + 1), HISTORY_PAGE)
                    .await?;
                (p.messages, p.more, true)
            }
        };
        // A client that keeps revisions gets what changed while it was away
        // among the messages it has; the history it gets is read as it
        // stands already.
        let mut changed = match (resume, resume_rev) {
            (Some(upto), Some(after)) if after < rev => self
                .store
                .changes(room_name, after, upto.min(last), MAX_RESUME)
                .await?
                .into_iter()
                .map(|(_, m)| m)
                .collect(),
            _ => Vec::new(),
        };
        loop {
            let rev_now = lock(&room).revs.last().unwrap_or(rev);
            if rev_now != rev {
                // Changes delivered while this join read the store: fold
                // them in, since the newcomer is not yet a member to get them.
                let late = self
                    .store
                    .changes(room_name, rev, i64::MAX, MAX_RESUME)
                    .await?;
                rev = rev_now.max(late.last().map_or(rev_now, |(r, _)| *r));
                fold_changes(&mut history, &mut changed, resume, late);
            }
            {
                let mut st = lock(&room);
                if st.forgotten {
                    return Ok(false);
                }
                let now = st.last().unwrap_or(last);
                if now == last && st.revs.last().unwrap_or(rev) <= rev {
                    let remote = lock(&self.remote);
                    let others = remote.get(room_name);
                    let mut online = st.online(others);
                    if let Err(at) = online.binary_search_by(|u| u.as_str().cmp(&outbox.user)) {
                        online.insert(at, outbox.user.to_string());
                    }
                    let frame = encode(&ServerFrame::Joined {
                        room: room_name.to_string(),
                        online,
                        history,
                        more,
                        changed,
                        rev: Some(rev),
                    });
                    match st.add_member(outbox, &frame, others) {
                        None => return Err(HubError::TooSlow),
                        Some(true) => {
                            self.backplane
                                .publish_presence(room_name, &outbox.user, true)
                        }
                        Some(false) => {}
                    }
                    return Ok(true);
                }
            }
            let newer = lock(&room).last().unwrap_or(last);
            let extra = self.store.range(room_name, last, newer, MAX_RESUME).await?;
            last = extra.last().map(|m| m.id).unwrap_or(newer);
            history.extend(extra);
            if paged && history.len() > HISTORY_PAGE {
                // Still the newest page: what falls off is scroll-back.
                history.drain(..history.len() - HISTORY_PAGE);
                more = true;
            }
        }
    }

    /// Removes a connection from a room.
    pub fn leave(&self, conn: ConnId, room_name: &str) {
        let Some(room) = self.existing_room(room_name) else {
            return;
        };
        let empty = {
            let mut st = lock(&room);
            let remote = lock(&self.remote);
            if let Some((user, true)) = st.remove_member(conn, remote.get(room_name)) {
                self.backplane.publish_presence(room_name, &user, false);
            }
            st.is_empty()
        };
        if empty {
            self.forget_if_empty(room_name);
        }
    }

    fn forget_if_empty(&self, room_name: &str) {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get(room_name) {
            let mut st = lock(room);
            if st.is_empty() {
                st.forgotten = true;
                drop(st);
                rooms.remove(room_name);
            }
        }
    }

    /// Admits a post and queues it with the store, in the order of the
    /// calls; the returned future finishes it (commit, then fan-out here and
    /// on other nodes) and answers with the stored message. Spawn it: once
    /// queued, dropping it undoes nothing, but the fan-out happens only
    /// while it runs. A retried nonce gets the first answer and no second
    /// message.
    ///
    /// The one way in for a message, whatever carried it: a connection's
    /// `send` (which must have joined the room) or an HTTP post (which
    /// opens the room when it must).
    pub async fn post(
        self: &Arc<Self>,
        caller: Caller<'_>,
        post: Post,
        via: Via,
    ) -> Result<Posted, HubError> {
        if let Via::Connection(conn) = via
            && !self.is_member(conn, &post.room)
        {
            return Err(HubError::NotJoined(post.room));
        }
        protocol::validate_nonce(post.nonce.as_deref())?;
        let body = protocol::clean_caption(&post.body, post.attachments.len())?.to_string();
        if let Via::Straight = via {
            // Access is checked on the way: a connection's was when it joined
            // (and leaving a room takes its connections out of it).
            self.open_room(caller, &post.room).await?;
        }
        admission::take_send(
            &self.admission,
            self.backplane.as_ref(),
            &self.metrics,
            caller,
        )
        .await?;
        if let Some(to) = post.reply_to
            && self.store.message(&post.room, to).await?.is_none()
        {
            return Err(HubError::NoMessage(to));
        }
        let attachments = self
            .attachments(&caller.actor.name, &post.room, post.attachments)
            .await?;
        let msg = NewMessage {
            room: post.room,
            author: caller.actor.name.clone(),
            mentions: protocol::find_mentions(&body),
            body,
            nonce: post.nonce,
            reply_to: post.reply_to,
            attachments,
        };
        let pending = self.store.submit(msg).await?;
        let hub = self.clone();
        Ok(Box::pin(async move {
            let outcome = pending.await.unwrap_or(Err(StoreError::Closed));
            let appended = outcome.inspect_err(|e| {
                tracing::warn!(error = %e.detail(), "append failed");
                hub.metrics.store_errors.inc();
            })?;
            if !appended.duplicate {
                hub.metrics.messages.inc();
                hub.deliver(appended.message.clone());
                hub.notify_committed(&appended.message);
                hub.backplane.publish_message(&appended.message).await;
            }
            Ok(appended)
        }))
    }

    /// The files a post names, as its message will carry them: each the
    /// author's unsent upload or a file already in the room, once.
    async fn attachments(
        &self,
        author: &str,
        room: &str,
        mut ids: Vec<String>,
    ) -> Result<Vec<protocol::FileObject>, HubError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        if let Some(bad) = ids.iter().find(|id| !protocol::valid_file_id(id)) {
            return Err(HubError::NoFile(bad.clone()));
        }
        match self.store.attachable(author, room, &ids).await? {
            Some(files) => Ok(files),
            // Which one: asked again one at a time, only on this rare path.
            None => {
                for id in &ids {
                    let one = std::slice::from_ref(id);
                    if self.store.attachable(author, room, one).await?.is_none() {
                        return Err(HubError::NoFile(id.clone()));
                    }
                }
                Err(HubError::NoFile(ids.join(", ")))
            }
        }
    }

    /// Hands a committed message to this node's members, in id order.
    pub fn deliver(&self, msg: Message) {
        let Some(room) = self.existing_room(&msg.room) else {
            return; // nobody here is in that room
        };
        let n = lock(&room).deliver(msg);
        self.metrics.deliveries.inc_by(n as u64);
    }

    /// Relays a typing notice to the room's other users, on every node.
    pub fn typing(&self, actor: &Actor, room_name: &str) {
        self.backplane.publish_typing(room_name, &actor.name);
        self.relay_typing(room_name, &actor.name);
    }

    fn relay_typing(&self, room_name: &str, user: &str) {
        let Some(room) = self.existing_room(room_name) else {
            return;
        };
        let frame = encode(&ServerFrame::Typing {
            room: room_name.to_string(),
            user: user.to_string(),
        });
        lock(&room).broadcast_ephemeral(&frame, |o| &*o.user != user);
    }

    /// Whether a connection is in a room.
    pub fn is_member(&self, conn: ConnId, room_name: &str) -> bool {
        self.existing_room(room_name)
            .is_some_and(|r| lock(&r).has_member(conn))
    }

    /// Users online in a room, on every node, sorted.
    pub fn online(&self, room_name: &str) -> Vec<String> {
        let room = self.existing_room(room_name);
        let st = room.as_ref().map(|r| lock(r));
        let remote = lock(&self.remote);
        let others = remote.get(room_name);
        match st {
            Some(st) => st.online(others),
            None => others
                .map(|r| {
                    r.keys()
                        .cloned()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// How many users are online in a room, on every node.
    pub fn online_count(&self, room_name: &str) -> usize {
        let room = self.existing_room(room_name);
        let st = room.as_ref().map(|r| lock(r));
        let remote = lock(&self.remote);
        let others = remote.get(room_name);
        match st {
            Some(st) => st.online_count(others),
            None => others.map_or(0, |r| r.len()),
        }
    }

    /// A page of older messages.
    pub async fn history(
        &self,
        actor: &Actor,
        room_name: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, HubError> {
        self.check_access(actor, room_name).await?;
        Ok(self
            .store
            .page_before(room_name, before, limit.clamp(1, 200))
            .await?)
    }

    /// Flushes coalesced presence and fills sequencer gaps from the store,
    /// until the process ends; with other nodes, also takes in their events.
    pub async fn run_ticker(self: Arc<Self>) {
        if let Some(events) = self.backplane.take_events() {
            tokio::spawn(self.clone().run_remote(events));
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n: u32 = 0;
        loop {
            tick.tick().await;
            n = n.wrapping_add(1);
            if self.distributed && n.is_multiple_of(CATCH_UP_TICKS) {
                self.mark_all_stale();
            }
            self.catch_up_stale().await;
            let rooms: Vec<(String, Arc<Mutex<RoomState>>)> = lock(&self.rooms)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (name, room) in rooms {
                let (gap, changes_wait) = {
                    let mut st = lock(&room);
                    if n.is_multiple_of(PRESENCE_TICKS) {
                        let online = st.online_count(lock(&self.remote).get(&name));
                        st.flush_presence(online);
                    }
                    let gap = match st.gap_since {
                        Some(t) if t.elapsed() >= GAP_WAIT => st.gap(),
                        _ => None,
                    };
                    let wait = st
                        .revs
                        .waiting_since
                        .is_some_and(|t| t.elapsed() >= GAP_WAIT);
                    (gap, wait)
                };
                if let Some((last, upto)) = gap {
                    self.fill_gap(&name, last, upto).await;
                }
                if changes_wait {
                    self.fill_changes(&name).await;
                }
            }
        }
    }

    /// Takes in the other nodes' events until the backplane stops.
    async fn run_remote(self: Arc<Self>, mut events: tokio::sync::mpsc::Receiver<Remote>) {
        while let Some(event) = events.recv().await {
            match event {
                Remote::Message(m) => self.deliver(m),
                Remote::Presence {
                    room,
                    user,
                    node,
                    online,
                } => self.remote_presence(&room, &user, &node, online),
                Remote::Typing { room, user } => self.relay_typing(&room, &user),
                Remote::Tip { room, id } => {
                    let mut stale = lock(&self.stale);
                    let e = stale.entry(room).or_insert(Some(id));
                    *e = e.map(|t| t.max(id));
                }
                Remote::Resubscribed | Remote::NodesLost(_) => self.mark_all_stale(),
                Remote::Snapshot(map) => self.apply_snapshot(map),
                Remote::End { key, except, why } => {
                    self.outboxes.end_except(&key, except.as_deref(), why);
                }
                Remote::Notice(notice) => self.take_notice(notice),
            }
        }
    }

    /// Every active room is to be compared with the store.
    fn mark_all_stale(&self) {
        let names: Vec<String> = lock(&self.rooms).keys().cloned().collect();
        let mut stale = lock(&self.stale);
        for name in names {
            // Reading the store's last id covers any tip already noted.
            stale.insert(name, None);
        }
    }

    /// Delivers what the store has beyond what stale rooms delivered;
    /// rooms whose store read failed stay stale for the next tick.
    async fn catch_up_stale(&self) {
        let stale: Vec<(String, Option<i64>)> = lock(&self.stale).drain().collect();
        for (name, tip) in stale {
            if let Err(e) = self.catch_up(&name, tip).await {
                tracing::warn!(room = %name, error = %e, "catch-up from the store failed");
                lock(&self.stale).entry(name).or_insert(tip);
            }
        }
    }

    async fn catch_up(&self, room_name: &str, tip: Option<i64>) -> Result<(), StoreError> {
        let Some(room) = self.existing_room(room_name) else {
            return Ok(()); // nobody here is in that room
        };
        let Some(last) = lock(&room).last() else {
            return Ok(()); // a join is reading the store right now
        };
        let upto = match tip {
            Some(t) => t,
            None => self.store.last_id(room_name).await?,
        };
        let known_rev = lock(&room).revs.last();
        if let Some(r) = known_rev
            && tip.is_none()
            && self.store.last_rev(room_name).await? > r
        {
            self.fill_changes(room_name).await;
        }
        if upto > last {
            self.metrics.backplane_catch_ups.inc();
            tracing::info!(
                room = room_name,
                after = last,
                upto,
                "catching up from the store"
            );
            self.fill_gap(room_name, last, upto).await;
        }
        Ok(())
    }

    /// A user's first connection on another node joined a room, or their
    /// last one there left it; members here hear of it when the user came
    /// to, or left, the whole room.
    fn remote_presence(&self, room_name: &str, user: &str, node: &str, online: bool) {
        // Holding `rooms` keeps a local room from appearing meanwhile with
        // an online list that misses this change.
        let rooms = lock(&self.rooms);
        let room = rooms.get(room_name).cloned();
        let mut st = room.as_ref().map(|r| lock(r));
        let mut remote = lock(&self.remote);
        let users = remote.entry(room_name.to_string()).or_default();
        let before = users.contains_key(user);
        if online {
            users
                .entry(user.to_string())
                .or_default()
                .insert(node.to_string());
        } else if let Some(nodes) = users.get_mut(user) {
            nodes.remove(node);
            if nodes.is_empty() {
                users.remove(user);
            }
        }
        let after = users.contains_key(user);
        if users.is_empty() {
            remote.remove(room_name);
        }
        if let Some(st) = st.as_mut()
            && before != after
            && !st.has_user(user)
        {
            let count = st.online_count(remote.get(room_name));
            let state = if after {
                PresenceState::Joined
            } else {
                PresenceState::Left
            };
            st.remote_presence(user, state, count);
        }
    }

    /// Replaces what is known of the other nodes' presence, telling the
    /// members of each local room who came and who went meanwhile.
    fn apply_snapshot(&self, mut fresh: PresenceMap) {
        let rooms = lock(&self.rooms);
        for (name, room) in rooms.iter() {
            let mut st = lock(room);
            let mut remote = lock(&self.remote);
            let after = fresh.remove(name);
            let before = match &after {
                Some(a) => remote.insert(name.clone(), a.clone()),
                None => remote.remove(name),
            };
            drop(remote);
            let was = |u: &str| before.as_ref().is_some_and(|b| b.contains_key(u));
            let is = |u: &str| after.as_ref().is_some_and(|a| a.contains_key(u));
            let mut changed: Vec<(String, PresenceState)> = Vec::new();
            for u in before.iter().flat_map(|b| b.keys()) {
                if !is(u) && !st.has_user(u) {
                    changed.push((u.clone(), PresenceState::Left));
                }
            }
            for u in after.iter().flat_map(|a| a.keys()) {
                if !was(u) && !st.has_user(u) {
                    changed.push((u.clone(), PresenceState::Joined));
                }
            }
            if !changed.is_empty() {
                let count = st.online_count(after.as_ref());
                for (u, state) in changed {
                    st.remote_presence(&u, state, count);
                }
            }
        }
        let mut remote = lock(&self.remote);
        remote.retain(|name, _| rooms.contains_key(name));
        remote.extend(fresh);
    }

    /// Reads missing messages from the store and delivers them.
    async fn fill_gap(&self, room_name: &str, last: i64, upto: i64) {
        self.metrics.gap_fills.inc();
        match self.store.range(room_name, last, upto, MAX_RESUME).await {
            Ok(missing) => {
                let found = missing.len();
                for m in missing {
                    self.deliver(m);
                }
                if found == 0
                    && let Some(room) = self.existing_room(room_name)
                {
                    // The store has no such ids (they were never committed):
                    // waiting longer would stall the room for nothing.
                    let mut st = lock(&room);
                    if st.gap().is_some_and(|(l, _)| l == last) {
                        tracing::warn!(
                            room = room_name,
                            after = last,
                            before = upto,
                            "skipping ids the store does not have"
                        );
                        st.skip_gap();
                    }
                }
            }
            Err(e) => tracing::warn!(room = room_name, error = %e, "gap fill failed"),
        }
    }
}

#[cfg(test)]
mod tests;
