//! Web Push subscriptions, per account and browser: written once for both
//! databases, as part of the [`Directory`].

use super::dialect::Dialect;
use super::directory::Directory;
use super::rows::{AccountRow, GuestRow, TokenRow};
use super::{PushSubscription, StoreError};
use crate::protocol::NotifyLevel;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};

type Row = (String, String, String, String, i64, String, i64);

const COLUMNS: &str = "endpoint, account, p256dh, auth, previews, label, created_ms";

fn subscription(
    (endpoint, account, p256dh, auth, previews, label, created_ms): Row,
) -> PushSubscription {
    PushSubscription {
        endpoint,
        account,
        p256dh,
        auth,
        previews: previews != 0,
        label,
        created_ms,
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
    /// See [`Store::save_push`](super::Store::save_push).
    pub async fn save_push(&self, sub: &PushSubscription, keep: usize) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        // An endpoint is one browser profile: whoever subscribes it last
        // owns it (another account signed in on the same browser).
        sqlx::query(&format!(
            "INSERT INTO push_subscriptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (endpoint) DO UPDATE SET account = excluded.account, \
             p256dh = excluded.p256dh, auth = excluded.auth, previews = excluded.previews, \
             label = excluded.label, created_ms = excluded.created_ms"
        ))
        .bind(&sub.endpoint)
        .bind(&sub.account)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(i64::from(sub.previews))
        .bind(&sub.label)
        .bind(sub.created_ms)
        .execute(&mut *tx)
        .await?;
        // The oldest go first past `keep` devices.
        sqlx::query(
            "DELETE FROM push_subscriptions WHERE account = $1 AND endpoint NOT IN \
             (SELECT endpoint FROM push_subscriptions WHERE account = $1 \
              ORDER BY created_ms DESC, endpoint LIMIT $2)",
        )
        .bind(&sub.account)
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// See [`Store::delete_push`](super::Store::delete_push).
    pub async fn delete_push(&self, account: &str, endpoint: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM push_subscriptions WHERE account = $1 AND endpoint = $2")
                .bind(account)
                .bind(endpoint)
                .execute(&self.write)
                .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// See [`Store::forget_push`](super::Store::forget_push).
    pub async fn forget_push(&self, endpoint: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
            .bind(endpoint)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// See [`Store::pushes`](super::Store::pushes).
    pub async fn pushes(&self, account: &str) -> Result<Vec<PushSubscription>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE account = $1 \
             AND account IN (SELECT name FROM accounts WHERE banned_ms IS NULL) \
             ORDER BY created_ms DESC, endpoint"
        ))
        .bind(account)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(subscription).collect())
    }

    /// See [`Store::push_accounts`](super::Store::push_accounts).
    pub async fn push_accounts(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT account FROM push_subscriptions \
             WHERE account IN (SELECT name FROM accounts WHERE banned_ms IS NULL) \
             ORDER BY account",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }

    /// See [`Store::chosen_levels`](super::Store::chosen_levels).
    pub async fn chosen_levels(
        &self,
        room: &str,
    ) -> Result<Vec<(String, NotifyLevel)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT account, notify FROM reads WHERE room = $1 AND notify IS NOT NULL",
        )
        .bind(room)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(a, l)| super::reads::level_of(&l).map(|l| (a, l)))
            .collect())
    }
}
