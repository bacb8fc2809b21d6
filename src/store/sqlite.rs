//! SQLite's message log: one file in WAL mode, written by a single task that
//! commits the appends of concurrent senders in one transaction per batch.
//! The rest of the store is shared SQL (see [`super::sql`]).

use super::dialect::Dialect;
use super::directory::Directory;
use super::files::{attachments_json, carry_files};
use super::history::History;
use super::history::apply_change;
use super::plan::{Step, plan};
use super::rows::{MESSAGE_COLUMNS_OF_M, MessageRow, mentions_json};
use super::search_index::{SearchIndex, index_path};
use super::sql::{MessageLog, SqlStore};
use super::{Appended, Change, Changed, NewMessage, PendingAppend, StoreError, format_ts, now_ms};
use crate::protocol::Message;
use async_trait::async_trait;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Connection, Pool, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most appends committed in one transaction.
const MAX_BATCH: usize = 512;
/// How long a write waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Write {
    Append(NewMessage, Reply<Appended>),
    /// A change to message `id` of a room: in the queue with the appends,
    /// so that ids, revisions and commits keep one order.
    Change(String, i64, Change, Reply<Changed>),
    /// A room, and who made it when it is new (name, guest or not).
    CreateRoom(String, Option<(String, bool)>, Reply<()>),
    /// Everything queued before it is written first.
    Shutdown(oneshot::Sender<()>),
}

/// The SQLite store: [`SqliteLog`] and the shared SQL.
pub type SqliteStore = SqlStore<Sqlite, SqliteLog>;

/// The queue to the single writer task. Rooms are made through it too, so
/// that the writer's connection is the only one writing messages and rooms.
pub struct SqliteLog {
    writes: mpsc::Sender<Write>,
    index: Arc<SearchIndex>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database file at `path`.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged message survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut writer = SqliteConnection::connect_with(&opts).await?;
        sqlx::migrate!("migrations/sqlite").run(&mut writer).await?;
        // Rare writes (accounts, tokens, sessions) beside the message
        // writer; SQLite's busy timeout orders the two.
        let index = Arc::new(SearchIndex::open(path, BUSY_TIMEOUT).await?);
        let admin = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        let index_file = index_path(path);
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            // Read-only like the connection: the index is only searched here.
            .after_connect(move |conn, _| {
                let index_file = index_file.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE $1 AS idx")
                        .bind(index_file)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(opts.read_only(true))
            .await?;
        let directory = Directory::new(read.clone(), admin);
        directory.rekey_names().await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_writer(writer, rx, index.clone()));
        Ok(SqlStore {
            log: SqliteLog { writes: tx, index },
            history: History::new(read),
            directory,
        })
    }

    /// Waits until the search index holds every message committed so far,
    /// however long that takes.
    #[cfg(test)]
    pub async fn indexed(&self) {
        self.log.index.all_indexed().await;
    }

    /// The pool for rare writes, shared with the session store.
    pub fn admin_pool(&self) -> SqlitePool {
        self.directory.write_pool()
    }
}

#[async_trait]
impl Dialect for Sqlite {
    /// The writer's transaction is IMMEDIATE: it holds the database's
    /// write lock already.
    const LOCK_ROOM_REV: &'static str = "SELECT last_rev FROM rooms WHERE name = $1";

    const PUBLIC_ROOMS: &'static str = "SELECT name FROM rooms WHERE name NOT LIKE 'dm:%' AND name NOT LIKE '~%' \
         ORDER BY last_id > 0 DESC, active_ms DESC, name LIMIT $1";

    const HAS_DMS: &'static str = "SELECT EXISTS (SELECT 1 FROM rooms WHERE name LIKE 'dm:%' \
         AND instr(lower(name) || ':', ':' || lower($1) || ':') > 0)";

    const DM_ROOMS: &'static str = "SELECT name FROM rooms WHERE name LIKE 'dm:%' \
         AND instr(name || ':', ':' || $1 || ':') > 0 ORDER BY active_ms DESC LIMIT $2";

    const ROOM_TOPICS: &'static str = "SELECT name, topic FROM rooms WHERE topic <> '' AND name IN (SELECT value FROM json_each($1))";

    const EXPIRE_EMPTY_ROOMS: &'static str = "DELETE FROM rooms WHERE by_guest AND last_id = 0 AND created_ms < $1 \
         AND name NOT IN (SELECT value FROM json_each($2))";

