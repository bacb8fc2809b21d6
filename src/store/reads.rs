//! What each account has read of each room, and its notification level
//! there: written once for both databases, as part of the [`Directory`].

use super::dialect::Dialect;
use super::directory::Directory;
use super::rows::{AccountRow, GuestRow, TokenRow};
use super::{ReadState, StoreError, Unread};
use crate::protocol::NotifyLevel;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};

/// The stored form of a level.
pub fn level_name(level: NotifyLevel) -> &'static str {
    match level {
        NotifyLevel::All => "all",
        NotifyLevel::Mentions => "mentions",
        NotifyLevel::None => "none",
    }
}

pub(super) fn level_of(name: &str) -> Option<NotifyLevel> {
    match name {
        "all" => Some(NotifyLevel::All),
        "mentions" => Some(NotifyLevel::Mentions),
        "none" => Some(NotifyLevel::None),
        _ => None,
    }
}

/// A `LIKE` pattern matching a stored mention list (a JSON array of names)
/// that names `name`, whatever its case: the list is lower-cased first.
fn mention_pattern(name: &str) -> String {
    let mut p = String::from("%\"");
    for c in name.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str("\"%");
    p
}

impl<DB> Directory<DB>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> AccountRow: FromRow<'r, DB::Row>,
    for<'r> TokenRow: FromRow<'r, DB::Row>,
    for<'r> GuestRow: FromRow<'r, DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    /// See [`Store::read_states`](super::Store::read_states).
    pub async fn read_states(&self, account: &str) -> Result<Vec<ReadState>, StoreError> {
        let rows: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT room, last_read, notify FROM reads WHERE account = $1")
                .bind(account)
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(room, last_read, notify)| ReadState {
                room,
                last_read,
                notify: notify.as_deref().and_then(level_of),
            })
            .collect())
    }

    /// See [`Store::mark_read`](super::Store::mark_read).
    pub async fn mark_read(
        &self,
        account: &str,
        room: &str,
        id: i64,
    ) -> Result<(i64, bool), StoreError> {
        // The row comes back only when this statement moved it: whether the
        // position moved is decided by the same write that moves it.
        let moved: Option<i64> = sqlx::query_scalar(
            "INSERT INTO reads (account, room, last_read) VALUES ($1, $2, $3) \
             ON CONFLICT (account, room) DO UPDATE SET last_read = excluded.last_read \
             WHERE reads.last_read < excluded.last_read \
             RETURNING last_read",
        )
        .bind(account)
        .bind(room)
        .bind(id)
        .fetch_optional(&self.write)
        .await?;
        if let Some(now) = moved {
            return Ok((now, true));
        }
        let now =
            sqlx::query_scalar("SELECT last_read FROM reads WHERE account = $1 AND room = $2")
                .bind(account)
                .bind(room)
                .fetch_one(&self.write)
                .await?;
        Ok((now, false))
    }

    /// See [`Store::set_notify`](super::Store::set_notify).
    pub async fn set_notify(
        &self,
        account: &str,
        room: &str,
        level: NotifyLevel,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reads (account, room, notify) VALUES ($1, $2, $3) \
             ON CONFLICT (account, room) DO UPDATE SET notify = excluded.notify",
        )
        .bind(account)
        .bind(room)
        .bind(level_name(level))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// See [`Store::unread`](super::Store::unread).
    pub async fn unread(
        &self,
        account: &str,
        room: &str,
        after: i64,
        cap: u64,
    ) -> Result<Unread, StoreError> {
        let (messages, mentions): (i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(CASE WHEN lower(mentions) LIKE $4 ESCAPE '\\' \
             THEN 1 ELSE 0 END), 0) FROM \
             (SELECT mentions FROM messages WHERE room = $1 AND id > $2 \
              AND author <> $3 AND NOT deleted ORDER BY id LIMIT $5) AS unread",
        )
        .bind(room)
        .bind(after)
        .bind(account)
        .bind(mention_pattern(account))
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .fetch_one(&self.read)
        .await?;
        Ok(Unread {
            messages: u64::try_from(messages).unwrap_or(0),
            mentions: u64::try_from(mentions).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::mention_pattern;

    #[test]
    fn a_mention_pattern_escapes_like_wildcards() {
        assert_eq!(mention_pattern("Ann"), "%\"ann\"%");
        assert_eq!(mention_pattern("a_b%"), "%\"a\\_b\\%\"%");
    }
}
