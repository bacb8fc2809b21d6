//! The chat state as signals for the components: one [`ChatState`] in a
//! signal, read through memos (so a component re-renders only when what it
//! reads changes), changed only through [`ChatState`]'s methods, whose
//! frames go to the page's [`Sender`].
//!
//! One [`Chat`] lives as long as the page, across navigations between rooms.

use super::chat_state::{Access, Change, ChatState, Creating, Line, RoomState, Status};
use super::layout::Layout;
use super::prefs;
use super::sender::Sender;
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame};
use crate::protocol::{SnapProblem, Snapshot};
use leptos::prelude::*;
use std::collections::BTreeMap;

/// One room as the components read it; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Room {
    pub name: StoredValue<String>,
    pub lines: Memo<Vec<Line>>,
    /// Whether messages older than the first line exist.
    pub more: Memo<bool>,
    pub loading_older: Memo<bool>,
    pub online: Memo<Vec<String>>,
    /// From the last `joined` or `presence`; `None` until known.
    pub online_count: Memo<Option<usize>>,
    /// Who is typing, with the time (ms) their notice fades.
    pub typing: Memo<Vec<(String, f64)>>,
    pub access: Memo<Access>,
    /// The newest id the person has seen.
    pub last_read: Memo<Option<i64>>,
    pub problem: Memo<Option<SnapProblem>>,
    /// Whether the lines are known (a snapshot or a `joined` came).
    pub loaded: Memo<bool>,
    /// The room's topic, when it has one.
    pub topic: Memo<Option<String>>,
    /// Members of a private room as far as the page knows them.
    pub members: Memo<Vec<String>>,
    /// Who took the person out of this room.
    pub removed_by: Memo<Option<String>>,
    /// Why the last `invite`, `remove` or `topic` was refused.
    pub action_error: Memo<Option<ErrorCode>>,
    /// The message the composer answers.
    pub reply_to: Memo<Option<i64>>,
    /// The message of mine being edited in place.
    pub editing: Memo<Option<i64>>,
    /// A message to bring into view, and the pages asked for it.
    pub seeking: Memo<Option<(i64, Option<u32>)>>,
}

/// A memo of one field of a room.
fn field<T>(state: RwSignal<ChatState>, name: &str, read: fn(&RoomState) -> T) -> Memo<T>
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    let name = name.to_string();
    Memo::new(move |_| state.with(|s| s.with_room(&name, read)))
}

impl Room {
    fn new(state: RwSignal<ChatState>, name: &str) -> Self {
        Room {
            name: StoredValue::new(name.to_string()),
            lines: field(state, name, |r| r.lines.clone()),
            more: field(state, name, |r| r.more),
            loading_older: field(state, name, |r| r.loading_older),
            online: field(state, name, |r| r.online.clone()),
            online_count: field(state, name, |r| r.online_count),
            typing: field(state, name, |r| r.typing.clone()),
            access: field(state, name, |r| r.access),
            last_read: field(state, name, |r| r.last_read),
            problem: field(state, name, |r| r.problem),
            loaded: field(state, name, |r| r.loaded),
            topic: {
                let name = name.to_string();
                Memo::new(move |_| state.with(|s| s.topic(&name).map(str::to_string)))
            },
            members: field(state, name, |r| r.members.clone()),
            removed_by: field(state, name, |r| r.removed_by.clone()),
            action_error: field(state, name, |r| r.action_error),
            reply_to: field(state, name, |r| r.reply_to),
            editing: field(state, name, |r| r.editing),
            seeking: field(state, name, |r| r.seeking),
        }
    }

    /// The room's name.
    pub fn name(&self) -> String {
        self.name.get_value()
    }

    /// Messages of others after the last one read (reactive).
    pub fn unread(&self, me: Option<&str>) -> usize {
        let read = self.last_read.get();
        self.lines
            .with(|ls| super::chat_state::unread(read, ls, me))
    }

    /// Unread messages of others that mention `me` (reactive).
    pub fn unread_mentions(&self, me: Option<&str>) -> usize {
        let read = self.last_read.get();
        self.lines
            .with(|ls| super::chat_state::unread_mentions(read, ls, me))
    }

    /// Where the "New messages" line goes (see [`RoomState::first_unread`]), untracked.
    pub fn first_unread(&self, me: Option<&str>) -> Option<i64> {
        let read = self.last_read.get_untracked();
        self.lines
            .with_untracked(|ls| super::chat_state::first_unread(read, ls, me))
    }

    /// The shown line of that id (reactive).
    pub fn line(&self, id: i64) -> Option<Line> {
        self.lines
            .with(|ls| ls.iter().rev().find(|l| l.id == Some(id)).cloned())
    }
}