    /// The write pool has one connection, and IMMEDIATE takes the
    /// database's write lock at the start: every such transaction runs
    /// alone, whatever its locks.
    async fn begin_serial(
        pool: &Pool<Self>,
        _locks: &[String],
    ) -> Result<Transaction<'static, Self>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// One FTS5 query over the whole index, read newest first (by `seq`,
    /// the order messages were stored in) and stopped at the first
    /// `limit` messages of the caller's rooms: a common word costs a page,
    /// not every match. A reader of a few rooms has the index itself keep
    /// to their rooms' tokens; for many, an intersection in the index costs
    /// more than skipping others' messages (docs/PERFORMANCE.md, Search).
    async fn search(
        pool: &Pool<Self>,
        rooms: &[String],
        words: &[String],
        below: i64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        let rooms_json = serde_json::to_string(rooms).unwrap_or_default();
        let mut conn = pool.acquire().await?;
        // Each word a phrase of its own ("..."), so that nothing a person
        // typed is FTS5 syntax; phrases side by side must all match.
        let phrases = words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut matching = format!("{{body}} : ({phrases})");
        if rooms.len() <= INDEXED_ROOM_FILTER {
            let nums: Vec<i64> = sqlx::query_scalar(
                "SELECT num FROM rooms WHERE name IN (SELECT value FROM json_each($1))",
            )
            .bind(&rooms_json)
            .fetch_all(&mut *conn)
            .await?;
            if nums.is_empty() {
                return Ok(Vec::new());
            }
            let tokens = nums
                .into_iter()
                .map(|n| format!("\"{}\"", room_token(n)))
                .collect::<Vec<_>>()
                .join(" OR ");
            matching.push_str(&format!(" AND {{room}} : ({tokens})"));
        }
        sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS_OF_M} FROM idx.messages_fts \
             JOIN messages m ON m.seq = messages_fts.rowid \
             WHERE messages_fts MATCH $1 AND messages_fts.rowid < $2 \
             AND m.room IN (SELECT value FROM json_each($3)) AND NOT m.deleted \
             ORDER BY messages_fts.rowid DESC LIMIT $4"
        ))
        .bind(&matching)
        .bind(below)
        .bind(&rooms_json)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
    }
}

/// Up to how many rooms search has the index intersect the words with
/// the rooms' tokens (each one more doclist to step through).
const INDEXED_ROOM_FILTER: usize = 8;

