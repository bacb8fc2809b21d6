//! Accounts, API tokens, guest names, settings and the room directory:
//! written once for both databases (see [`super::sql`]).

use super::dialect::Dialect;
use super::rows::{AccountRow, GuestRow, TokenRow};
use super::{
    Account, AccountChange, AccountInfo, Gate, GuestClaim, GuestName, Invite, InviteProblem,
    Registered, Role, StoreError, TokenInfo, now_ms,
};
use crate::names::{KEY_VERSION, name_key};
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

const INSERT_ACCOUNT: &str = "INSERT INTO accounts (name, name_key, password_hash, created_ms, role) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

/// The lock every registration and role change takes (PostgreSQL; SQLite
/// has one writer): "the first account is admin" and "never no admin" are
/// decided one at a time.
const ACCOUNTS_LOCK: &str = "accounts";

/// Everything but the message log, over `read` and `write` pools (the same
/// pool on PostgreSQL; on SQLite a read-only pool and the one connection
/// for rare writes).
pub struct Directory<DB: Dialect> {
    pub(super) read: Pool<DB>,
    pub(super) write: Pool<DB>,
}

impl<DB: Dialect> Directory<DB> {
    /// The pool written through, for the session store to share.
    pub fn write_pool(&self) -> Pool<DB> {
        self.write.clone()
    }
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
    /// The directory read through `read` and written through `write`.
    pub fn new(read: Pool<DB>, write: Pool<DB>) -> Self {
        Directory { read, write }
    }

