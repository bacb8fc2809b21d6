//! The page's view of the chat as signals, and how server frames change it.
//! Shared by the server render and the browser; only `client` talks to the
//! socket (through [`super::send`]).
//!
//! One [`Chat`] lives as long as the page, across navigations between rooms;
//! it holds one [`Room`] per room the page has seen. The sidebar's rooms and
//! the room in view are joined on the one WebSocket, so that `message` frames
//! of rooms not in view count as unread.

use super::i18n::{K, Lang};
use super::prefs;
use super::snapshot::{SnapProblem, Snapshot};
use crate::protocol::{
    ClientFrame, ErrorCode, Message, PresenceState, RoomKind, ServerFrame, parse_room,
};
use leptos::prelude::*;
use std::collections::BTreeMap;

/// The room of `/`, and of a browser that remembers none.
pub use crate::protocol::DEFAULT_ROOM;
/// How long a typing notice shows, in ms.
pub const TYPING_SHOWN_MS: f64 = 5000.0;

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

/// The direct-message peer of `me` in `room`, when `room` is one of `me`'s DMs.
pub fn dm_peer(room: &str, me: Option<&str>) -> Option<String> {
    let me = me?;
    match parse_room(room) {
        Ok(RoomKind::Direct(a, b)) if a == me => Some(b.to_string()),
        Ok(RoomKind::Direct(a, b)) if b == me => Some(a.to_string()),
        _ => None,
    }
}

/// Whether a name is a direct-message room.
pub fn is_dm(room: &str) -> bool {
    matches!(parse_room(room), Ok(RoomKind::Direct(..)))
}

/// Whether a name is a valid public room.
pub fn is_public(room: &str) -> bool {
    matches!(parse_room(room), Ok(RoomKind::Public))
}

/// How a room is named on screen: `#general`, `@bob` (a DM seen by one of its
/// members), `alice ↔ bob` (a DM seen by anyone else).
pub fn room_label(room: &str, me: Option<&str>) -> String {
    if let Some(peer) = dm_peer(room, me) {
        return format!("@{peer}");
    }
    match parse_room(room) {
        Ok(RoomKind::Direct(a, b)) => format!("{a} ↔ {b}"),
        _ => format!("#{room}"),
    }
}

/// Everything the page knows of one room; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Room {
    pub name: StoredValue<String>,
    pub lines: RwSignal<Vec<Line>>,
    /// Whether messages older than the first line exist.
    pub more: RwSignal<bool>,
    pub loading_older: RwSignal<bool>,
    pub online: RwSignal<Vec<String>>,
    /// From the last `joined` or `presence`; `None` until known.
    pub online_count: RwSignal<Option<usize>>,
    /// Who is typing, with the time (ms) their notice fades.
    pub typing: RwSignal<Vec<(String, f64)>>,
    pub access: RwSignal<Access>,
    /// The newest id the person has seen; `None` until the room is first shown or joined.
    pub last_read: RwSignal<Option<i64>>,
    pub problem: RwSignal<Option<SnapProblem>>,
    /// Whether the lines are known (a snapshot or a `joined` came).
    pub loaded: RwSignal<bool>,
    /// The last `hello` asked to resume this room.
    resumed: StoredValue<bool>,
}

impl Room {
    fn new(name: &str, last_read: Option<i64>) -> Self {
        Room {
            name: StoredValue::new(name.to_string()),
            lines: RwSignal::new(Vec::new()),
            more: RwSignal::new(false),
            loading_older: RwSignal::new(false),
            online: RwSignal::new(Vec::new()),
            online_count: RwSignal::new(None),
            typing: RwSignal::new(Vec::new()),
            access: RwSignal::new(Access::Idle),
            last_read: RwSignal::new(last_read),
            problem: RwSignal::new(None),
            loaded: RwSignal::new(false),
            resumed: StoredValue::new(false),
        }
    }

    /// The room's name.
    pub fn name(&self) -> String {
        self.name.get_value()
    }

    /// The newest stored id shown, the point to resume from.
    pub fn last_id(&self) -> Option<i64> {
        self.lines
            .with_untracked(|ls| ls.iter().rev().find_map(|l| l.id))
    }

    /// The oldest stored id shown, the point to scroll back from.
    pub fn first_id(&self) -> Option<i64> {
        self.lines.with_untracked(|ls| ls.iter().find_map(|l| l.id))
    }

