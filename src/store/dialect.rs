//! What differs between the SQL databases outside the message log's writer.

use super::rows::MessageRow;
use async_trait::async_trait;
use sqlx::{Database, Pool, Transaction};

/// What differs between the databases outside the message log's writer: a
/// few statements, how a transaction keeps concurrent claims apart, and
/// search.
#[async_trait]
pub trait Dialect: Database {
    /// A room's last revision (`$1`: the room), locking the room's row
    /// against other changes until the transaction ends.
    const LOCK_ROOM_REV: &'static str;

    /// Public rooms, those with messages first, then by activity and by
    /// name in byte order; `$1` is the limit. PostgreSQL sorts names by the
    /// database's locale unless told `COLLATE "C"`, a collation SQLite does
    /// not know (its default is byte order).
    const PUBLIC_ROOMS: &'static str;

    /// Whether `$1` is a member of a direct room, without case (`lower` is
    /// the database's: SQLite's folds ASCII only). Member names hold no
    /// ':', so ":name:" within the room's name and a ':' is exact.
    const HAS_DMS: &'static str;

    /// The direct rooms `$1` belongs to (spelled so), most recently active
    /// first; `$2` is the limit.
    const DM_ROOMS: &'static str;

    /// The topics of the rooms named in `$1`, a JSON array, that have one.
    const ROOM_TOPICS: &'static str;

    /// Deletes the guests' rooms made before `$1` that never had a message,
    /// except those named in `$2`, a JSON array: the two databases spell
    /// "the elements of a JSON array" differently.
    const EXPIRE_EMPTY_ROOMS: &'static str;

    /// Begins a transaction on `pool` during which no other transaction
    /// begun so with one of the same `locks` (on any node) runs.
    async fn begin_serial(
        pool: &Pool<Self>,
        locks: &[String],
    ) -> Result<Transaction<'static, Self>, sqlx::Error>;

    /// Up to `limit` messages of `rooms` whose words include every one of
    /// `words` (see [`super::change::search_words`]) without case or
    /// accents, never deleted ones, newest first by `seq` (the order they
    /// were stored in), with a `seq` below `below`.
    async fn search(
        pool: &Pool<Self>,
        rooms: &[String],
        words: &[String],
        below: i64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, sqlx::Error>;

    /// How many rows a statement changed: sqlx keeps this per driver.
    fn rows_affected(done: &Self::QueryResult) -> u64;
}
