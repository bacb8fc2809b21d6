//! PostgreSQL's message log, for several nodes sharing one database. The
//! rest of the store is shared SQL (see [`super::sql`]).
//!
//! The same semantics as the SQLite log: dense per-room ids taken from
//! `rooms.last_id` inside the committing transaction, acknowledgement after
//! commit, (author, nonce) deduplication, and one writer task per node that
//! commits the appends of concurrent senders in one transaction per batch.
//!
//! Unlike SQLite, other processes write too, so the writer never caches a
//! room's last id: `INSERT .. ON CONFLICT DO UPDATE SET last_id = last_id + n
//! RETURNING last_id` reads and bumps it under the row lock, which every
//! node's writer waits for, so ids stay unique and strictly increasing.
//!
//! The same lock makes (author, nonce) deduplication hold across nodes: a
//! batch takes its rooms' locks before it looks for the nonces already
//! stored, so it sees every message another writer committed there. A
//! nonce stored meanwhile in another room is the one unique violation left,
//! and the batch is tried again, finding it.

use super::dialect::Dialect;
use super::directory::Directory;
use super::files::{attachments_json, carry_files};
use super::history::History;
use super::history::apply_change;
use super::plan::{Step, plan};
use super::rows::{MESSAGE_COLUMNS, MESSAGE_COLUMNS_OF_M, MessageRow, mentions_json};
use super::sql::{MessageLog, SqlStore};
use super::{Appended, Change, Changed, NewMessage, PendingAppend, StoreError, format_ts, now_ms};
use crate::protocol::Message;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, Postgres};
use sqlx::{Connection, Pool, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most appends committed in one transaction.
const MAX_BATCH: usize = 512;
/// How long a request waits for a pooled connection before the store
/// counts as unavailable (sends then get `unavailable` instead of hanging).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// A batch that has not committed by then is reported as failed. It may
/// still commit; the sender was not acknowledged and its retry (same
/// nonce) finds the stored message.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at a batch that failed before its COMMIT was sent (a nonce
/// another node stored meanwhile does not count: see `write_with_retries`).
const ATTEMPTS: usize = 4;
/// The unique index of (author, nonce), as its violations name it.
const NONCE_INDEX: &str = "messages_author_nonce";

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Write {
    Append(NewMessage, Reply<Appended>),
    /// Everything queued before it is written first.
    Shutdown(oneshot::Sender<()>),
}

/// The PostgreSQL store: [`PostgresLog`] and the shared SQL.
pub type PostgresStore = SqlStore<Postgres, PostgresLog>;

/// The queue to this node's writer task; rooms are made on the pool.
pub struct PostgresLog {
    pool: PgPool,
    writes: mpsc::Sender<Write>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://...`) and migrates the database.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?.application_name("causerie");
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await?;
        // Nodes starting together take turns: sqlx holds an advisory lock.
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        let directory = Directory::new(pool.clone(), pool.clone());
        directory.rekey_names().await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_writer(pool.clone(), rx));
        Ok(SqlStore {
            log: PostgresLog {
                pool: pool.clone(),
                writes: tx,
            },
            history: History::new(pool),
            directory,
        })
    }

    /// The pool, shared with the session store.
    pub fn pool(&self) -> PgPool {
        self.directory.write_pool()
    }
}

#[async_trait]
impl Dialect for Postgres {
    /// The row lock orders the changes of a room's messages on every node,
    /// and every node's append batches too (they update the same row).
    const LOCK_ROOM_REV: &'static str = "SELECT last_rev FROM rooms WHERE name = $1 FOR UPDATE";

    const PUBLIC_ROOMS: &'static str = "SELECT name FROM rooms WHERE name NOT LIKE 'dm:%' AND name NOT LIKE '~%' \
         ORDER BY last_id > 0 DESC, active_ms DESC, name COLLATE \"C\" LIMIT $1";

    const HAS_DMS: &'static str = "SELECT EXISTS (SELECT 1 FROM rooms WHERE name LIKE 'dm:%' \
         AND strpos(lower(name) || ':', ':' || lower($1) || ':') > 0)";

    const DM_ROOMS: &'static str = "SELECT name FROM rooms WHERE name LIKE 'dm:%' \
         AND strpos(name || ':', ':' || $1 || ':') > 0 ORDER BY active_ms DESC LIMIT $2";

    const ROOM_TOPICS: &'static str = "SELECT name, topic FROM rooms WHERE topic <> '' AND name IN (SELECT json_array_elements_text($1::json))";

