//! The wire types of `PROTOCOL.md`, shared by the server and the browser.
//!
//! Nothing else in the project defines JSON shapes: the server encodes
//! [`ServerFrame`]s and decodes [`ClientFrame`]s, the hydrated page does the
//! reverse, and the HTTP API reuses [`Message`] and [`ApiError`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most messages a `joined` or `history` answer carries.
pub const HISTORY_PAGE: usize = 50;
/// Longest message body, in characters, after trimming.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest nonce a client may choose, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest user name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest public room name, in characters.
pub const MAX_ROOM_CHARS: usize = 64;

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Opens the session: as a guest (`name`), with an API token, or with the
    /// session cookie of the upgrade request (neither).
    Hello {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Where the client stands in each room it saw.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        resume: BTreeMap<String, Resume>,
    },
    Join {
        room: String,
    },
    Leave {
        room: String,
    },
    Send {
        room: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        /// The message of the same room this one answers (version 1.1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i64>,
        /// Uploaded files to carry (version 1.1).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    History {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Typing {
        room: String,
    },
    /// Makes a private room (`~name`) with its first members (version 1.1);
    /// answered by `joined`.
    Create {
        room: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        members: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// Adds an account to a private room (version 1.1).
    Invite {
        room: String,
        user: String,
    },
    /// Takes someone out of a private room: a member themself, the owner or
    /// an admin anyone (version 1.1).
    Remove {
        room: String,
        user: String,
    },
    /// Sets a room's topic: its owner or an admin (docs/PROTOCOL-NOTES.md).
    Topic {
        room: String,
        topic: String,
    },
    /// Replaces the body of one of the sender's messages (version 1.1).
    Edit {
        room: String,
        id: i64,
        body: String,
    },
    /// Deletes a message: its author, or an admin (version 1.1).
    Delete {
        room: String,
        id: i64,
    },
    /// Adds (`on: true`) or takes back one's reaction to a message (version 1.1).
    React {
        room: String,
        id: i64,
        emoji: String,
        on: bool,
    },
    /// Everything of a room up to `id` was seen (version 1.1): an account's
    /// read position, kept by the server, never moving back.
    Read {
        room: String,
        id: i64,
    },
    /// How much of a room the user wants to be told of (version 1.1).
    Notify {
        room: String,
        level: NotifyLevel,
    },
}

/// Where a resuming client stands in a room: version 1's last message id,
/// or version 1.1's id and the last revision of the room it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Resume {
    Id(i64),
    At {
        id: i64,
        #[serde(default)]
        rev: i64,
    },
}

impl Resume {
    /// The last message id seen.
    pub fn id(self) -> i64 {
        match self {
            Resume::Id(id) | Resume::At { id, .. } => id,
        }
    }

    /// The last revision seen, when the client keeps them.
    pub fn rev(self) -> Option<i64> {
        match self {
            Resume::Id(_) => None,
            Resume::At { rev, .. } => Some(rev),
        }
    }
}

/// A stored chat message, as `message` frames, history and the HTTP API
/// carry it: always as it now stands (edited, reacted to, deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub room: String,
    /// Unique within the room, strictly increasing in acceptance order.
    pub id: i64,
    pub author: String,
    /// Empty once deleted.
    pub body: String,
    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-21T10:15:30.123Z`.
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The message of the same room this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// The names the server found as `@name` in the body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// Who reacted with what, each emoji's names in the order they came.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reactions: BTreeMap<String, Vec<String>>,
    /// When the body was last edited (RFC 3339, like `ts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<String>,
    /// Deleted: the body is empty, and nothing is kept but id, author and ts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The files it carries, in the order the sender gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<FileObject>,
}

