//! The chat as plain data, and how server frames and the person's actions
//! change it.
//!
//! No signals, no globals, no browser: every change is a method on
//! [`ChatState`] that mutates it and returns the frames to send, so that
//! tests see both. `state` wraps it in signals for the components and hands
//! the returned frames to the page's sender.
//!
//! The state holds one [`RoomState`] per room the page has seen. The
//! sidebar's rooms and the room in view are joined on the one WebSocket, so
//! that `message` frames of rooms not in view count as unread.

use super::rooms::{DEFAULT_ROOM, dm_peer, is_dm, is_private, is_public};
use crate::protocol::{
    ClientFrame, Ended, ErrorCode, FileObject, HISTORY_PAGE, Kind, MemberState, Message,
    NotifyLevel, PresenceState, Resume, RoomEntry, ServerFrame, parse_room,
};
use crate::protocol::{SnapProblem, Snapshot};
use std::collections::{BTreeMap, HashMap};

mod conversation;
pub use conversation::{Change, MAX_SEEK_PAGES, mentions_me, unread_mentions};
mod jump;
pub use jump::Jump;

/// How long a typing notice shows, in ms.
pub const TYPING_SHOWN_MS: f64 = 5000.0;

/// A message sent and not acknowledged, as this browser keeps it across
/// reloads and closed tabs, to send again (same nonce) once connected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outgoing {
    pub nonce: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// The uploaded files it carries, whole: the pending line shows them,
    /// and a page opened later sends their ids again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<FileObject>,
}

impl Outgoing {
    /// The `send` frame for it, to a room.
    fn frame(self, room: &str) -> ClientFrame {
        ClientFrame::Send {
            room: room.to_string(),
            body: self.body,
            nonce: Some(self.nonce),
            reply_to: self.reply_to,
            attachments: self.attachments.into_iter().map(|f| f.id).collect(),
        }
    }
}

/// Where a line of the conversation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent, not yet acknowledged.
    Pending,
    /// Stored by the server.
    Stored,
    /// Refused, and why.
    Failed(ErrorCode),
}

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub id: Option<i64>,
    pub author: String,
    pub body: String,
    pub ts: Option<String>,
    pub nonce: Option<String>,
    pub delivery: Delivery,
    /// The message of the same room this one answers.
    pub reply_to: Option<i64>,
    /// The names the server found as `@name` in the body.
    pub mentions: Vec<String>,
    /// Who reacted with what.
    pub reactions: BTreeMap<String, Vec<String>>,
    /// When the body was last edited.
    pub edited: Option<String>,
    /// Deleted: the body is empty.
    pub deleted: bool,
    /// The files it carries (the sender's own, while pending).
    pub attachments: Vec<FileObject>,
}

impl Line {
    fn stored(m: Message) -> Self {
        Line {
            id: Some(m.id),
            author: m.author,
            body: m.body,
            ts: Some(m.ts),
            nonce: m.nonce,
            delivery: Delivery::Stored,
            reply_to: m.reply_to,
            mentions: m.mentions,
            reactions: m.reactions,
            edited: m.edited,
            deleted: m.deleted,
            attachments: m.attachments,
        }
    }

    /// Takes what a message now stands as (an edit, a reaction, a
    /// deletion), keeping where the line came from (its nonce).
    fn update(&mut self, m: Message) {
        let nonce = self.nonce.take();
        // No frame takes files off a message but its deletion: an edit
        // that came without them keeps those shown.
        let keep = m.attachments.is_empty() && !m.deleted;
        let files = std::mem::take(&mut self.attachments);
        *self = Line {
            nonce: nonce.or(m.nonce.clone()),
            ..Line::stored(m)
        };
        if keep {
            self.attachments = files;
        }
    }

    /// A key that stays the same from pending to stored.
    pub fn key(&self) -> String {
        match (&self.nonce, self.id) {
            (Some(n), _) => format!("n:{}:{n}", self.author),
            (None, Some(id)) => format!("i:{id}"),
            (None, None) => String::new(),
        }
    }
}

/// The state of the connection, as the person sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No nickname yet, or the page is not live (no JavaScript).
    Offline,
    Connecting,
    Connected,
    Reconnecting,
    /// The server ended the session for good (a ban, a sign-out): the page
    /// does not reconnect.
    Ended(Ended),
}

/// What the header's status badge says: the connection, or, before the
/// visitor has a name, an invitation (nothing is broken then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// No nickname and not signed in: "pick a name to join, or sign in".
    JoinOrSignIn,
    Offline,
    Connecting,
    Connected,
    Reconnecting,
    Ended(Ended),
}

/// The badge for a connection status, with or without a name.
pub fn badge(status: Status, named: bool) -> Badge {
    match status {
        Status::Offline if !named => Badge::JoinOrSignIn,
        Status::Offline => Badge::Offline,
        Status::Connecting => Badge::Connecting,
        Status::Connected => Badge::Connected,
        Status::Reconnecting => Badge::Reconnecting,
        Status::Ended(why) => Badge::Ended(why),
    }
}

/// A private room being made from the page's dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creating {
    pub room: String,
    /// Why the server refused it.
    pub error: Option<ErrorCode>,
    /// The server answered `joined`: the room exists, the dialog opens it.
    pub done: bool,
    /// Who it was made with, known as members once it exists.
    pub members: Vec<String>,
}

/// Where this connection stands with a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not joined (no connection, or not wanted).
    Idle,
    /// `join` sent, no answer yet.
    Joining,
    /// `joined` received: the room's frames arrive.
    Joined,
    /// The server answered `forbidden`.
    Refused,
}

/// Everything the page knows of one room.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomState {
    pub lines: Vec<Line>,
    /// Whether messages older than the first line exist.
    pub more: bool,
    pub loading_older: bool,
    pub online: Vec<String>,
    /// From the last `joined` or `presence`; `None` until known.
    pub online_count: Option<usize>,
    /// Who is typing, with the time (ms) their notice fades.
    pub typing: Vec<(String, f64)>,
    pub access: Access,
    /// The newest id the person has seen; `None` until the room is first shown or joined.
    pub last_read: Option<i64>,
    pub problem: Option<SnapProblem>,
    /// Whether the lines are known (a snapshot or a `joined` came).
    pub loaded: bool,
    /// Members of a private room as far as this page knows them (those it
    /// added, those `member` frames named, those seen online), sorted.
    pub members: Vec<String>,
    /// Who took the person out of this room (themself when they left).
    pub removed_by: Option<String>,
    /// An `invite`, `remove` or `topic` was sent and not answered yet.
    pub asking: bool,
    /// Why the last `invite`, `remove` or `topic` was refused.
    pub action_error: Option<ErrorCode>,
    /// The room's revision as of the last `joined` or `changed` (version
    /// 1.1), to resume from.
    pub rev: Option<i64>,
    /// The message the composer answers.
    pub reply_to: Option<i64>,
    /// The message of mine being edited in place.
    pub editing: Option<i64>,
    /// A message to bring into view (a reply's original), and the pages of
    /// history asked for it so far; `None` pages once it is shown.
    pub seeking: Option<(i64, Option<u32>)>,
}

impl RoomState {
    /// A room not shown yet, with the last read id this browser remembers.
    pub fn new(last_read: Option<i64>) -> Self {
        RoomState {
            lines: Vec::new(),
            more: false,
            loading_older: false,
            online: Vec::new(),
            online_count: None,
            typing: Vec::new(),
            access: Access::Idle,
            last_read,
            problem: None,
            loaded: false,
            members: Vec::new(),
            removed_by: None,
            asking: false,
            action_error: None,
            rev: None,
            reply_to: None,
            editing: None,
            seeking: None,
        }
    }

    /// The newest stored id shown, the point to resume from.
    pub fn last_id(&self) -> Option<i64> {
        self.lines.iter().rev().find_map(|l| l.id)
    }

    /// The oldest stored id shown, the point to scroll back from.
    pub fn first_id(&self) -> Option<i64> {
        self.lines.iter().find_map(|l| l.id)
    }

    /// Messages of others after the last one read.
    pub fn unread(&self, me: Option<&str>) -> usize {
        unread(self.last_read, &self.lines, me)
    }

    /// Messages of others after the last one read that mention `me`.
    pub fn unread_mentions(&self, me: Option<&str>) -> usize {
        unread_mentions(self.last_read, &self.lines, me)
    }

    /// The first message of someone else after the last one read: where
    /// the "New messages" line goes when the room opens.
    pub fn first_unread(&self, me: Option<&str>) -> Option<i64> {
        first_unread(self.last_read, &self.lines, me)
    }

    /// Lines sent but not acknowledged, oldest first.
    pub fn unacknowledged(&self) -> Vec<Outgoing> {
        self.lines
            .iter()
            .filter(|l| l.delivery == Delivery::Pending)
            .filter_map(|l| {
                Some(Outgoing {
                    nonce: l.nonce.clone()?,
                    body: l.body.clone(),
                    reply_to: l.reply_to,
                    attachments: l.attachments.clone(),
                })
            })
            .collect()
    }

    /// Forgets the conversation (after leaving: a later join starts afresh).
    fn reset(&mut self) {
        *self = RoomState {
            last_read: self.last_read,
            problem: self.problem,
            removed_by: self.removed_by.take(),
            ..RoomState::new(None)
        };
    }

    /// Sets `more` from a page of history whose first id is `page_first`:
    /// only a page at or before the first line shown says what is older.
    fn more_from(&mut self, page_first: Option<i64>, more: bool) {
        let first = self.first_id();
        if first.is_none() || page_first.is_some_and(|f| Some(f) <= first) {
            self.more = more;
        }
    }

    /// Stops showing the room: the server no longer sends it to this person.
    fn shut(&mut self) {
        self.access = Access::Refused;
        self.lines.clear();
        self.more = false;
        self.loaded = false;
        self.loading_older = false;
        self.online.clear();
        self.online_count = None;
        self.typing.clear();
        self.members.clear();
        self.asking = false;
        self.rev = None;
        self.reply_to = None;
        self.editing = None;
        self.seeking = None;
    }

    /// Adds a name to what the page knows of the members.
    fn add_member(&mut self, name: &str) {
        if let Err(at) = self.members.binary_search_by(|m| m.as_str().cmp(name)) {
            self.members.insert(at, name.to_string());
        }
    }

    /// Fails the pending line of that nonce; whether there was one.
    fn fail(&mut self, nonce: &str, code: ErrorCode) -> bool {
        match self
            .lines
            .iter_mut()
            .find(|l| l.id.is_none() && l.nonce.as_deref() == Some(nonce))
        {
            Some(l) => {
                l.delivery = Delivery::Failed(code);
                true
            }
            None => false,
        }
    }
}

/// Messages of others after `last_read` among `lines`.
pub fn unread(last_read: Option<i64>, lines: &[Line], me: Option<&str>) -> usize {
    let Some(read) = last_read else { return 0 };
    lines
        .iter()
        .filter(|l| l.id.is_some_and(|id| id > read) && Some(l.author.as_str()) != me)
        .count()
}

/// The first message of someone else after `last_read` among `lines`.
pub fn first_unread(last_read: Option<i64>, lines: &[Line], me: Option<&str>) -> Option<i64> {
    let read = last_read?;
    lines
        .iter()
        .filter(|l| !l.deleted && Some(l.author.as_str()) != me)
        .find_map(|l| l.id.filter(|id| *id > read))
}

/// What a server frame asks of the page besides the state it changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reaction {
    /// Frames to send, in order.
    pub send: Vec<ClientFrame>,
    /// A message of someone else, out of the person's sight, for screen readers.
    pub announce: Option<Message>,
    /// A message of someone else that came while the tab was hidden and
    /// that the room's notification level asks to be told of.
    pub notify: Option<Message>,
}

