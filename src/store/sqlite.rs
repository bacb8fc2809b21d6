//! SQLite's message log: one file in WAL mode, written by a single task that
//! commits the appends of concurrent senders in one transaction per batch.
//! The rest of the store is shared SQL (see [`super::sql`]).

use super::dialect::Dialect;
use super::directory::Directory;
use super::history::History;
use super::history::apply_change;
use super::plan::{Step, plan};
use super::rows::{MESSAGE_COLUMNS_OF_M, MessageRow, mentions_json};
use super::sql::{MessageLog, SqlStore};
use super::{
    Appended, Change, Changed, NewMessage, PendingAppend, SearchAfter, StoreError, format_ts,
    now_ms,
};
use crate::protocol::Message;
use async_trait::async_trait;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Connection, Pool, Transaction};
use std::collections::HashMap;
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
        let admin = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.read_only(true))
            .await?;
        let directory = Directory::new(read.clone(), admin);
        directory.rekey_names().await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_writer(writer, rx));
        Ok(SqlStore {
            log: SqliteLog { writes: tx },
            history: History::new(read),
            directory,
        })
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

    /// One FTS5 query per room, over the room's range of the index's keys
    /// (num << 40 | id) read newest first, so that a common word stops
    /// after `limit` rows instead of sorting every match; the rooms'
    /// pages are then merged. Within a room, ids and times rise together
    /// (the writer's clock never goes back), so newest by id is newest by
    /// time.
    async fn search(
        pool: &Pool<Self>,
        rooms: &[String],
        words: &[String],
        after: Option<&SearchAfter>,
        limit: usize,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        // Each word a phrase of its own ("..."), so that nothing a person
        // typed is FTS5 syntax; phrases side by side must all match.
        let matching = words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS_OF_M} FROM messages_fts \
             JOIN messages m ON m.room = $2 AND m.id = (messages_fts.rowid & {ID_MASK}) \
             WHERE messages_fts MATCH $1 \
             AND messages_fts.rowid >= ((SELECT num FROM rooms WHERE name = $2) << 40) \
             AND messages_fts.rowid < (((SELECT num FROM rooms WHERE name = $2) + 1) << 40) \
             AND NOT m.deleted AND (m.ts_ms < $3 OR (m.ts_ms = $3 AND m.id < $4)) \
             ORDER BY messages_fts.rowid DESC LIMIT $5"
        );
        let take = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = pool.acquire().await?;
        let mut found: Vec<MessageRow> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for room in rooms {
            if seen.contains(&room.as_str()) {
                continue;
            }
            seen.push(room);
            let (ts, id) = page_start(room, after);
            let rows: Vec<MessageRow> = sqlx::query_as(&sql)
                .bind(&matching)
                .bind(room)
                .bind(ts)
                .bind(id)
                .bind(take)
                .fetch_all(&mut *conn)
                .await?;
            found.extend(rows);
        }
        found.sort_by(|a, b| (b.ts_ms, &b.room, b.id).cmp(&(a.ts_ms, &a.room, a.id)));
        found.truncate(limit);
        Ok(found)
    }
}

/// The low 40 bits of a search index key: the message's id.
const ID_MASK: i64 = (1 << 40) - 1;

/// Where a room's search results start, after `after`, as (time, id):
/// its messages older than that time, or as old with an id below that.
/// Results are ordered by (time, room, id), so at the cursor's time a room
/// named before the cursor's room has all its messages still to come, one
/// named after it none.
pub(super) fn page_start(room: &str, after: Option<&SearchAfter>) -> (i64, i64) {
    match after {
        None => (i64::MAX, i64::MAX),
        Some(a) => match room.cmp(a.room.as_str()) {
            std::cmp::Ordering::Less => (a.ts_ms, i64::MAX),
            std::cmp::Ordering::Equal => (a.ts_ms, a.id),
            std::cmp::Ordering::Greater => (a.ts_ms, i64::MIN),
        },
    }
}

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

async fn run_writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Write>) {
    // The writer is the only one to hand out ids, so it may remember them;
    // forgotten after a failed transaction.
    let mut last_ids: HashMap<String, i64> = HashMap::new();
    // The time of the last batch: a message's time never goes back, even
    // when the system clock does, so a room's ids and times rise together
    // (search reads a room newest first by id).
    let mut last_ms: i64 =
        sqlx::query_scalar("SELECT coalesce(max(active_ms), 0) FROM rooms WHERE last_id > 0")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = now_ms().max(last_ms);
        let result = write_batch(&mut conn, &mut last_ids, &batch, now).await;
        if result.is_ok() {
            last_ms = now;
        }
        if result.is_err() {
            last_ids.clear();
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

async fn write_batch(
    conn: &mut SqliteConnection,
    last_ids: &mut HashMap<String, i64>,
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
    let mut new_rows: Vec<Message> = Vec::new();
    for w in batch {
        match w {
            Write::Append(m, _) => {
                let (message, duplicate) = match steps.next() {
                    Some(Step::Stored(s)) => (stored[s].clone(), true),
                    Some(Step::SameAs(j)) => (answers[j].clone(), true),
                    Some(Step::New) | None => {
                        let id = next_id(&mut tx, last_ids, &m.room, now).await?;
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
                            ..Default::default()
                        };
                        new_rows.push(message.clone());
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
                .push_bind(last_ids.get(room).copied().unwrap_or(0));
        });
        q.push(") UPDATE rooms SET last_id = v.last_id, active_ms = ")
            .push_bind(now)
            .push(" FROM v WHERE rooms.name = v.name");
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Stores new messages: one multi-row INSERT per chunk instead of a
/// statement per message.
async fn insert_messages(
    conn: &mut SqliteConnection,
    rows: &[Message],
    now: i64,
) -> Result<(), sqlx::Error> {
    // 8 values a row: 4,000 in a statement, under SQLite's 32,766.
    for chunk in rows.chunks(500) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO messages (room, id, author, body, ts_ms, nonce, reply_to, mentions) ",
        );
        q.push_values(chunk, |mut b, m| {
            b.push_bind(&m.room)
                .push_bind(m.id)
                .push_bind(&m.author)
                .push_bind(&m.body)
                .push_bind(now)
                .push_bind(&m.nonce)
                .push_bind(m.reply_to)
                .push_bind(mentions_json(&m.mentions));
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The next id of `room`, made if new: remembered by the writer, else read
/// from the room's row.
async fn next_id(
    conn: &mut SqliteConnection,
    last_ids: &mut HashMap<String, i64>,
    room: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let last = match last_ids.get(room) {
        Some(id) => *id,
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
    last_ids.insert(room.to_string(), last + 1);
    Ok(last + 1)
}