/// An uploaded file, as `POST /api/files` answers and messages carry it
/// (version 1.1, "Files"). Served at `/files/{id}/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileObject {
    /// The SHA-256 of the stored bytes, in lower-case hex.
    pub id: String,
    /// The name the uploader gave it.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// The media type, found from the content, never the client's word.
    #[serde(rename = "type")]
    pub mime: String,
    /// Pixels, for images (PNG, JPEG, GIF, WebP), which have a thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl FileObject {
    /// Whether it is an image shown inline, with a thumbnail.
    pub fn is_image(&self) -> bool {
        self.width.is_some() && self.height.is_some()
    }

    /// Where it is served, its name percent-encoded.
    pub fn url(&self) -> String {
        format!("/files/{}/{}", self.id, encode_path_segment(&self.name))
    }

    /// Where its thumbnail is served (images only).
    pub fn thumb_url(&self) -> String {
        format!("/files/{}/thumb", self.id)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a
/// name becomes one path segment.
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `id` is a file id: 64 lower-case hex digits (a SHA-256), so
/// that nothing else ever reaches a storage key.
pub fn valid_file_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where files are uploaded: `POST /api/files?name=NAME`.
pub const UPLOAD_PATH: &str = "/api/files";

/// Most files one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// Most characters of a file's name.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// Checks a file's name: 1 to 255 characters, no control characters, no
/// `/` or `\`, not `.` or `..`; returns it trimmed.
pub fn clean_file_name(name: &str) -> Result<&str, Invalid> {
    let t = name.trim();
    let n = t.chars().count();
    if n == 0
        || n > MAX_FILE_NAME_CHARS
        || t == "."
        || t == ".."
        || t.chars().any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(Invalid::FileName);
    }
    Ok(t)
}

/// Who a session speaks as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub guest: bool,
    /// Set for bots (operator tokens); omitted otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
    /// Set for admins (docs/PROTOCOL-NOTES.md); omitted otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

/// Whether a presence update says a user came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Joined,
    Left,
}

/// A frame sent by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        user: UserInfo,
        rooms: Vec<String>,
    },
    Joined {
        room: String,
        online: Vec<String>,
        history: Vec<Message>,
        more: bool,
        /// For a resume with `rev`: the messages at or before its `id` that
        /// changed after its `rev`, in revision order (version 1.1).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<Message>,
        /// The room's revision this answer stands at, to resume from
        /// (docs/PROTOCOL-NOTES.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rev: Option<i64>,
    },
    /// Either one user's change (`user` + `state`) or, in busy rooms, a
    /// coalesced batch (`joined` + `left`).
    Presence {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<PresenceState>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        joined: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        left: Option<Vec<String>>,
        online: usize,
    },
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        room: String,
        id: i64,
        ts: String,
    },
    Message(Message),
    History {
        room: String,
        messages: Vec<Message>,
        more: bool,
    },
    Typing {
        room: String,
        user: String,
    },
    /// Someone was added to, or removed from, a private room (version 1.1).
    Member {
        room: String,
        user: String,
        state: MemberState,
        by: String,
    },
    /// A room's topic changed (docs/PROTOCOL-NOTES.md): sent to every
    /// connection in the room.
    Topic {
        room: String,
        topic: String,
        by: String,
    },
    /// A message was edited, deleted or reacted to: the whole message as it
    /// now stands, at the room's new revision (version 1.1).
    Changed {
        room: String,
        rev: i64,
        message: Message,
    },
    /// The user's read position in a room moved (or, to the session that
    /// asked to move it back, where it stands): sent to every session of
    /// the account, with the room's counts from there
    /// (docs/PROTOCOL-NOTES.md).
    Read {
        room: String,
        id: i64,
        unread: u64,
        mentions: u64,
    },
    /// The rooms a user sees, after `welcome` and whenever they change
    /// (version 1.1).
    Rooms {
        rooms: Vec<RoomEntry>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        /// The room the error is about, when it is about one (version 1.1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
}