/// The page's chat; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Chat {
    state: RwSignal<ChatState>,
    /// The room in view.
    pub current: Memo<String>,
    /// The sidebar's rooms and DMs, in the order they were added.
    pub sidebar: Memo<Vec<String>>,
    /// Public rooms the server listed (most recently active first).
    pub known: Memo<Vec<String>>,
    pub status: Memo<Status>,
    /// The nickname chosen in this browser, or the signed-in account's.
    pub name: Memo<Option<String>>,
    /// Whether `name` is a signed-in account.
    pub signed_in: Memo<bool>,
    /// Why the server refused the nickname.
    pub name_error: Memo<Option<ErrorCode>>,
    /// The last problem worth telling the person.
    pub notice: Memo<Option<ErrorCode>>,
    /// Whether the tab is visible.
    pub visible: Memo<bool>,
    /// Whether the read positions are known (see [`ChatState::reads_known`]).
    pub reads_known: Memo<bool>,
    /// The private room the page's dialog is making.
    pub creating: Memo<Option<Creating>>,
    /// The server said this account is an admin.
    pub admin: Memo<bool>,
    /// The last edit, deletion or reaction refused, and why.
    pub refused: Memo<Option<(Change, ErrorCode)>>,
    /// What waits to be sent, per room (see [`ChatState::outbox`]).
    pub outbox: Memo<BTreeMap<String, Vec<super::chat_state::Outgoing>>>,
    /// Messages to show as desktop notifications, taken by `ui::alerts`.
    pub to_notify: RwSignal<Vec<crate::protocol::Message>>,
    layout: Layout,
    sender: Sender,
    rooms: StoredValue<BTreeMap<String, Room>>,
    owner: StoredValue<Option<Owner>>,
}

impl Chat {
    /// The page's chat; it sends through `sender` and announces through
    /// `layout`. Its signals live as long as the current reactive owner (the app).
    pub fn new(layout: Layout, sender: Sender) -> Self {
        let state = RwSignal::new(ChatState::default());
        Chat {
            state,
            current: Memo::new(move |_| state.with(|s| s.current.clone())),
            sidebar: Memo::new(move |_| state.with(|s| s.sidebar.clone())),
            known: Memo::new(move |_| state.with(|s| s.known.clone())),
            status: Memo::new(move |_| state.with(|s| s.status)),
            name: Memo::new(move |_| state.with(|s| s.name.clone())),
            signed_in: Memo::new(move |_| state.with(|s| s.signed_in)),
            name_error: Memo::new(move |_| state.with(|s| s.name_error)),
            notice: Memo::new(move |_| state.with(|s| s.notice)),
            visible: Memo::new(move |_| state.with(|s| s.visible)),
            reads_known: Memo::new(move |_| state.with(|s| s.reads_known)),
            creating: Memo::new(move |_| state.with(|s| s.creating.clone())),
            admin: Memo::new(move |_| state.with(|s| s.admin && s.signed_in)),
            refused: Memo::new(move |_| state.with(|s| s.refused)),
            to_notify: RwSignal::new(Vec::new()),
            outbox: Memo::new(move |_| state.with(ChatState::outbox)),
            layout,
            sender,
            rooms: StoredValue::new(BTreeMap::new()),
            owner: StoredValue::new(Owner::current()),
        }
    }

    /// Changes the state and sends the frames the change returns.
    fn change(&self, f: impl FnOnce(&mut ChatState) -> Vec<ClientFrame>) {
        let frames = self.state.try_update(f).unwrap_or_default();
        self.sender.send_all(frames);
    }

    /// Changes the state; tells the memos only if `f` says it changed.
    fn change_if(&self, f: impl FnOnce(&mut ChatState) -> bool) -> bool {
        let changed = self.state.try_update_untracked(f).unwrap_or(false);
        if changed {
            self.state.notify();
        }
        changed
    }

