//! Reading the message log back: pages, ranges and a room's last id, in SQL
//! both databases share (the writers that fill it are per backend).

use super::rows::{MESSAGE_COLUMNS, MessageRow};
use super::{Page, StoreError};
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