impl ServerFrame {
    /// An `error` frame about no room in particular.
    pub fn error(code: ErrorCode, message: impl Into<String>, nonce: Option<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            nonce,
            room: None,
        }
    }

    /// An `error` frame about `room`.
    pub fn room_error(
        code: ErrorCode,
        message: impl Into<String>,
        nonce: Option<String>,
        room: &str,
    ) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            nonce,
            room: Some(room.to_string()),
        }
    }
}

/// Whether a `member` frame says someone came into a room or left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Added,
    Removed,
}

/// A room's kind as the `rooms` frame names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Public,
    Private,
    Direct,
}

/// How much of a room a user wants to be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    All,
    #[default]
    Mentions,
    None,
}

/// One room of a `rooms` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEntry {
    pub room: String,
    pub kind: Kind,
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub unread: u64,
    #[serde(default)]
    pub mentions: u64,
    #[serde(default)]
    pub last_read: i64,
    #[serde(default)]
    pub notify: NotifyLevel,
    /// A private room's owner, who may remove anyone and set its topic
    /// (docs/PROTOCOL-NOTES.md); omitted for other rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The error codes of `PROTOCOL.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    TooLarge,
    RateLimited,
    NotJoined,
    Forbidden,
    Unauthorized,
    BadName,
    Unavailable,
    /// No such room or resource; a private room one is not in (1.1).
    NotFound,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::BadName | ErrorCode::NotJoined => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
        }
    }
}

/// Why the server closed a connection whose credentials stopped being
/// valid while it was open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// The browser session it was opened with signed out.
    SignedOut,
    /// The API token it said hello with was revoked.
    TokenRevoked,
    /// The account's password changed: its other sessions end.
    PasswordChanged,
    /// The account was banned.
    Banned,
    /// An admin ended a guest's connections and blocked the name.
    Blocked,
}

impl Ended {
    /// The WebSocket close code: 4003 for a ban, else 4001 (credentials refused).
    pub fn close_code(self) -> u16 {
        match self {
            Ended::Banned | Ended::Blocked => 4003,
            _ => 4001,
        }
    }

    /// The ending a close reason names, as [`Ended::reason`] writes it.
    pub fn from_reason(reason: &str) -> Option<Ended> {
        [
            Ended::SignedOut,
            Ended::TokenRevoked,
            Ended::PasswordChanged,
            Ended::Banned,
            Ended::Blocked,
        ]
        .into_iter()
        .find(|e| e.reason() == reason)
    }

    /// The close reason, for people.
    pub fn reason(self) -> &'static str {
        match self {
            Ended::SignedOut => "signed out",
            Ended::TokenRevoked => "token revoked",
            Ended::PasswordChanged => "password changed: sign in again",
            Ended::Banned => "banned",
            Ended::Blocked => "blocked by an admin",
        }
    }
}

/// The HTTP API's error body: `{"error":{"code":"...","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ApiErrorBody,
}

/// The inside of [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// One row of `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub name: String,
    pub online: usize,
    /// Version 1.1: public, private or direct (absent in version 1 answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
}

/// The answer of `GET /api/rooms/{room}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub room: String,
    pub messages: Vec<Message>,
    /// Whether older messages exist.
    pub more: bool,
    /// For `?around=ID`: whether newer messages exist (docs/PROTOCOL-NOTES.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_after: Option<bool>,
}

/// The answer of `GET /api/search`: newest first, and the cursor of the
/// next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most search results one page carries.
pub const SEARCH_PAGE: usize = 20;
/// Most names one message mentions: the rest of its `@` are text.
pub const MAX_MENTIONS: usize = 20;

