//! Rows as both databases return them, mapped by column name with
//! `FromRow`, and turned into the store's types.

use super::{Account, Role, TokenInfo, format_ts};
use crate::protocol::Message;

/// The columns every message query selects.
pub const MESSAGE_COLUMNS: &str = "room, id, author, body, ts_ms, nonce";

/// A row of `messages`.
#[derive(Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub room: String,
    pub id: i64,
    pub author: String,
    pub body: String,
    pub ts_ms: i64,
    pub nonce: Option<String>,
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
            ..Default::default()
        }
    }
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
