//! Rows as both databases return them, mapped by column name with
//! `FromRow`, and turned into the store's types.

use super::{Account, Role, TokenInfo, format_ts};
use crate::protocol::Message;
use std::collections::BTreeMap;

/// The columns every message query selects.
pub const MESSAGE_COLUMNS: &str = "room, id, author, body, ts_ms, nonce, \
     reply_to, mentions, reactions, edited_ms, deleted, rev, attachments";

/// [`MESSAGE_COLUMNS`] of a table aliased `m`, named as without the alias.
pub const MESSAGE_COLUMNS_OF_M: &str = "m.room AS room, m.id AS id, m.author AS author, \
     m.body AS body, m.ts_ms AS ts_ms, m.nonce AS nonce, m.reply_to AS reply_to, \
     m.mentions AS mentions, m.reactions AS reactions, m.edited_ms AS edited_ms, \
     m.deleted AS deleted, m.rev AS rev, m.attachments AS attachments";

/// A row of `messages`: the message as it now stands, its lists as JSON
/// text (NULL when empty) so that a read needs no second query.
#[derive(Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub room: String,
    pub id: i64,
    pub author: String,
    pub body: String,
    pub ts_ms: i64,
    pub nonce: Option<String>,
    pub reply_to: Option<i64>,
    /// A JSON array of names.
    pub mentions: Option<String>,
    /// A JSON object: emoji → names in the order they reacted.
    pub reactions: Option<String>,
    pub edited_ms: Option<i64>,
    pub deleted: bool,
    /// The room's revision of the message's last change (0: never changed).
    pub rev: i64,
    /// A JSON array of file objects.
    pub attachments: Option<String>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Message {
            room: r.room,
            id: r.id,
            author: r.author,
            body: r.body,
            ts: format_ts(r.ts_ms),
            nonce: r.nonce,
            reply_to: r.reply_to,
            // Written by this program only; unreadable JSON reads as none
            // rather than failing the whole page.
            mentions: r
                .mentions
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            reactions: r
                .reactions
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            edited: r.edited_ms.map(format_ts),
            deleted: r.deleted,
            attachments: r
                .attachments
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
        }
    }
}

/// The stored form of a message's mentions: NULL when none.
pub fn mentions_json(mentions: &[String]) -> Option<String> {
    (!mentions.is_empty()).then(|| serde_json::to_string(mentions).unwrap_or_default())
}

/// The stored form of a message's reactions: NULL when none.
pub fn reactions_json(reactions: &BTreeMap<String, Vec<String>>) -> Option<String> {
    (!reactions.is_empty()).then(|| serde_json::to_string(reactions).unwrap_or_default())
}

/// A row of `accounts`, as signing in needs it.
#[derive(Debug, sqlx::FromRow)]
pub struct AccountRow {
    pub name: String,
    pub password_hash: String,
    pub sessions_from_ms: i64,
    pub role: String,
    pub banned_ms: Option<i64>,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            name: r.name,
            password_hash: r.password_hash,
            sessions_from_ms: r.sessions_from_ms,
            role: Role::from_stored(&r.role),
            banned: r.banned_ms.is_some(),
        }
    }
}

/// A row of `api_tokens`, as its owner sees it.
#[derive(Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub label: String,
    pub created_ms: i64,
}

impl From<TokenRow> for TokenInfo {
    fn from(r: TokenRow) -> Self {
        TokenInfo {
            id: r.id,
            label: r.label,
            created_ms: r.created_ms,
        }
    }
}

/// A row of `guest_names`.
#[derive(Debug, sqlx::FromRow)]
pub struct GuestRow {
    pub holder: String,
    pub last_seen_ms: i64,
    /// The name as last used; rows from before it was kept have none.
    pub name: Option<String>,
}