/// The names a body mentions as `@name`, in order, each once (compared
/// without case), at most [`MAX_MENTIONS`]. An `@` within a word (an
/// address) mentions no one, and a full stop that ends a sentence is not
/// part of the name.
pub fn find_mentions(body: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for span in mention_spans(body) {
        let name = &body[span.start + 1..span.end];
        if !found
            .iter()
            .any(|f| f.to_lowercase() == name.to_lowercase())
        {
            found.push(name.to_string());
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    found
}

/// Where a body says `@name`: the byte ranges of each `@` and valid name
/// after it, in order, repeats included. [`find_mentions`] reads these, and
/// the message view highlights them, so both agree on what a mention is.
pub fn mention_spans(body: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut prev: Option<char> = None;
    body.char_indices().filter_map(move |(i, c)| {
        let starts = c == '@' && !prev.is_some_and(|p| p.is_alphanumeric() || "_-.@".contains(p));
        prev = Some(c);
        if !starts {
            return None;
        }
        let rest = &body[i + 1..];
        let end = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map_or(rest.len(), |(j, _)| j);
        let name = rest[..end].trim_end_matches(['.', '-']);
        validate_name(name).is_ok().then(|| i..i + 1 + name.len())
    })
}

/// The room a visitor sees first, at `/`.
pub const DEFAULT_ROOM: &str = "general";

/// Why a room cannot be shown from the server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SnapProblem {
    /// Not a valid room name.
    BadRoom,
    /// The store could not be read.
    Unavailable,
    /// A private room the visitor is not in, or one that does not exist:
    /// the two look the same.
    NotFound,
    /// A direct room the visitor is not a member of.
    Forbidden,
    /// Guests are off and the visitor is not signed in.
    SignIn,
}

/// A room as the chat page first shows it, before any WebSocket: read by
/// the server before the render, or asked by the browser when it navigates.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub room: String,
    pub messages: Vec<Message>,
    pub more: bool,
    pub online: Vec<String>,
    /// Set when the room cannot be shown (bad name, store down).
    pub problem: Option<SnapProblem>,
}

/// Why a name, room or body was refused; the text is meant for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("a name is 1 to 32 characters of letters, digits, '_', '-' and '.'")]
    Name,
    #[error(
        "a room name is 1 to 64 characters of lower-case letters, digits, '-' and '_', \
         with '~' before it for a private room (or dm: and 2 to 8 names, sorted, separated by ':')"
    )]
    Room,
    #[error("a topic is at most 200 characters, on one line")]
    Topic,
    #[error("a message cannot be empty")]
    EmptyBody,
    #[error("a message is at most 4000 characters")]
    LongBody,
    #[error("a nonce is 1 to 64 bytes")]
    Nonce,
    #[error("a reaction is one emoji")]
    Emoji,
    #[error("a search is 1 to 200 characters")]
    Query,
    /// U+0000: PostgreSQL text cannot hold it, so no backend takes it.
    #[error("text cannot contain the NUL character (U+0000)")]
    Nul,
    #[error(
        "a file name is 1 to 255 characters, without '/', '\\' or control characters, \
         and not '.' or '..'"
    )]
    FileName,
    #[error("a message carries at most 10 files")]
    TooManyFiles,
}

/// Checks a user name: 1 to 32 letters, digits, `_`, `-` and `.`.
pub fn validate_name(name: &str) -> Result<(), Invalid> {
    let n = name.chars().count();
    let ok = (1..=MAX_NAME_CHARS).contains(&n)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok { Ok(()) } else { Err(Invalid::Name) }
}

/// Most members a direct room's name lists.
pub const MAX_DM_MEMBERS: usize = 8;
/// Longest room topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 200;

/// What kind of room a valid room name denotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomKind<'a> {
    Public,
    /// `~name`: only its members know it exists.
    Private,
    /// A direct room and its 2 to 8 members (sorted, distinct).
    Direct(Vec<&'a str>),
}

impl RoomKind<'_> {
    /// The kind's name on the wire.
    pub fn kind(&self) -> Kind {
        match self {
            RoomKind::Public => Kind::Public,
            RoomKind::Private => Kind::Private,
            RoomKind::Direct(_) => Kind::Direct,
        }
    }
}

