//! SQLite's search index: an FTS5 table in a file of its own beside the
//! database (`PATH.search`), kept by a task that follows the message log.
//!
//! The writer commits messages without indexing them: indexing runs on
//! another connection, another file and another thread, so it costs the
//! send path neither time in its transaction nor the database's write
//! lock. The index is derived data. New messages are found by `seq` (the
//! order the writer stored them in); edits and deletions by the
//! `search_pending` queue the message table's triggers fill in the same
//! transaction as the change. The index records how far it got in the same
//! transaction as what it indexed, so a crash or a lost index file only
//! means reading on from there (from the start, for a new file).
//!
//! Search waits, briefly, for the index to hold every batch committed
//! before the search began: a message acknowledged is a message found.

use super::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::time::Duration;
use tokio::sync::watch;

/// The index's schema, in `PRAGMA user_version`: another one is rebuilt.
const SCHEMA: i64 = 1;
/// Most messages (and most pending changes) indexed in one transaction.
const CHUNK: i64 = 5_000;
/// How long a search waits for the index to catch up before it reads the
/// index as it is.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);
/// Indexes messages of the log as they now stand; callers add which.
const INDEX_FROM_LOG: &str = "INSERT INTO messages_fts (rowid, body, room) \
     SELECT m.seq, m.body, 'r' || r.num FROM log.messages m \
     JOIN log.rooms r ON r.name = m.room";
/// How long the follower waits after a failure before it tries again.
const RETRY: Duration = Duration::from_secs(1);

/// The path of the index file of the database at `db`.
pub fn index_path(db: &str) -> String {
    format!("{db}.search")
}

/// What the writer and searches share with the follower: batches
/// committed, and batches indexed, both counted since the process started.
pub struct SearchIndex {
    committed: watch::Sender<u64>,
    indexed: watch::Receiver<u64>,
}

impl SearchIndex {
    /// Opens (making or rebuilding when needed) the index of the database
    /// at `db` and starts the task that keeps it.
    pub async fn open(db: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let mut conn = SqliteConnectOptions::new()
            .filename(index_path(db))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Derived data: a commit lost to a power cut is indexed again.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .connect()
            .await?;
        prepare(&mut conn).await?;
        sqlx::query("ATTACH DATABASE $1 AS log")
            .bind(db)
            .execute(&mut conn)
            .await?;
        forget_if_ahead(&mut conn).await?;
        // 1: the first catch-up, which searches wait for too.
        let (committed, commits) = watch::channel(1);
        let (done, indexed) = watch::channel(0);
        tokio::spawn(follow(conn, commits, done));
        Ok(Self { committed, indexed })
    }

    /// Tells the follower a batch was committed.
    pub fn committed(&self) {
        self.committed.send_modify(|n| *n += 1);
    }

    /// Waits until the index holds every batch committed so far, at most a
    /// short while: a search then reads the index as it is.
    pub async fn caught_up(&self) {
        let want = *self.committed.borrow();
        let mut indexed = self.indexed.clone();
        let wait = indexed.wait_for(|n| *n >= want);
        if tokio::time::timeout(CATCH_UP_WAIT, wait).await.is_err() {
            tracing::warn!("search index is behind; searching it as it is");
        }
    }

    /// Waits until the index holds every batch committed so far, however
    /// long that takes.
    #[cfg(test)]
    pub async fn all_indexed(&self) {
        let want = *self.committed.borrow();
        let _ = self.indexed.clone().wait_for(|n| *n >= want).await;
    }
}