/// The state of the whole chat.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatState {
    /// The room in view.
    pub current: String,
    /// The sidebar's rooms and DMs, in the order they were added.
    pub sidebar: Vec<String>,
    /// Public rooms the server listed (most recently active first).
    pub known: Vec<String>,
    pub status: Status,
    /// The nickname chosen in this browser, or the signed-in account's.
    pub name: Option<String>,
    /// Whether `name` is a signed-in account (hello carries no name then:
    /// the session cookie says who it is).
    pub signed_in: bool,
    /// The server said this account is an admin (in `welcome`).
    pub admin: bool,
    /// Private rooms' owners, from the `rooms` frame.
    pub owners: HashMap<String, String>,
    /// The account's notification level per room, from the `rooms` frame.
    pub levels: HashMap<String, NotifyLevel>,
    /// Why the server refused the nickname.
    pub name_error: Option<ErrorCode>,
    /// The last problem worth telling the person.
    pub notice: Option<ErrorCode>,
    /// Whether the tab is visible.
    pub visible: bool,
    /// Room topics, from the `rooms` frame and `topic` frames (version 1.1).
    pub topics: BTreeMap<String, String>,
    /// The private room the page's dialog is making.
    pub creating: Option<Creating>,
    /// The last edit, deletion or reaction refused, and why.
    pub refused: Option<(Change, ErrorCode)>,
    /// The room and kind of the change last sent, until answered.
    asked: Option<(String, Change)>,
    /// The message the page is to show (a search result, `?around=`).
    pub jump: Option<Jump>,
    rooms: BTreeMap<String, RoomState>,
    /// The last read id per room, as this browser remembers them.
    marks: BTreeMap<String, i64>,
    /// Whether the read positions are known: a guest's are this browser's;
    /// an account's come with the server's `rooms` frame. Until then
    /// nothing is marked read, nor is a room opened at its first unread.
    pub reads_known: bool,
}

impl Default for ChatState {
    fn default() -> Self {
        ChatState {
            current: DEFAULT_ROOM.to_string(),
            sidebar: vec![DEFAULT_ROOM.to_string()],
            known: Vec::new(),
            status: Status::Offline,
            name: None,
            signed_in: false,
            admin: false,
            owners: HashMap::new(),
            levels: HashMap::new(),
            name_error: None,
            notice: None,
            visible: true,
            topics: BTreeMap::new(),
            creating: None,
            refused: None,
            asked: None,
            jump: None,
            rooms: BTreeMap::new(),
            marks: BTreeMap::new(),
            reads_known: false,
        }
    }
}

impl ChatState {
    /// The room of that name, if the page has seen it.
    pub fn room(&self, name: &str) -> Option<&RoomState> {
        self.rooms.get(name)
    }

    /// What a room of that name shows: the room, or one not seen yet.
    pub fn with_room<T>(&self, name: &str, f: impl FnOnce(&RoomState) -> T) -> T {
        match self.rooms.get(name) {
            Some(r) => f(r),
            None => f(&RoomState::new(self.marks.get(name).copied())),
        }
    }

    /// The room of that name, made on first use.
    fn room_mut(&mut self, name: &str) -> &mut RoomState {
        let mark = self.marks.get(name).copied();
        self.rooms
            .entry(name.to_string())
            .or_insert_with(|| RoomState::new(mark))
    }

    /// The last read id per room, to remember in this browser.
    pub fn marks(&self) -> &BTreeMap<String, i64> {
        &self.marks
    }

    /// Sets who the page speaks as; a new name clears the last refusal.
    pub fn set_name(&mut self, name: Option<String>, signed_in: bool) {
        self.name = name;
        self.signed_in = signed_in;
        self.name_error = None;
        // A guest's (or a visitor's) reads are this browser's, known
        // already; an account's come with the server's `rooms`.
        self.reads_known = !signed_in;
    }

    /// Shows a room: it becomes current, and a public one goes in the sidebar.
    pub fn set_current(&mut self, name: &str) {
        if self.current != name {
            self.current = name.to_string();
        }
        if is_public(name) {
            self.add_to_sidebar(name);
        }
        let bad = parse_room(name).is_err();
        let room = self.room_mut(name);
        if bad {
            room.problem = Some(SnapProblem::BadRoom);
        }
    }

    /// Lists a room in the sidebar.
    pub fn add_to_sidebar(&mut self, name: &str) {
        if !self.sidebar.iter().any(|r| r == name) {
            self.sidebar.push(name.to_string());
        }
    }

    /// Takes a room off the sidebar; [`ChatState::sync_joins`] leaves it unless in view.
    pub fn remove_from_sidebar(&mut self, name: &str) {
        self.sidebar.retain(|r| r != name);
    }

    /// Replaces the sidebar with what this browser remembers, keeping the
    /// room in view.
    pub fn restore_sidebar(&mut self, rooms: Vec<String>) {
        let me = self.name.as_deref();
        let mut list: Vec<String> = Vec::new();
        for r in rooms {
            let keep = is_public(&r) || is_private(&r) || dm_peer(&r, me).is_some();
            if keep && !list.contains(&r) {
                list.push(r);
            }
        }
        if is_public(&self.current) && !list.contains(&self.current) {
            list.push(self.current.clone());
        }
        self.sidebar = list;
    }

    /// Reads the last read ids this browser remembers.
    pub fn restore_marks(&mut self, marks: BTreeMap<String, i64>) {
        for (name, id) in &marks {
            if let Some(r) = self.rooms.get_mut(name)
                && r.last_read.is_none_or(|old| old < *id)
            {
                r.last_read = Some(*id);
            }
        }
        self.marks = marks;
    }

    /// The rooms this connection should be in: the sidebar's and the one in view.
    pub fn wanted(&self) -> Vec<String> {
        let me = self.name.as_deref();
        let mut rooms: Vec<String> = self
            .sidebar
            .iter()
            .filter(|r| is_public(r) || is_private(r) || dm_peer(r, me).is_some())
            .cloned()
            .collect();
        if parse_room(&self.current).is_ok() && !rooms.contains(&self.current) {
            rooms.push(self.current.clone());
        }
        rooms
    }

    /// Joins the wanted rooms not joined yet and leaves the others.
    pub fn sync_joins(&mut self) -> Vec<ClientFrame> {
        let mut out = Vec::new();
        if self.status != Status::Connected {
            return out;
        }
        let wanted = self.wanted();
        for name in &wanted {
            let room = self.room_mut(name);
            if room.access == Access::Idle {
                room.access = Access::Joining;
                out.push(ClientFrame::Join { room: name.clone() });
            }
        }
        for (name, room) in self.rooms.iter_mut() {
            if wanted.contains(name) {
                continue;
            }
            match room.access {
                Access::Joining | Access::Joined => {
                    out.push(ClientFrame::Leave { room: name.clone() });
                    room.reset();
                }
                Access::Refused => room.access = Access::Idle,
                Access::Idle => {}
            }
        }
        out
    }

    /// The frame that opens a connection: `hello`, with the last id seen in
    /// each wanted room, and its revision once the server gave one.
    pub fn hello(&self) -> ClientFrame {
        let mut resume = BTreeMap::new();
        for name in self.wanted() {
            let Some(room) = self.rooms.get(&name) else {
                continue;
            };
            if let Some(id) = room.last_id() {
                let at = match room.rev {
                    Some(rev) => Resume::At { id, rev },
                    None => Resume::Id(id),
                };
                resume.insert(name, at);
            }
        }
        ClientFrame::Hello {
            // Signed in: the session cookie on the upgrade says who this is.
            name: if self.signed_in {
                None
            } else {
                self.name.clone()
            },
            token: None,
            resume,
        }
    }

    /// A connection is being opened.
    pub fn connecting(&mut self) {
        self.status = Status::Connecting;
    }

    /// Whether this person may remove others from `room` and set its topic:
    /// its owner or an admin (any member sets a direct room's topic).
    pub fn manages(&self, room: &str) -> bool {
        let me = self.name.as_deref();
        self.signed_in
            && (self.admin || (me.is_some() && self.owners.get(room).map(String::as_str) == me))
    }

    /// The server closed the session for good: nothing is live any more,
    /// and nothing is sent.
    pub fn on_ended(&mut self, why: Ended) {
        self.on_disconnect();
        self.status = Status::Ended(why);
    }

    /// The connection dropped: every room must be joined again. A refused
    /// nickname ends the connection loop (`Offline`, no name) until the
    /// person picks another; anything else means reconnecting.
    pub fn on_disconnect(&mut self) {
        for room in self.rooms.values_mut() {
            if matches!(room.access, Access::Joining | Access::Joined) {
                room.access = Access::Idle;
            }
            room.loading_older = false;
            room.typing.clear();
        }
        if self.name_error.is_some() {
            self.status = Status::Offline;
            self.name = None;
        } else {
            self.status = Status::Reconnecting;
        }
    }

    /// Sends a message, with uploaded files, to the room in view; the line
    /// shows at once, pending.
    pub fn send_message(
        &mut self,
        body: &str,
        files: Vec<FileObject>,
        nonce: String,
    ) -> Vec<ClientFrame> {
        let Some(me) = self.name.clone() else {
            return Vec::new();
        };
        let name = self.current.clone();
        let room = self.room_mut(&name);
        let reply_to = room.reply_to.take();
        room.lines.push(Line {
            id: None,
            author: me,
            body: body.to_string(),
            ts: None,
            nonce: Some(nonce.clone()),
            delivery: Delivery::Pending,
            reply_to,
            mentions: Vec::new(),
            reactions: BTreeMap::new(),
            edited: None,
            deleted: false,
            attachments: files.clone(),
        });
        // Not joined yet: it goes after `joined`, with the rest of the outbox.
        if room.access != Access::Joined {
            return Vec::new();
        }
        let o = Outgoing {
            nonce,
            body: body.to_string(),
            reply_to,
            attachments: files,
        };
        vec![o.frame(&name)]
    }

    /// What waits to be sent, per room: the pending lines, oldest first.
    pub fn outbox(&self) -> BTreeMap<String, Vec<Outgoing>> {
        self.rooms
            .iter()
            .map(|(name, r)| (name.clone(), r.unacknowledged()))
            .filter(|(_, waiting)| !waiting.is_empty())
            .collect()
    }

    /// Shows again what an earlier page of this browser left unsent, as
    /// pending lines (not those shown already, pending or stored); they go
    /// with the rest of the outbox after the room's `joined`.
    pub fn restore_outbox(&mut self, outbox: BTreeMap<String, Vec<Outgoing>>) {
        let Some(me) = self.name.clone() else {
            return;
        };
        for (name, waiting) in outbox {
            if parse_room(&name).is_err() {
                continue;
            }
            let room = self.room_mut(&name);
            for o in waiting {
                let shown = room
                    .lines
                    .iter()
                    .any(|l| l.nonce.as_deref() == Some(o.nonce.as_str()) && l.author == me);
                if shown {
                    continue;
                }
                room.lines.push(Line {
                    id: None,
                    author: me.clone(),
                    body: o.body,
                    ts: None,
                    nonce: Some(o.nonce),
                    delivery: Delivery::Pending,
                    reply_to: o.reply_to,
                    mentions: Vec::new(),
                    reactions: BTreeMap::new(),
                    edited: None,
                    deleted: false,
                    attachments: o.attachments,
                });
            }
            // To be joined, so sent.
            if is_public(&name) || is_private(&name) || dm_peer(&name, Some(&me)).is_some() {
                self.add_to_sidebar(&name);
            }
        }
    }