    /// Messages of others after the last one read (reactive).
    pub fn unread(&self, me: Option<&str>) -> usize {
        let Some(read) = self.last_read.get() else {
            return 0;
        };
        self.lines.with(|ls| {
            ls.iter()
                .filter(|l| l.id.is_some_and(|id| id > read) && Some(l.author.as_str()) != me)
                .count()
        })
    }

    /// Lines sent but not acknowledged: (nonce, body), oldest first.
    pub fn unacknowledged(&self) -> Vec<(String, String)> {
        self.lines.with_untracked(|ls| {
            ls.iter()
                .filter(|l| l.delivery == Delivery::Pending)
                .filter_map(|l| l.nonce.clone().map(|n| (n, l.body.clone())))
                .collect()
        })
    }

    /// Forgets the conversation (after leaving: a later join starts afresh).
    fn reset(&self) {
        self.lines.set(Vec::new());
        self.more.set(false);
        self.loading_older.set(false);
        self.online.set(Vec::new());
        self.online_count.set(None);
        self.typing.set(Vec::new());
        self.access.set(Access::Idle);
        self.loaded.set(false);
        self.resumed.set_value(false);
    }

    /// Puts a stored message in its place.
    fn merge(&self, m: Message) {
        self.lines.update(|ls| merge_into(ls, m));
    }
}

/// The state of the whole page; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Chat {
    pub lang: RwSignal<Lang>,
    /// The room in view.
    pub current: RwSignal<String>,
    /// The sidebar's rooms and DMs, in the order they were added.
    pub sidebar: RwSignal<Vec<String>>,
    /// Public rooms the server listed (most recently active first).
    pub known: RwSignal<Vec<String>>,
    pub status: RwSignal<Status>,
    /// The nickname chosen in this browser.
    pub name: RwSignal<Option<String>>,
    /// Whether `name` is a signed-in account (hello carries no name then:
    /// the session cookie says who it is).
    pub signed_in: RwSignal<bool>,
    /// Why the server refused the nickname.
    pub name_error: RwSignal<Option<ErrorCode>>,
    /// The last problem worth telling the person.
    pub notice: RwSignal<Option<ErrorCode>>,
    /// Set once the page runs in the browser.
    pub hydrated: RwSignal<bool>,
    /// Whether the tab is visible.
    pub visible: RwSignal<bool>,
    /// Set once this browser's remembered rooms are read.
    pub prefs_loaded: RwSignal<bool>,
    /// The phone layout's drawers.
    pub menu_open: RwSignal<bool>,
    pub people_open: RwSignal<bool>,
    /// Text for the screen readers' live region (messages of rooms not in view).
    pub announce: RwSignal<String>,
    rooms: StoredValue<BTreeMap<String, Room>>,
    marks: StoredValue<BTreeMap<String, i64>>,
    owner: StoredValue<Option<Owner>>,
}

impl Chat {
    /// The page's chat, in a language; its rooms' signals live as long as
    /// the current reactive owner (the app).
    pub fn new(lang: Lang) -> Self {
        Chat {
            lang: RwSignal::new(lang),
            current: RwSignal::new(DEFAULT_ROOM.to_string()),
            sidebar: RwSignal::new(vec![DEFAULT_ROOM.to_string()]),
            known: RwSignal::new(Vec::new()),
            status: RwSignal::new(Status::Offline),
            name: RwSignal::new(None),
            signed_in: RwSignal::new(false),
            name_error: RwSignal::new(None),
            notice: RwSignal::new(None),
            hydrated: RwSignal::new(false),
            visible: RwSignal::new(true),
            prefs_loaded: RwSignal::new(false),
            menu_open: RwSignal::new(false),
            people_open: RwSignal::new(false),
            announce: RwSignal::new(String::new()),
            rooms: StoredValue::new(BTreeMap::new()),
            marks: StoredValue::new(BTreeMap::new()),
            owner: StoredValue::new(Owner::current()),
        }
    }