/// Makes the index's tables, or makes them again when their schema is not
/// this version's.
async fn prepare(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    if version == SCHEMA {
        return Ok(());
    }
    sqlx::raw_sql(&format!(
        "BEGIN IMMEDIATE;
         DROP TABLE IF EXISTS messages_fts;
         DROP TABLE IF EXISTS progress;
         CREATE VIRTUAL TABLE messages_fts USING fts5 (
             body,
             room,
             content = '',
             contentless_delete = 1,
             tokenize = 'unicode61 remove_diacritics 2'
         );
         CREATE TABLE progress (
             one INTEGER PRIMARY KEY CHECK (one = 1),
             seq INTEGER NOT NULL,
             pending INTEGER NOT NULL
         );
         INSERT INTO progress VALUES (1, 0, 0);
         PRAGMA user_version = {SCHEMA};
         COMMIT;"
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Empties an index that is ahead of its log: the database was put back
/// from a backup (or replaced), and what the index holds past the log's
/// end would be read as the new messages that take the same keys.
async fn forget_if_ahead(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let (seq, pending): (i64, i64) = sqlx::query_as("SELECT seq, pending FROM progress")
        .fetch_one(&mut *conn)
        .await?;
    let log_seq: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM log.messages")
        .fetch_one(&mut *conn)
        .await?;
    let log_pending: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(seq), 0) FROM log.sqlite_sequence WHERE name = 'search_pending'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if seq <= log_seq && pending <= log_pending {
        return Ok(());
    }
    tracing::warn!(
        indexed = seq,
        stored = log_seq,
        "search index: the database is behind its index (restored from a backup?); indexing it again"
    );
    sqlx::raw_sql(
        "BEGIN;
         INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
         UPDATE progress SET seq = 0, pending = 0;
         COMMIT;",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The follower: after each commit it is told of, indexes what is new.
async fn follow(
    mut conn: SqliteConnection,
    mut commits: watch::Receiver<u64>,
    done: watch::Sender<u64>,
) {
    let mut cleared = None;
    loop {
        let target = *commits.borrow_and_update();
        match catch_up(&mut conn, &mut cleared).await {
            Ok(()) => {
                done.send_replace(target);
            }
            Err(e) => {
                tracing::error!(error = %e, "search index: indexing failed; trying again");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        // The writer is gone: the store was closed.
        if commits.changed().await.is_err() {
            let _ = conn.close().await;
            return;
        }
    }
}

/// Indexes everything committed to the log, a chunk per transaction.
/// `cleared` is the last change of the queue known gone from it.
async fn catch_up(
    conn: &mut SqliteConnection,
    cleared: &mut Option<i64>,
) -> Result<(), sqlx::Error> {
    loop {
        let (more, pending) = index_chunk(conn).await?;
        if pending > 0 && *cleared != Some(pending) {
            // The queue's indexed rows are not needed any more; a failure
            // here is only rows left to clear next time.
            let gone = sqlx::query("DELETE FROM log.search_pending WHERE id <= $1")
                .bind(pending)
                .execute(&mut *conn)
                .await;
            if let Err(e) = gone {
                tracing::warn!(error = %e, "search index: could not clear the queue of changes");
            }
            *cleared = Some(pending);
        }
        if !more {
            return Ok(());
        }
    }
}

/// One transaction: the next chunk of new messages, then the edits and
/// deletions of messages indexed so far. Returns whether more is left, and
/// the last change of the queue now indexed.
async fn index_chunk(conn: &mut SqliteConnection) -> Result<(bool, i64), sqlx::Error> {
    // Deferred: IMMEDIATE would take the write lock of every attached
    // database, the log's too, and stall its writer. Only this task writes
    // the index; the log is read from one snapshot for the whole
    // transaction.
    let mut tx = conn.begin().await?;
    let (seq, pending): (i64, i64) = sqlx::query_as("SELECT seq, pending FROM progress")
        .fetch_one(&mut *tx)
        .await?;
    let (new, upto): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), max(seq) FROM \
         (SELECT seq FROM log.messages WHERE seq > $1 ORDER BY seq LIMIT $2)",
    )
    .bind(seq)
    .bind(CHUNK)
    .fetch_one(&mut *tx)
    .await?;
    let new_seq = upto.unwrap_or(seq);
    if new_seq > seq {
        sqlx::query(&format!(
            "{INDEX_FROM_LOG} WHERE m.seq > $1 AND m.seq <= $2 AND NOT m.deleted"
        ))
        .bind(seq)
        .bind(new_seq)
        .execute(&mut *tx)
        .await?;
    }
    let (changes, last_change): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), max(id) FROM \
         (SELECT id FROM log.search_pending WHERE id > $1 ORDER BY id LIMIT $2)",
    )
    .bind(pending)
    .bind(CHUNK)
    .fetch_one(&mut *tx)
    .await?;
    let new_pending = last_change.unwrap_or(pending);
    if new_pending > pending {
        // A change to a message not indexed yet needs nothing: it is
        // indexed as it stands when its turn comes.
        const CHANGED: &str = "SELECT seq FROM log.search_pending \
             WHERE id > $1 AND id <= $2 AND seq <= $3";
        sqlx::query(&format!(
            "DELETE FROM messages_fts WHERE rowid IN ({CHANGED})"
        ))
        .bind(pending)
        .bind(new_pending)
        .bind(new_seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "{INDEX_FROM_LOG} WHERE m.seq IN ({CHANGED}) AND NOT m.deleted"
        ))
        .bind(pending)
        .bind(new_pending)
        .bind(new_seq)
        .execute(&mut *tx)
        .await?;
    }
    let more = new >= CHUNK || changes >= CHUNK;
    if new_seq > seq || new_pending > pending {
        sqlx::query("UPDATE progress SET seq = $1, pending = $2")
            .bind(new_seq)
            .bind(new_pending)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok((more, new_pending))
}