    const EXPIRE_EMPTY_ROOMS: &'static str = "DELETE FROM rooms WHERE by_guest AND last_id = 0 AND created_ms < $1 \
         AND name NOT IN (SELECT json_array_elements_text($2::json))";

    /// Nodes share the database: a transaction-scoped advisory lock per
    /// name, taken in the order given, orders them on every node.
    async fn begin_serial(
        pool: &Pool<Self>,
        locks: &[String],
    ) -> Result<Transaction<'static, Self>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        for what in locks {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(what)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    /// One statement over every room, newest first by `seq` (the order
    /// messages were stored in), stopped at the first `limit`: the planner
    /// reads messages newest first checking their stored words for a
    /// common word, and the words index for a rare one.
    async fn search(
        pool: &Pool<Self>,
        rooms: &[String],
        words: &[String],
        below: i64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE words @@ plainto_tsquery('simple'::regconfig, causerie_unaccent($1)) \
             AND room = ANY($2) AND NOT deleted AND seq < $3 \
             ORDER BY seq DESC LIMIT $4"
        ))
        .bind(words.join(" "))
        .bind(rooms)
        .bind(below)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        // Unnamed, so planned for these words: how common they are decides
        // the plan, and a plan kept for other words would not know.
        .persistent(false)
        .fetch_all(pool)
        .await
    }
}