    /// A string in the page's language (reactive).
    pub fn t(&self, key: K) -> &'static str {
        self.lang.get().t(key)
    }

    /// A string in the page's language as a reactive view or attribute.
    /// Every key gives the same closure type, so the WASM carries one copy
    /// of the code that renders it, not one per string.
    pub fn tr(self, key: K) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
        move || self.lang.get().t(key)
    }

    /// The room of that name, made on first use.
    pub fn room(&self, name: &str) -> Room {
        if let Some(r) = self.find(name) {
            return r;
        }
        let mark = self.marks.with_value(|m| m.get(name).copied());
        let make = || Room::new(name, mark);
        // Under the app's owner, so that the room outlives the page that asked.
        let room = match self.owner.get_value() {
            Some(owner) => owner.with(make),
            None => make(),
        };
        self.rooms.update_value(|m| {
            m.insert(name.to_string(), room);
        });
        room
    }

    /// The room of that name, if the page has seen it.
    pub fn find(&self, name: &str) -> Option<Room> {
        self.rooms.with_value(|m| m.get(name).copied())
    }

    /// The room in view (reactive).
    pub fn here(&self) -> Room {
        self.room(&self.current.get())
    }

    /// The room in view, without tracking.
    pub fn here_untracked(&self) -> Room {
        self.room(&self.current.get_untracked())
    }

    /// Shows a room: it becomes current, and a public one goes in the sidebar.
    pub fn set_current(&self, name: &str) {
        if self.current.get_untracked() != name {
            self.current.set(name.to_string());
        }
        if is_public(name) {
            self.add_to_sidebar(name);
        }
        let room = self.room(name);
        if parse_room(name).is_err() {
            room.problem.set(Some(SnapProblem::BadRoom));
        }
    }

    /// Lists a room in the sidebar.
    pub fn add_to_sidebar(&self, name: &str) {
        if !self.sidebar.with_untracked(|s| s.iter().any(|r| r == name)) {
            self.sidebar.update(|s| s.push(name.to_string()));
        }
    }

    /// Takes a room off the sidebar; [`Chat::sync_joins`] leaves it unless in view.
    pub fn remove_from_sidebar(&self, name: &str) {
        self.sidebar.update(|s| s.retain(|r| r != name));
    }

    /// Replaces the sidebar with what this browser remembers, keeping the
    /// room in view.
    pub fn restore_sidebar(&self, rooms: Vec<String>) {
        let me = self.name.get_untracked();
        let mut list: Vec<String> = Vec::new();
        for r in rooms {
            let keep = is_public(&r) || dm_peer(&r, me.as_deref()).is_some();
            if keep && !list.contains(&r) {
                list.push(r);
            }
        }
        let current = self.current.get_untracked();
        if is_public(&current) && !list.contains(&current) {
            list.push(current);
        }
        self.sidebar.set(list);
    }

    /// Reads the last read ids this browser remembers.
    pub fn restore_marks(&self, marks: BTreeMap<String, i64>) {
        for (name, id) in &marks {
            if let Some(r) = self.find(name) {
                let newer = r.last_read.get_untracked().is_none_or(|old| old < *id);
                if newer {
                    r.last_read.set(Some(*id));
                }
            }
        }
        self.marks.set_value(marks);
    }

    /// The rooms this connection should be in: the sidebar's and the one in view.
    pub fn wanted(&self) -> Vec<String> {
        let me = self.name.get_untracked();
        let mut rooms: Vec<String> = self.sidebar.with_untracked(|s| {
            s.iter()
                .filter(|r| is_public(r) || dm_peer(r, me.as_deref()).is_some())
                .cloned()
                .collect()
        });
        let current = self.current.get_untracked();
        if parse_room(&current).is_ok() && !rooms.contains(&current) {
            rooms.push(current);
        }
        rooms
    }

    /// Joins the wanted rooms not joined yet and leaves the others.
    pub fn sync_joins(&self) {
        if self.status.get_untracked() != Status::Connected {
            return;
        }
        let wanted = self.wanted();
        for name in &wanted {
            let room = self.room(name);
            if room.access.get_untracked() == Access::Idle {
                room.access.set(Access::Joining);
                super::send(ClientFrame::Join { room: name.clone() });
            }
        }
        let others: Vec<Room> = self.rooms.with_value(|m| {
            m.iter()
                .filter(|(n, _)| !wanted.contains(n))
                .map(|(_, r)| *r)
                .collect()
        });
        for room in others {
            match room.access.get_untracked() {
                Access::Joining | Access::Joined => {
                    super::send(ClientFrame::Leave { room: room.name() });
                    room.reset();
                }
                Access::Refused => room.access.set(Access::Idle),
                Access::Idle => {}
            }
        }
    }

    /// The last id seen in each wanted room, for `hello.resume`.
    pub fn resume_map(&self) -> BTreeMap<String, i64> {
        let mut resume = BTreeMap::new();
        for name in self.wanted() {
            let room = self.room(&name);
            let last = room.last_id();
            room.resumed.set_value(last.is_some());
            if let Some(id) = last {
                resume.insert(name, id);
            }
        }
        resume
    }

    /// The connection dropped: every room must be joined again.
    pub fn on_disconnect(&self) {
        for room in self
            .rooms
            .with_value(|m| m.values().copied().collect::<Vec<_>>())
        {
            if matches!(
                room.access.get_untracked(),
                Access::Joining | Access::Joined
            ) {
                room.access.set(Access::Idle);
            }
            room.loading_older.set(false);
            room.typing.set(Vec::new());
        }
    }

    /// Sends a message to the room in view; the line shows at once, pending.
    pub fn send_message(&self, body: &str, nonce: String) {
        let Some(me) = self.name.get_untracked() else {
            return;
        };
        let room = self.here_untracked();
        room.lines.update(|ls| {
            ls.push(Line {
                id: None,
                author: me,
                body: body.to_string(),
                ts: None,
                nonce: Some(nonce.clone()),
                delivery: Delivery::Pending,
            })
        });
        // Not joined yet: it goes after `joined`, with the rest of the outbox.
        if room.access.get_untracked() == Access::Joined {
            super::send(ClientFrame::Send {
                room: room.name(),
                body: body.to_string(),
                nonce: Some(nonce),
            });
        }
    }

    /// Sends a failed line again, same nonce.
    pub fn retry(&self, room: Room, nonce: &str) {
        let mut body = None;
        room.lines.update(|ls| {
            if let Some(l) = ls
                .iter_mut()
                .find(|l| l.nonce.as_deref() == Some(nonce) && l.id.is_none())
            {
                l.delivery = Delivery::Pending;
                body = Some(l.body.clone());
            }
        });
        if let Some(body) = body
            && room.access.get_untracked() == Access::Joined
        {
            super::send(ClientFrame::Send {
                room: room.name(),
                body,
                nonce: Some(nonce.to_string()),
            });
        }
    }

    /// Asks for the page of messages before the first one shown.
    pub fn load_older(&self, room: Room) {
        if !room.more.get_untracked()
            || room.loading_older.get_untracked()
            || self.status.get_untracked() != Status::Connected
            || room.access.get_untracked() == Access::Refused
        {
            return;
        }
        let Some(before) = room.first_id() else {
            return;
        };
        room.loading_older.set(true);
        super::send(ClientFrame::History {
            room: room.name(),
            before: Some(before),
            limit: Some(crate::protocol::HISTORY_PAGE as u32),
        });
    }

    /// Marks what a room shows as read, and remembers it.
    pub fn mark_read(&self, room: Room) {
        let last = room.last_id().unwrap_or(0);
        if room.last_read.get_untracked().is_none_or(|r| r < last) {
            room.last_read.set(Some(last));
            let name = room.name();
            self.marks.update_value(|m| {
                m.insert(name, last);
            });
            self.marks.with_value(prefs::save_read_marks);
        }
    }

    /// Unread messages in the sidebar's rooms and the one in view (reactive).
    pub fn total_unread(&self) -> usize {
        let me = self.name.get();
        let current = self.current.get();
        let mut names = self.sidebar.get();
        if !names.contains(&current) {
            names.push(current);
        }
        names
            .iter()
            .filter_map(|n| self.find(n))
            .map(|r| r.unread(me.as_deref()))
            .sum()
    }

    /// Shows a server-rendered snapshot. A room already live on the socket
    /// keeps what the socket gave.
    ///
    /// Untracked: it runs in a component's body and in an effect, neither
    /// of which should re-run when the room's lines it updates change.
    pub fn load(&self, snap: &Snapshot) {
        untrack(|| self.load_untracked(snap));
    }

    fn load_untracked(&self, snap: &Snapshot) {
        let room = self.room(&snap.room);
        room.problem.set(snap.problem);
        if room.access.get_untracked() == Access::Joined {
            return;
        }
        let first_before = room.first_id();
        let snap_first = snap.messages.first().map(|m| m.id);
        if first_before.is_none() || snap_first.is_some_and(|f| Some(f) <= first_before) {
            room.more.set(snap.more);
        }
        if !snap.messages.is_empty() {
            room.lines.update(|ls| {
                for m in snap.messages.iter().cloned() {
                    merge_into(ls, m);
                }
            });
        }
        // Not `online_count`: that is the socket's (`joined`, `presence`);
        // until it comes, the page counts `online`.
        room.online.set(snap.online.clone());
        room.loaded
            .set(snap.problem.is_none() && is_public(&snap.room));
    }

    /// Drops typing notices whose time is up.
    pub fn expire_typing(&self, now_ms: f64) {
        let room = self.here_untracked();
        if room
            .typing
            .with_untracked(|t| t.iter().any(|(_, until)| *until <= now_ms))
        {
            room.typing
                .update(|t| t.retain(|(_, until)| *until > now_ms));
        }
    }

    /// Applies a frame from the server to the page.
    pub fn apply(&self, frame: ServerFrame, now_ms: f64) {
        let me = self.name.get_untracked();
        match frame {
            ServerFrame::Welcome { rooms, .. } => self.on_welcome(rooms),
            ServerFrame::Joined {
                room,
                online,
                history,
                more,
            } => self.on_joined(&room, online, history, more),
            ServerFrame::Presence {
                room,
                user,
                state,
                joined,
                left,
                online,
            } => {
                let Some(r) = self.find(&room) else { return };
                if r.access.get_untracked() != Access::Joined {
                    return;
                }
                r.online.update(|o| {
                    let mut add = joined.unwrap_or_default();
                    let mut sub = left.unwrap_or_default();
                    match (user, state) {
                        (Some(u), Some(PresenceState::Joined)) => add.push(u),
                        (Some(u), Some(PresenceState::Left)) => sub.push(u),
                        _ => {}
                    }
                    o.retain(|n| !sub.contains(n));
                    for u in add {
                        if !o.contains(&u) {
                            o.push(u);
                        }
                    }
                    o.sort();
                });
                r.online_count.set(Some(online));
            }
            ServerFrame::Ack {
                nonce,
                room,
                id,
                ts,
            } => {
                let Some(r) = self.find(&room) else { return };
                r.lines.update(|ls| {
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
                });
            }
            ServerFrame::Message(m) => self.on_message(m, me.as_deref()),
            ServerFrame::History {
                room,
                messages,
                more,
            } => {
                let Some(r) = self.find(&room) else { return };
                r.loading_older.set(false);
                if r.access.get_untracked() == Access::Idle && !r.loaded.get_untracked() {
                    return;
                }
                r.more.set(more);
                r.lines.update(|ls| {
                    for m in messages {
                        merge_into(ls, m);
                    }
                });
            }
            ServerFrame::Typing { room, user } => {
                if Some(user.as_str()) == me.as_deref() {
                    return;
                }
                let Some(r) = self.find(&room) else { return };
                r.typing.update(|t| {
                    t.retain(|(u, until)| *u != user && *until > now_ms);
                    t.push((user, now_ms + TYPING_SHOWN_MS));
                });
            }
            ServerFrame::Error { code, nonce, .. } => self.on_error(code, nonce),
        }
    }

    fn on_welcome(&self, rooms: Vec<String>) {
        self.name_error.set(None);
        self.notice.set(None);
        let me = self.name.get_untracked();
        let mut public = Vec::new();
        for name in rooms {
            if is_public(&name) {
                public.push(name);
            } else if dm_peer(&name, me.as_deref()).is_some()
                && !self.sidebar.with_untracked(|s| s.contains(&name))
            {
                // A conversation this browser did not list yet: what is in it is new.
                let room = self.room(&name);
                if room.last_read.get_untracked().is_none() {
                    room.last_read.set(Some(0));
                }
                self.add_to_sidebar(&name);
            }
        }
        self.known.set(public);
        for room in self
            .rooms
            .with_value(|m| m.values().copied().collect::<Vec<_>>())
        {
            if room.access.get_untracked() != Access::Idle {
                room.access.set(Access::Idle);
            }
        }
        self.sync_joins();
    }

    fn on_joined(&self, name: &str, online: Vec<String>, history: Vec<Message>, more: bool) {
        let Some(room) = self.find(name) else { return };
        if room.access.get_untracked() != Access::Joining {
            // Left (or refused) meanwhile.
            return;
        }
        room.access.set(Access::Joined);
        room.problem.set(None);
        room.online_count.set(Some(online.len()));
        room.online.set(online);
        let mut first_before = room.first_id();
        let last_before = room.last_id();
        let hist_first = history.first().map(|m| m.id);
        if let (Some(last), Some(first)) = (last_before, hist_first)
            && first > last + 1
        {
            // Too far behind to resume (or stale lines): start from this page.
            room.lines.update(|ls| ls.retain(|l| l.id.is_none()));
            first_before = None;
        }
        if first_before.is_none() || hist_first.is_some_and(|f| Some(f) <= first_before) {
            room.more.set(more);
        }
        room.lines.update(|ls| {
            for m in history {
                merge_into(ls, m);
            }
        });
        room.resumed.set_value(false);
        room.loaded.set(true);
        if room.last_read.get_untracked().is_none() {
            room.last_read.set(Some(room.last_id().unwrap_or(0)));
        }
        let me = self.name.get_untracked();
        let in_view_public = is_public(name) && self.current.get_untracked() == name;
        if in_view_public || dm_peer(name, me.as_deref()).is_some() {
            self.add_to_sidebar(name);
        }
        // The outbox: what was sent but not acknowledged goes again, same
        // nonce; the server stores it once.
        for (nonce, body) in room.unacknowledged() {
            super::send(ClientFrame::Send {
                room: name.to_string(),
                body,
                nonce: Some(nonce),
            });
        }
    }

    fn on_message(&self, m: Message, me: Option<&str>) {
        let from_other = Some(m.author.as_str()) != me;
        match self.find(&m.room) {
            Some(r) if matches!(r.access.get_untracked(), Access::Joined | Access::Joining) => {
                r.typing.update(|t| t.retain(|(u, _)| *u != m.author));
                if from_other
                    && (m.room != self.current.get_untracked() || !self.visible.get_untracked())
                {
                    self.announce_message(&m, me);
                }
                r.merge(m);
            }
            _ => {
                // A direct message in a conversation this page is not in:
                // list it and join it; `joined` brings the message.
                if dm_peer(&m.room, me).is_none() {
                    return;
                }
                let room = self.room(&m.room);
                if room.last_read.get_untracked().is_none() {
                    room.last_read.set(Some(0));
                }
                self.add_to_sidebar(&m.room);
                if from_other {
                    self.announce_message(&m, me);
                }
                self.sync_joins();
            }
        }
    }

    fn announce_message(&self, m: &Message, me: Option<&str>) {
        let lang = self.lang.get_untracked();
        let body: String = m.body.chars().take(140).collect();
        self.announce.set(lang.f(
            K::NewMessageIn,
            &[
                ("author", &m.author),
                ("room", &room_label(&m.room, me)),
                ("body", &body),
            ],
        ));
    }

    fn on_error(&self, code: ErrorCode, nonce: Option<String>) {
        if code == ErrorCode::BadName {
            self.name_error.set(Some(code));
            return;
        }
        if nonce.is_some() {
            let rooms = self
                .rooms
                .with_value(|m| m.values().copied().collect::<Vec<_>>());
            for r in rooms {
                let mut matched = false;
                r.lines.update(|ls| {
                    if let Some(l) = ls.iter_mut().find(|l| l.id.is_none() && l.nonce == nonce) {
                        l.delivery = Delivery::Failed(code);
                        matched = true;
                    }
                });
                if matched {
                    return;
                }
            }
        }
        // Errors of `join` and `history` name no room. A `forbidden` answers
        // the join of a direct-message room (the one in view first).
        if code == ErrorCode::Forbidden {
            let current = self.current.get_untracked();
            let mut candidates = vec![current];
            candidates.extend(self.wanted());
            let refused = candidates.into_iter().find_map(|n| {
                self.find(&n)
                    .filter(|r| is_dm(&n) && r.access.get_untracked() == Access::Joining)
            });
            if let Some(room) = refused {
                room.access.set(Access::Refused);
                room.lines.set(Vec::new());
                room.more.set(false);
                room.loaded.set(false);
                self.remove_from_sidebar(&room.name());
                return;
            }
        }
        if code == ErrorCode::NotJoined {
            // A typing notice racing a leave; nothing the person can act on.
            return;
        }
        for r in self
            .rooms
            .with_value(|m| m.values().copied().collect::<Vec<_>>())
        {
            if r.loading_older.get_untracked() {
                r.loading_older.set(false);
            }
        }
        self.notice.set(Some(code));
    }
}