    /// Rewrites the stored name keys made by an older [`name_key`] (once
    /// per version; nodes starting together take turns). A row whose new
    /// key another row has already keeps its old one, with a warning: it
    /// still signs in by its exact name.
    pub async fn rekey_names(&self) -> Result<(), StoreError> {
        let mut tx = DB::begin_serial(&self.write, &["name_keys".to_string()]).await?;
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
            let done = sqlx::query(
                "UPDATE accounts SET name_key = $1 WHERE name = $2 \
                 AND NOT EXISTS (SELECT 1 FROM accounts WHERE name_key = $1)",
            )
            .bind(new.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) == 0 {
                tracing::warn!(account = %name, "another account's name looks the same; this one keeps its old name key");
            }
        }
        // Old guest rows have only the lower-cased name: key it, and keep
        // it as the name last used (the DM check compares without case).
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
            .bind(new.as_str())
            .bind(name.as_str())
            .bind(old.as_str())
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) == 0 {
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

    /// See [`Store::public_room_count`](super::Store::public_room_count).
    pub async fn public_room_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM rooms WHERE name NOT LIKE 'dm:%' AND name NOT LIKE '~%'",
        )
        .fetch_one(&self.read)
        .await?)
    }

    /// See [`Store::expire_empty_rooms`](super::Store::expire_empty_rooms).
    pub async fn expire_empty_rooms(
        &self,
        before_ms: i64,
        keep: &[String],
    ) -> Result<u64, StoreError> {
        // The rooms to keep go in as one JSON array rather than a bind each.
        let keep = serde_json::to_string(keep).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(DB::EXPIRE_EMPTY_ROOMS)
            .bind(before_ms)
            .bind(keep)
            .execute(&self.write)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    /// See [`Store::room_exists`](super::Store::room_exists).
    pub async fn room_exists(&self, room: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rooms WHERE name = $1)")
                .bind(room)
                .fetch_one(&self.read)
                .await?,
        )
    }

    /// See [`Store::public_rooms`](super::Store::public_rooms).
    pub async fn public_rooms(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(DB::PUBLIC_ROOMS)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.read)
            .await?)
    }

    /// See [`Store::dm_rooms`](super::Store::dm_rooms).
    pub async fn dm_rooms(&self, user: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(DB::DM_ROOMS)
            .bind(user)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.read)
            .await?)
    }

    /// See [`Store::create_account`](super::Store::create_account).
    pub async fn create_account(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let key = name_key(name);
        let mut tx = DB::begin_serial(
            &self.write,
            &[ACCOUNTS_LOCK.to_string(), format!("key:{key}")],
        )
        .await?;
        let role = if any_account::<DB>(&mut tx).await? {
            Role::Member
        } else {
            Role::Admin
        };
        let done = sqlx::query(INSERT_ACCOUNT)
            .bind(name)
            .bind(key.as_str())
            .bind(password_hash)
            .bind(now_ms())
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// See [`Store::create_account_for_guest`](super::Store::create_account_for_guest).
    pub async fn create_account_for_guest(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = self
            .register_account(name, key, password_hash, holder, keep_ms, Gate::Open)
            .await?;
        Ok(matches!(done, Registered::Created(_)))
    }

    /// See [`Store::register_account`](super::Store::register_account).
    pub async fn register_account(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
        gate: Gate<'_>,
    ) -> Result<Registered, StoreError> {
        // No guest claim of the name, and no other registration, runs
        // between the checks and the insert.
        let mut tx = DB::begin_serial(
            &self.write,
            &[ACCOUNTS_LOCK.to_string(), format!("key:{key}")],
        )
        .await?;
        let now = now_ms();
        let guest = guest_row::<DB>(&mut tx, key, name).await?;
        let mine = guest
            .as_ref()
            .is_some_and(|g| Some(g.holder.as_str()) == holder);
        if let Some(g) = &guest
            && !mine
            && (g.has_dms || g.last_seen_ms >= now - keep_ms)
        {
            return Ok(Registered::Taken);
        }
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE name_key = $1 OR name = $2)",
        )
        .bind(key)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if taken {
            return Ok(Registered::Taken);
        }
        let role = if any_account::<DB>(&mut tx).await? {
            match gate {
                Gate::Open => {}
                Gate::Closed => return Ok(Registered::Closed),
                Gate::Invite(None) => return Ok(Registered::InviteNeeded),
                Gate::Invite(Some(code)) => {
                    // Used inside this transaction: undone if the account is not made.
                    let used = sqlx::query(
                        "UPDATE invites SET uses_left = uses_left - 1, used = used + 1 \
                         WHERE code = $1 AND revoked_ms IS NULL AND uses_left > 0 \
                         AND (expires_ms IS NULL OR expires_ms > $2)",
                    )
                    .bind(code)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if DB::rows_affected(&used) != 1 {
                        let problem = invite_row::<DB>(&mut tx, code)
                            .await?
                            .and_then(|i| i.problem(now))
                            .unwrap_or(InviteProblem::Unknown);
                        return Ok(Registered::BadInvite(problem));
                    }
                }
            }
            Role::Member
        } else {
            Role::Admin
        };
        let done = sqlx::query(INSERT_ACCOUNT)
            .bind(name)
            .bind(key)
            .bind(password_hash)
            .bind(now)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) != 1 {
            return Ok(Registered::Taken);
        }
        if mine {
            sqlx::query("DELETE FROM guest_names WHERE name_key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Registered::Created(role))
    }

    /// See [`Store::set_password`](super::Store::set_password).
    pub async fn set_password(
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
        .execute(&self.write)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// See [`Store::account`](super::Store::account).
    pub async fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        // The exact spelling first: an account whose key collided when keys
        // were rewritten still signs in.
        let row: Option<AccountRow> = sqlx::query_as(
            "SELECT name, password_hash, sessions_from_ms, role, banned_ms FROM accounts \
             WHERE name_key = $1 OR name = $2 ORDER BY name = $2 DESC LIMIT 1",
        )
        .bind(name_key(name))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(Account::from))
    }

    /// See [`Store::create_token`](super::Store::create_token).
    pub async fn create_token(
        &self,
        owner: &str,
        label: &str,
        token_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        let row: TokenRow = sqlx::query_as(
            "INSERT INTO api_tokens (owner, label, token_hash, created_ms) \
             VALUES ($1, $2, $3, $4) RETURNING id, label, created_ms",
        )
        .bind(owner)
        .bind(label)
        .bind(token_hash)
        .bind(now_ms())
        .fetch_one(&self.write)
        .await?;
        Ok(row.into())
    }

    /// See [`Store::tokens`](super::Store::tokens).
    pub async fn tokens(&self, owner: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, label, created_ms FROM api_tokens \
             WHERE owner = $1 AND revoked_ms IS NULL ORDER BY id DESC",
        )
        .bind(owner)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(TokenInfo::from).collect())
    }

    /// See [`Store::revoke_token`](super::Store::revoke_token).
    pub async fn revoke_token(&self, owner: &str, id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE api_tokens SET revoked_ms = $1 \
             WHERE owner = $2 AND id = $3 AND revoked_ms IS NULL RETURNING token_hash",
        )
        .bind(now_ms())
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.write)
        .await?)
    }

    /// See [`Store::token_owner`](super::Store::token_owner).
    pub async fn token_owner(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        // A banned account's tokens stop with it.
        Ok(sqlx::query_scalar(
            "SELECT t.owner FROM api_tokens t JOIN accounts a ON a.name = t.owner \
             WHERE t.token_hash = $1 AND t.revoked_ms IS NULL AND a.banned_ms IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    /// See [`Store::guest_name`](super::Store::guest_name).
    pub async fn guest_name(&self, key: &str, name: &str) -> Result<Option<GuestName>, StoreError> {
        let mut conn = self.read.acquire().await?;
        guest_row::<DB>(&mut conn, key, name).await
    }

    /// See [`Store::claim_guest_name`](super::Store::claim_guest_name).
    pub async fn claim_guest_name(
        &self,
        name: &str,
        key: &str,
        holder: &str,
        keep_ms: i64,
        max_names: u32,
    ) -> Result<GuestClaim, StoreError> {
        // Key first, then holder, always in this order (no deadlock): claims
        // and registrations of one name, and claims of one browser, run one
        // after another.
        let locks = [format!("key:{key}"), format!("holder:{holder}")];
        let mut tx = DB::begin_serial(&self.write, &locks).await?;
        let now = now_ms();
        let account: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE name_key = $1)")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        if account {
            return Ok(GuestClaim::Taken);
        }
        let guest = guest_row::<DB>(&mut tx, key, name).await?;
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
            "INSERT INTO guest_names (name_key, holder, last_seen_ms, name) \
             VALUES ($1, $2, $3, $4) \
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

    /// See [`Store::setting_or`](super::Store::setting_or).
    pub async fn setting_or(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.write)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_one(&self.write)
                .await?,
        )
    }

    // ---- Team accounts (issue 14) ----

    /// See [`Store::accounts_exist`](super::Store::accounts_exist).
    pub async fn accounts_exist(&self) -> Result<bool, StoreError> {
        let mut conn = self.read.acquire().await?;
        any_account::<DB>(&mut conn).await
    }

    /// See [`Store::set_role`](super::Store::set_role).
    pub async fn set_role(&self, name: &str, role: Role) -> Result<AccountChange, StoreError> {
        self.change_account(name, role == Role::Member, |tx_name| {
            sqlx::query("UPDATE accounts SET role = $1 WHERE name = $2")
                .bind(role.as_str())
                .bind(tx_name)
        })
        .await
    }

    /// See [`Store::set_banned`](super::Store::set_banned).
    pub async fn set_banned(&self, name: &str, banned: bool) -> Result<AccountChange, StoreError> {
        if banned {
            let now = now_ms();
            // A second ban keeps the first one's time.
            self.change_account(name, true, move |n| {
                sqlx::query(
                    "UPDATE accounts SET banned_ms = COALESCE(banned_ms, $1) WHERE name = $2",
                )
                .bind(now)
                .bind(n)
            })
            .await
        } else {
            self.change_account(name, false, |n| {
                sqlx::query("UPDATE accounts SET banned_ms = NULL WHERE name = $1").bind(n)
            })
            .await
        }
    }

    /// Runs one update of an account (by its exact name) under the
    /// accounts' lock; when `removes_admin`, refuses if the account is the
    /// last admin who is not banned.
    async fn change_account<'n>(
        &self,
        name: &'n str,
        removes_admin: bool,
        update: impl FnOnce(&'n str) -> sqlx::query::Query<'n, DB, DB::Arguments<'n>>,
    ) -> Result<AccountChange, StoreError> {
        let mut tx = DB::begin_serial(&self.write, &[ACCOUNTS_LOCK.to_string()]).await?;
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT role, banned_ms FROM accounts WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((role, banned_ms)) = row else {
            return Ok(AccountChange::NoSuchAccount);
        };
        if removes_admin && Role::from_stored(&role) == Role::Admin && banned_ms.is_none() {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM accounts \
                 WHERE role = 'admin' AND banned_ms IS NULL AND name <> $1",
            )
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Ok(AccountChange::LastAdmin);
            }
        }
        update(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(AccountChange::Done)
    }

    /// See [`Store::account_list`](super::Store::account_list).
    pub async fn account_list(&self) -> Result<Vec<AccountInfo>, StoreError> {
        let rows: Vec<(String, String, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT name, role, last_seen_ms, banned_ms FROM accounts ORDER BY name_key, name",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, role, last_seen_ms, banned_ms)| AccountInfo {
                name,
                role: Role::from_stored(&role),
                last_seen_ms,
                banned: banned_ms.is_some(),
            })
            .collect())
    }

    /// See [`Store::touch_seen`](super::Store::touch_seen).
    pub async fn touch_seen(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET last_seen_ms = $1 WHERE name = $2")
            .bind(now_ms())
            .bind(name)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// See [`Store::banned_since`](super::Store::banned_since).
    pub async fn banned_since(&self, since_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM accounts WHERE banned_ms >= $1")
                .bind(since_ms)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// See [`Store::create_invite`](super::Store::create_invite).
    pub async fn create_invite(
        &self,
        code: &str,
        created_by: &str,
        uses: i64,
        expires_ms: i64,
    ) -> Result<Invite, StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO invites (code, created_by, created_ms, expires_ms, uses_left) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code)
        .bind(created_by)
        .bind(now)
        .bind(expires_ms)
        .bind(uses)
        .execute(&self.write)
        .await?;
        Ok(Invite {
            code: code.to_string(),
            created_by: created_by.to_string(),
            created_ms: now,
            expires_ms: Some(expires_ms),
            uses_left: uses,
            used: 0,
            revoked: false,
        })
    }

    /// See [`Store::invite`](super::Store::invite).
    pub async fn invite(&self, code: &str) -> Result<Option<Invite>, StoreError> {
        let mut conn = self.read.acquire().await?;
        invite_row::<DB>(&mut conn, code).await
    }

    /// See [`Store::live_invites`](super::Store::live_invites).
    pub async fn live_invites(&self) -> Result<Vec<Invite>, StoreError> {
        let rows: Vec<InviteTuple> = sqlx::query_as(&format!(
            "SELECT {INVITE_COLUMNS} FROM invites WHERE revoked_ms IS NULL AND uses_left > 0 \
             AND (expires_ms IS NULL OR expires_ms > $1) ORDER BY created_ms DESC, code"
        ))
        .bind(now_ms())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(invite_of).collect())
    }

    /// See [`Store::revoke_invite`](super::Store::revoke_invite).
    pub async fn revoke_invite(&self, code: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE invites SET revoked_ms = $1 WHERE code = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(code)
        .execute(&self.write)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// See [`Store::block_guest`](super::Store::block_guest).
    pub async fn block_guest(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO guest_blocks (name_key, until_ms) VALUES ($1, $2) \
             ON CONFLICT (name_key) DO UPDATE SET until_ms = $2",
        )
        .bind(key)
        .bind(until_ms)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// See [`Store::guest_blocked`](super::Store::guest_blocked).
    pub async fn guest_blocked(&self, key: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM guest_blocks WHERE name_key = $1 AND until_ms > $2)",
        )
        .bind(key)
        .bind(now_ms())
        .fetch_one(&self.read)
        .await?)
    }

    // ---- end of team accounts ----
}

