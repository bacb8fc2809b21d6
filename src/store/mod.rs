//! History: messages and rooms, behind the [`Store`] trait.
//!
//! The store assigns each message its per-room id and answers only after the
//! message is committed. It knows nothing of sockets or fan-out.
//!
//! Layout: the message log (batched appends and the ids they take) is
//! written per backend, in `sqlite.rs` and `postgres.rs`; what both
//! databases answer with the same SQL (history reads in `history.rs`,
//! accounts, tokens, guest names, settings and the room directory in
//! `directory.rs`) is written once, joined to a log in `sql.rs`. Both
//! writers decide duplicates with `plan.rs`. `memory.rs` is a store for the
//! hub's in-process tests.

pub mod backup;
mod change;
mod dialect;
mod directory;
mod files;
mod history;
mod members;
#[cfg(test)]
mod memory;
mod plan;
mod postgres;
mod push;
mod reads;
mod rows;
#[cfg(test)]
mod search_bench;
mod search_index;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sql::SqlStore;
pub use sqlite::SqliteStore;

use crate::protocol::Message;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// A message to store; the store picks its id and time.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub room: String,
    pub author: String,
    pub body: String,
    pub nonce: Option<String>,
    /// A message of the same room (the hub checked it exists).
    pub reply_to: Option<i64>,
    /// The names the body mentions (see [`crate::protocol::find_mentions`]).
    pub mentions: Vec<String>,
    /// The files it carries (the hub found them with [`Store::attachable`]).
    pub attachments: Vec<crate::protocol::FileObject>,
}

/// What a stored file is, as serving it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub mime: String,
    pub size: u64,
    /// The thumbnail's media type, for images.
    pub thumb_mime: Option<String>,
}

/// Who may read a file: members of the rooms whose messages carry it, and
/// its uploader until the upload is sent or swept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReaders {
    pub rooms: Vec<String>,
    /// Whether the account asked about has it as an unsent upload.
    pub uploader: bool,
}

/// A change to a stored message. The store applies the rules that must
/// hold at the moment of the change (author, deleted), atomically with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The author replaces the body (and so its mentions).
    Edit {
        by: String,
        body: String,
        mentions: Vec<String>,
    },
    /// The author, or an admin (`admin: true`), deletes it: the body,
    /// mentions, reactions and reply are dropped for good.
    Delete { by: String, admin: bool },
    /// `by` adds or takes back one reaction.
    React { by: String, emoji: String, on: bool },
}

/// What a [`Change`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Stored, at the room's new revision `rev`; the message as it now stands.
    Done { rev: i64, message: Message },
    /// Nothing to store (the same body, a reaction already there or not
    /// there): no new revision.
    Unchanged(Message),
    /// No such message in that room.
    NotFound,
    /// Edit by someone else, or delete by neither its author nor an admin.
    NotAuthor,
    /// The message is deleted: it cannot be edited or reacted to.
    Deleted,
    /// The message already carries [`MAX_REACTIONS`] different emoji.
    TooManyReactions,
}

/// Most different emoji one message carries.
pub const MAX_REACTIONS: usize = 40;

/// Where a page of search results ends: the next page starts after it.
/// Results are ordered newest first by the order they were stored in,
/// across rooms; a page ends at a message, and the next starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchAfter {
    pub room: String,
    pub id: i64,
}

/// What an account has read of a room, and how much of it they want to
/// be told of (`None`: the room kind's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    pub room: String,
    pub last_read: i64,
    pub notify: Option<crate::protocol::NotifyLevel>,
}

/// A browser's Web Push subscription, kept for an account
/// (PROTOCOL.md, "Reading, notifications").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// The push service's URL for this browser; its identity.
    pub endpoint: String,
    pub account: String,
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    pub auth: String,
    /// Whether a private room's text may show on this device's lock screen.
    pub previews: bool,
    /// Which browser it is, for the account page.
    pub label: String,
    pub created_ms: i64,
}

/// Messages of a room after a read position, by others, not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unread {
    pub messages: u64,
    /// Those of them that mention the reader.
    pub mentions: u64,
}

/// A page of search results, newest first.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub messages: Vec<Message>,
    /// Set when more results may follow.
    pub next: Option<SearchAfter>,
}

/// A page of messages around one, for jumping to it.
#[derive(Debug, Clone, Default)]
pub struct Around {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Whether messages older than the first exist.
    pub more_before: bool,
    /// Whether messages newer than the last exist.
    pub more_after: bool,
}

