//! SQLite history: one file in WAL mode, read through a small pool and
//! written by a single task that commits the appends of concurrent senders in
//! one transaction per batch.

use super::{
    Appended, GuestClaim, GuestName, NewMessage, Page, PendingAppend, Store, StoreError, format_ts,
    now_ms,
};
use crate::names::{KEY_VERSION, name_key};
use crate::protocol::Message;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};
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
    /// A room, and who made it when it is new (name, guest or not).
    CreateRoom(String, Option<(String, bool)>, Reply<()>),
    /// Everything queued before it is written first.
    Shutdown(oneshot::Sender<()>),
}

/// The SQLite store.
pub struct SqliteStore {
    read: SqlitePool,
    writes: mpsc::Sender<Write>,
    /// Rare writes (accounts, tokens, sessions) beside the message writer;
    /// SQLite's busy timeout orders the two.
    admin: SqlitePool,
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
        let admin = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        rekey_names(&admin).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.read_only(true))
            .await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_writer(writer, rx));
        Ok(SqliteStore {
            read,
            writes: tx,
            admin,
        })
    }

    /// The pool for rare writes, shared with the session store.
    pub fn admin_pool(&self) -> SqlitePool {
        self.admin.clone()
    }

    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Write) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Rewrites the stored name keys made by an older [`name_key`] (once per
/// version). A row whose new key another row has already keeps its old one,
/// with a warning: it still signs in by its exact name.
async fn rekey_names(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let version: i64 = sqlx::query_scalar("SELECT version FROM name_keys")
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
        let done = sqlx::query("UPDATE OR IGNORE accounts SET name_key = ? WHERE name = ?")
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
            "UPDATE OR IGNORE guest_names SET name_key = ?, name = ? WHERE name_key = ?",
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
    sqlx::query("UPDATE name_keys SET version = ?")
        .bind(KEY_VERSION)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether any of `names` is a member of a direct-message room. Without
/// case (ASCII only in SQLite), so exact spellings always match.
async fn has_dms(conn: &mut SqliteConnection, names: &[&str]) -> Result<bool, StoreError> {
    for n in names {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM rooms WHERE name LIKE 'dm:%' AND \
             (lower(substr(name, 1, length(?1) + 4)) = 'dm:' || lower(?1) || ':' \
              OR lower(substr(name, -length(?1) - 1)) = ':' || lower(?1)))",
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
    conn: &mut SqliteConnection,
    key: &str,
    name: &str,
) -> Result<Option<GuestName>, StoreError> {
    let row: Option<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT holder, last_seen_ms, name FROM guest_names WHERE name_key = ?")
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

fn row_to_message(r: &SqliteRow) -> Message {
    Message {
        room: r.get("room"),
        id: r.get("id"),
        author: r.get("author"),
        body: r.get("body"),
        ts: format_ts(r.get("ts_ms")),
        nonce: r.get("nonce"),
    }
}

/// What one queued write came to, before the commit decides its fate.
enum Outcome {
    Appended(Appended),
    Done,
}

async fn run_writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Write>) {
    // The writer is the only one to hand out ids, so it may remember them;
    // forgotten after a failed transaction.
    let mut last_ids: HashMap<String, i64> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = write_batch(&mut conn, &mut last_ids, &batch).await;
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
                        Outcome::Done => Err(StoreError::Closed),
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

async fn write_batch(
    conn: &mut SqliteConnection,
    last_ids: &mut HashMap<String, i64>,
    batch: &[Write],
) -> Result<Vec<Outcome>, sqlx::Error> {
    // IMMEDIATE: take the write lock at the start, so a lock held by another
    // process is waited out (busy timeout) rather than failing mid-way.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let now = now_ms();
    let mut out = Vec::with_capacity(batch.len());
    let mut touched: Vec<String> = Vec::new();
    // Earlier sends with the same (author, nonce): one query for the batch.
    let mut seen: HashMap<(String, String), Message> = HashMap::new();
    let keyed: Vec<(&str, &str)> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Append(m, _) => m.nonce.as_deref().map(|n| (m.author.as_str(), n)),
            _ => None,
        })
        .collect();
    for chunk in keyed.chunks(400) {
        // A join, not `(author, nonce) IN (VALUES ...)`: SQLite plans the IN
        // form as a scan of the whole table, the join as one index search per
        // nonce (EXPLAIN QUERY PLAN; it was most of the writer's time).
        let mut q = sqlx::QueryBuilder::new("WITH v(author, nonce) AS (");
        q.push_values(chunk, |mut b, (author, nonce)| {
            b.push_bind(*author).push_bind(*nonce);
        });
        q.push(
            ") SELECT m.room AS room, m.id AS id, m.author AS author, m.body AS body, \
             m.ts_ms AS ts_ms, m.nonce AS nonce FROM v CROSS JOIN messages m ON m.author = v.author AND m.nonce = v.nonce \
             WHERE m.nonce IS NOT NULL",
        );
        for r in q.build().fetch_all(&mut *tx).await? {
            let m = row_to_message(&r);
            if let Some(n) = m.nonce.clone() {
                seen.insert((m.author.clone(), n), m);
            }
        }
    }
    let mut new_rows: Vec<Message> = Vec::new();
    for w in batch {
        match w {
            Write::Append(m, _) => {
                if let Some(nonce) = m.nonce.as_deref()
                    && let Some(prev) = seen.get(&(m.author.clone(), nonce.to_string()))
                {
                    out.push(Outcome::Appended(Appended {
                        message: prev.clone(),
                        duplicate: true,
                    }));
                    continue;
                }
                let last = match last_ids.get(&m.room) {
                    Some(id) => *id,
                    None => {
                        sqlx::query(
                            "INSERT OR IGNORE INTO rooms (name, last_id, created_ms, active_ms) \
                             VALUES (?, 0, ?, ?)",
                        )
                        .bind(&m.room)
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query_scalar::<_, i64>("SELECT last_id FROM rooms WHERE name = ?")
                            .bind(&m.room)
                            .fetch_one(&mut *tx)
                            .await?
                    }
                };
                let id = last + 1;
                last_ids.insert(m.room.clone(), id);
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
                };
                if let Some(nonce) = m.nonce.clone() {
                    // A retry later in this same batch finds this one.
                    seen.insert((m.author.clone(), nonce), message.clone());
                }
                new_rows.push(message.clone());
                out.push(Outcome::Appended(Appended {
                    message,
                    duplicate: false,
                }));
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
            Write::Shutdown(_) => out.push(Outcome::Done),
        }
    }
    // One multi-row INSERT per chunk instead of a statement per message.
    for chunk in new_rows.chunks(500) {
        let mut q =
            sqlx::QueryBuilder::new("INSERT INTO messages (room, id, author, body, ts_ms, nonce) ");
        q.push_values(chunk, |mut b, m| {
            b.push_bind(&m.room)
                .push_bind(m.id)
                .push_bind(&m.author)
                .push_bind(&m.body)
                .push_bind(now)
                .push_bind(&m.nonce);
        });
        q.build().execute(&mut *tx).await?;
    }
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

#[async_trait]
impl Store for SqliteStore {
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
             WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(room)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64 + 1)
        .fetch_all(&self.read)
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
             WHERE room = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?",
        )
        .bind(room)
        .bind(after)
        .bind(upto)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(row_to_message).collect())
    }

    async fn last_id(&self, room: &str) -> Result<i64, StoreError> {
        let id = sqlx::query_scalar::<_, i64>("SELECT last_id FROM rooms WHERE name = ?")
            .bind(room)
            .fetch_optional(&self.read)
            .await?;
        Ok(id.unwrap_or(0))
    }

    async fn create_room(&self, room: &str) -> Result<(), StoreError> {
        let room = room.to_string();
        self.write(|reply| Write::CreateRoom(room, None, reply))
            .await
    }

    async fn create_room_by(
        &self,
        room: &str,
        creator: &str,
        guest: bool,
    ) -> Result<(), StoreError> {
        let room = room.to_string();
        let creator = Some((creator.to_string(), guest));
        self.write(|reply| Write::CreateRoom(room, creator, reply))
            .await
    }

    async fn public_room_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rooms WHERE name NOT LIKE 'dm:%'")
                .fetch_one(&self.read)
                .await?,
        )
    }

    async fn expire_empty_rooms(&self, before_ms: i64, keep: &[String]) -> Result<u64, StoreError> {
        // The rooms to keep go in as one JSON array rather than a bind each.
        let keep = serde_json::to_string(keep).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(
            "DELETE FROM rooms WHERE by_guest AND last_id = 0 AND created_ms < ? \
             AND name NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(before_ms)
        .bind(keep)
        .execute(&self.admin)
        .await?;
        Ok(done.rows_affected())
    }

    async fn room_exists(&self, room: &str) -> Result<bool, StoreError> {
        let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rooms WHERE name = ?")
            .bind(room)
            .fetch_one(&self.read)
            .await?;
        Ok(n > 0)
    }

    async fn public_rooms(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT name FROM rooms WHERE name NOT LIKE 'dm:%' \
             ORDER BY last_id > 0 DESC, active_ms DESC, name LIMIT ?",
        )
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?)
    }

    async fn dm_rooms(&self, user: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        // Names hold no ':', so a prefix "dm:<user>:" or a suffix ":<user>" is exact.
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT name FROM rooms WHERE name LIKE 'dm:%' AND \
             (substr(name, 1, length(?1) + 4) = 'dm:' || ?1 || ':' \
              OR substr(name, -length(?1) - 1) = ':' || ?1) \
             ORDER BY active_ms DESC LIMIT ?2",
        )
        .bind(user)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?)
    }

    async fn create_account(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO accounts (name, name_key, password_hash, created_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(name_key(name))
        .bind(password_hash)
        .bind(now_ms())
        .execute(&self.admin)
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
        // One transaction on the single admin connection: no guest claim
        // runs between the check and the insert.
        let mut conn = self.admin.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
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
            "INSERT INTO accounts (name, name_key, password_hash, created_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
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
            sqlx::query("DELETE FROM guest_names WHERE name_key = ?")
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
            "UPDATE accounts SET password_hash = ?, sessions_from_ms = ? WHERE name = ?",
        )
        .bind(password_hash)
        .bind(sessions_from_ms)
        .bind(name)
        .execute(&self.admin)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn account(&self, name: &str) -> Result<Option<super::Account>, StoreError> {
        // The exact spelling first: an account whose key collided when keys
        // were rewritten still signs in.
        let row = sqlx::query(
            "SELECT name, password_hash, sessions_from_ms FROM accounts WHERE name_key = ?1 OR name = ?2 \
             ORDER BY name = ?2 DESC LIMIT 1",
        )
        .bind(name_key(name))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| super::Account {
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
    ) -> Result<super::TokenInfo, StoreError> {
        let now = now_ms();
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO api_tokens (owner, label, token_hash, created_ms) VALUES (?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(owner)
        .bind(label)
        .bind(token_hash)
        .bind(now)
        .fetch_one(&self.admin)
        .await?;
        Ok(super::TokenInfo {
            id,
            label: label.to_string(),
            created_ms: now,
        })
    }

    async fn tokens(&self, owner: &str) -> Result<Vec<super::TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, label, created_ms FROM api_tokens \
             WHERE owner = ? AND revoked_ms IS NULL ORDER BY id DESC",
        )
        .bind(owner)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| super::TokenInfo {
                id: r.get("id"),
                label: r.get("label"),
                created_ms: r.get("created_ms"),
            })
            .collect())
    }

    async fn revoke_token(&self, owner: &str, id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>(
            "UPDATE api_tokens SET revoked_ms = ? WHERE owner = ? AND id = ? AND revoked_ms IS NULL \
             RETURNING token_hash",
        )
        .bind(now_ms())
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.admin)
        .await?)
    }

    async fn token_owner(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT owner FROM api_tokens WHERE token_hash = ? AND revoked_ms IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn guest_name(&self, key: &str, name: &str) -> Result<Option<GuestName>, StoreError> {
        let mut conn = self.read.acquire().await?;
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
        // One transaction on the single admin connection: concurrent claims
        // of one browser are counted one after another.
        let mut conn = self.admin.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_ms();
        let account: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE name_key = ?")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if account.is_some() {
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
                "SELECT COUNT(*) FROM guest_names WHERE holder = ? AND last_seen_ms >= ?",
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
            "INSERT INTO guest_names (name_key, holder, last_seen_ms, name) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name_key) DO UPDATE SET holder = ?2, last_seen_ms = ?3, name = ?4",
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
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.admin)
        .await?;
        Ok(
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_one(&self.admin)
                .await?,
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writes.send(Write::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.read.close().await;
    }
}