impl SqliteLog {
    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Write) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl MessageLog for SqliteLog {
    async fn submit(&self, msg: NewMessage) -> Result<PendingAppend, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(Write::Append(msg, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    async fn change(&self, room: &str, id: i64, change: Change) -> Result<Changed, StoreError> {
        let room = room.to_string();
        self.write(|reply| Write::Change(room, id, change, reply))
            .await
    }

    async fn create_room(
        &self,
        room: &str,
        creator: Option<(&str, bool)>,
    ) -> Result<(), StoreError> {
        let room = room.to_string();
        let creator = creator.map(|(c, guest)| (c.to_string(), guest));
        self.write(|reply| Write::CreateRoom(room, creator, reply))
            .await
    }

    async fn searchable(&self) {
        self.index.caught_up().await;
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writes.send(Write::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// What one queued write came to, before the commit decides its fate.
enum Outcome {
    Appended(Appended),
    Changed(Changed),
    Done,
}

async fn run_writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Write>,
    index: Arc<SearchIndex>,
) {
    // The writer is the only one to hand out ids, so it may remember them;
    // forgotten after a failed transaction.
    let mut tips = Tips::default();
    // The time of the last batch: a message's time never goes back, even
    // when the system clock does, so a room's ids and times rise together
    // (a page of history reads as it was written).
    let mut last_ms: i64 =
        sqlx::query_scalar("SELECT coalesce(max(active_ms), 0) FROM rooms WHERE last_id > 0")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = now_ms().max(last_ms);
        let result = write_batch(&mut conn, &mut tips, &batch, now).await;
        if result.is_ok() {
            last_ms = now;
            index.committed();
        }
        if result.is_err() {
            tips = Tips::default();
        }
        let mut outcomes = match result {
            Ok(o) => o.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "sqlite batch failed");
                let msg = e.to_string();
                batch
                    .iter()
                    .map(|_| Err(StoreError::Unavailable(msg.clone())))
                    .collect()
            }
        }
        .into_iter();
        for w in batch.drain(..) {
            let outcome = outcomes.next().unwrap_or(Err(StoreError::Closed));
            match w {
                Write::Append(_, reply) => {
                    let _ = reply.send(outcome.and_then(|o| match o {
                        Outcome::Appended(a) => Ok(a),
                        _ => Err(StoreError::Closed),
                    }));
                }
                Write::Change(_, _, _, reply) => {
                    let _ = reply.send(outcome.and_then(|o| match o {
                        Outcome::Changed(c) => Ok(c),
                        _ => Err(StoreError::Closed),
                    }));
                }
                Write::CreateRoom(_, _, reply) => {
                    let _ = reply.send(outcome.map(|_| ()));
                }
                Write::Shutdown(done) => {
                    let _ = conn.close().await;
                    let _ = done.send(());
                    return;
                }
            }
        }
    }
}

/// The messages already stored under the (author, nonce) of any append.
async fn stored_sends(
    conn: &mut SqliteConnection,
    appends: &[&NewMessage],
) -> Result<Vec<Message>, sqlx::Error> {
    let keyed: Vec<(&str, &str)> = appends
        .iter()
        .filter_map(|m| Some((m.author.as_str(), m.nonce.as_deref()?)))
        .collect();
    let mut stored = Vec::new();
    for chunk in keyed.chunks(400) {
        // A join, not `(author, nonce) IN (VALUES ...)`: SQLite plans the IN
        // form as a scan of the whole table, the join as one index search per
        // nonce (EXPLAIN QUERY PLAN; it was most of the writer's time).
        let mut q = sqlx::QueryBuilder::new("WITH v(author, nonce) AS (");
        q.push_values(chunk, |mut b, (author, nonce)| {
            b.push_bind(*author).push_bind(*nonce);
        });
        q.push(format!(
            ") SELECT {MESSAGE_COLUMNS_OF_M} FROM v CROSS JOIN messages m \
             ON m.author = v.author AND m.nonce = v.nonce WHERE m.nonce IS NOT NULL"
        ));
        let rows = q
            .build_query_as::<MessageRow>()
            .fetch_all(&mut *conn)
            .await?;
        stored.extend(rows.into_iter().map(Message::from));
    }
    Ok(stored)
}

/// What the writer remembers between batches.
#[derive(Default)]
struct Tips {
    /// Each room's last id.
    rooms: HashMap<String, i64>,
    /// The last search key handed out; `None` until read.
    seq: Option<i64>,
}

/// A new message on its way into the table.
struct NewRow {
    message: Message,
    seq: i64,
}

async fn write_batch(
    conn: &mut SqliteConnection,
    tips: &mut Tips,
    batch: &[Write],
    now: i64,
) -> Result<Vec<Outcome>, sqlx::Error> {
    // IMMEDIATE: take the write lock at the start, so a lock held by another
    // process is waited out (busy timeout) rather than failing mid-way.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let appends: Vec<&NewMessage> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Append(m, _) => Some(m),
            _ => None,
        })
        .collect();
    let stored = stored_sends(&mut tx, &appends).await?;
    let mut steps = plan(appends.iter().copied(), &stored).into_iter();
    // What each append of the batch came to, by its place among appends.
    let mut answers: Vec<Message> = Vec::with_capacity(appends.len());
    let mut out = Vec::with_capacity(batch.len());
    let mut touched: Vec<String> = Vec::new();
    let mut new_rows: Vec<NewRow> = Vec::new();
    for w in batch {
        match w {
            Write::Append(m, _) => {
                let (message, duplicate) = match steps.next() {
                    Some(Step::Stored(s)) => (stored[s].clone(), true),
                    Some(Step::SameAs(j)) => (answers[j].clone(), true),
                    Some(Step::New) | None => {
                        let id = next_id(&mut tx, tips, &m.room, now).await?;
                        let seq = next_seq(&mut tx, tips).await?;
                        if !touched.contains(&m.room) {
                            touched.push(m.room.clone());
                        }
                        let message = Message {
                            room: m.room.clone(),
                            id,
                            author: m.author.clone(),
                            body: m.body.clone(),
                            ts: format_ts(now),
                            nonce: m.nonce.clone(),
                            reply_to: m.reply_to,
                            mentions: m.mentions.clone(),
                            attachments: m.attachments.clone(),
                            ..Default::default()
                        };
                        new_rows.push(NewRow {
                            message: message.clone(),
                            seq,
                        });
                        (message, false)
                    }
                };
                answers.push(message.clone());
                out.push(Outcome::Appended(Appended { message, duplicate }));
            }
            Write::CreateRoom(room, creator, _) => {
                sqlx::query(
                    "INSERT OR IGNORE INTO rooms \
                     (name, last_id, created_ms, active_ms, creator, by_guest) \
                     VALUES (?, 0, ?, ?, ?, ?)",
                )
                .bind(room)
                .bind(now)
                .bind(now)
                .bind(creator.as_ref().map(|c| c.0.as_str()))
                .bind(creator.as_ref().is_some_and(|c| c.1))
                .execute(&mut *tx)
                .await?;
                out.push(Outcome::Done);
            }
            Write::Change(room, id, change, _) => {
                // The messages appended before it in the batch are stored
                // first: it may be one of them.
                insert_messages(&mut tx, &new_rows, now).await?;
                new_rows.clear();
                let changed =
                    apply_change::<Sqlite>(&mut tx, Sqlite::LOCK_ROOM_REV, room, *id, change, now)
                        .await?;
                out.push(Outcome::Changed(changed));
            }
            Write::Shutdown(_) => out.push(Outcome::Done),
        }
    }
    insert_messages(&mut tx, &new_rows, now).await?;
    // One UPDATE for every room the batch touched: each statement is a
    // round trip to sqlx's SQLite thread, and a batch may touch hundreds.
    for chunk in touched.chunks(300) {
        let mut q = sqlx::QueryBuilder::new("WITH v(name, last_id) AS (");
        q.push_values(chunk, |mut b, room| {
            b.push_bind(room)
                .push_bind(tips.rooms.get(room).copied().unwrap_or(0));
        });
        q.push(") UPDATE rooms SET last_id = v.last_id, active_ms = ")
            .push_bind(now)
            .push(" FROM v WHERE rooms.name = v.name");
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Stores new messages: a multi-row INSERT per chunk instead of a statement
/// per message. The search index follows on its own (`search_index.rs`).
async fn insert_messages(
    conn: &mut SqliteConnection,
    rows: &[NewRow],
    now: i64,
) -> Result<(), sqlx::Error> {
    // 10 values a row: 5,000 in a statement, under SQLite's 32,766.
    for chunk in rows.chunks(500) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO messages \
             (room, id, author, body, ts_ms, nonce, reply_to, mentions, attachments, seq) ",
        );
        q.push_values(chunk, |mut b, r| {
            let m = &r.message;
            b.push_bind(&m.room)
                .push_bind(m.id)
                .push_bind(&m.author)
                .push_bind(&m.body)
                .push_bind(now)
                .push_bind(&m.nonce)
                .push_bind(m.reply_to)
                .push_bind(mentions_json(&m.mentions))
                .push_bind(attachments_json(&m.attachments))
                .push_bind(r.seq);
        });
        q.build().execute(&mut *conn).await?;
    }
    for r in rows.iter().filter(|r| !r.message.attachments.is_empty()) {
        carry_files::<Sqlite>(&mut *conn, &r.message).await?;
    }
    Ok(())
}