/// The stored message, and whether an earlier `send` with the same
/// (author, nonce) had already stored it.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    pub duplicate: bool,
}

/// A page of messages, oldest first, and whether older ones exist.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub messages: Vec<Message>,
    pub more: bool,
}

/// A registered account.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// Sessions signed in before this time (ms) no longer count.
    pub sessions_from_ms: i64,
    /// Admin or member.
    pub role: Role,
    /// A banned account keeps its name but cannot sign in, and its
    /// sessions and tokens no longer count.
    pub banned: bool,
}

/// An API token as its owner sees it in the list (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub label: String,
    pub created_ms: i64,
}

/// A browser's reservation of a guest name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestName {
    /// SHA-256 of the browser's guest cookie.
    pub holder: String,
    pub last_seen_ms: i64,
    /// Whether the name (as last used, or as asked) is a member of a
    /// direct-message room: such a name never passes to another holder.
    pub has_dms: bool,
}

/// What the directory keeps of a room besides its messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomMeta {
    /// The account that made it (a private room's owner); none for the
    /// seeded rooms and those guests made.
    pub owner: Option<String>,
    pub topic: String,
}

/// What a claim on a guest name came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestClaim {
    Claimed,
    /// An account has the name, or another browser keeps it.
    Taken,
    /// The browser already holds as many names as it may.
    TooMany,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The detail is for the log: people are told only that the store is
    /// unavailable, never the database's own words.
    #[error("the message store is unavailable right now; try again shortly")]
    Unavailable(String),
    #[error("the message store is shutting down")]
    Closed,
    #[error("unsupported DATABASE_URL {0:?}: expected sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The whole story, for operators: the database's own words included.
    pub fn detail(&self) -> String {
        match self {
            StoreError::Unavailable(d) => format!("the store is unavailable: {d}"),
            other => other.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // Logged here, once: the error's Display says nothing of it.
        tracing::warn!(error = %e, "store request failed");
        StoreError::Unavailable(e.to_string())
    }
}

/// The answer to a submitted append, once its batch is committed.
pub type PendingAppend = oneshot::Receiver<Result<Appended, StoreError>>;