#[async_trait]
impl MessageLog for PostgresLog {
    async fn submit(&self, msg: NewMessage) -> Result<PendingAppend, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(Write::Append(msg, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// In a transaction of its own that locks the room's row, not through
    /// the writer: changes are rare, and the lock orders them on every node.
    async fn change(&self, room: &str, id: i64, change: Change) -> Result<Changed, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = apply_change::<Postgres>(
            &mut tx,
            Postgres::LOCK_ROOM_REV,
            room,
            id,
            &change,
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn create_room(
        &self,
        room: &str,
        creator: Option<(&str, bool)>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rooms (name, last_id, created_ms, active_ms, creator, by_guest) \
             VALUES ($1, 0, $2, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(room)
        .bind(now_ms())
        .bind(creator.map(|c| c.0))
        .bind(creator.is_some_and(|c| c.1))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writes.send(Write::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Why a batch failed, and whether it is safe to try it again.
struct BatchError {
    error: sqlx::Error,
    /// The COMMIT was sent: the batch may be stored, so it must not be
    /// written a second time.
    committing: bool,
}

impl BatchError {
    fn before_commit(error: sqlx::Error) -> Self {
        BatchError {
            error,
            committing: false,
        }
    }

    /// The database refused the data itself (SQLSTATE class 22, data
    /// exception, or 23, integrity, but for the unique violation of a
    /// nonce stored meanwhile): trying the same rows again cannot help.
    fn is_row_error(&self) -> bool {
        match &self.error {
            sqlx::Error::Database(e) => e
                .code()
                .is_some_and(|c| (c.starts_with("22") || c.starts_with("23")) && c != "23505"),
            _ => false,
        }
    }

    /// Another writer stored one of the batch's (author, nonce) meanwhile
    /// (in a room this batch did not lock): a new attempt finds it stored,
    /// so each such failure leaves one send fewer to store.
    fn is_nonce_taken(&self) -> bool {
        match &self.error {
            sqlx::Error::Database(e) => {
                e.code().as_deref() == Some("23505") && e.constraint() == Some(NONCE_INDEX)
            }
            _ => false,
        }
    }

    /// A conflict with another node's writer that a new attempt resolves:
    /// a deadlock or a serialisation failure.
    fn is_conflict(&self) -> bool {
        match &self.error {
            sqlx::Error::Database(e) => matches!(e.code().as_deref(), Some("40P01" | "40001")),
            _ => false,
        }
    }
}

async fn run_writer(pool: PgPool, mut rx: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut appends = Vec::with_capacity(batch.len());
        let mut shutdown = None;
        for w in batch.drain(..) {
            match w {
                Write::Append(m, reply) => appends.push((m, reply)),
                Write::Shutdown(done) => shutdown = Some(done),
            }
        }
        if !appends.is_empty() {
            let msgs: Vec<&NewMessage> = appends.iter().map(|(m, _)| m).collect();
            match write_with_retries(&pool, &msgs).await {
                Ok(outcomes) => {
                    for ((_, reply), outcome) in appends.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                // One row the database refuses must not fail the others'
                // messages: each is written alone, so only its own fails.
                Err(e) if e.row_error && appends.len() > 1 => {
                    tracing::warn!(error = %e.message, writes = appends.len(), "postgres batch refused a row; writing one by one");
                    for (m, reply) in appends {
                        let outcome = write_with_retries(&pool, &[&m]).await;
                        let _ = reply.send(match outcome {
                            Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
                            Ok(_) => Err(StoreError::Closed),
                            Err(e) => {
                                tracing::error!(error = %e.message, "postgres append failed");
                                Err(StoreError::Unavailable(e.message))
                            }
                        });
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e.message, writes = appends.len(), "postgres batch failed");
                    for (_, reply) in appends {
                        let _ = reply.send(Err(StoreError::Unavailable(e.message.clone())));
                    }
                }
            }
        }
        if let Some(done) = shutdown {
            // Anything queued after the shutdown request is refused by the
            // closed channel once this task returns.
            let _ = done.send(());
            return;
        }
    }
}

/// Why a batch could not be written, after its retries.
struct Failed {
    message: String,
    /// The database refused a row's data: the batch as a whole will never
    /// pass, but its other rows may.
    row_error: bool,
}

async fn write_with_retries(pool: &PgPool, msgs: &[&NewMessage]) -> Result<Vec<Appended>, Failed> {
    let mut failures = 0;
    // A nonce found taken is found stored on the next attempt, so there are
    // at most as many of these as sends: they never fail the batch.
    let mut nonces_taken = 0;
    loop {
        let result = tokio::time::timeout(BATCH_TIMEOUT, write_batch(pool, msgs)).await;
        let err = match result {
            Ok(Ok(out)) => return Ok(out),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(Failed {
                    message: "the database did not answer in time".to_string(),
                    row_error: false,
                });
            }
        };
        if err.is_row_error() {
            return Err(Failed {
                message: err.error.to_string(),
                row_error: !err.committing,
            });
        }
        if !err.committing && err.is_nonce_taken() && nonces_taken < msgs.len() {
            nonces_taken += 1;
            tracing::debug!(error = %err.error, "a nonce of the batch was stored meanwhile; retrying");
            continue;
        }
        // A connection the server closed (a restart, pg_terminate_backend)
        // fails the first statement; a fresh one may well succeed.
        failures += 1;
        if err.committing || failures >= ATTEMPTS {
            return Err(Failed {
                message: err.error.to_string(),
                row_error: false,
            });
        }
        if err.is_conflict() {
            tracing::debug!(error = %err.error, failures, "postgres batch conflicted; retrying");
        } else {
            tracing::debug!(error = %err.error, failures, "postgres batch failed; retrying");
            tokio::time::sleep(Duration::from_millis(50 * failures as u64)).await;
        }
    }
}

async fn write_batch(pool: &PgPool, msgs: &[&NewMessage]) -> Result<Vec<Appended>, BatchError> {
    let mut conn = pool.acquire().await.map_err(BatchError::before_commit)?;
    let mut tx = conn.begin().await.map_err(BatchError::before_commit)?;
    let now = now_ms();

    // The rooms' row locks first, in name order on every node (so two
    // writers never wait for each other in a cycle), then the nonces:
    // every writer stores a room's messages under its lock, so what any
    // node committed there is seen below, never met as a unique violation
    // at the insert, which would fail the batch's other sends with it.
    let mut rooms: Vec<&str> = msgs.iter().map(|m| m.room.as_str()).collect();
    rooms.sort_unstable();
    rooms.dedup();
    sqlx::query(
        "INSERT INTO rooms (name, last_id, created_ms, active_ms) \
         SELECT name, 0, $2, $2 FROM UNNEST($1::text[]) AS r(name) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&rooms)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(BatchError::before_commit)?;
    sqlx::query(
        "SELECT name FROM rooms WHERE name = ANY($1::text[]) \
         ORDER BY name COLLATE \"C\" FOR UPDATE",
    )
    .bind(&rooms)
    .execute(&mut *tx)
    .await
    .map_err(BatchError::before_commit)?;

    // Sends already stored under the same (author, nonce), by any node.
    let keyed: Vec<(&str, &str)> = msgs
        .iter()
        .filter_map(|m| Some((m.author.as_str(), m.nonce.as_deref()?)))
        .collect();
    let mut stored: Vec<Message> = Vec::new();
    if !keyed.is_empty() {
        let authors: Vec<&str> = keyed.iter().map(|k| k.0).collect();
        let nonces: Vec<&str> = keyed.iter().map(|k| k.1).collect();
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS_OF_M} \
             FROM UNNEST($1::text[], $2::text[]) AS k(author, nonce) \
             JOIN messages m ON m.author = k.author AND m.nonce = k.nonce \
             WHERE m.nonce IS NOT NULL"
        ))
        .bind(&authors)
        .bind(&nonces)
        .fetch_all(&mut *tx)
        .await
        .map_err(BatchError::before_commit)?;
        stored = rows.into_iter().map(Message::from).collect();
    }
    let steps = plan(msgs.iter().copied(), &stored);

    // Room → indices of its new messages, in submission order.
    let mut by_room: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in msgs.iter().enumerate() {
        if steps[i] == Step::New {
            by_room.entry(m.room.as_str()).or_default().push(i);
        }
    }

    // Each new message's id and time. A room's time never goes back:
    // another node's clock may be behind this one's, and within a room ids
    // and times rise together (a page of history reads as it was written).
    let mut ids: HashMap<usize, (i64, i64)> = HashMap::new();
    for (room, members) in &by_room {
        let n = members.len() as i64;
        let (last, ts): (i64, i64) = sqlx::query_as(
            "INSERT INTO rooms (name, last_id, created_ms, active_ms) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE \
             SET last_id = rooms.last_id + EXCLUDED.last_id, \
             active_ms = GREATEST(rooms.active_ms, EXCLUDED.active_ms) \
             RETURNING last_id, active_ms",
        )
        .bind(room)
        .bind(n)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(BatchError::before_commit)?;
        for (k, &i) in members.iter().enumerate() {
            ids.insert(i, (last - n + 1 + k as i64, ts));
        }
    }

    if !ids.is_empty() {
        let mut rooms = Vec::with_capacity(ids.len());
        let mut idv = Vec::with_capacity(ids.len());
        let mut authors = Vec::with_capacity(ids.len());
        let mut bodies = Vec::with_capacity(ids.len());
        let mut nonces: Vec<Option<&str>> = Vec::with_capacity(ids.len());
        let mut times = Vec::with_capacity(ids.len());
        let mut replies: Vec<Option<i64>> = Vec::with_capacity(ids.len());
        let mut mentions: Vec<Option<String>> = Vec::with_capacity(ids.len());
        let mut files: Vec<Option<String>> = Vec::with_capacity(ids.len());
        let mut carrying: Vec<Message> = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            if let Some((id, ts)) = ids.get(&i) {
                rooms.push(m.room.as_str());
                idv.push(*id);
                authors.push(m.author.as_str());
                bodies.push(m.body.as_str());
                nonces.push(m.nonce.as_deref());
                times.push(*ts);
                replies.push(m.reply_to);
                mentions.push(mentions_json(&m.mentions));
                files.push(attachments_json(&m.attachments));
                if !m.attachments.is_empty() {
                    carrying.push(Message {
                        room: m.room.clone(),
                        id: *id,
                        author: m.author.clone(),
                        attachments: m.attachments.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        sqlx::query(
            "INSERT INTO messages \
             (room, id, author, body, ts_ms, nonce, reply_to, mentions, attachments) \
             SELECT r, i, a, b, t, n, p, w, f \
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], \
             $6::text[], $7::bigint[], $8::text[], $9::text[]) AS v(r, i, a, b, t, n, p, w, f)",
        )
        .bind(&rooms)
        .bind(&idv)
        .bind(&authors)
        .bind(&bodies)
        .bind(&times)
        .bind(&nonces)
        .bind(&replies)
        .bind(&mentions)
        .bind(&files)
        .execute(&mut *tx)
        .await
        .map_err(BatchError::before_commit)?;
        for m in &carrying {
            carry_files::<Postgres>(&mut *tx, m)
                .await
                .map_err(BatchError::before_commit)?;
        }
    }

    tx.commit().await.map_err(|error| BatchError {
        error,
        committing: true,
    })?;

    let mut out: Vec<Appended> = Vec::with_capacity(msgs.len());
    for (i, step) in steps.into_iter().enumerate() {
        let appended = match step {
            Step::Stored(s) => Appended {
                message: stored[s].clone(),
                duplicate: true,
            },
            Step::SameAs(j) => Appended {
                message: out[j].message.clone(),
                duplicate: true,
            },
            Step::New => {
                let m = msgs[i];
                let (id, ts) = ids.get(&i).copied().unwrap_or((0, now));
                Appended {
                    message: Message {
                        room: m.room.clone(),
                        id,
                        author: m.author.clone(),
                        body: m.body.clone(),
                        ts: format_ts(ts),
                        nonce: m.nonce.clone(),
                        reply_to: m.reply_to,
                        mentions: m.mentions.clone(),
                        attachments: m.attachments.clone(),
                        ..Default::default()
                    },
                    duplicate: false,
                }
            }
        };
        out.push(appended);
    }
    Ok(out)
}
