//! PostgreSQL history, for several nodes sharing one database.
//!
//! The same semantics as the SQLite store: dense per-room ids taken from
//! `rooms.last_id` inside the committing transaction, acknowledgement after
//! commit, (author, nonce) deduplication, and one writer task per node that
//! commits the appends of concurrent senders in one transaction per batch.
//!
//! Unlike SQLite, other processes write too, so the writer never caches a
//! room's last id: `INSERT .. ON CONFLICT DO UPDATE SET last_id = last_id + n
//! RETURNING last_id` reads and bumps it under the row lock, which every
//! node's writer waits for, so ids stay unique and strictly increasing.

use super::{
    Account, Appended, GuestClaim, GuestName, NewMessage, Page, PendingAppend, Store, StoreError,
    TokenInfo, format_ts, now_ms,
};
use crate::names::{KEY_VERSION, name_key};
use crate::protocol::Message;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
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
/// Attempts at a batch that failed before its COMMIT was sent.
const ATTEMPTS: usize = 4;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Write {
    Append(NewMessage, Reply<Appended>),
    /// Everything queued before it is written first.
    Shutdown(oneshot::Sender<()>),
}

/// The PostgreSQL store.
pub struct PostgresStore {
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
        rekey_names(&pool).await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_writer(pool.clone(), rx));
        Ok(PostgresStore { pool, writes: tx })
    }

    /// The pool, shared with the session store.
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }
}

/// Rewrites the stored name keys made by an older [`name_key`] (once per
/// version; nodes starting together wait on the version row). A row whose
/// new key another row has already keeps its old one, with a warning: it
/// still signs in by its exact name.
async fn rekey_names(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let version: i64 = sqlx::query_scalar("SELECT version FROM name_keys FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    if version >= KEY_VERSION {
        return Ok(());
    }
    let accounts: Vec<(String, String)> = sqlx::query_as("SELECT name, name_key FROM accounts")
        .fetch_all(&mut *tx)
        .await?;
    for (name, old) in accounts {
        let new = name_key(&name);
        if new == old {
            continue;
        }
        let done = sqlx::query(
            "UPDATE accounts SET name_key = $1 WHERE name = $2 \
             AND NOT EXISTS (SELECT 1 FROM accounts WHERE name_key = $1)",
        )
        .bind(&new)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tracing::warn!(account = %name, "another account's name looks the same; this one keeps its old name key");
        }
    }
    // Old guest rows have only the lower-cased name: key it, and keep it as
    // the name last used (the DM check compares without case).
    let guests: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT name_key, name FROM guest_names")
            .fetch_all(&mut *tx)
            .await?;
    for (old, name) in guests {
        let name = name.unwrap_or_else(|| old.clone());
        let new = name_key(&name);
        let done = sqlx::query(
            "UPDATE guest_names SET name_key = $1, name = $2 WHERE name_key = $3 \
             AND ($1 = $3 OR NOT EXISTS (SELECT 1 FROM guest_names WHERE name_key = $1))",
        )
        .bind(&new)
        .bind(&name)
        .bind(&old)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tracing::warn!(guest = %name, "another guest name looks the same; this one keeps its old name key");
        }
    }
    sqlx::query("UPDATE name_keys SET version = $1")
        .bind(KEY_VERSION)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Serialises, until the transaction ends, every claim and registration of