/// Durable history. Implementations batch concurrent appends themselves.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Queues a message for storing and returns at once with a receiver for
    /// the outcome: the stored message (or the one stored earlier under the
    /// same author and nonce), after commit. Messages submitted one after
    /// another are stored in that order.
    async fn submit(&self, msg: NewMessage) -> Result<PendingAppend, StoreError>;

    /// The newest `limit` messages with an id below `before` (all, when
    /// `None`), oldest first.
    async fn page_before(
        &self,
        room: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// Messages with `after < id <= upto`, oldest first, at most `limit`.
    async fn range(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// The highest id stored in a room (0 for none).
    async fn last_id(&self, room: &str) -> Result<i64, StoreError>;

    // --- Messages that change, and search (version 1.1) ---

    /// Applies a change to message `id` of `room`; see [`Changed`]. A
    /// change that is stored takes the room's next revision, in the order
    /// the changes were stored, shared by all changes of the room's messages.
    async fn change(&self, room: &str, id: i64, change: Change) -> Result<Changed, StoreError>;

    /// The room's messages with `id <= upto` whose last change has a
    /// revision after `after`, as they now stand, in revision order (each
    /// with that revision), at most `limit`.
    async fn changes(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>, StoreError>;

    /// The room's newest revision (0 when no message ever changed).
    async fn last_rev(&self, room: &str) -> Result<i64, StoreError>;

    /// One message as it now stands.
    async fn message(&self, room: &str, id: i64) -> Result<Option<Message>, StoreError>;

    /// Up to `limit` messages around `id` (about half before, the message,
    /// the rest after), oldest first.
    async fn around(&self, room: &str, id: i64, limit: usize) -> Result<Around, StoreError>;

    /// Messages of `rooms` (and no other) whose words include every word of
    /// `query`, without case or accents (`cafe` finds `café`), newest first,
    /// after `after`, at most `limit`. Deleted messages are never found.
    /// `query` is what a person typed: search syntax in it (quotes, `*`,
    /// `NEAR`, `-`) is text, never an operator.
    async fn search(
        &self,
        rooms: &[String],
        query: &str,
        after: Option<&SearchAfter>,
        limit: usize,
    ) -> Result<Found, StoreError>;

    /// Records a room (idempotent).
    async fn create_room(&self, room: &str) -> Result<(), StoreError>;

    /// Records a new room and who made it (idempotent: an existing room
    /// keeps its maker).
    async fn create_room_by(
        &self,
        room: &str,
        creator: &str,
        guest: bool,
    ) -> Result<(), StoreError>;

    /// How many public rooms exist.
    async fn public_room_count(&self) -> Result<i64, StoreError>;

    /// Deletes the rooms made by guests before `before_ms` that never had
    /// a message, except those in `keep`; returns how many went.
    async fn expire_empty_rooms(&self, before_ms: i64, keep: &[String]) -> Result<u64, StoreError>;

    /// Whether a room exists.
    async fn room_exists(&self, room: &str) -> Result<bool, StoreError>;

    /// Public rooms: those with messages first, most recently active
    /// first, so that a flood of empty rooms never hides the ones in use.
    async fn public_rooms(&self, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Direct-message rooms one user belongs to.
    async fn dm_rooms(&self, user: &str, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Registers an account; `false` when the name (by its
    /// [`name_key`](crate::names::name_key)) is taken.
    async fn create_account(&self, name: &str, password_hash: &str) -> Result<bool, StoreError>;

    /// Registers an account unless another browser keeps the guest name
    /// (`key` is its [`name_key`](crate::names::name_key)): used within
    /// `keep_ms`, or with direct messages. When `holder` (the registering
    /// browser's cookie hash) holds it, its reservation ends: the guest
    /// becomes the account. `false` when the name is taken. Atomic with
    /// [`Store::claim_guest_name`].
    async fn create_account_for_guest(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Sets an account's password and ends its sessions signed in before
    /// `sessions_from_ms`; `false` when there is no such account.
    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        sessions_from_ms: i64,
    ) -> Result<bool, StoreError>;

    /// The account of a name: the one spelled so, else the one with the
    /// same [`name_key`](crate::names::name_key).
    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError>;

    /// Records a new API token (by its hash) for an account.
    async fn create_token(
        &self,
        owner: &str,
        label: &str,
        token_hash: &str,
    ) -> Result<TokenInfo, StoreError>;

    /// An account's tokens that are not revoked, newest first.
    async fn tokens(&self, owner: &str) -> Result<Vec<TokenInfo>, StoreError>;

    /// Revokes one of an account's tokens and returns the token's hash;
    /// `None` if it has no such live token.
    async fn revoke_token(&self, owner: &str, id: i64) -> Result<Option<String>, StoreError>;

    /// The account a live token belongs to.
    async fn token_owner(&self, token_hash: &str) -> Result<Option<String>, StoreError>;

    /// The reservation of a guest name by its key, if any; `has_dms` looks
    /// for direct-message rooms of the name as last used and of `name`.
    async fn guest_name(&self, key: &str, name: &str) -> Result<Option<GuestName>, StoreError>;

    /// Gives a guest name (`key` is its [`name_key`](crate::names::name_key))
    /// to a holder (a browser's cookie hash), unless an account has it or
    /// another holder keeps it (used within `keep_ms`, or with direct
    /// messages), and unless the holder already has `max_names` other names
    /// used within `keep_ms`. A name the holder has is always renewed.
    async fn claim_guest_name(
        &self,
        name: &str,
        key: &str,
        holder: &str,
        keep_ms: i64,
        max_names: u32,
    ) -> Result<GuestClaim, StoreError>;

    /// A setting of the server kept in the store (`settings` table): its
    /// value, or `fresh`, stored as its value when it has none. Nodes
    /// starting together all read the value of the first to store one.
    async fn setting_or(&self, name: &str, fresh: &str) -> Result<String, StoreError>;

    // --- Private rooms, members and topics ---

    /// Makes a private room with its owner and first members, at once;
    /// `false` (and nothing made) when the name is taken.
    async fn create_private_room(
        &self,
        room: &str,
        owner: &str,
        topic: &str,
        members: &[String],
    ) -> Result<bool, StoreError>;

    /// A room's owner and topic; `None` when there is no such room.
    async fn room_meta(&self, room: &str) -> Result<Option<RoomMeta>, StoreError>;

    /// Sets a room's topic; `false` when there is no such room.
    async fn set_topic(&self, room: &str, topic: &str) -> Result<bool, StoreError>;

    /// The topics of those of `rooms` that have one.
    async fn room_topics(&self, rooms: &[String]) -> Result<Vec<(String, String)>, StoreError>;

    /// Whether `name` (spelled so) is a member of the private room.
    async fn is_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError>;

    /// Adds a member to an existing private room; `false` when they were
    /// one already, or the room does not exist.
    async fn add_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError>;

    /// Takes a member out of a private room; `false` when they were not one.
    async fn remove_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError>;

    /// A private room's members, by name.
    async fn room_members(&self, room: &str) -> Result<Vec<String>, StoreError>;

    /// The private rooms `name` is a member of, most recently active first.
    async fn private_rooms(&self, name: &str, limit: usize) -> Result<Vec<String>, StoreError>;

    // ---- Reading and notification levels (issue 16) ----

    /// An account's read positions and levels, for the rooms it has any.
    async fn read_states(&self, account: &str) -> Result<Vec<ReadState>, StoreError>;

    /// Moves an account's read position in a room up to `id` (never back)
    /// and returns the position it now has, and whether this call moved it.
    async fn mark_read(
        &self,
        account: &str,
        room: &str,
        id: i64,
    ) -> Result<(i64, bool), StoreError>;

    /// Keeps a push subscription (replacing one of the same endpoint,
    /// whoever had it), and at most `keep` per account: the oldest go.
    async fn save_push(&self, sub: &PushSubscription, keep: usize) -> Result<(), StoreError>;

    /// Removes an account's subscription; whether it had it.
    async fn delete_push(&self, account: &str, endpoint: &str) -> Result<bool, StoreError>;

    /// Forgets an endpoint the push service says is gone.
    async fn forget_push(&self, endpoint: &str) -> Result<(), StoreError>;

    /// An account's subscriptions, newest first; none while it is banned.
    async fn pushes(&self, account: &str) -> Result<Vec<PushSubscription>, StoreError>;

    /// The accounts with at least one subscription (banned ones left out).
    async fn push_accounts(&self) -> Result<Vec<String>, StoreError>;

    /// The levels accounts chose in a room (those who kept the default
    /// are not listed).
    async fn chosen_levels(
        &self,
        room: &str,
    ) -> Result<Vec<(String, crate::protocol::NotifyLevel)>, StoreError>;

    /// Sets an account's notification level in a room.
    async fn set_notify(
        &self,
        account: &str,
        room: &str,
        level: crate::protocol::NotifyLevel,
    ) -> Result<(), StoreError>;

    /// The room's messages after `after` by others than `account`, not
    /// deleted, and how many of them mention it; each count at most `cap`
    /// (a long absence costs one page, not the whole backlog).
    async fn unread(
        &self,
        account: &str,
        room: &str,
        after: i64,
        cap: u64,
    ) -> Result<Unread, StoreError>;

    // ---- Team accounts (issue 14): roles, bans, last seen, invites, guest blocks ----

    /// Registers an account through the gate of the server's registration
    /// mode, like [`Store::create_account_for_guest`]; on an empty server
    /// the first account passes whatever the gate and becomes admin (two
    /// racing first registrations: exactly one admin). An invite is used
    /// only when the account is made.
    #[allow(clippy::too_many_arguments)]
    async fn register_account(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
        gate: Gate<'_>,
    ) -> Result<Registered, StoreError>;

    /// Whether any account exists (an empty server offers its first one).
    async fn accounts_exist(&self) -> Result<bool, StoreError>;

    /// Sets an account's role; never demotes the last admin who is not banned.
    async fn set_role(&self, name: &str, role: Role) -> Result<AccountChange, StoreError>;

    /// Bans (keeping the name) or lifts a ban; never bans the last admin
    /// who is not banned.
    async fn set_banned(&self, name: &str, banned: bool) -> Result<AccountChange, StoreError>;

    /// Every account, by name, for the admins' list.
    async fn account_list(&self) -> Result<Vec<AccountInfo>, StoreError>;

    /// Records that an account was seen now (at connect and disconnect).
    async fn touch_seen(&self, name: &str) -> Result<(), StoreError>;

    /// The accounts banned at or after `since_ms` and still banned.
    async fn banned_since(&self, since_ms: i64) -> Result<Vec<String>, StoreError>;

    /// Records a new invite link.
    async fn create_invite(
        &self,
        code: &str,
        created_by: &str,
        uses: i64,
        expires_ms: i64,
    ) -> Result<Invite, StoreError>;

    /// An invite by its code, live or not.
    async fn invite(&self, code: &str) -> Result<Option<Invite>, StoreError>;

    /// The invites that can still be used, newest first.
    async fn live_invites(&self) -> Result<Vec<Invite>, StoreError>;

    /// Revokes an invite; `false` when there is no such live invite.
    async fn revoke_invite(&self, code: &str) -> Result<bool, StoreError>;

    /// Blocks a guest name (by its [`name_key`](crate::names::name_key))
    /// until `until_ms`.
    async fn block_guest(&self, key: &str, until_ms: i64) -> Result<(), StoreError>;

    /// Whether a guest name (by its key) is blocked now.
    async fn guest_blocked(&self, key: &str) -> Result<bool, StoreError>;

    // ---- end of team accounts ----

    /// Records an upload of `file` by `account` (the file once per id, the
    /// upload once per account and file; again, the last name wins), with
    /// its thumbnail's type for an image.
    async fn save_upload(
        &self,
        file: &crate::protocol::FileObject,
        account: &str,
        thumb_mime: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Bytes of the files an account holds: its unsent uploads and the
    /// files of its messages, each file once.
    async fn upload_total(&self, account: &str) -> Result<u64, StoreError>;

    /// The files `ids` as a message of `account` in `room` would carry them,
    /// in that order: each its unsent upload, or a file already in that
    /// room. `None` when one is neither.
    async fn attachable(
        &self,
        account: &str,
        room: &str,
        ids: &[String],
    ) -> Result<Option<Vec<crate::protocol::FileObject>>, StoreError>;

    /// A stored file's record.
    async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError>;

    /// Who may read a file, asked for `account` (none: a visitor).
    async fn file_readers(
        &self,
        id: &str,
        account: Option<&str>,
    ) -> Result<FileReaders, StoreError>;

    /// Forgets uploads made before `unsent_before_ms` and never sent, then
    /// removes the records of files nothing refers to that no upload has
    /// touched since `untouched_before_ms`; returns their ids, whose bytes
    /// the caller removes.
    async fn sweep_files(
        &self,
        unsent_before_ms: i64,
        untouched_before_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Finishes pending writes before the process exits.
    async fn close(&self);
}

// ---- Team accounts (issue 14) ----

/// An account's role on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// The stored form read back (anything but `admin` is a member).
    pub fn from_stored(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

/// Who may register once the server has accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate<'a> {
    /// Anyone.
    Open,
    /// Only with a live invite code.
    Invite(Option<&'a str>),
    /// No one (the command line makes accounts).
    Closed,
}

/// Why a live-looking invite code cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteProblem {
    Unknown,
    UsedUp,
    Expired,
    Revoked,
}

/// What a registration came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Made, with this role.
    Created(Role),
    /// The name is an account's, or a guest's another browser keeps.
    Taken,
    /// Registration is closed.
    Closed,
    /// An invite is needed and none was given.
    InviteNeeded,
    /// The invite given cannot be used.
    BadInvite(InviteProblem),
}

/// What a change to an account came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    Done,
    NoSuchAccount,
    /// It would leave the server without an admin.
    LastAdmin,
}

/// An account as the admins' list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: String,
    pub role: Role,
    pub last_seen_ms: Option<i64>,
    pub banned: bool,
}

/// An invite link's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub code: String,
    pub created_by: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub uses_left: i64,
    pub used: i64,
    pub revoked: bool,
}

impl Invite {
    /// Why it cannot be used at `now_ms`, if it cannot.
    pub fn problem(&self, now_ms: i64) -> Option<InviteProblem> {
        if self.revoked {
            Some(InviteProblem::Revoked)
        } else if self.uses_left <= 0 {
            Some(InviteProblem::UsedUp)
        } else if self.expires_ms.is_some_and(|e| e <= now_ms) {
            Some(InviteProblem::Expired)
        } else {
            None
        }
    }
}

/// Where the session store keeps sessions: the same database as history.
pub enum SessionPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Opens the store named by `DATABASE_URL`, and the pool for sessions.
pub async fn open(url: &str) -> Result<(Arc<dyn Store>, SessionPool), StoreError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let store = SqliteStore::open(path).await?;
        let sessions = SessionPool::Sqlite(store.admin_pool());
        return Ok((Arc::new(store), sessions));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::open(url).await?;
        let sessions = SessionPool::Postgres(store.pool());
        return Ok((Arc::new(store), sessions));
    }
    Err(StoreError::BadUrl(url.to_string()))
}

/// Milliseconds since the Unix epoch, the stored form of a timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The wire form of a stored timestamp: RFC 3339, UTC, milliseconds.
pub fn format_ts(ms: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}