fn public_style(room: &str) -> bool {
    (1..=MAX_ROOM_CHARS).contains(&room.len())
        && room
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// Checks a room name and says what kind of room it is.
pub fn parse_room(room: &str) -> Result<RoomKind<'_>, Invalid> {
    if let Some(rest) = room.strip_prefix("dm:") {
        let names: Vec<&str> = rest.split(':').collect();
        if !(2..=MAX_DM_MEMBERS).contains(&names.len()) {
            return Err(Invalid::Room);
        }
        for n in &names {
            validate_name(n).map_err(|_| Invalid::Room)?;
        }
        // Sorted and distinct, so each group has exactly one room.
        if names.windows(2).all(|w| w[0] < w[1]) {
            return Ok(RoomKind::Direct(names));
        }
        return Err(Invalid::Room);
    }
    if let Some(rest) = room.strip_prefix('~') {
        return if public_style(rest) {
            Ok(RoomKind::Private)
        } else {
            Err(Invalid::Room)
        };
    }
    if public_style(room) {
        Ok(RoomKind::Public)
    } else {
        Err(Invalid::Room)
    }
}

/// The direct-message room of two users (`dm:<a>:<b>`, names sorted).
pub fn dm_room(a: &str, b: &str) -> String {
    group_room([a, b]).unwrap_or_default()
}

/// The direct room of a group (2 to 8 distinct names, in any order), or
/// `None` when the names cannot make one.
pub fn group_room<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    let room = format!("dm:{}", names.join(":"));
    parse_room(&room).is_ok().then_some(room)
}

/// Checks a topic: at most 200 characters, no control characters; returns
/// it trimmed.
pub fn clean_topic(topic: &str) -> Result<&str, Invalid> {
    let t = topic.trim();
    if t.chars().count() > MAX_TOPIC_CHARS || t.chars().any(char::is_control) {
        return Err(Invalid::Topic);
    }
    Ok(t)
}

/// Checks a body that comes with files: it may then be empty (a file
/// needs no caption).
pub fn clean_caption(body: &str, files: usize) -> Result<&str, Invalid> {
    if files > MAX_ATTACHMENTS {
        return Err(Invalid::TooManyFiles);
    }
    match clean_body(body) {
        Err(Invalid::EmptyBody) if files > 0 => Ok(""),
        other => other,
    }
}

/// Trims a body and checks its length; returns the text to store.
pub fn clean_body(body: &str) -> Result<&str, Invalid> {
    if body.contains('\0') {
        return Err(Invalid::Nul);
    }
    let t = body.trim();
    match t.chars().count() {
        0 => Err(Invalid::EmptyBody),
        n if n > MAX_BODY_CHARS => Err(Invalid::LongBody),
        _ => Ok(t),
    }
}

