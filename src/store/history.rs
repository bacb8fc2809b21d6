//! Reading the message log back (pages, ranges, a room's last id and
//! revision, changes, one message and those around it), and applying a
//! change to a message, in SQL both databases share (the writers that fill
//! the log, and search, are per backend).

use super::change::{Verdict, decide, edited_ms};
use super::files::{attachments_json, drop_files};
use super::rows::{MESSAGE_COLUMNS, MessageRow, mentions_json, reactions_json};
use super::{Around, Change, Changed, Page, StoreError};
use crate::protocol::Message;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

/// Reads of stored messages, on a pool that may be read-only.
pub struct History<DB: Database> {
    read: Pool<DB>,
}

impl<DB> History<DB>
where
    DB: Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> MessageRow: FromRow<'r, DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    /// History read through `read`.
    pub fn new(read: Pool<DB>) -> Self {
        History { read }
    }

    /// See [`Store::page_before`](super::Store::page_before).
    pub async fn page_before(
        &self,
        room: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = limit.min(i64::MAX as usize - 1);
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(room)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64 + 1)
        .fetch_all(&self.read)
        .await?;
        let more = rows.len() > limit;
        let mut messages: Vec<Message> = rows.into_iter().take(limit).map(Message::from).collect();
        messages.reverse();
        Ok(Page { messages, more })
    }

    /// Where message `id` of `room` stands in the order messages were
    /// stored in (search's key), if it is stored.
    pub async fn seq(&self, room: &str, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT seq FROM messages WHERE room = $1 AND id = $2")
                .bind(room)
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// See [`Store::range`](super::Store::range).
    pub async fn range(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room = $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT $4"
        ))
        .bind(room)
        .bind(after)
        .bind(upto)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Message::from).collect())
    }

    /// See [`Store::last_id`](super::Store::last_id).
    pub async fn last_id(&self, room: &str) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT last_id FROM rooms WHERE name = $1")
            .bind(room)
            .fetch_optional(&self.read)
            .await?;
        Ok(id.unwrap_or(0))
    }

    /// See [`Store::last_rev`](super::Store::last_rev).
    pub async fn last_rev(&self, room: &str) -> Result<i64, StoreError> {
        let rev: Option<i64> = sqlx::query_scalar("SELECT last_rev FROM rooms WHERE name = $1")
            .bind(room)
            .fetch_optional(&self.read)
            .await?;
        Ok(rev.unwrap_or(0))
    }

    /// See [`Store::changes`](super::Store::changes).
    pub async fn changes(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>, StoreError> {
        // `rev > 0` as the partial index `messages_rev` says it.
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room = $1 AND rev > 0 AND rev > $2 AND id <= $3 ORDER BY rev LIMIT $4"
        ))
        .bind(room)
        .bind(after)
        .bind(upto)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.rev, Message::from(r)))
            .collect())
    }

    /// See [`Store::message`](super::Store::message).
    pub async fn message(&self, room: &str, id: i64) -> Result<Option<Message>, StoreError> {
        let row: Option<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1 AND id = $2"
        ))
        .bind(room)
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(Message::from))
    }

    /// See [`Store::around`](super::Store::around).
    pub async fn around(&self, room: &str, id: i64, limit: usize) -> Result<Around, StoreError> {
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let before: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(room)
        .bind(id)
        .bind(fetch)
        .fetch_all(&self.read)
        .await?;
        let after: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room = $1 AND id >= $2 ORDER BY id LIMIT $3"
        ))
        .bind(room)
        .bind(id)
        .bind(fetch)
        .fetch_all(&self.read)
        .await?;
        Ok(around_of(
            before.into_iter().map(Message::from).collect(),
            after.into_iter().map(Message::from).collect(),
            limit,
        ))
    }

    /// The pool reads go through.
    pub fn pool(&self) -> &Pool<DB> {
        &self.read
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes the read pool.
    pub async fn close(&self) {
        self.read.close().await;
    }
}