    /// Sends a failed line again, same nonce.
    pub fn retry(&mut self, room_name: &str, nonce: &str) -> Vec<ClientFrame> {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return Vec::new();
        };
        let Some(line) = room
            .lines
            .iter_mut()
            .find(|l| l.nonce.as_deref() == Some(nonce) && l.id.is_none())
        else {
            return Vec::new();
        };
        line.delivery = Delivery::Pending;
        let o = Outgoing {
            nonce: nonce.to_string(),
            body: line.body.clone(),
            reply_to: line.reply_to,
            attachments: line.attachments.clone(),
        };
        if room.access != Access::Joined {
            return Vec::new();
        }
        vec![o.frame(room_name)]
    }

    /// A typing notice for the room in view, if it is joined.
    pub fn typing(&self) -> Option<ClientFrame> {
        let joined = self
            .rooms
            .get(&self.current)
            .is_some_and(|r| r.access == Access::Joined);
        joined.then(|| ClientFrame::Typing {
            room: self.current.clone(),
        })
    }

    /// Makes a private room (`~name`) with its first members and topic; the
    /// answer (`joined`, or an error naming the room) lands in
    /// [`ChatState::creating`].
    pub fn create_room(
        &mut self,
        room: &str,
        members: Vec<String>,
        topic: &str,
    ) -> Vec<ClientFrame> {
        let connected = self.status == Status::Connected;
        self.creating = Some(Creating {
            room: room.to_string(),
            error: (!connected).then_some(ErrorCode::Unavailable),
            done: false,
            members: members.clone(),
        });
        if !connected {
            return Vec::new();
        }
        let r = self.room_mut(room);
        // `create` is answered by `joined`, as a `join` is.
        r.access = Access::Joining;
        r.problem = None;
        r.removed_by = None;
        let topic = topic.trim();
        vec![ClientFrame::Create {
            room: room.to_string(),
            members,
            topic: (!topic.is_empty()).then(|| topic.to_string()),
        }]
    }

    /// The dialog closed: forget what it was making.
    pub fn end_create(&mut self) {
        self.creating = None;
    }

    /// Asks something of a room's owner-or-member rights (`invite`,
    /// `remove`, `topic`); its refusal shows in the room.
    fn ask(&mut self, room: &str, frame: ClientFrame) -> Vec<ClientFrame> {
        if self.status != Status::Connected {
            self.room_mut(room).action_error = Some(ErrorCode::Unavailable);
            return Vec::new();
        }
        let r = self.room_mut(room);
        r.asking = true;
        r.action_error = None;
        vec![frame]
    }

    /// Adds someone to a private room.
    pub fn invite(&mut self, room: &str, user: &str) -> Vec<ClientFrame> {
        let frame = ClientFrame::Invite {
            room: room.to_string(),
            user: user.to_string(),
        };
        self.ask(room, frame)
    }

    /// Takes someone out of a private room; oneself, to leave it.
    pub fn remove_member(&mut self, room: &str, user: &str) -> Vec<ClientFrame> {
        let frame = ClientFrame::Remove {
            room: room.to_string(),
            user: user.to_string(),
        };
        self.ask(room, frame)
    }

    /// Changes a room's topic.
    pub fn set_topic(&mut self, room: &str, topic: &str) -> Vec<ClientFrame> {
        let frame = ClientFrame::Topic {
            room: room.to_string(),
            topic: topic.trim().to_string(),
        };
        self.ask(room, frame)
    }

    /// How much of a room the account wants to be told of: as the server
    /// last said, else the default of the room's kind.
    pub fn level(&self, room: &str) -> NotifyLevel {
        self.levels.get(room).copied().unwrap_or(if is_dm(room) {
            NotifyLevel::All
        } else {
            NotifyLevel::Mentions
        })
    }

    /// Whether a message calls for a notification: someone else's, in a
    /// hidden tab, and one the room's level asks for.
    pub fn notifies(&self, m: &Message) -> bool {
        let me = self.name.as_deref();
        if self.visible || me.is_none() || Some(m.author.as_str()) == me || m.deleted {
            return false;
        }
        match self.level(&m.room) {
            NotifyLevel::All => true,
            NotifyLevel::Mentions => mentions_me(&m.mentions, me),
            NotifyLevel::None => false,
        }
    }

    /// Sets the account's notification level in a room; the server answers
    /// every session of the account with a fresh `rooms` frame.
    pub fn set_level(&mut self, room: &str, level: NotifyLevel) -> Vec<ClientFrame> {
        if !self.signed_in {
            return Vec::new();
        }
        self.levels.insert(room.to_string(), level);
        vec![ClientFrame::Notify {
            room: room.to_string(),
            level,
        }]
    }

    /// A room's topic, when it has one.
    pub fn topic(&self, room: &str) -> Option<&str> {
        self.topics
            .get(room)
            .map(String::as_str)
            .filter(|t| !t.is_empty())
    }

    /// Asks for the page of messages before the first one shown.
    pub fn load_older(&mut self, room_name: &str) -> Vec<ClientFrame> {
        let connected = self.status == Status::Connected;
        let Some(room) = self.rooms.get_mut(room_name) else {
            return Vec::new();
        };
        if !room.more || room.loading_older || !connected || room.access == Access::Refused {
            return Vec::new();
        }
        let Some(before) = room.first_id() else {
            return Vec::new();
        };
        room.loading_older = true;
        vec![ClientFrame::History {
            room: room_name.to_string(),
            before: Some(before),
            limit: Some(HISTORY_PAGE as u32),
        }]
    }

    /// Marks a room read up to `seen`, the newest message the person had
    /// on screen in a visible tab (never further than what the room holds).
    /// `None` when nothing moved; else the frames that tell the server (an
    /// account's read position is kept there, for every device; a guest's
    /// only in this browser).
    pub fn mark_read(&mut self, room_name: &str, seen: i64) -> Option<Vec<ClientFrame>> {
        let room = self.rooms.get_mut(room_name)?;
        let last = room.last_id().unwrap_or(0).min(seen);
        // `marks` is what was kept (and told the server): a room joined
        // counts as read up to its end here, which the server learns once
        // it was seen.
        let kept = self.marks.get(room_name).copied();
        if room.last_read.is_some_and(|r| r >= last) && kept.is_some_and(|k| k >= last) {
            return None;
        }
        room.last_read = Some(room.last_read.map_or(last, |r| r.max(last)));
        self.marks
            .insert(room_name.to_string(), kept.map_or(last, |k| k.max(last)));
        Some(
            if self.signed_in && last > 0 && kept.is_none_or(|k| k < last) {
                vec![ClientFrame::Read {
                    room: room_name.to_string(),
                    id: last,
                }]
            } else {
                Vec::new()
            },
        )
    }

    /// Unread messages in the sidebar's rooms and the one in view.
    pub fn total_unread(&self) -> usize {
        let me = self.name.as_deref();
        let current = std::iter::once(&self.current).filter(|c| !self.sidebar.contains(c));
        self.sidebar
            .iter()
            .chain(current)
            .filter_map(|n| self.rooms.get(n))
            .map(|r| r.unread(me))
            .sum()
    }

    /// Shows a server-rendered snapshot. A room already live on the socket
    /// keeps what the socket gave.
    pub fn load(&mut self, snap: &Snapshot) {
        let room = self.room_mut(&snap.room);
        room.problem = snap.problem;
        if room.access == Access::Joined {
            return;
        }
        room.more_from(snap.messages.first().map(|m| m.id), snap.more);
        for m in snap.messages.iter().cloned() {
            merge_into(&mut room.lines, m);
        }
        // Not `online_count`: that is the socket's (`joined`, `presence`);
        // until it comes, the page counts `online`.
        room.online = snap.online.clone();
        room.loaded = snap.problem.is_none() && is_public(&snap.room);
    }

    /// A room's snapshot could not be read: the room says so.
    pub fn snapshot_failed(&mut self, name: &str) {
        self.room_mut(name).problem = Some(SnapProblem::Unavailable);
    }

    /// Drops the typing notices of the room in view whose time is up;
    /// whether any was.
    pub fn expire_typing(&mut self, now_ms: f64) -> bool {
        let Some(room) = self.rooms.get_mut(&self.current) else {
            return false;
        };
        let before = room.typing.len();
        room.typing.retain(|(_, until)| *until > now_ms);
        room.typing.len() != before
    }

    /// Whether [`ChatState::expire_typing`] would change anything.
    pub fn typing_expires(&self, now_ms: f64) -> bool {
        self.rooms
            .get(&self.current)
            .is_some_and(|r| r.typing.iter().any(|(_, until)| *until <= now_ms))
    }

    /// Applies a frame from the server.
    pub fn apply(&mut self, frame: ServerFrame, now_ms: f64) -> Reaction {
        let mut out = Reaction::default();
        match frame {
            ServerFrame::Welcome { user, rooms } => {
                self.admin = user.admin;
                out.send = self.on_welcome(rooms)
            }
            ServerFrame::Joined {
                room,
                online,
                history,
                more,
                changed,
                rev,
            } => {
                out.send = self.on_joined(&room, online, history, more);
                self.on_joined_changes(&room, changed, rev);
            }
            ServerFrame::Presence {
                room,
                user,
                state,
                joined,
                left,
                online,
            } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return out;
                };
                if r.access != Access::Joined {
                    return out;
                }
                let mut add = joined.unwrap_or_default();
                let mut sub = left.unwrap_or_default();
                match (user, state) {
                    (Some(u), Some(PresenceState::Joined)) => add.push(u),
                    (Some(u), Some(PresenceState::Left)) => sub.push(u),
                    _ => {}
                }
                r.online.retain(|n| !sub.contains(n));
                for u in add {
                    if !r.online.contains(&u) {
                        r.online.push(u);
                    }
                }
                r.online.sort();
                r.online_count = Some(online);
                if is_private(&room) {
                    for u in r.online.clone() {
                        r.add_member(&u);
                    }
                }
            }
            ServerFrame::Ack {
                nonce,
                room,
                id,
                ts,
            } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return out;
                };
                let ls = &mut r.lines;
                if let Some(l) = ls
                    .iter_mut()
                    .find(|l| l.id.is_none() && l.nonce.is_some() && l.nonce == nonce)
                {
                    l.id = Some(id);
                    l.ts = Some(ts);
                    l.delivery = Delivery::Stored;
                }
                ls.sort_by_key(|l| l.id.unwrap_or(i64::MAX));
                ls.dedup_by(|a, b| a.id.is_some() && a.id == b.id);
            }
            ServerFrame::Message(m) => return self.on_message(m),
            ServerFrame::History {
                room,
                messages,
                more,
            } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return out;
                };
                r.loading_older = false;
                if r.access == Access::Idle && !r.loaded {
                    return out;
                }
                r.more = more;
                for m in messages {
                    merge_into(&mut r.lines, m);
                }
                let mut send = self.seek_further(&room);
                // A reply's original or a search result: whichever asked (one
                // page at a time: each sees the other's request).
                send.extend(self.continue_jump());
                out.send = send;
            }
            ServerFrame::Typing { room, user } => {
                if Some(user.as_str()) == self.name.as_deref() {
                    return out;
                }
                let Some(r) = self.rooms.get_mut(&room) else {
                    return out;
                };
                r.typing.retain(|(u, until)| *u != user && *until > now_ms);
                r.typing.push((user, now_ms + TYPING_SHOWN_MS));
            }
            ServerFrame::Error {
                code, nonce, room, ..
            } => self.on_error(code, nonce, room),
            ServerFrame::Rooms { rooms } => out.send = self.on_rooms(rooms),
            ServerFrame::Changed { room, rev, message } => self.on_changed(&room, rev, message),
            ServerFrame::Member {
                room,
                user,
                state,
                by,
            } => out.send = self.on_member(&room, &user, state, by),
            ServerFrame::Topic { room, topic, .. } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.asking = false;
                }
                self.topics.insert(room, topic);
            }
            ServerFrame::Read { room, id, .. } => self.read_elsewhere(&room, id),
        }
        out
    }

    /// The account read a room up to `id` on another device or tab (or
    /// this one): marks never move back.
    fn read_elsewhere(&mut self, room_name: &str, id: i64) {
        if self.marks.get(room_name).is_some_and(|m| *m >= id) {
            return;
        }
        self.marks.insert(room_name.to_string(), id);
        // A room not opened yet takes its mark when it is.
        if let Some(room) = self.rooms.get_mut(room_name)
            && room.last_read.is_none_or(|r| r < id)
        {
            room.last_read = Some(id);
        }
    }

    fn on_welcome(&mut self, rooms: Vec<String>) -> Vec<ClientFrame> {
        self.status = Status::Connected;
        self.name_error = None;
        self.notice = None;
        let mut public = Vec::new();
        for name in rooms {
            if is_public(&name) {
                public.push(name);
            } else if dm_peer(&name, self.name.as_deref()).is_some()
                && !self.sidebar.contains(&name)
            {
                // A conversation this browser did not list yet: what is in it is new.
                let room = self.room_mut(&name);
                room.last_read.get_or_insert(0);
                self.add_to_sidebar(&name);
            }
        }
        self.known = public;
        for room in self.rooms.values_mut() {
            room.access = Access::Idle;
        }
        self.sync_joins()
    }

    /// The rooms the server lists for this person (version 1.1): public
    /// ones become suggestions, private and direct ones they belong to go
    /// in the sidebar, and private ones no longer listed leave it.
    fn on_rooms(&mut self, entries: Vec<RoomEntry>) -> Vec<ClientFrame> {
        let mut public = Vec::new();
        let mut mine = Vec::new();
        for e in entries {
            if parse_room(&e.room).is_err() {
                continue;
            }
            self.topics.insert(e.room.clone(), e.topic);
            // What this account read on other devices (kept by the server).
            if self.signed_in && e.last_read > 0 {
                self.read_elsewhere(&e.room, e.last_read);
            }
            self.levels.insert(e.room.clone(), e.notify);
            match e.owner {
                Some(owner) => self.owners.insert(e.room.clone(), owner),
                None => self.owners.remove(&e.room),
            };
            match e.kind {
                Kind::Public => public.push(e.room),
                Kind::Private | Kind::Direct => mine.push((e.room, e.last_read)),
            }
        }
        if !public.is_empty() {
            self.known = public;
        }
        self.reads_known = true;
        // Rooms shown before the positions came, and never read by this
        // account: what is there is not news.
        for room in self.rooms.values_mut() {
            if room.loaded && room.last_read.is_none() {
                room.last_read = Some(room.last_id().unwrap_or(0));
            }
        }
        let gone: Vec<String> = self
            .sidebar
            .iter()
            .filter(|r| is_private(r) && !mine.iter().any(|(m, _)| m == *r))
            .cloned()
            .collect();
        for r in &gone {
            self.remove_from_sidebar(r);
        }
        for (name, read) in mine {
            if self.sidebar.contains(&name) {
                continue;
            }
            let room = self.room_mut(&name);
            // Listed: the person is in it, whatever happened before.
            room.removed_by = None;
            if room.access == Access::Refused {
                room.access = Access::Idle;
                room.problem = None;
            }
            room.last_read.get_or_insert(read.max(0));
            self.add_to_sidebar(&name);
        }
        self.sync_joins()
    }

    /// Someone came into a private room or left it; when it is the person
    /// themself, the room opens or shuts on this page.
    fn on_member(
        &mut self,
        name: &str,
        user: &str,
        state: MemberState,
        by: String,
    ) -> Vec<ClientFrame> {
        let me = self.name.as_deref() == Some(user);
        if !me {
            if let Some(r) = self.rooms.get_mut(name) {
                r.asking = false;
                match state {
                    MemberState::Added => r.add_member(user),
                    MemberState::Removed => {
                        r.members.retain(|m| m != user);
                        r.online.retain(|m| m != user);
                    }
                }
            }
            return Vec::new();
        }
        let r = self.room_mut(name);
        r.asking = false;
        match state {
            MemberState::Added => {
                r.removed_by = None;
                if r.access == Access::Refused {
                    r.access = Access::Idle;
                    r.problem = None;
                }
                r.add_member(user);
                // All of it is new to the person.
                r.last_read.get_or_insert(0);
                self.add_to_sidebar(name);
                self.sync_joins()
            }
            MemberState::Removed => {
                // The server stopped sending the room: no `leave` to send.
                r.shut();
                r.removed_by = Some(by);
                self.remove_from_sidebar(name);
                Vec::new()
            }
        }
    }

    fn on_joined(
        &mut self,
        name: &str,
        online: Vec<String>,
        history: Vec<Message>,
        more: bool,
    ) -> Vec<ClientFrame> {
        let known = self.reads_known;
        let Some(room) = self.rooms.get_mut(name) else {
            return Vec::new();
        };
        if room.access != Access::Joining {
            // Left (or refused) meanwhile.
            return Vec::new();
        }
        room.access = Access::Joined;
        room.problem = None;
        room.removed_by = None;
        if is_private(name) {
            for u in &online {
                room.add_member(u);
            }
        }
        room.online_count = Some(online.len());
        room.online = online;
        let hist_first = history.first().map(|m| m.id);
        if let (Some(last), Some(first)) = (room.last_id(), hist_first)
            && first > last + 1
        {
            // Too far behind to resume (or stale lines): start from this page.
            room.lines.retain(|l| l.id.is_none());
        }
        room.more_from(hist_first, more);
        for m in history {
            merge_into(&mut room.lines, m);
        }
        room.loaded = true;
        // What was there before the person came is not news to them; an
        // account's position may still be on its way (`rooms`).
        if room.last_read.is_none() && known {
            room.last_read = Some(room.last_id().unwrap_or(0));
        }
        // The outbox: what was sent but not acknowledged goes again, same
        // nonce; the server stores it once.
        let resend: Vec<ClientFrame> = room
            .unacknowledged()
            .into_iter()
            .map(|o| o.frame(name))
            .collect();
        let in_view_public = is_public(name) && self.current == name;
        if in_view_public || is_private(name) || dm_peer(name, self.name.as_deref()).is_some() {
            self.add_to_sidebar(name);
        }
        if let Some(c) = self.creating.as_mut()
            && c.room == name
        {
            c.done = true;
            c.error = None;
            if let Some(r) = self.rooms.get_mut(name) {
                for m in c.members.iter().chain(self.name.as_ref()) {
                    r.add_member(m);
                }
            }
        }
        let mut send = resend;
        send.extend(self.continue_jump());
        send
    }

    fn on_message(&mut self, m: Message) -> Reaction {
        let me = self.name.clone();
        let from_other = Some(m.author.as_str()) != me.as_deref();
        let out_of_sight = m.room != self.current || !self.visible;
        let mut out = Reaction {
            notify: self.notifies(&m).then(|| m.clone()),
            ..Reaction::default()
        };
        match self.rooms.get_mut(&m.room) {
            Some(r) if matches!(r.access, Access::Joined | Access::Joining) => {
                r.typing.retain(|(u, _)| *u != m.author);
                if from_other && out_of_sight {
                    out.announce = Some(m.clone());
                }
                merge_into(&mut r.lines, m);
            }
            _ => {
                // A direct message in a conversation this page is not in:
                // list it and join it; `joined` brings the message.
                if dm_peer(&m.room, me.as_deref()).is_none() {
                    return Reaction::default();
                }
                self.room_mut(&m.room).last_read.get_or_insert(0);
                self.add_to_sidebar(&m.room);
                out.send = self.sync_joins();
                if from_other {
                    out.announce = Some(m);
                }
            }
        }
        out
    }

    fn on_error(&mut self, code: ErrorCode, nonce: Option<String>, room: Option<String>) {
        // A `bad_name` about a room (a private room's name is taken, say) is
        // not about the nickname.
        if code == ErrorCode::BadName && room.is_none() {
            self.name_error = Some(code);
            return;
        }
        if let Some(name) = room.as_deref()
            && nonce.is_none()
            && self.room_refused(name, code)
        {
            return;
        }
        if let Some(nonce) = &nonce {
            // The room named first; an older server names none, so any room.
            let failed = match room.as_deref().and_then(|n| self.rooms.get_mut(n)) {
                Some(r) => r.fail(nonce, code),
                None => self.rooms.values_mut().any(|r| r.fail(nonce, code)),
            };
            if failed {
                return;
            }
        }
        if self.change_refused(code, room.as_deref()) {
            return;
        }
        if code == ErrorCode::Forbidden {
            // A `forbidden` answers the join of a direct-message room. An
            // older server does not say which: the one in view first.
            let candidates = match &room {
                Some(r) => vec![r.clone()],
                None => std::iter::once(self.current.clone())
                    .chain(self.wanted())
                    .collect(),
            };
            let refused = candidates.into_iter().find(|n| {
                is_dm(n)
                    && self
                        .rooms
                        .get(n)
                        .is_some_and(|r| r.access == Access::Joining)
            });
            if let Some(name) = refused {
                if let Some(r) = self.rooms.get_mut(&name) {
                    r.access = Access::Refused;
                    r.lines.clear();
                    r.more = false;
                    r.loaded = false;
                }
                self.remove_from_sidebar(&name);
                return;
            }
        }
        if code == ErrorCode::NotJoined {
            // A typing notice racing a leave; nothing the person can act on.
            return;
        }
        // A refused `history` leaves its room able to ask again.
        match room.as_deref().and_then(|n| self.rooms.get_mut(n)) {
            Some(r) => r.loading_older = false,
            None => self
                .rooms
                .values_mut()
                .for_each(|r| r.loading_older = false),
        }
        self.notice = Some(code);
    }
}