fn merge_into(ls: &mut Vec<Line>, m: Message) {
    if ls.iter().any(|l| l.id == Some(m.id)) {
        return;
    }
    if let Some(i) = ls.iter().position(|l| {
        l.id.is_none() && l.nonce.is_some() && l.nonce == m.nonce && l.author == m.author
    }) {
        ls.remove(i);
    }
    // Stored lines in id order, pending ones after them.
    let at = ls
        .iter()
        .position(|l| l.id.is_none_or(|id| id > m.id))
        .unwrap_or(ls.len());
    ls.insert(at, Line::stored(m));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signals need a reactive owner (the server build sandboxes arenas).
    fn in_owner() {
        let owner = Owner::new();
        owner.set();
        std::mem::forget(owner);
    }

    fn msg(room: &str, id: i64, author: &str) -> Message {
        Message {
            room: room.into(),
            id,
            author: author.into(),
            body: format!("m{id}"),
            ts: "2026-11-21T10:15:30.123Z".into(),
            nonce: None,
        }
    }

    fn connected(me: &str) -> Chat {
        let chat = {
            in_owner();
            Chat::new(Lang::En)
        };
        chat.name.set(Some(me.into()));
        chat.status.set(Status::Connected);
        chat
    }

    fn joined(chat: &Chat, room: &str, history: Vec<Message>, more: bool) {
        chat.apply(
            ServerFrame::Joined {
                room: room.into(),
                online: vec!["alice".into()],
                history,
                more,
            },
            0.0,
        );
    }

    fn ids(room: Room) -> Vec<i64> {
        room.lines
            .with_untracked(|ls| ls.iter().filter_map(|l| l.id).collect())
    }

    #[test]
    fn rooms_not_in_view_count_unread() {
        let chat = connected("alice");
        chat.set_current("general");
        chat.add_to_sidebar("random");
        chat.sync_joins();
        joined(&chat, "general", vec![msg("general", 1, "bob")], false);
        joined(&chat, "random", vec![msg("random", 1, "bob")], false);
        let random = chat.room("random");
        // Joining marks what is there as read.
        assert_eq!(random.unread(Some("alice")), 0);
        chat.apply(ServerFrame::Message(msg("random", 2, "bob")), 0.0);
        chat.apply(ServerFrame::Message(msg("random", 3, "alice")), 0.0);
        chat.apply(ServerFrame::Message(msg("random", 4, "bob")), 0.0);
        assert_eq!(random.unread(Some("alice")), 2);
        assert_eq!(chat.total_unread(), 2);
        assert!(chat.announce.get_untracked().contains("bob in #random"));
        chat.set_current("random");
        chat.mark_read(random);
        assert_eq!(random.unread(Some("alice")), 0);
    }

    #[test]
    fn resumed_join_keeps_scrollback_and_fills_the_gap() {
        let chat = connected("alice");
        chat.set_current("general");
        let general = chat.room("general");
        chat.load(&Snapshot {
            room: "general".into(),
            messages: (51..=100).map(|i| msg("general", i, "bob")).collect(),
            more: true,
            online: vec![],
            problem: None,
        });
        assert_eq!(chat.resume_map().get("general"), Some(&100));
        chat.sync_joins();
        joined(
            &chat,
            "general",
            (101..=103).map(|i| msg("general", i, "bob")).collect(),
            true,
        );
        assert_eq!(ids(general).len(), 53);
        assert!(general.more.get_untracked());
        // Scroll-back merges older pages in order.
        chat.apply(
            ServerFrame::History {
                room: "general".into(),
                messages: (1..=50).map(|i| msg("general", i, "bob")).collect(),
                more: false,
            },
            0.0,
        );
        assert_eq!(ids(general), (1..=103).collect::<Vec<_>>());
        assert!(!general.more.get_untracked());
    }

    #[test]
    fn a_gap_after_resume_starts_from_the_newest_page() {
        let chat = connected("alice");
        chat.set_current("general");
        let general = chat.room("general");
        chat.load(&Snapshot {
            room: "general".into(),
            messages: vec![msg("general", 5, "bob")],
            more: false,
            online: vec![],
            problem: None,
        });
        chat.sync_joins();
        joined(&chat, "general", vec![msg("general", 20_000, "bob")], true);
        assert_eq!(ids(general), vec![20_000]);
        assert!(general.more.get_untracked());
    }

    #[test]
    fn sends_wait_for_joined_and_acks_confirm() {
        let chat = connected("alice");
        chat.set_current("general");
        chat.send_message("hello", "c-1".into());
        let general = chat.room("general");
        assert_eq!(general.unacknowledged().len(), 1);
        chat.sync_joins();
        joined(&chat, "general", vec![], false);
        chat.apply(
            ServerFrame::Ack {
                nonce: Some("c-1".into()),
                room: "general".into(),
                id: 7,
                ts: "2026-11-21T10:15:30.123Z".into(),
            },
            0.0,
        );
        assert!(general.unacknowledged().is_empty());
        assert_eq!(ids(general), vec![7]);
        // The echo of our own message does not duplicate it.
        let mut echo = msg("general", 7, "alice");
        echo.nonce = Some("c-1".into());
        chat.apply(ServerFrame::Message(echo), 0.0);
        assert_eq!(ids(general), vec![7]);
    }

    #[test]
    fn a_forbidden_dm_is_refused_and_not_listed() {
        let chat = connected("carol");
        chat.set_current("dm:alice:bob");
        chat.sync_joins();
        let dm = chat.room("dm:alice:bob");
        assert_eq!(dm.access.get_untracked(), Access::Joining);
        chat.apply(
            ServerFrame::Error {
                code: ErrorCode::Forbidden,
                message: "no".into(),
                nonce: None,
                room: None,
            },
            0.0,
        );
        assert_eq!(dm.access.get_untracked(), Access::Refused);
        assert!(
            !chat
                .sidebar
                .get_untracked()
                .contains(&"dm:alice:bob".into())
        );
        assert_eq!(chat.notice.get_untracked(), None);
    }

    #[test]
    fn an_incoming_dm_is_listed_and_joined() {
        let chat = connected("bob");
        chat.set_current("general");
        chat.sync_joins();
        chat.apply(ServerFrame::Message(msg("dm:alice:bob", 1, "alice")), 0.0);
        assert!(
            chat.sidebar
                .get_untracked()
                .contains(&"dm:alice:bob".into())
        );
        let dm = chat.room("dm:alice:bob");
        assert_eq!(dm.access.get_untracked(), Access::Joining);
        joined(
            &chat,
            "dm:alice:bob",
            vec![msg("dm:alice:bob", 1, "alice")],
            false,
        );
        assert_eq!(dm.unread(Some("bob")), 1);
        // Someone else's DM is not ours to list.
        chat.apply(ServerFrame::Message(msg("dm:alice:carol", 1, "alice")), 0.0);
        assert!(
            !chat
                .sidebar
                .get_untracked()
                .contains(&"dm:alice:carol".into())
        );
    }

    #[test]
    fn leaving_forgets_the_room() {
        let chat = connected("alice");
        chat.set_current("general");
        chat.add_to_sidebar("random");
        chat.sync_joins();
        joined(&chat, "random", vec![msg("random", 1, "bob")], false);
        chat.remove_from_sidebar("random");
        chat.sync_joins();
        let random = chat.room("random");
        assert_eq!(random.access.get_untracked(), Access::Idle);
        assert!(ids(random).is_empty());
        // Its frames no longer count.
        chat.apply(ServerFrame::Message(msg("random", 2, "bob")), 0.0);
        assert!(ids(random).is_empty());
    }

    #[test]
    fn labels() {
        assert_eq!(room_label("general", None), "#general");
        assert_eq!(room_label("dm:alice:bob", Some("alice")), "@bob");
        assert_eq!(room_label("dm:alice:bob", Some("carol")), "alice ↔ bob");
        assert_eq!(dm_peer("dm:alice:bob", Some("bob")), Some("alice".into()));
    }
}