/// Checks a client nonce.
pub fn validate_nonce(nonce: Option<&str>) -> Result<(), Invalid> {
    match nonce {
        Some(n) if n.is_empty() || n.len() > MAX_NONCE_LEN => Err(Invalid::Nonce),
        Some(n) if n.contains('\0') => Err(Invalid::Nul),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_protocol_examples() {
        let cases = [
            r#"{"type":"hello","name":"alice"}"#,
            r#"{"type":"hello","token":"t"}"#,
            r#"{"type":"hello"}"#,
            r#"{"type":"hello","name":"alice","resume":{"general":1041}}"#,
            r#"{"type":"join","room":"general"}"#,
            r#"{"type":"send","room":"general","body":"hello","nonce":"c-7f3a"}"#,
            r#"{"type":"history","room":"general","before":1000,"limit":50}"#,
            r#"{"type":"typing","room":"general"}"#,
            r#"{"type":"create","room":"~design","members":["bob","carol"],"topic":"Mock-ups"}"#,
            r#"{"type":"invite","room":"~design","user":"dan"}"#,
            r#"{"type":"remove","room":"~design","user":"dan"}"#,
        ];
        for c in cases {
            let f: ClientFrame = serde_json::from_str(c).expect(c);
            let back = serde_json::to_string(&f).unwrap();
            assert_eq!(back, c);
        }
        let ack = ServerFrame::Ack {
            nonce: Some("c-7f3a".into()),
            room: "general".into(),
            id: 1042,
            ts: "2026-11-21T10:15:30.123Z".into(),
        };
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"type":"ack","nonce":"c-7f3a","room":"general","id":1042,"ts":"2026-11-21T10:15:30.123Z"}"#
        );
        let msg = ServerFrame::Message(Message {
            room: "general".into(),
            id: 1042,
            author: "alice".into(),
            body: "hello".into(),
            ts: "2026-11-21T10:15:30.123Z".into(),
            nonce: Some("c-7f3a".into()),
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"type":"message","room":"general","id":1042,"author":"alice","body":"hello","ts":"2026-11-21T10:15:30.123Z","nonce":"c-7f3a"}"#
        );
        let p = ServerFrame::Presence {
            room: "general".into(),
            user: Some("alice".into()),
            state: Some(PresenceState::Joined),
            joined: None,
            left: None,
            online: 12,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"type":"presence","room":"general","user":"alice","state":"joined","online":12}"#
        );
    }

    #[test]
    fn version_1_1_server_frames_match_the_protocol() {
        let member =
            r#"{"type":"member","room":"~design","user":"dan","state":"added","by":"alice"}"#;
        let f: ServerFrame = serde_json::from_str(member).unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), member);
        let rooms = r#"{"type":"rooms","rooms":[{"room":"general","kind":"public","topic":"","unread":3,"mentions":1,"last_read":1040,"notify":"mentions"}]}"#;
        let f: ServerFrame = serde_json::from_str(rooms).unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), rooms);
    }

    #[test]
    fn messages_that_change_match_the_protocol() {
        for c in [
            r#"{"type":"edit","room":"general","id":1042,"body":"hello, world"}"#,
            r#"{"type":"delete","room":"general","id":1042}"#,
            r#"{"type":"react","room":"general","id":1042,"emoji":"👍","on":true}"#,
            r#"{"type":"send","room":"general","body":"yes","nonce":"n","reply_to":1041}"#,
            r#"{"type":"hello","resume":{"general":{"id":1041,"rev":77},"random":3}}"#,
        ] {
            let f: ClientFrame = serde_json::from_str(c).expect(c);
            assert_eq!(serde_json::to_string(&f).unwrap(), c);
        }
        let ClientFrame::Hello { resume, .. } = serde_json::from_str(
            r#"{"type":"hello","resume":{"general":{"id":1041,"rev":77},"random":3}}"#,
        )
        .unwrap() else {
            panic!("not a hello")
        };
        assert_eq!(resume["general"].rev(), Some(77));
        assert_eq!(resume["random"], Resume::Id(3));
        assert!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"hello","resume":{"g":"x"}}"#).is_err()
        );
        let changed = r#"{"type":"changed","room":"general","rev":77,"message":{"room":"general","id":1042,"author":"alice","body":"hi @bob","ts":"2026-11-21T10:15:30.123Z","reply_to":1041,"mentions":["bob"],"reactions":{"👍":["alice","bob"]},"edited":"2026-11-21T10:16:00.000Z"}}"#;
        let f: ServerFrame = serde_json::from_str(changed).unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), changed);
        let gone = Message {
            room: "general".into(),
            id: 7,
            author: "alice".into(),
            ts: "2026-11-21T10:15:30.123Z".into(),
            deleted: true,
            ..Message::default()
        };
        assert_eq!(
            serde_json::to_string(&gone).unwrap(),
            r#"{"room":"general","id":7,"author":"alice","body":"","ts":"2026-11-21T10:15:30.123Z","deleted":true}"#
        );
    }

    #[test]
    fn mentions_are_names_after_an_at_sign() {
        assert_eq!(find_mentions("hi @bob and @Carol."), ["bob", "Carol"]);
        assert_eq!(find_mentions("@bob @BOB @bob"), ["bob"]);
        assert!(find_mentions("mail me at x@y.org, or @ alone").is_empty());
        assert_eq!(find_mentions("(@élodie) @a.b-"), ["élodie", "a.b"]);
        let many = "@x ".repeat(10_000);
        assert_eq!(find_mentions(&many), ["x"]);
        let distinct: String = (0..2000).map(|i| format!("@u{i} ")).collect();
        assert_eq!(find_mentions(&distinct).len(), MAX_MENTIONS);
    }

    #[test]
    fn error_frames_name_their_room_only_when_there_is_one() {
        let plain = ServerFrame::error(ErrorCode::Forbidden, "no", None);
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"type":"error","code":"forbidden","message":"no"}"#
        );
        let about = ServerFrame::room_error(
            ErrorCode::RateLimited,
            "slow",
            Some("c-1".into()),
            "general",
        );
        let text = r#"{"type":"error","code":"rate_limited","message":"slow","nonce":"c-1","room":"general"}"#;
        assert_eq!(serde_json::to_string(&about).unwrap(), text);
        assert_eq!(serde_json::from_str::<ServerFrame>(text).unwrap(), about);
        // A version 1 frame reads with no room.
        let old: ServerFrame =
            serde_json::from_str(r#"{"type":"error","code":"forbidden","message":"no"}"#).unwrap();
        assert_eq!(old, plain);
    }

    #[test]
    fn close_reasons_name_their_ending() {
        for e in [
            Ended::SignedOut,
            Ended::Banned,
            Ended::Blocked,
            Ended::PasswordChanged,
        ] {
            assert_eq!(Ended::from_reason(e.reason()), Some(e));
        }
        assert_eq!(Ended::from_reason("hello first"), None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"join","room":"general","x":1}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::Join {
                room: "general".into()
            }
        );
    }

    #[test]
    fn names_and_rooms() {
        for ok in ["alice", "a", "Bob_2", "x.y-z", "élodie"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "<script>", &"x".repeat(33), "a:b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_room("general"), Ok(RoomKind::Public));
        assert_eq!(
            parse_room("dm:alice:bob"),
            Ok(RoomKind::Direct(vec!["alice", "bob"]))
        );
        assert_eq!(parse_room("~design"), Ok(RoomKind::Private));
        assert_eq!(
            parse_room("dm:a:b:c:d:e:f:g:h").map(|k| k.kind()),
            Ok(Kind::Direct)
        );
        assert_eq!(
            group_room(["carol", "alice", "bob", "alice"]).as_deref(),
            Some("dm:alice:bob:carol")
        );
        assert_eq!(group_room(["alice"]), None);
        assert_eq!(clean_topic("  Mock-ups "), Ok("Mock-ups"));
        assert!(clean_topic("a\nb").is_err());
        for bad in [
            "",
            "General",
            "a b",
            "dm:bob:alice",
            "dm:a:a",
            "dm:a",
            "dm:a:b:c:d:e:f:g:h:i",
            "dm:a:c:b",
            "~",
            "~Design",
            "~~x",
            &"x".repeat(65),
        ] {
            assert!(parse_room(bad).is_err(), "{bad}");
        }
        assert_eq!(dm_room("bob", "alice"), "dm:alice:bob");
        assert_eq!(clean_body("  hi \n"), Ok("hi"));
        assert!(clean_body("   ").is_err());
        assert!(clean_body(&"é".repeat(4000)).is_ok());
        assert!(clean_body(&"é".repeat(4001)).is_err());
        assert_eq!(clean_body("a\0b"), Err(Invalid::Nul));
        assert_eq!(validate_nonce(Some("n\0")), Err(Invalid::Nul));
        assert_eq!(validate_nonce(Some("n-1")), Ok(()));
    }
}