    /// The room of that name, as the components read it.
    pub fn room(&self, name: &str) -> Room {
        if let Some(r) = self.rooms.with_value(|m| m.get(name).copied()) {
            return r;
        }
        let make = || Room::new(self.state, name);
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

    /// Whether this person may remove others from `room` and set its topic
    /// (see [`ChatState::manages`]); never once the session ended (reactive).
    pub fn manages(&self, room: &str) -> bool {
        self.state
            .with(|s| s.manages(room) && !matches!(s.status, super::chat_state::Status::Ended(_)))
    }

    /// Whether the page's chat still exists: a callback deferred to a later
    /// frame may run after the page was left.
    pub fn alive(&self) -> bool {
        !self.state.is_disposed()
    }

    /// The room in view (reactive).
    pub fn here(&self) -> Room {
        self.room(&self.current.get())
    }

    /// The room in view, without tracking.
    pub fn here_untracked(&self) -> Room {
        self.room(&self.current.get_untracked())
    }

    /// Sets who the page speaks as (a guest's nickname, or a signed-in
    /// account's name).
    pub fn set_name(&self, name: Option<String>, signed_in: bool) {
        self.state.update(|s| s.set_name(name, signed_in));
    }

    /// Whether the tab is visible.
    pub fn set_visible(&self, visible: bool) {
        if self.visible.get_untracked() != visible {
            self.state.update(|s| s.visible = visible);
        }
    }

    /// Hides the last problem.
    pub fn dismiss_notice(&self) {
        self.state.update(|s| s.notice = None);
    }

    /// Shows a room: it becomes current, and a public one goes in the sidebar.
    pub fn set_current(&self, name: &str) {
        untrack(|| self.state.update(|s| s.set_current(name)));
    }

    /// Lists a room in the sidebar.
    pub fn add_to_sidebar(&self, name: &str) {
        self.state.update(|s| s.add_to_sidebar(name));
    }

    /// Takes a room off the sidebar; [`Chat::sync_joins`] leaves it unless in view.
    pub fn remove_from_sidebar(&self, name: &str) {
        self.state.update(|s| s.remove_from_sidebar(name));
    }

    /// Replaces the sidebar with what this browser remembers.
    pub fn restore_sidebar(&self, rooms: Vec<String>) {
        self.state.update(|s| s.restore_sidebar(rooms));
    }

    /// Reads the last read ids this browser remembers.
    pub fn restore_marks(&self, marks: BTreeMap<String, i64>) {
        self.state.update(|s| s.restore_marks(marks));
    }

    /// Joins the wanted rooms not joined yet and leaves the others.
    pub fn sync_joins(&self) {
        self.change(ChatState::sync_joins);
    }

    /// The frame that opens a connection.
    pub fn hello(&self) -> ClientFrame {
        self.state.with_untracked(ChatState::hello)
    }

    /// A connection is being opened.
    pub fn connecting(&self) {
        self.state.update(ChatState::connecting);
    }

    /// The server ended the session for good (see [`ChatState::on_ended`]).
    pub fn on_ended(&self, why: crate::protocol::Ended) {
        self.state.update(|s| s.on_ended(why));
    }

    /// The connection dropped (see [`ChatState::on_disconnect`]).
    pub fn on_disconnect(&self) {
        self.state.update(ChatState::on_disconnect);
    }

    /// Sends a message, with uploaded files, to the room in view; the line
    /// shows at once, pending.
    pub fn send_message(&self, body: &str, files: Vec<crate::protocol::FileObject>, nonce: String) {
        self.change(|s| s.send_message(body, files, nonce));
    }

    /// Shows again what an earlier page left unsent (see [`ChatState::restore_outbox`]).
    pub fn restore_outbox(&self, outbox: BTreeMap<String, Vec<super::chat_state::Outgoing>>) {
        self.state.update(|s| s.restore_outbox(outbox));
    }

    /// Sends a failed line again, same nonce.
    pub fn retry(&self, room: Room, nonce: &str) {
        self.change(|s| s.retry(&room.name(), nonce));
    }

    /// Tells the room in view that the person is typing.
    pub fn send_typing(&self) {
        if let Some(f) = self.state.with_untracked(ChatState::typing) {
            self.sender.send(f);
        }
    }

    /// Makes a private room; the answer shows in [`Chat::creating`].
    pub fn create_room(&self, room: &str, members: Vec<String>, topic: &str) {
        self.change(|s| s.create_room(room, members, topic));
    }

    /// The dialog closed: forget what it was making.
    pub fn end_create(&self) {
        self.state.update(ChatState::end_create);
    }

    /// Adds someone to a private room.
    pub fn invite(&self, room: &str, user: &str) {
        self.change(|s| s.invite(room, user));
    }

    /// Takes someone out of a private room; oneself, to leave it.
    pub fn remove_member(&self, room: &str, user: &str) {
        self.change(|s| s.remove_member(room, user));
    }

    /// The account's notification level in a room (reactive).
    pub fn level(&self, room: &str) -> crate::protocol::NotifyLevel {
        self.state.with(|s| s.level(room))
    }

    /// Sets the account's notification level in a room.
    pub fn set_level(&self, room: &str, level: crate::protocol::NotifyLevel) {
        self.change(|s| s.set_level(room, level));
    }

    /// Changes a room's topic.
    pub fn set_topic(&self, room: &str, topic: &str) {
        self.change(|s| s.set_topic(room, topic));
    }

    /// Asks for the page of messages before the first one shown.
    pub fn load_older(&self, room: Room) {
        self.change(|s| s.load_older(&room.name()));
    }

    /// Opens a room at one message (see [`ChatState::jump_to`]).
    pub fn jump_to(&self, room: &str, id: i64) {
        self.change(|s| s.jump_to(room, id));
    }

    /// The jump in progress, and whether its message is shown (reactive).
    pub fn jump(&self) -> Option<(super::chat_state::Jump, bool)> {
        self.state
            .with(|s| s.jump.clone().map(|j| (j, s.jump_found())))
    }

    /// The page showed the message of the jump, or gave up.
    pub fn jump_done(&self) {
        self.state.update(ChatState::jump_done);
    }

    /// Marks a room read up to the newest message seen on screen, and
    /// remembers it.
    pub fn mark_read(&self, room: Room, seen: i64) {
        let told = self
            .state
            .try_update_untracked(|s| s.mark_read(&room.name(), seen))
            .flatten();
        if let Some(frames) = told {
            self.state.notify();
            self.sender.send_all(frames);
            self.state
                .with_untracked(|s| prefs::save_read_marks(s.marks()));
        }
    }

    /// Unread messages in the sidebar's rooms and the one in view (reactive).
    pub fn total_unread(&self) -> usize {
        self.state.with(ChatState::total_unread)
    }

    /// Shows a server-rendered snapshot. A room already live on the socket
    /// keeps what the socket gave.
    ///
    /// Untracked: it runs in a component's body and in an effect, neither
    /// of which should re-run when the state it changes changes.
    pub fn load(&self, snap: &Snapshot) {
        untrack(|| self.state.update(|s| s.load(snap)));
    }

    /// A room's snapshot could not be read.
    pub fn snapshot_failed(&self, room: &str) {
        self.state.update(|s| s.snapshot_failed(room));
    }

    /// Drops typing notices whose time is up.
    pub fn expire_typing(&self, now_ms: f64) {
        if self.state.with_untracked(|s| s.typing_expires(now_ms)) {
            self.change_if(|s| s.expire_typing(now_ms));
        }
    }

    /// Applies a frame from the server, sends what it asks, and announces
    /// a message out of sight.
    pub fn apply(&self, frame: ServerFrame, now_ms: f64) {
        let Some(reaction) = self.state.try_update(|s| s.apply(frame, now_ms)) else {
            return;
        };
        self.sender.send_all(reaction.send);
        if let Some(m) = reaction.announce {
            let me = self.name.get_untracked();
            self.layout.announce_message(&m, me.as_deref());
        }
        if let Some(m) = reaction.notify {
            self.to_notify.update(|list| list.push(m));
        }
    }

    // Conversations (version 1.1): see `chat_state::conversation`.

    /// Whether the person may edit this line (reactive).
    pub fn may_edit(&self, line: &Line) -> bool {
        self.state.with(|s| s.may_edit(line))
    }

    /// Whether the person may delete this line (reactive).
    pub fn may_delete(&self, line: &Line) -> bool {
        self.state.with(|s| s.may_delete(line))
    }

    /// Sets or clears the message the composer answers.
    pub fn set_reply(&self, room: Room, id: Option<i64>) {
        self.state.update(|s| s.set_reply(&room.name(), id));
    }

    /// Opens one of the person's messages for editing.
    pub fn start_edit(&self, room: Room, id: i64) {
        self.state.update(|s| {
            s.start_edit(&room.name(), id);
        });
    }

    /// Opens the person's last message for editing; whether there was one.
    pub fn edit_last(&self, room: Room) -> bool {
        self.state
            .try_update(|s| s.edit_last(&room.name()))
            .unwrap_or(false)
    }

    /// Closes the edit without saving.
    pub fn cancel_edit(&self, room: Room) {
        self.state.update(|s| s.cancel_edit(&room.name()));
    }

    /// Saves the message being edited.
    pub fn save_edit(&self, room: Room, body: &str) {
        self.change(|s| s.save_edit(&room.name(), body));
    }

    /// Deletes a message.
    pub fn delete(&self, room: Room, id: i64) {
        self.change(|s| s.delete(&room.name(), id));
    }

    /// Adds or takes back the person's reaction.
    pub fn toggle_reaction(&self, room: Room, id: i64, emoji: &str) {
        self.change(|s| s.toggle_reaction(&room.name(), id, emoji));
    }

    /// Hides the last refused change.
    pub fn dismiss_refused(&self) {
        self.state.update(ChatState::dismiss_refused);
    }

    /// Brings a message into view, loading older pages if need be.
    pub fn seek(&self, room: Room, id: i64) {
        self.change(|s| s.seek(&room.name(), id));
    }

    /// The message sought is in view.
    pub fn sought(&self, room: Room) {
        self.state.update(|s| s.sought(&room.name()));
    }

    /// Who the composer's `@` list offers (untracked: read on input).
    pub fn mention_candidates(&self, room: Room, query: &str) -> Vec<(String, bool)> {
        self.state
            .with_untracked(|s| s.mention_candidates(&room.name(), query))
    }
}