/// one name key or one guest holder (`what` is `key:…` or `holder:…`), on
/// every node.
async fn lock(conn: &mut PgConnection, what: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(what)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether any of `names` is a member of a direct-message room, without case.
async fn has_dms(conn: &mut PgConnection, names: &[&str]) -> Result<bool, StoreError> {
    for n in names {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM rooms WHERE name LIKE 'dm:%' AND \
             (lower(left(name, length($1) + 4)) = 'dm:' || lower($1) || ':' \
              OR lower(right(name, length($1) + 1)) = ':' || lower($1)))",
        )
        .bind(n)
        .fetch_one(&mut *conn)
        .await?;
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The reservation of `key`, read inside the caller's transaction.
async fn guest_row(
    conn: &mut PgConnection,
    key: &str,
    name: &str,
) -> Result<Option<GuestName>, StoreError> {
    let row: Option<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT holder, last_seen_ms, name FROM guest_names WHERE name_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((holder, last_seen_ms, last_name)) = row else {
        return Ok(None);
    };
    let last_name = last_name.unwrap_or_else(|| key.to_string());
    let has_dms = has_dms(conn, &[name, &last_name]).await?;
    Ok(Some(GuestName {
        holder,
        last_seen_ms,
        has_dms,
    }))
}

fn row_to_message(r: &PgRow) -> Message {
    Message {
        room: r.get("room"),
        id: r.get("id"),
        author: r.get("author"),
        body: r.get("body"),
        ts: format_ts(r.get("ts_ms")),
        nonce: r.get("nonce"),
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

    /// A conflict with another node's writer that a new attempt resolves:
    /// the same nonce stored meanwhile (the retry finds it), a deadlock or
    /// a serialisation failure.
    fn is_conflict(&self) -> bool {
        match &self.error {
            sqlx::Error::Database(e) => {
                matches!(e.code().as_deref(), Some("23505" | "40P01" | "40001"))
            }
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
    let mut attempt = 0;
    loop {
        attempt += 1;
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
        // A connection the server closed (a restart, pg_terminate_backend)
        // fails the first statement; a fresh one may well succeed.
        if err.committing || attempt >= ATTEMPTS {
            return Err(Failed {
                message: err.error.to_string(),
                row_error: false,
            });
        }
        if err.is_conflict() {
            tracing::debug!(error = %err.error, attempt, "postgres batch conflicted; retrying");
        } else {
            tracing::debug!(error = %err.error, attempt, "postgres batch failed; retrying");
            tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
        }
    }
}

async fn write_batch(pool: &PgPool, msgs: &[&NewMessage]) -> Result<Vec<Appended>, BatchError> {
    let mut conn = pool.acquire().await.map_err(BatchError::before_commit)?;
    let mut tx = conn.begin().await.map_err(BatchError::before_commit)?;
    let now = now_ms();

    // Sends already stored under the same (author, nonce), by any node.
    let keyed: Vec<(&str, &str)> = msgs
        .iter()
        .filter_map(|m| Some((m.author.as_str(), m.nonce.as_deref()?)))
        .collect();
    let mut stored: HashMap<(String, String), Message> = HashMap::new();
    if !keyed.is_empty() {
        let authors: Vec<&str> = keyed.iter().map(|k| k.0).collect();
        let nonces: Vec<&str> = keyed.iter().map(|k| k.1).collect();
        let rows = sqlx::query(
            "SELECT m.room, m.id, m.author, m.body, m.ts_ms, m.nonce \
             FROM UNNEST($1::text[], $2::text[]) AS k(author, nonce) \
             JOIN messages m ON m.author = k.author AND m.nonce = k.nonce \
             WHERE m.nonce IS NOT NULL",
        )
        .bind(&authors)
        .bind(&nonces)
        .fetch_all(&mut *tx)
        .await
        .map_err(BatchError::before_commit)?;
        for r in &rows {
            let m = row_to_message(r);
            if let Some(n) = m.nonce.clone() {
                stored.insert((m.author.clone(), n), m);
            }
        }
    }

    // Which messages are new, and the first of a retried pair within the batch.
    enum Slot {
        New,
        Stored(Message),
        SameAs(usize),
    }
    let mut slots = Vec::with_capacity(msgs.len());
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    // Room → indices of its new messages, in submission order. A BTreeMap
    // takes the rooms' row locks in name order on every node, so two
    // writers never wait for each other in a cycle.
    let mut by_room: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in msgs.iter().enumerate() {
        if let Some(nonce) = m.nonce.as_deref() {
            if let Some(prev) = stored.get(&(m.author.clone(), nonce.to_string())) {
                slots.push(Slot::Stored(prev.clone()));
                continue;
            }
            if let Some(&j) = first_of.get(&(m.author.as_str(), nonce)) {
                slots.push(Slot::SameAs(j));
                continue;
            }
            first_of.insert((m.author.as_str(), nonce), i);
        }
        slots.push(Slot::New);
        by_room.entry(m.room.as_str()).or_default().push(i);
    }

    let mut ids: HashMap<usize, i64> = HashMap::new();
    for (room, members) in &by_room {
        let n = members.len() as i64;
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO rooms (name, last_id, created_ms, active_ms) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE \
             SET last_id = rooms.last_id + EXCLUDED.last_id, active_ms = EXCLUDED.active_ms \
             RETURNING last_id",
        )
        .bind(room)
        .bind(n)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(BatchError::before_commit)?;
        for (k, &i) in members.iter().enumerate() {
            ids.insert(i, last - n + 1 + k as i64);
        }
    }

    if !ids.is_empty() {
        let mut rooms = Vec::with_capacity(ids.len());
        let mut idv = Vec::with_capacity(ids.len());
        let mut authors = Vec::with_capacity(ids.len());
        let mut bodies = Vec::with_capacity(ids.len());
        let mut nonces: Vec<Option<&str>> = Vec::with_capacity(ids.len());
        for (i, m) in msgs.iter().enumerate() {
            if let Some(id) = ids.get(&i) {
                rooms.push(m.room.as_str());
                idv.push(*id);
                authors.push(m.author.as_str());
                bodies.push(m.body.as_str());
                nonces.push(m.nonce.as_deref());
            }
        }
        sqlx::query(
            "INSERT INTO messages (room, id, author, body, ts_ms, nonce) \
             SELECT r, i, a, b, $5, n \
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $6::text[]) \
             AS t(r, i, a, b, n)",
        )
        .bind(&rooms)
        .bind(&idv)
        .bind(&authors)
        .bind(&bodies)
        .bind(now)
        .bind(&nonces)
        .execute(&mut *tx)
        .await
        .map_err(BatchError::before_commit)?;
    }

    tx.commit().await.map_err(|error| BatchError {
        error,
        committing: true,
    })?;

    let mut out: Vec<Appended> = Vec::with_capacity(msgs.len());
    for (i, slot) in slots.into_iter().enumerate() {
        let appended = match slot {
            Slot::Stored(message) => Appended {
                message,
                duplicate: true,
            },
            Slot::SameAs(j) => Appended {
                message: out[j].message.clone(),
                duplicate: true,
            },
            Slot::New => {
                let m = msgs[i];
                Appended {
                    message: Message {
                        room: m.room.clone(),
                        id: ids.get(&i).copied().unwrap_or_default(),
                        author: m.author.clone(),
                        body: m.body.clone(),
                        ts: format_ts(now),
                        nonce: m.nonce.clone(),
                    },
                    duplicate: false,
                }
            }
        };
        out.push(appended);
    }
    Ok(out)
}

#[async_trait]
impl Store for PostgresStore {
    async fn submit(&self, msg: NewMessage) -> Result<PendingAppend, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(Write::Append(msg, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    async fn page_before(
        &self,
        room: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let rows = sqlx::query(
            "SELECT room, id, author, body, ts_ms, nonce FROM messages \
             WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(room)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit;
        let mut messages: Vec<Message> = rows.iter().take(limit).map(row_to_message).collect();
        messages.reverse();
        Ok(Page { messages, more })
    }

    async fn range(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(
            "SELECT room, id, author, body, ts_ms, nonce FROM messages \
             WHERE room = $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT $4",
        )
        .bind(room)
        .bind(after)
        .bind(upto)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_to_message).collect())
    }

    async fn last_id(&self, room: &str) -> Result<i64, StoreError> {
        let id = sqlx::query_scalar::<_, i64>("SELECT last_id FROM rooms WHERE name = $1")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.unwrap_or(0))
    }

    async fn create_room(&self, room: &str) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO rooms (name, last_id, created_ms, active_ms) VALUES ($1, 0, $2, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(room)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_room_by(
        &self,
        room: &str,
        creator: &str,
        guest: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO rooms (name, last_id, created_ms, active_ms, creator, by_guest) \
             VALUES ($1, 0, $2, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(room)
        .bind(now)
        .bind(creator)
        .bind(guest)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn public_room_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rooms WHERE name NOT LIKE 'dm:%'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn expire_empty_rooms(&self, before_ms: i64, keep: &[String]) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM rooms WHERE by_guest AND last_id = 0 AND created_ms < $1 \
             AND NOT (name = ANY($2))",
        )
        .bind(before_ms)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn room_exists(&self, room: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM rooms WHERE name = $1)")
                .bind(room)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn public_rooms(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT name FROM rooms WHERE name NOT LIKE 'dm:%' \
             ORDER BY last_id > 0 DESC, active_ms DESC, name COLLATE \"C\" LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn dm_rooms(&self, user: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        // Names hold no ':', so a prefix "dm:<user>:" or a suffix ":<user>" is exact.
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT name FROM rooms WHERE name LIKE 'dm:%' AND \
             (left(name, length($1) + 4) = 'dm:' || $1 || ':' \
              OR right(name, length($1) + 1) = ':' || $1) \
             ORDER BY active_ms DESC LIMIT $2",
        )
        .bind(user)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_account(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO accounts (name, name_key, password_hash, created_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(name_key(name))
        .bind(password_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_account_for_guest(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx, &format!("key:{key}")).await?;
        let now = now_ms();
        let guest = guest_row(&mut tx, key, name).await?;
        let mine = guest
            .as_ref()
            .is_some_and(|g| Some(g.holder.as_str()) == holder);
        if let Some(g) = &guest
            && !mine
            && (g.has_dms || g.last_seen_ms >= now - keep_ms)
        {
            return Ok(false);
        }
        let done = sqlx::query(
            "INSERT INTO accounts (name, name_key, password_hash, created_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(key)
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if mine {
            sqlx::query("DELETE FROM guest_names WHERE name_key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        sessions_from_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET password_hash = $1, sessions_from_ms = $2 WHERE name = $3",
        )
        .bind(password_hash)
        .bind(sessions_from_ms)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        // The exact spelling first: an account whose key collided when keys
        // were rewritten still signs in.
        let row = sqlx::query(
            "SELECT name, password_hash, sessions_from_ms FROM accounts WHERE name_key = $1 OR name = $2 \
             ORDER BY name = $2 DESC LIMIT 1",
        )
        .bind(name_key(name))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Account {
            name: r.get("name"),
            password_hash: r.get("password_hash"),
            sessions_from_ms: r.get("sessions_from_ms"),
        }))
    }

    async fn create_token(
        &self,
        owner: &str,
        label: &str,
        token_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        let now = now_ms();
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO api_tokens (owner, label, token_hash, created_ms) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(owner)
        .bind(label)
        .bind(token_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(TokenInfo {
            id,
            label: label.to_string(),
            created_ms: now,
        })
    }

    async fn tokens(&self, owner: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, label, created_ms FROM api_tokens \
             WHERE owner = $1 AND revoked_ms IS NULL ORDER BY id DESC",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get("id"),
                label: r.get("label"),
                created_ms: r.get("created_ms"),
            })
            .collect())
    }

    async fn revoke_token(&self, owner: &str, id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>(
            "UPDATE api_tokens SET revoked_ms = $1 \
             WHERE owner = $2 AND id = $3 AND revoked_ms IS NULL RETURNING token_hash",
        )
        .bind(now_ms())
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn token_owner(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT owner FROM api_tokens WHERE token_hash = $1 AND revoked_ms IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn guest_name(&self, key: &str, name: &str) -> Result<Option<GuestName>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        guest_row(&mut conn, key, name).await
    }

    async fn claim_guest_name(
        &self,
        name: &str,
        key: &str,
        holder: &str,
        keep_ms: i64,
        max_names: u32,
    ) -> Result<GuestClaim, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Key first, then holder, always in this order (no deadlock):
        // claims and registrations of one name, and claims of one browser,
        // run one after another on every node.
        lock(&mut tx, &format!("key:{key}")).await?;
        lock(&mut tx, &format!("holder:{holder}")).await?;
        let now = now_ms();
        let account: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE name_key = $1)")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        if account {
            return Ok(GuestClaim::Taken);
        }
        let guest = guest_row(&mut tx, key, name).await?;
        let renewing = guest.as_ref().is_some_and(|g| g.holder == holder);
        if !renewing {
            if guest
                .as_ref()
                .is_some_and(|g| g.has_dms || g.last_seen_ms >= now - keep_ms)
            {
                return Ok(GuestClaim::Taken);
            }
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM guest_names WHERE holder = $1 AND last_seen_ms >= $2",
            )
            .bind(holder)
            .bind(now - keep_ms)
            .fetch_one(&mut *tx)
            .await?;
            if held >= i64::from(max_names) {
                return Ok(GuestClaim::TooMany);
            }
        }
        sqlx::query(
            "INSERT INTO guest_names (name_key, holder, last_seen_ms, name) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name_key) DO UPDATE SET holder = $2, last_seen_ms = $3, name = $4",
        )
        .bind(key)
        .bind(holder)
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(GuestClaim::Claimed)
    }

    async fn setting_or(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writes.send(Write::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.pool.close().await;
    }
}