/// The page of at most `limit` messages around a position, from those
/// before it (newest first) and those from it on (oldest first), each up to
/// `limit + 1` long: about half before, the rest after, and a side that has
/// too few leaves its room to the other.
pub fn around_of(mut before: Vec<Message>, mut after: Vec<Message>, limit: usize) -> Around {
    let half = limit.saturating_sub(1) / 2;
    let mut b = before.len().min(half);
    let a = after.len().min(limit - b);
    b = before.len().min(limit - a);
    let more_before = before.len() > b;
    let more_after = after.len() > a;
    before.truncate(b);
    before.reverse();
    after.truncate(a);
    before.append(&mut after);
    Around {
        messages: before,
        more_before,
        more_after,
    }
}

/// Applies `change` to message `id` of `room` on `conn`, inside the
/// caller's transaction: `lock_room` (`$1`: the room) reads the room's
/// last revision and keeps other writers of the room waiting until the
/// transaction ends, so revisions follow the order changes commit in.
pub async fn apply_change<DB>(
    conn: &mut DB::Connection,
    lock_room: &str,
    room: &str,
    id: i64,
    change: &Change,
    now: i64,
) -> Result<Changed, sqlx::Error>
where
    DB: Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> MessageRow: FromRow<'r, DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    let Some(last_rev) = sqlx::query_scalar::<_, i64>(lock_room)
        .bind(room)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(Changed::NotFound);
    };
    let Some(row) = sqlx::query_as::<_, MessageRow>(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1 AND id = $2"
    ))
    .bind(room)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(Changed::NotFound);
    };
    let edited_before = row.edited_ms;
    let current = Message::from(row);
    let message = match decide(&current, change, now) {
        Verdict::Answer(answer) => return Ok(answer),
        Verdict::Store(message) => message,
    };
    let rev = last_rev + 1;
    sqlx::query("UPDATE rooms SET last_rev = $1 WHERE name = $2")
        .bind(rev)
        .bind(room)
        .execute(&mut *conn)
        .await?;
    if message.deleted && !current.attachments.is_empty() {
        drop_files::<DB>(&mut *conn, room, id).await?;
    }
    sqlx::query(
        "UPDATE messages SET body = $1, reply_to = $2, mentions = $3, reactions = $4, \
         edited_ms = $5, deleted = $6, rev = $7, attachments = $10 WHERE room = $8 AND id = $9",
    )
    .bind(message.body.as_str())
    .bind(message.reply_to)
    .bind(mentions_json(&message.mentions))
    .bind(reactions_json(&message.reactions))
    .bind(edited_ms(change, edited_before, now))
    .bind(message.deleted)
    .bind(rev)
    .bind(room)
    .bind(id)
    .bind(attachments_json(&message.attachments))
    .execute(&mut *conn)
    .await?;
    Ok(Changed::Done { rev, message })
}

#[cfg(test)]
mod tests {
    use super::around_of;
    use crate::protocol::Message;

    fn ids(from: i64, to: i64, newest_first: bool) -> Vec<Message> {
        let mut v: Vec<Message> = (from..=to)
            .map(|id| Message {
                id,
                ..Default::default()
            })
            .collect();
        if newest_first {
            v.reverse();
        }
        v
    }

    #[test]
    fn around_takes_half_before_and_fills_from_the_other_side() {
        // Room of 1..=100, limit 5, fetched with one more on each side.
        let page = |at: i64| {
            let before = ids((at - 6).max(1), at - 1, true);
            let after = ids(at, (at + 5).min(100), false);
            let a = around_of(before, after, 5);
            let got: Vec<i64> = a.messages.iter().map(|m| m.id).collect();
            (got, a.more_before, a.more_after)
        };
        assert_eq!(page(50), (vec![48, 49, 50, 51, 52], true, true));
        assert_eq!(page(1), (vec![1, 2, 3, 4, 5], false, true));
        assert_eq!(page(2), (vec![1, 2, 3, 4, 5], false, true));
        assert_eq!(page(100), (vec![96, 97, 98, 99, 100], true, false));
        assert_eq!(page(99), (vec![96, 97, 98, 99, 100], true, false));
        let none = around_of(Vec::new(), Vec::new(), 5);
        assert!(none.messages.is_empty() && !none.more_before && !none.more_after);
        let zero = around_of(ids(1, 1, true), ids(2, 2, false), 0);
        assert!(zero.messages.is_empty() && zero.more_before && zero.more_after);
    }
}