/// Whether any account exists, read on `conn`.
async fn any_account<DB>(conn: &mut DB::Connection) -> Result<bool, StoreError>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts)")
        .fetch_one(&mut *conn)
        .await?)
}

const INVITE_COLUMNS: &str =
    "code, created_by, created_ms, expires_ms, uses_left, used, revoked_ms";
type InviteTuple = (String, String, i64, Option<i64>, i64, i64, Option<i64>);

fn invite_of(r: InviteTuple) -> Invite {
    Invite {
        code: r.0,
        created_by: r.1,
        created_ms: r.2,
        expires_ms: r.3,
        uses_left: r.4,
        used: r.5,
        revoked: r.6.is_some(),
    }
}

/// An invite by its code, read on `conn`.
async fn invite_row<DB>(conn: &mut DB::Connection, code: &str) -> Result<Option<Invite>, StoreError>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let row: Option<InviteTuple> = sqlx::query_as(&format!(
        "SELECT {INVITE_COLUMNS} FROM invites WHERE code = $1"
    ))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(invite_of))
}

/// The reservation of `key`, read on `conn` (inside the caller's
/// transaction, when it has one).
async fn guest_row<DB>(
    conn: &mut DB::Connection,
    key: &str,
    name: &str,
) -> Result<Option<GuestName>, StoreError>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> GuestRow: FromRow<'r, DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    let row: Option<GuestRow> =
        sqlx::query_as("SELECT holder, last_seen_ms, name FROM guest_names WHERE name_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let last_name = row.name.unwrap_or_else(|| key.to_string());
    let mut has_dms = false;
    for n in [name, last_name.as_str()] {
        has_dms = sqlx::query_scalar(DB::HAS_DMS)
            .bind(n)
            .fetch_one(&mut *conn)
            .await?;
        if has_dms {
            break;
        }
    }
    Ok(Some(GuestName {
        holder: row.holder,
        last_seen_ms: row.last_seen_ms,
        has_dms,
    }))
}