impl ChatState {
    /// Takes an error about one room as the answer to what the page asked
    /// of it: a `create`, a `join` of a private or direct room, an
    /// `invite` / `remove` / `topic`. Whether it was one of these.
    fn room_refused(&mut self, name: &str, code: ErrorCode) -> bool {
        if let Some(c) = self.creating.as_mut()
            && c.room == name
            && !c.done
        {
            c.error = Some(code);
            if let Some(r) = self.rooms.get_mut(name)
                && r.access == Access::Joining
            {
                r.access = Access::Idle;
            }
            return true;
        }
        let Some(r) = self.rooms.get_mut(name) else {
            return false;
        };
        if code == ErrorCode::NotFound && r.access == Access::Joining {
            // A private room one is not in looks like no room at all; a
            // direct room with a name no one holds, too.
            r.shut();
            r.problem = Some(SnapProblem::NotFound);
            self.remove_from_sidebar(name);
            return true;
        }
        let about_asking = matches!(
            code,
            ErrorCode::Forbidden | ErrorCode::NotFound | ErrorCode::BadRequest | ErrorCode::BadName
        );
        if r.asking && about_asking {
            r.asking = false;
            r.action_error = Some(code);
            return true;
        }
        false
    }
}

/// Puts a stored message in its place: stored lines in id order, pending
/// ones after them; the pending line it acknowledges goes.
fn merge_into(ls: &mut Vec<Line>, m: Message) {
    // Shown already: history carries messages as they now stand.
    if let Some(l) = ls.iter_mut().find(|l| l.id == Some(m.id)) {
        if l.delivery == Delivery::Stored {
            l.update(m);
        }
        return;
    }
    if let Some(i) = ls.iter().position(|l| {
        l.id.is_none() && l.nonce.is_some() && l.nonce == m.nonce && l.author == m.author
    }) {
        ls.remove(i);
    }
    let at = ls
        .iter()
        .position(|l| l.id.is_none_or(|id| id > m.id))
        .unwrap_or(ls.len());
    ls.insert(at, Line::stored(m));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::UserInfo;

    const TS: &str = "2026-11-21T10:15:30.123Z";

    fn msg(room: &str, id: i64, author: &str) -> Message {
        Message {
            room: room.into(),
            id,
            author: author.into(),
            body: format!("m{id}"),
            ts: TS.into(),
            nonce: None,
            ..Default::default()
        }
    }

    fn join(room: &str) -> ClientFrame {
        ClientFrame::Join { room: room.into() }
    }

    fn send(room: &str, body: &str, nonce: &str) -> ClientFrame {
        ClientFrame::Send {
            room: room.into(),
            body: body.into(),
            nonce: Some(nonce.into()),
            reply_to: None,
            attachments: Vec::new(),
        }
    }

    fn outgoing(nonce: &str, body: &str) -> Outgoing {
        Outgoing {
            nonce: nonce.into(),
            body: body.into(),
            reply_to: None,
            attachments: Vec::new(),
        }
    }

    fn welcome(me: &str, rooms: &[&str]) -> ServerFrame {
        ServerFrame::Welcome {
            user: UserInfo {
                name: me.into(),
                guest: true,
                bot: false,
                admin: false,
            },
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn joined_frame(room: &str, history: Vec<Message>, more: bool) -> ServerFrame {
        ServerFrame::Joined {
            room: room.into(),
            online: vec!["alice".into()],
            history,
            more,
            changed: Vec::new(),
            rev: None,
        }
    }

    fn error(code: ErrorCode, nonce: Option<&str>, room: Option<&str>) -> ServerFrame {
        ServerFrame::Error {
            code,
            message: "no".into(),
            nonce: nonce.map(Into::into),
            room: room.map(Into::into),
        }
    }

    /// `me`, welcomed, with `general` in view and joining.
    fn connected(me: &str) -> ChatState {
        let mut s = ChatState::default();
        s.set_name(Some(me.into()), false);
        s.set_current("general");
        s.connecting();
        let out = s.apply(welcome(me, &["general"]), 0.0);
        assert_eq!(out.send, vec![join("general")]);
        s
    }

    fn joined(
        s: &mut ChatState,
        room: &str,
        history: Vec<Message>,
        more: bool,
    ) -> Vec<ClientFrame> {
        s.apply(joined_frame(room, history, more), 0.0).send
    }

    fn ids(s: &ChatState, room: &str) -> Vec<i64> {
        s.room(room)
            .map(|r| r.lines.iter().filter_map(|l| l.id).collect())
            .unwrap_or_default()
    }

    fn access(s: &ChatState, room: &str) -> Access {
        s.with_room(room, |r| r.access)
    }

    #[test]
    fn hello_names_a_guest_and_resumes_wanted_rooms() {
        let mut s = ChatState::default();
        s.set_name(Some("alice".into()), false);
        s.set_current("general");
        s.add_to_sidebar("random");
        s.load(&Snapshot {
            room: "general".into(),
            messages: vec![msg("general", 41, "bob")],
            ..Default::default()
        });
        let ClientFrame::Hello {
            name,
            token,
            resume,
        } = s.hello()
        else {
            panic!("not a hello")
        };
        assert_eq!(name.as_deref(), Some("alice"));
        assert_eq!(token, None);
        // Only rooms with lines resume; `random` is joined afresh.
        assert_eq!(
            resume,
            BTreeMap::from([("general".to_string(), Resume::Id(41))])
        );
        // Signed in, the cookie says who it is.
        s.set_name(Some("alice".into()), true);
        assert!(matches!(s.hello(), ClientFrame::Hello { name: None, .. }));
    }

    #[test]
    fn welcome_connects_lists_rooms_and_joins_the_wanted() {
        let mut s = ChatState::default();
        s.set_name(Some("bob".into()), false);
        s.set_current("general");
        s.add_to_sidebar("random");
        s.notice = Some(ErrorCode::Unavailable);
        // Nothing is joined before the connection is up.
        assert!(s.sync_joins().is_empty());
        s.connecting();
        assert_eq!(s.status, Status::Connecting);
        let out = s.apply(
            welcome(
                "bob",
                &["rust", "general", "dm:alice:bob", "dm:alice:carol"],
            ),
            0.0,
        );
        assert_eq!(s.status, Status::Connected);
        assert_eq!(s.notice, None);
        assert_eq!(s.known, vec!["rust".to_string(), "general".to_string()]);
        // bob's DM is listed, with all of it new; someone else's is not.
        assert!(s.sidebar.contains(&"dm:alice:bob".to_string()));
        assert!(!s.sidebar.contains(&"dm:alice:carol".to_string()));
        assert_eq!(s.room("dm:alice:bob").and_then(|r| r.last_read), Some(0));
        assert_eq!(
            out.send,
            vec![join("general"), join("random"), join("dm:alice:bob")]
        );
        assert_eq!(access(&s, "random"), Access::Joining);
        assert_eq!(out.announce, None);
    }

    #[test]
    fn a_second_welcome_joins_every_room_again() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![], false);
        s.on_disconnect();
        assert_eq!(s.status, Status::Reconnecting);
        assert_eq!(access(&s, "general"), Access::Idle);
        let out = s.apply(welcome("alice", &[]), 0.0);
        assert_eq!(out.send, vec![join("general")]);
    }

    #[test]
    fn joined_shows_history_and_who_is_online() {
        let mut s = connected("alice");
        let out = joined(
            &mut s,
            "general",
            vec![msg("general", 1, "bob"), msg("general", 2, "bob")],
            true,
        );
        assert!(out.is_empty());
        let r = s.room("general").unwrap();
        assert_eq!(r.access, Access::Joined);
        assert!(r.loaded && r.more);
        assert_eq!(r.online, vec!["alice".to_string()]);
        assert_eq!(r.online_count, Some(1));
        // Joining marks what is there as read.
        assert_eq!(r.last_read, Some(2));
        assert_eq!(ids(&s, "general"), vec![1, 2]);
    }

    #[test]
    fn joined_of_a_room_left_meanwhile_is_ignored() {
        let mut s = connected("alice");
        s.add_to_sidebar("random");
        assert_eq!(s.sync_joins(), vec![join("random")]);
        s.remove_from_sidebar("random");
        assert_eq!(
            s.sync_joins(),
            vec![ClientFrame::Leave {
                room: "random".into()
            }]
        );
        joined(&mut s, "random", vec![msg("random", 1, "bob")], false);
        assert_eq!(access(&s, "random"), Access::Idle);
        assert!(ids(&s, "random").is_empty());
        // A room never seen is not made up either.
        joined(&mut s, "elsewhere", vec![msg("elsewhere", 1, "bob")], false);
        assert!(s.room("elsewhere").is_none());
    }

    #[test]
    fn rooms_not_in_view_count_unread_and_are_announced() {
        let mut s = connected("alice");
        s.add_to_sidebar("random");
        s.sync_joins();
        joined(&mut s, "general", vec![msg("general", 1, "bob")], false);
        joined(&mut s, "random", vec![msg("random", 1, "bob")], false);
        assert_eq!(s.room("random").unwrap().unread(Some("alice")), 0);
        let out = s.apply(ServerFrame::Message(msg("random", 2, "bob")), 0.0);
        assert_eq!(out.announce, Some(msg("random", 2, "bob")));
        assert!(out.send.is_empty());
        // One's own message is neither unread nor announced.
        let out = s.apply(ServerFrame::Message(msg("random", 3, "alice")), 0.0);
        assert_eq!(out.announce, None);
        s.apply(ServerFrame::Message(msg("random", 4, "bob")), 0.0);
        assert_eq!(s.room("random").unwrap().unread(Some("alice")), 2);
        assert_eq!(s.total_unread(), 2);
        // In view, in a visible tab: not announced; in a hidden tab: announced.
        let out = s.apply(ServerFrame::Message(msg("general", 2, "bob")), 0.0);
        assert_eq!(out.announce, None);
        s.visible = false;
        let out = s.apply(ServerFrame::Message(msg("general", 3, "bob")), 0.0);
        assert!(out.announce.is_some());
        s.set_current("random");
        // Only what was seen is read.
        assert!(s.mark_read("random", 2).is_some());
        assert_eq!(s.room("random").unwrap().unread(Some("alice")), 1);
        assert_eq!(
            s.room("random").unwrap().first_unread(Some("alice")),
            Some(4)
        );
        assert!(s.mark_read("random", 2).is_none());
        assert!(s.mark_read("random", 99).is_some());
        assert_eq!(s.room("random").unwrap().unread(Some("alice")), 0);
        assert_eq!(s.marks().get("random"), Some(&4));
    }

    #[test]
    fn an_account_keeps_its_reads_on_the_server_and_follows_its_other_devices() {
        let mut s = connected("alice");
        s.signed_in = true;
        // What was there before joining counts as read; the server learns
        // it once it was on screen.
        joined(&mut s, "general", vec![msg("general", 1, "bob")], false);
        assert_eq!(s.room("general").unwrap().unread(Some("alice")), 0);
        assert_eq!(
            s.mark_read("general", 1),
            Some(vec![ClientFrame::Read {
                room: "general".into(),
                id: 1
            }])
        );
        assert_eq!(s.mark_read("general", 1), None);
        s.apply(ServerFrame::Message(msg("general", 2, "bob")), 0.0);
        assert_eq!(
            s.mark_read("general", 2),
            Some(vec![ClientFrame::Read {
                room: "general".into(),
                id: 2
            }])
        );
        s.apply(ServerFrame::Message(msg("general", 3, "bob")), 0.0);
        s.apply(ServerFrame::Message(msg("general", 4, "bob")), 0.0);
        // Read up to 3 on another device; a late, older position moves nothing.
        let read = |id| ServerFrame::Read {
            room: "general".into(),
            id,
            unread: 0,
            mentions: 0,
        };
        s.apply(read(3), 0.0);
        s.apply(read(1), 0.0);
        assert_eq!(s.room("general").unwrap().last_read, Some(3));
        assert_eq!(s.room("general").unwrap().unread(Some("alice")), 1);
        // A room not opened here takes the position when it is.
        s.apply(
            ServerFrame::Read {
                room: "random".into(),
                id: 7,
                unread: 0,
                mentions: 0,
            },
            0.0,
        );
        assert_eq!(s.marks().get("random"), Some(&7));
        // A guest's reads stay in the browser.
        let mut g = connected("gus");
        joined(&mut g, "general", vec![msg("general", 1, "bob")], false);
        g.apply(ServerFrame::Message(msg("general", 2, "bob")), 0.0);
        assert_eq!(g.mark_read("general", 2), Some(vec![]));
    }

    #[test]
    fn a_hidden_tab_notifies_what_the_room_level_asks_for() {
        let mut s = connected("alice");
        s.sync_joins();
        joined(&mut s, "general", vec![], false);
        let mut mention = msg("general", 1, "bob");
        mention.mentions = vec!["Alice".into()];
        // Visible: the page shows it, no notification.
        assert_eq!(
            s.apply(ServerFrame::Message(mention.clone()), 0.0).notify,
            None
        );
        s.visible = false;
        mention.id = 2;
        assert_eq!(
            s.apply(ServerFrame::Message(mention.clone()), 0.0).notify,
            Some(mention.clone())
        );
        // A public room notifies mentions only, by default.
        let plain = msg("general", 3, "bob");
        assert_eq!(s.apply(ServerFrame::Message(plain), 0.0).notify, None);
        // One's own message never; `none` silences even mentions; `all` tells everything.
        let mut own = msg("general", 4, "alice");
        own.mentions = vec!["alice".into()];
        assert_eq!(s.apply(ServerFrame::Message(own), 0.0).notify, None);
        s.levels.insert("general".into(), NotifyLevel::None);
        mention.id = 5;
        assert_eq!(s.apply(ServerFrame::Message(mention), 0.0).notify, None);
        s.levels.insert("general".into(), NotifyLevel::All);
        let plain = msg("general", 6, "bob");
        assert!(s.apply(ServerFrame::Message(plain), 0.0).notify.is_some());
        // A direct room tells everything by default, even before it is joined.
        let dm = msg("dm:alice:bob", 1, "bob");
        assert!(s.apply(ServerFrame::Message(dm), 0.0).notify.is_some());
    }

    #[test]
    fn the_outbox_is_kept_and_restored_once() {
        let mut s = connected("alice");
        s.on_disconnect();
        // Offline: the line waits, nothing goes out.
        assert!(s.send_message("hi", Vec::new(), "n1".into()).is_empty());
        let kept = s.outbox();
        assert_eq!(
            kept.get("general"),
            Some(&vec![Outgoing {
                nonce: "n1".into(),
                body: "hi".into(),
                reply_to: None,
                attachments: Vec::new(),
            }])
        );
        // A new page: the line shows again, once, and goes after `joined`.
        let mut page = ChatState::default();
        page.set_name(Some("alice".into()), false);
        page.restore_outbox(kept.clone());
        page.restore_outbox(kept);
        assert_eq!(page.room("general").unwrap().unacknowledged().len(), 1);
        page.connecting();
        page.apply(welcome("alice", &["general"]), 0.0);
        let sent = joined(&mut page, "general", vec![], false);
        assert!(matches!(&sent[..], [ClientFrame::Send { nonce: Some(n), .. }] if n == "n1"));
        // Stored by the first attempt, whose ack was lost: history brings
        // it, and nothing is sent again.
        let mut again = ChatState::default();
        again.set_name(Some("alice".into()), false);
        again.restore_outbox(page.outbox());
        again.connecting();
        again.apply(welcome("alice", &["general"]), 0.0);
        let mut stored = msg("general", 1, "alice");
        stored.nonce = Some("n1".into());
        assert!(joined(&mut again, "general", vec![stored], false).is_empty());
        assert!(again.outbox().is_empty());
    }

    #[test]
    fn an_account_knows_its_read_positions_once_the_server_listed_its_rooms() {
        let mut s = ChatState::default();
        s.set_name(Some("alice".into()), true);
        assert!(!s.reads_known);
        // `joined` before `rooms`: the position is the server's, not the end.
        s.set_current("news");
        s.connecting();
        s.apply(welcome("alice", &["news"]), 0.0);
        joined(
            &mut s,
            "news",
            (1..=5).map(|i| msg("news", i, "bob")).collect(),
            false,
        );
        assert_eq!(s.room("news").unwrap().last_read, None);
        let entry: RoomEntry = serde_json::from_value(serde_json::json!({
            "room": "news", "kind": "public", "last_read": 2
        }))
        .unwrap();
        s.apply(ServerFrame::Rooms { rooms: vec![entry] }, 0.0);
        assert!(s.reads_known);
        assert_eq!(s.room("news").unwrap().first_unread(Some("alice")), Some(3));
        let mut g = ChatState::default();
        g.set_name(Some("gus".into()), false);
        assert!(g.reads_known);
    }

    #[test]
    fn a_level_defaults_by_kind_follows_the_server_and_is_sent_when_chosen() {
        let mut s = connected("alice");
        assert_eq!(s.level("general"), NotifyLevel::Mentions);
        assert_eq!(s.level("dm:alice:bob"), NotifyLevel::All);
        // A guest has no level on the server: nothing to send.
        assert!(s.set_level("general", NotifyLevel::All).is_empty());
        s.signed_in = true;
        assert_eq!(
            s.set_level("general", NotifyLevel::None),
            vec![ClientFrame::Notify {
                room: "general".into(),
                level: NotifyLevel::None
            }]
        );
        assert_eq!(s.level("general"), NotifyLevel::None);
        // Another device chose: the rooms frame says so.
        let mut entry = RoomEntry {
            room: "general".into(),
            kind: Kind::Public,
            topic: String::new(),
            unread: 0,
            mentions: 0,
            last_read: 0,
            notify: NotifyLevel::All,
            owner: None,
        };
        s.apply(
            ServerFrame::Rooms {
                rooms: vec![entry.clone()],
            },
            0.0,
        );
        assert_eq!(s.level("general"), NotifyLevel::All);
        entry.notify = NotifyLevel::Mentions;
        s.apply(ServerFrame::Rooms { rooms: vec![entry] }, 0.0);
        assert_eq!(s.level("general"), NotifyLevel::Mentions);
    }

    #[test]
    fn a_message_clears_its_authors_typing_notice() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![], false);
        s.apply(
            ServerFrame::Typing {
                room: "general".into(),
                user: "bob".into(),
            },
            100.0,
        );
        assert_eq!(s.room("general").unwrap().typing.len(), 1);
        s.apply(ServerFrame::Message(msg("general", 1, "bob")), 200.0);
        assert!(s.room("general").unwrap().typing.is_empty());
    }

    #[test]
    fn messages_of_rooms_not_joined_are_dropped() {
        let mut s = connected("alice");
        let out = s.apply(ServerFrame::Message(msg("random", 1, "bob")), 0.0);
        assert_eq!(out, Reaction::default());
        assert!(s.room("random").is_none());
    }

    #[test]
    fn an_incoming_dm_is_listed_and_joined() {
        let mut s = connected("bob");
        joined(&mut s, "general", vec![], false);
        let out = s.apply(ServerFrame::Message(msg("dm:alice:bob", 1, "alice")), 0.0);
        assert_eq!(out.send, vec![join("dm:alice:bob")]);
        assert_eq!(out.announce, Some(msg("dm:alice:bob", 1, "alice")));
        assert!(s.sidebar.contains(&"dm:alice:bob".into()));
        assert_eq!(access(&s, "dm:alice:bob"), Access::Joining);
        joined(
            &mut s,
            "dm:alice:bob",
            vec![msg("dm:alice:bob", 1, "alice")],
            false,
        );
        assert_eq!(s.room("dm:alice:bob").unwrap().unread(Some("bob")), 1);
        // Someone else's DM is not ours to list.
        let out = s.apply(ServerFrame::Message(msg("dm:alice:carol", 1, "alice")), 0.0);
        assert_eq!(out, Reaction::default());
        assert!(!s.sidebar.contains(&"dm:alice:carol".into()));
    }

    #[test]
    fn sends_wait_for_joined_and_acks_confirm() {
        let mut s = connected("alice");
        // Not joined yet: nothing goes, the line shows pending.
        assert!(s.send_message("hello", Vec::new(), "c-1".into()).is_empty());
        let r = s.room("general").unwrap();
        assert_eq!(r.unacknowledged(), vec![outgoing("c-1", "hello")]);
        assert_eq!(r.lines[0].delivery, Delivery::Pending);
        // `joined` sends the outbox, same nonce.
        let out = joined(&mut s, "general", vec![], false);
        assert_eq!(out, vec![send("general", "hello", "c-1")]);
        // Joined: a send goes at once.
        assert_eq!(
            s.send_message("again", Vec::new(), "c-2".into()),
            vec![send("general", "again", "c-2")]
        );
        let out = s.apply(
            ServerFrame::Ack {
                nonce: Some("c-1".into()),
                room: "general".into(),
                id: 7,
                ts: TS.into(),
            },
            0.0,
        );
        assert_eq!(out, Reaction::default());
        let r = s.room("general").unwrap();
        assert_eq!(r.unacknowledged(), vec![outgoing("c-2", "again")]);
        assert_eq!(r.lines[0].delivery, Delivery::Stored);
        assert_eq!(r.lines[0].ts.as_deref(), Some(TS));
        assert_eq!(ids(&s, "general"), vec![7]);
        // The echo of our own message does not duplicate it.
        let mut echo = msg("general", 7, "alice");
        echo.nonce = Some("c-1".into());
        s.apply(ServerFrame::Message(echo), 0.0);
        assert_eq!(ids(&s, "general"), vec![7]);
        // An echo that comes before the ack replaces the pending line.
        let mut echo = msg("general", 8, "alice");
        echo.nonce = Some("c-2".into());
        s.apply(ServerFrame::Message(echo), 0.0);
        assert!(s.room("general").unwrap().unacknowledged().is_empty());
        s.apply(
            ServerFrame::Ack {
                nonce: Some("c-2".into()),
                room: "general".into(),
                id: 8,
                ts: TS.into(),
            },
            0.0,
        );
        assert_eq!(ids(&s, "general"), vec![7, 8]);
        // No name, nothing to send as.
        s.set_name(None, false);
        assert!(s.send_message("x", Vec::new(), "c-3".into()).is_empty());
    }

    #[test]
    fn pending_lines_go_again_after_a_reconnect() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![msg("general", 1, "bob")], false);
        s.send_message("one", Vec::new(), "c-1".into());
        s.send_message("two", Vec::new(), "c-2".into());
        s.on_disconnect();
        // Sends while down wait for the next `joined`.
        assert!(s.send_message("three", Vec::new(), "c-3".into()).is_empty());
        let ClientFrame::Hello { resume, .. } = s.hello() else {
            panic!("not a hello")
        };
        assert_eq!(resume.get("general"), Some(&Resume::Id(1)));
        assert_eq!(
            s.apply(welcome("alice", &[]), 0.0).send,
            vec![join("general")]
        );
        let out = joined(&mut s, "general", vec![], false);
        assert_eq!(
            out,
            vec![
                send("general", "one", "c-1"),
                send("general", "two", "c-2"),
                send("general", "three", "c-3"),
            ]
        );
    }

    #[test]
    fn history_merges_older_pages_in_order() {
        let mut s = connected("alice");
        s.load(&Snapshot {
            room: "general".into(),
            messages: (51..=100).map(|i| msg("general", i, "bob")).collect(),
            more: true,
            online: vec![],
            problem: None,
        });
        joined(
            &mut s,
            "general",
            (101..=103).map(|i| msg("general", i, "bob")).collect(),
            true,
        );
        assert_eq!(ids(&s, "general").len(), 53);
        assert!(s.room("general").unwrap().more);
        // Scroll-back asks for the page before the first line, once.
        let ask = s.load_older("general");
        assert_eq!(
            ask,
            vec![ClientFrame::History {
                room: "general".into(),
                before: Some(51),
                limit: Some(HISTORY_PAGE as u32),
            }]
        );
        assert!(s.room("general").unwrap().loading_older);
        assert!(s.load_older("general").is_empty());
        s.apply(
            ServerFrame::History {
                room: "general".into(),
                messages: (1..=50).map(|i| msg("general", i, "bob")).collect(),
                more: false,
            },
            0.0,
        );
        assert_eq!(ids(&s, "general"), (1..=103).collect::<Vec<_>>());
        let r = s.room("general").unwrap();
        assert!(!r.more && !r.loading_older);
        // Nothing older: nothing to ask.
        assert!(s.load_older("general").is_empty());
    }

    #[test]
    fn history_of_a_room_neither_joined_nor_loaded_is_dropped() {
        let mut s = connected("alice");
        s.add_to_sidebar("random");
        s.sync_joins();
        s.remove_from_sidebar("random");
        s.sync_joins();
        s.apply(
            ServerFrame::History {
                room: "random".into(),
                messages: vec![msg("random", 1, "bob")],
                more: true,
            },
            0.0,
        );
        assert!(ids(&s, "random").is_empty());
        assert!(!s.room("random").unwrap().more);
    }

    #[test]
    fn a_gap_after_resume_starts_from_the_newest_page() {
        let mut s = connected("alice");
        s.load(&Snapshot {
            room: "general".into(),
            messages: vec![msg("general", 5, "bob")],
            more: false,
            online: vec![],
            problem: None,
        });
        joined(&mut s, "general", vec![msg("general", 20_000, "bob")], true);
        assert_eq!(ids(&s, "general"), vec![20_000]);
        assert!(s.room("general").unwrap().more);
    }

    #[test]
    fn a_snapshot_does_not_replace_what_the_socket_gave() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![msg("general", 9, "bob")], false);
        s.load(&Snapshot {
            room: "general".into(),
            messages: vec![msg("general", 3, "bob")],
            more: true,
            online: vec!["zed".into()],
            problem: None,
        });
        let r = s.room("general").unwrap();
        assert_eq!(ids(&s, "general"), vec![9]);
        assert!(!r.more);
        assert_eq!(r.online, vec!["alice".to_string()]);
        // A bad name is a problem of the room, not a connection's.
        s.set_current("Not A Room");
        assert_eq!(
            s.room("Not A Room").unwrap().problem,
            Some(SnapProblem::BadRoom)
        );
        assert!(!s.sidebar.contains(&"Not A Room".into()));
        s.snapshot_failed("rust");
        assert_eq!(
            s.room("rust").unwrap().problem,
            Some(SnapProblem::Unavailable)
        );
    }

    #[test]
    fn presence_updates_who_is_online_one_by_one_and_batched() {
        let mut s = connected("alice");
        let presence = |user: Option<&str>,
                        state: Option<PresenceState>,
                        joined: Option<Vec<&str>>,
                        left: Option<Vec<&str>>,
                        online: usize| ServerFrame::Presence {
            room: "general".into(),
            user: user.map(Into::into),
            state,
            joined: joined.map(|v| v.into_iter().map(Into::into).collect()),
            left: left.map(|v| v.into_iter().map(Into::into).collect()),
            online,
        };
        // Before `joined`, presence is not ours yet.
        s.apply(
            presence(Some("zed"), Some(PresenceState::Joined), None, None, 2),
            0.0,
        );
        assert_eq!(s.room("general").unwrap().online_count, None);
        joined(&mut s, "general", vec![], false);
        s.apply(
            presence(Some("carol"), Some(PresenceState::Joined), None, None, 2),
            0.0,
        );
        assert_eq!(
            s.room("general").unwrap().online,
            vec!["alice".to_string(), "carol".to_string()]
        );
        s.apply(
            presence(Some("carol"), Some(PresenceState::Joined), None, None, 2),
            0.0,
        );
        assert_eq!(s.room("general").unwrap().online.len(), 2);
        s.apply(
            presence(
                None,
                None,
                Some(vec!["dave", "bob"]),
                Some(vec!["alice"]),
                1000,
            ),
            0.0,
        );
        let r = s.room("general").unwrap();
        assert_eq!(r.online, vec!["bob", "carol", "dave"]);
        // The count is the server's (a busy room lists fewer than it counts).
        assert_eq!(r.online_count, Some(1000));
        s.apply(
            presence(Some("bob"), Some(PresenceState::Left), None, None, 999),
            0.0,
        );
        assert_eq!(s.room("general").unwrap().online, vec!["carol", "dave"]);
        assert_eq!(s.room("general").unwrap().online_count, Some(999));
    }

    #[test]
    fn typing_notices_show_for_a_while_and_not_ones_own() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![], false);
        let typing = |user: &str| ServerFrame::Typing {
            room: "general".into(),
            user: user.into(),
        };
        s.apply(typing("alice"), 0.0);
        assert!(s.room("general").unwrap().typing.is_empty());
        s.apply(typing("bob"), 1000.0);
        s.apply(typing("bob"), 2000.0);
        s.apply(typing("carol"), 3000.0);
        assert_eq!(
            s.room("general").unwrap().typing,
            vec![
                ("bob".into(), 2000.0 + TYPING_SHOWN_MS),
                ("carol".into(), 3000.0 + TYPING_SHOWN_MS)
            ]
        );
        assert!(!s.typing_expires(6000.0));
        assert!(!s.expire_typing(6000.0));
        assert!(s.typing_expires(7000.0));
        assert!(s.expire_typing(7000.0));
        assert_eq!(s.room("general").unwrap().typing.len(), 1);
        // A dropped connection clears them.
        s.on_disconnect();
        assert!(s.room("general").unwrap().typing.is_empty());
    }

    #[test]
    fn typing_goes_out_only_in_a_joined_room() {
        let mut s = connected("alice");
        assert_eq!(s.typing(), None);
        joined(&mut s, "general", vec![], false);
        assert_eq!(
            s.typing(),
            Some(ClientFrame::Typing {
                room: "general".into()
            })
        );
    }

    #[test]
    fn a_refused_nickname_stops_the_connection() {
        let mut s = ChatState::default();
        s.set_name(Some("x".into()), false);
        s.connecting();
        s.apply(error(ErrorCode::BadName, None, None), 0.0);
        assert_eq!(s.name_error, Some(ErrorCode::BadName));
        assert_eq!(s.notice, None);
        s.on_disconnect();
        assert_eq!(s.status, Status::Offline);
        assert_eq!(s.name, None);
        // Picking another clears the refusal.
        s.set_name(Some("y".into()), false);
        assert_eq!(s.name_error, None);
    }

    #[test]
    fn a_refused_send_fails_its_line_and_retry_sends_it_again() {
        let mut s = connected("alice");
        s.add_to_sidebar("random");
        s.sync_joins();
        joined(&mut s, "general", vec![], false);
        joined(&mut s, "random", vec![], false);
        s.send_message("hi", Vec::new(), "c-1".into());
        s.apply(
            error(ErrorCode::RateLimited, Some("c-1"), Some("general")),
            0.0,
        );
        let line = &s.room("general").unwrap().lines[0];
        assert_eq!(line.delivery, Delivery::Failed(ErrorCode::RateLimited));
        // A failed line is not resent by itself, and not a notice.
        assert!(s.room("general").unwrap().unacknowledged().is_empty());
        assert_eq!(s.notice, None);
        assert_eq!(
            s.retry("general", "c-1"),
            vec![send("general", "hi", "c-1")]
        );
        assert_eq!(
            s.room("general").unwrap().lines[0].delivery,
            Delivery::Pending
        );
        assert!(s.retry("general", "c-unknown").is_empty());
        // An older server names no room: the nonce finds the line anyway.
        s.apply(error(ErrorCode::TooLarge, Some("c-1"), None), 0.0);
        assert_eq!(
            s.room("general").unwrap().lines[0].delivery,
            Delivery::Failed(ErrorCode::TooLarge)
        );
    }

    #[test]
    fn retry_before_joined_waits_for_the_outbox() {
        let mut s = connected("alice");
        s.send_message("hi", Vec::new(), "c-1".into());
        s.apply(
            error(ErrorCode::Unavailable, Some("c-1"), Some("general")),
            0.0,
        );
        assert!(s.retry("general", "c-1").is_empty());
        let out = joined(&mut s, "general", vec![], false);
        assert_eq!(out, vec![send("general", "hi", "c-1")]);
    }

    #[test]
    fn a_forbidden_dm_is_refused_and_not_listed() {
        let mut s = connected("carol");
        joined(&mut s, "general", vec![], false);
        s.set_current("dm:alice:bob");
        assert_eq!(s.sync_joins(), vec![join("dm:alice:bob")]);
        // An older server names no room: the DM in view is the one refused.
        s.apply(error(ErrorCode::Forbidden, None, None), 0.0);
        assert_eq!(access(&s, "dm:alice:bob"), Access::Refused);
        assert!(!s.sidebar.contains(&"dm:alice:bob".into()));
        assert_eq!(s.notice, None);
        // Refused, it is not asked again while in view.
        assert!(s.sync_joins().is_empty());
    }

    #[test]
    fn a_forbidden_error_naming_its_room_refuses_that_room() {
        let mut s = connected("carol");
        joined(&mut s, "general", vec![], false);
        s.add_to_sidebar("dm:carol:dave");
        s.set_current("dm:alice:bob");
        s.sync_joins();
        // Without `room`, the guess would be the DM in view.
        s.apply(
            error(ErrorCode::Forbidden, None, Some("dm:carol:dave")),
            0.0,
        );
        assert_eq!(access(&s, "dm:carol:dave"), Access::Refused);
        assert_eq!(access(&s, "dm:alice:bob"), Access::Joining);
        assert!(!s.sidebar.contains(&"dm:carol:dave".into()));
        // A forbidden about a room not being joined is a notice.
        s.apply(error(ErrorCode::Forbidden, None, Some("general")), 0.0);
        assert_eq!(access(&s, "general"), Access::Joined);
        assert_eq!(s.notice, Some(ErrorCode::Forbidden));
    }

    #[test]
    fn a_refused_history_ends_loading_in_its_room_only_when_named() {
        let mut s = connected("alice");
        s.add_to_sidebar("random");
        s.sync_joins();
        for room in ["general", "random"] {
            joined(&mut s, room, vec![msg(room, 100, "bob")], true);
            assert_eq!(s.load_older(room).len(), 1);
        }
        s.apply(error(ErrorCode::RateLimited, None, Some("random")), 0.0);
        assert_eq!(s.notice, Some(ErrorCode::RateLimited));
        assert!(!s.room("random").unwrap().loading_older);
        assert!(s.room("general").unwrap().loading_older);
        // No room named: every room may ask again.
        s.apply(error(ErrorCode::Unavailable, None, None), 0.0);
        assert_eq!(s.notice, Some(ErrorCode::Unavailable));
        assert!(!s.room("general").unwrap().loading_older);
    }

    #[test]
    fn not_joined_errors_are_not_shown() {
        let mut s = connected("alice");
        s.apply(error(ErrorCode::NotJoined, None, Some("general")), 0.0);
        s.apply(error(ErrorCode::NotJoined, None, None), 0.0);
        assert_eq!(s.notice, None);
    }

    #[test]
    fn leaving_forgets_the_room_but_not_what_was_read() {
        let mut s = connected("alice");
        s.add_to_sidebar("random");
        s.sync_joins();
        joined(&mut s, "random", vec![msg("random", 1, "bob")], false);
        s.remove_from_sidebar("random");
        let out = s.sync_joins();
        assert_eq!(
            out,
            vec![ClientFrame::Leave {
                room: "random".into()
            }]
        );
        let r = s.room("random").unwrap();
        assert_eq!(r.access, Access::Idle);
        assert_eq!(r.last_read, Some(1));
        assert!(ids(&s, "random").is_empty());
        // Its frames no longer count.
        s.apply(ServerFrame::Message(msg("random", 2, "bob")), 0.0);
        assert!(ids(&s, "random").is_empty());
    }

    #[test]
    fn remembered_rooms_and_marks_are_restored() {
        let mut s = ChatState::default();
        s.set_name(Some("bob".into()), false);
        s.set_current("rust");
        s.load(&Snapshot {
            room: "rust".into(),
            messages: vec![msg("rust", 3, "alice"), msg("rust", 4, "alice")],
            ..Default::default()
        });
        s.restore_sidebar(vec![
            "general".into(),
            "general".into(),
            "dm:alice:bob".into(),
            "dm:alice:carol".into(),
            "Bad".into(),
        ]);
        assert_eq!(s.sidebar, vec!["general", "dm:alice:bob", "rust"]);
        s.restore_marks(BTreeMap::from([
            ("rust".to_string(), 3),
            ("random".to_string(), 8),
        ]));
        assert_eq!(s.room("rust").unwrap().unread(Some("bob")), 1);
        // A room made later starts from its mark.
        assert_eq!(s.with_room("random", |r| r.last_read), Some(8));
        s.set_current("random");
        assert_eq!(s.room("random").unwrap().last_read, Some(8));
    }

    // Version 1.1: private rooms, group conversations, topics.

    fn entry(room: &str, kind: Kind, topic: &str) -> RoomEntry {
        RoomEntry {
            room: room.into(),
            kind,
            topic: topic.into(),
            unread: 0,
            mentions: 0,
            last_read: 0,
            notify: Default::default(),
            owner: None,
        }
    }

    fn rooms_frame(entries: Vec<RoomEntry>) -> ServerFrame {
        ServerFrame::Rooms { rooms: entries }
    }

    fn member(room: &str, user: &str, state: MemberState, by: &str) -> ServerFrame {
        ServerFrame::Member {
            room: room.into(),
            user: user.into(),
            state,
            by: by.into(),
        }
    }

    #[test]
    fn the_badge_invites_before_a_name_and_tells_the_connection_after() {
        assert_eq!(badge(Status::Offline, false), Badge::JoinOrSignIn);
        assert_eq!(badge(Status::Offline, true), Badge::Offline);
        assert_eq!(badge(Status::Connecting, true), Badge::Connecting);
        assert_eq!(badge(Status::Connected, true), Badge::Connected);
        assert_eq!(badge(Status::Reconnecting, true), Badge::Reconnecting);
        let s = ChatState::default();
        assert_eq!(badge(s.status, s.name.is_some()), Badge::JoinOrSignIn);
    }

    #[test]
    fn the_rooms_frame_lists_private_and_direct_rooms_and_topics() {
        let mut s = connected("bob");
        joined(&mut s, "general", vec![], false);
        let out = s.apply(
            rooms_frame(vec![
                entry("general", Kind::Public, "Say hello"),
                entry("rust", Kind::Public, ""),
                entry("~design", Kind::Private, "Mock-ups"),
                entry("dm:alice:bob:carol", Kind::Direct, ""),
                entry("Bad Name", Kind::Private, ""),
            ]),
            0.0,
        );
        assert_eq!(s.known, vec!["general".to_string(), "rust".to_string()]);
        assert_eq!(s.sidebar, vec!["general", "~design", "dm:alice:bob:carol"]);
        assert_eq!(out.send, vec![join("~design"), join("dm:alice:bob:carol")]);
        assert_eq!(s.topic("general"), Some("Say hello"));
        assert_eq!(s.topic("~design"), Some("Mock-ups"));
        assert_eq!(s.topic("rust"), None);
        // A room newly listed is new to the person: all of it unread.
        assert_eq!(s.room("~design").unwrap().last_read, Some(0));
        // A fresh list without ~design: it leaves the sidebar (and is left).
        let out = s.apply(
            rooms_frame(vec![
                entry("general", Kind::Public, ""),
                entry("dm:alice:bob:carol", Kind::Direct, ""),
            ]),
            0.0,
        );
        assert_eq!(s.sidebar, vec!["general", "dm:alice:bob:carol"]);
        assert_eq!(
            out.send,
            vec![ClientFrame::Leave {
                room: "~design".into()
            }]
        );
        assert_eq!(s.topic("general"), None);
    }

    #[test]
    fn a_remembered_private_room_that_answers_not_found_is_dropped() {
        let mut s = ChatState::default();
        s.set_name(Some("carol".into()), true);
        s.restore_sidebar(vec!["general".into(), "~design".into()]);
        assert_eq!(s.sidebar, vec!["general", "~design"]);
        s.connecting();
        let out = s.apply(welcome("carol", &["general"]), 0.0);
        assert_eq!(out.send, vec![join("general"), join("~design")]);
        s.apply(error(ErrorCode::NotFound, None, Some("~design")), 0.0);
        assert_eq!(access(&s, "~design"), Access::Refused);
        assert_eq!(
            s.room("~design").unwrap().problem,
            Some(SnapProblem::NotFound)
        );
        assert_eq!(s.sidebar, vec!["general"]);
        assert_eq!(s.notice, None);
        // Opened by its address, it stays refused.
        s.set_current("~design");
        assert!(s.sync_joins().is_empty());
    }

    #[test]
    fn create_is_answered_by_joined_and_lists_the_room() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![], false);
        let out = s.create_room("~design", vec!["bob".into()], " Mock-ups ");
        assert_eq!(
            out,
            vec![ClientFrame::Create {
                room: "~design".into(),
                members: vec!["bob".into()],
                topic: Some("Mock-ups".into()),
            }]
        );
        assert_eq!(
            s.creating,
            Some(Creating {
                room: "~design".into(),
                error: None,
                done: false,
                members: vec!["bob".into()],
            })
        );
        joined(&mut s, "~design", vec![], false);
        assert!(
            s.creating
                .as_ref()
                .is_some_and(|c| c.done && c.error.is_none())
        );
        assert_eq!(access(&s, "~design"), Access::Joined);
        assert!(s.sidebar.contains(&"~design".to_string()));
        assert_eq!(s.room("~design").unwrap().members, vec!["alice", "bob"]);
        // Opening it joins nothing more.
        s.set_current("~design");
        assert!(s.sync_joins().is_empty());
        s.end_create();
        assert_eq!(s.creating, None);
        // Without a topic, none is sent.
        let out = s.create_room("~x", vec![], "  ");
        assert!(matches!(
            &out[..],
            [ClientFrame::Create { topic: None, .. }]
        ));
    }

    #[test]
    fn a_refused_create_says_why_in_the_dialog_not_the_nickname() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![], false);
        s.create_room("~design", vec!["nobody".into()], "");
        s.apply(error(ErrorCode::BadName, None, Some("~design")), 0.0);
        assert_eq!(
            s.creating.as_ref().and_then(|c| c.error),
            Some(ErrorCode::BadName)
        );
        // A taken room name is not a refused nickname.
        assert_eq!(s.name_error, None);
        assert_eq!(s.notice, None);
        assert_eq!(access(&s, "~design"), Access::Idle);
        assert!(!s.sidebar.contains(&"~design".to_string()));
        // Nobody is taken for a member of a room that was not made.
        assert!(s.room("~design").unwrap().members.is_empty());
        // Tried again with another name, refused for a member no one holds.
        s.create_room("~design2", vec!["nobody".into()], "");
        s.apply(error(ErrorCode::NotFound, None, Some("~design2")), 0.0);
        assert_eq!(
            s.creating.as_ref().and_then(|c| c.error),
            Some(ErrorCode::NotFound)
        );
        // Not connected: said at once, nothing sent.
        s.on_disconnect();
        assert!(s.create_room("~x", vec![], "").is_empty());
        assert_eq!(
            s.creating.as_ref().and_then(|c| c.error),
            Some(ErrorCode::Unavailable)
        );
    }

    #[test]
    fn members_added_and_removed_update_the_room() {
        let mut s = connected("alice");
        s.add_to_sidebar("~design");
        s.sync_joins();
        joined(&mut s, "~design", vec![msg("~design", 1, "bob")], false);
        // `online` of a private room is members.
        assert_eq!(s.room("~design").unwrap().members, vec!["alice"]);
        let out = s.invite("~design", "dan");
        assert_eq!(
            out,
            vec![ClientFrame::Invite {
                room: "~design".into(),
                user: "dan".into()
            }]
        );
        let out = s.apply(member("~design", "dan", MemberState::Added, "alice"), 0.0);
        assert!(out.send.is_empty());
        let r = s.room("~design").unwrap();
        assert_eq!(r.members, vec!["alice", "dan"]);
        assert!(!r.asking);
        s.apply(member("~design", "dan", MemberState::Removed, "alice"), 0.0);
        assert_eq!(s.room("~design").unwrap().members, vec!["alice"]);
        // Frames of rooms the page never saw make nothing up.
        s.apply(member("~other", "dan", MemberState::Added, "eve"), 0.0);
        assert!(s.room("~other").is_none());
    }

    #[test]
    fn being_added_lists_and_joins_the_room() {
        let mut s = connected("dan");
        joined(&mut s, "general", vec![], false);
        let out = s.apply(member("~design", "dan", MemberState::Added, "alice"), 0.0);
        assert_eq!(out.send, vec![join("~design")]);
        assert!(s.sidebar.contains(&"~design".to_string()));
        assert_eq!(s.room("~design").unwrap().last_read, Some(0));
        joined(&mut s, "~design", vec![msg("~design", 1, "alice")], false);
        assert_eq!(s.room("~design").unwrap().unread(Some("dan")), 1);
    }

    #[test]
    fn being_removed_shuts_the_room_and_says_by_whom() {
        let mut s = connected("dan");
        joined(&mut s, "general", vec![], false);
        s.set_current("~design");
        s.add_to_sidebar("~design");
        s.sync_joins();
        joined(&mut s, "~design", vec![msg("~design", 1, "alice")], false);
        let out = s.apply(member("~design", "dan", MemberState::Removed, "alice"), 0.0);
        // The server stopped sending it: nothing to leave, nothing to join.
        assert!(out.send.is_empty());
        let r = s.room("~design").unwrap();
        assert_eq!(r.removed_by.as_deref(), Some("alice"));
        assert_eq!(r.access, Access::Refused);
        assert!(r.lines.is_empty() && !r.loaded);
        assert!(!s.sidebar.contains(&"~design".to_string()));
        assert!(s.sync_joins().is_empty());
        // Its messages no longer show.
        s.apply(ServerFrame::Message(msg("~design", 2, "alice")), 0.0);
        assert!(ids(&s, "~design").is_empty());
        // A reconnect asks again and is told not_found: still "removed".
        s.on_disconnect();
        s.connecting();
        let out = s.apply(welcome("dan", &["general"]), 0.0);
        assert!(out.send.contains(&join("~design")));
        s.apply(error(ErrorCode::NotFound, None, Some("~design")), 0.0);
        assert_eq!(
            s.room("~design").unwrap().removed_by.as_deref(),
            Some("alice")
        );
        // Added back: it opens again.
        let out = s.apply(member("~design", "dan", MemberState::Added, "alice"), 0.0);
        assert_eq!(out.send, vec![join("~design")]);
        assert_eq!(s.room("~design").unwrap().removed_by, None);
    }

    #[test]
    fn leaving_is_removing_oneself() {
        let mut s = connected("dan");
        s.add_to_sidebar("~design");
        s.sync_joins();
        joined(&mut s, "~design", vec![], false);
        assert_eq!(
            s.remove_member("~design", "dan"),
            vec![ClientFrame::Remove {
                room: "~design".into(),
                user: "dan".into()
            }]
        );
        s.apply(member("~design", "dan", MemberState::Removed, "dan"), 0.0);
        assert_eq!(
            s.room("~design").unwrap().removed_by.as_deref(),
            Some("dan")
        );
        assert!(!s.sidebar.contains(&"~design".to_string()));
    }

    #[test]
    fn a_refused_invite_remove_or_topic_shows_in_its_room() {
        let mut s = connected("bob");
        s.add_to_sidebar("~design");
        s.sync_joins();
        joined(&mut s, "~design", vec![], false);
        s.remove_member("~design", "alice");
        s.apply(error(ErrorCode::Forbidden, None, Some("~design")), 0.0);
        let r = s.room("~design").unwrap();
        assert_eq!(r.action_error, Some(ErrorCode::Forbidden));
        assert!(!r.asking);
        assert_eq!(access(&s, "~design"), Access::Joined);
        assert_eq!(s.notice, None);
        s.invite("~design", "ghost");
        assert_eq!(s.room("~design").unwrap().action_error, None);
        s.apply(error(ErrorCode::NotFound, None, Some("~design")), 0.0);
        assert_eq!(
            s.room("~design").unwrap().action_error,
            Some(ErrorCode::NotFound)
        );
        s.set_topic("~design", "x");
        s.apply(error(ErrorCode::BadName, None, Some("~design")), 0.0);
        assert_eq!(
            s.room("~design").unwrap().action_error,
            Some(ErrorCode::BadName)
        );
        assert_eq!(s.name_error, None);
        // Not connected: said at once.
        s.on_disconnect();
        assert!(s.invite("~design", "dan").is_empty());
        assert_eq!(
            s.room("~design").unwrap().action_error,
            Some(ErrorCode::Unavailable)
        );
    }

    #[test]
    fn topics_change_from_topic_frames() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![], false);
        assert_eq!(
            s.set_topic("general", " Say hello "),
            vec![ClientFrame::Topic {
                room: "general".into(),
                topic: "Say hello".into()
            }]
        );
        s.apply(
            ServerFrame::Topic {
                room: "general".into(),
                topic: "Say hello".into(),
                by: "alice".into(),
            },
            0.0,
        );
        assert_eq!(s.topic("general"), Some("Say hello"));
        assert!(!s.room("general").unwrap().asking);
        s.apply(
            ServerFrame::Topic {
                room: "general".into(),
                topic: String::new(),
                by: "alice".into(),
            },
            0.0,
        );
        assert_eq!(s.topic("general"), None);
    }

    #[test]
    fn a_group_conversation_is_listed_for_its_members() {
        let mut s = connected("bob");
        let room = crate::protocol::group_room(["carol", "bob", "alice"]).unwrap();
        s.set_current(&room);
        assert_eq!(s.sync_joins(), vec![join(&room)]);
        joined(&mut s, &room, vec![], false);
        assert!(s.sidebar.contains(&room));
        // A name no one holds: not_found, the room says so.
        let ghost = crate::protocol::group_room(["bob", "ghost", "zed"]).unwrap();
        s.set_current(&ghost);
        s.sync_joins();
        s.apply(error(ErrorCode::NotFound, None, Some(&ghost)), 0.0);
        assert_eq!(s.room(&ghost).unwrap().problem, Some(SnapProblem::NotFound));
        assert!(!s.sidebar.contains(&ghost));
    }

    #[test]
    fn owners_and_admins_manage_private_rooms() {
        let mut s = connected("bob");
        s.signed_in = true;
        let mut mine = entry("~x", Kind::Private, "");
        mine.owner = Some("bob".into());
        let mut theirs = entry("~y", Kind::Private, "");
        theirs.owner = Some("ann".into());
        s.apply(rooms_frame(vec![mine, theirs]), 0.0);
        assert!(s.manages("~x"));
        assert!(!s.manages("~y"));
        s.admin = true;
        assert!(s.manages("~y"));
    }

    fn file(id: &str) -> FileObject {
        FileObject {
            id: id.into(),
            name: format!("{id}.png"),
            size: 10,
            mime: "image/png".into(),
            width: Some(4),
            height: Some(3),
        }
    }

    #[test]
    fn files_go_with_their_message_through_the_outbox() {
        let mut s = connected("alice");
        // Sent before `joined`: the pending line shows the files at once.
        assert!(
            s.send_message("", vec![file("a"), file("b")], "c-1".into())
                .is_empty()
        );
        let r = s.room("general").unwrap();
        assert_eq!(r.lines[0].attachments, vec![file("a"), file("b")]);
        let sent = |ids: &[&str]| ClientFrame::Send {
            room: "general".into(),
            body: String::new(),
            nonce: Some("c-1".into()),
            reply_to: None,
            attachments: ids.iter().map(|i| i.to_string()).collect(),
        };
        // Kept whole across pages; sent again with the same ids.
        let mut page = ChatState::default();
        page.set_name(Some("alice".into()), false);
        page.restore_outbox(s.outbox());
        assert_eq!(
            page.room("general").unwrap().lines[0].attachments,
            vec![file("a"), file("b")]
        );
        page.connecting();
        page.apply(welcome("alice", &["general"]), 0.0);
        assert_eq!(
            joined(&mut page, "general", vec![], false),
            vec![sent(&["a", "b"])]
        );
        // Refused, retried: the same files.
        page.apply(
            error(ErrorCode::RateLimited, Some("c-1"), Some("general")),
            0.0,
        );
        assert_eq!(page.retry("general", "c-1"), vec![sent(&["a", "b"])]);
        // The ack keeps them on the line.
        page.apply(
            ServerFrame::Ack {
                nonce: Some("c-1".into()),
                room: "general".into(),
                id: 3,
                ts: TS.into(),
            },
            0.0,
        );
        assert_eq!(page.room("general").unwrap().lines[0].attachments.len(), 2);
    }

    #[test]
    fn an_edit_keeps_the_files_and_a_deletion_drops_them() {
        let mut s = connected("alice");
        let mut m = msg("general", 1, "alice");
        m.attachments = vec![file("a")];
        joined(&mut s, "general", vec![m.clone()], false);
        // An edit as it now stands, even one that left the files out.
        m.attachments.clear();
        m.body = "new caption".into();
        m.edited = Some(TS.into());
        s.apply(
            ServerFrame::Changed {
                room: "general".into(),
                rev: 2,
                message: m.clone(),
            },
            0.0,
        );
        let l = &s.room("general").unwrap().lines[0];
        assert_eq!((l.body.as_str(), l.attachments.len()), ("new caption", 1));
        m.deleted = true;
        m.body.clear();
        s.apply(
            ServerFrame::Changed {
                room: "general".into(),
                rev: 3,
                message: m,
            },
            0.0,
        );
        assert!(s.room("general").unwrap().lines[0].attachments.is_empty());
    }

    #[test]
    fn a_ban_ends_the_page_for_good() {
        let mut s = connected("alice");
        joined(&mut s, "general", vec![], false);
        s.on_ended(Ended::Banned);
        assert_eq!(s.status, Status::Ended(Ended::Banned));
        assert_eq!(badge(s.status, true), Badge::Ended(Ended::Banned));
        assert!(s.rooms.values().all(|r| r.access != Access::Joined));
    }
}