/// A room's token in the search index's `room` column.
fn room_token(num: i64) -> String {
    format!("r{num}")
}

/// The next search key: the order messages are stored in, across rooms.
async fn next_seq(conn: &mut SqliteConnection, tips: &mut Tips) -> Result<i64, sqlx::Error> {
    let last = match tips.seq {
        Some(s) => s,
        None => {
            sqlx::query_scalar::<_, i64>("SELECT coalesce(max(seq), 0) FROM messages")
                .fetch_one(&mut *conn)
                .await?
        }
    };
    tips.seq = Some(last + 1);
    Ok(last + 1)
}

/// The next id of `room`, made if new: remembered by the writer, else
/// read from the room's row.
async fn next_id(
    conn: &mut SqliteConnection,
    tips: &mut Tips,
    room: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let last_id = match tips.rooms.get(room) {
        Some(last_id) => *last_id,
        None => {
            sqlx::query(
                "INSERT OR IGNORE INTO rooms (name, last_id, created_ms, active_ms) \
                 VALUES (?, 0, ?, ?)",
            )
            .bind(room)
            .bind(now)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query_scalar::<_, i64>("SELECT last_id FROM rooms WHERE name = ?")
                .bind(room)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    tips.rooms.insert(room.to_string(), last_id + 1);
    Ok(last_id + 1)
}
