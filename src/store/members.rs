//! Private rooms, their members and every room's topic: written once for
//! both databases, as part of the [`Directory`].
//!
//! Direct rooms name their members; private rooms (`~name`) keep theirs in
//! `room_members`, with the room's maker as its owner (`rooms.creator`).

use super::dialect::Dialect;
use super::directory::Directory;
use super::rows::{AccountRow, GuestRow, TokenRow};
use super::{RoomMeta, StoreError, now_ms};
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};

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
    /// See [`Store::create_private_room`](super::Store::create_private_room).
    pub async fn create_private_room(
        &self,
        room: &str,
        owner: &str,
        topic: &str,
        members: &[String],
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let made = sqlx::query(
            "INSERT INTO rooms (name, last_id, created_ms, active_ms, creator, by_guest, topic) \
             VALUES ($1, 0, $2, $2, $3, FALSE, $4) ON CONFLICT DO NOTHING",
        )
        .bind(room)
        .bind(now)
        .bind(owner)
        .bind(topic)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&made) == 0 {
            return Ok(false);
        }
        for name in std::iter::once(owner).chain(members.iter().map(String::as_str)) {
            sqlx::query(
                "INSERT INTO room_members (room, name, added_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(room)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// See [`Store::room_meta`](super::Store::room_meta).
    pub async fn room_meta(&self, room: &str) -> Result<Option<RoomMeta>, StoreError> {
        let row: Option<(Option<String>, bool, String)> =
            sqlx::query_as("SELECT creator, by_guest, topic FROM rooms WHERE name = $1")
                .bind(room)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(creator, by_guest, topic)| RoomMeta {
            owner: creator.filter(|_| !by_guest),
            topic,
        }))
    }

    /// See [`Store::set_topic`](super::Store::set_topic).
    pub async fn set_topic(&self, room: &str, topic: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE rooms SET topic = $1 WHERE name = $2")
            .bind(topic)
            .bind(room)
            .execute(&self.write)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// See [`Store::room_topics`](super::Store::room_topics).
    pub async fn room_topics(&self, rooms: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let names = serde_json::to_string(rooms).unwrap_or_else(|_| "[]".into());
        Ok(sqlx::query_as(DB::ROOM_TOPICS)
            .bind(names)
            .fetch_all(&self.read)
            .await?)
    }

    /// See [`Store::is_room_member`](super::Store::is_room_member).
    pub async fn is_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM room_members WHERE room = $1 AND name = $2)",
        )
        .bind(room)
        .bind(name)
        .fetch_one(&self.read)
        .await?)
    }

    /// See [`Store::add_room_member`](super::Store::add_room_member).
    pub async fn add_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO room_members (room, name, added_ms) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM rooms WHERE name = $1) \
             ON CONFLICT DO NOTHING",
        )
        .bind(room)
        .bind(name)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// See [`Store::remove_room_member`](super::Store::remove_room_member).
    pub async fn remove_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM room_members WHERE room = $1 AND name = $2")
            .bind(room)
            .bind(name)
            .execute(&self.write)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// See [`Store::room_members`](super::Store::room_members).
    pub async fn room_members(&self, room: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM room_members WHERE room = $1 ORDER BY name")
                .bind(room)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// See [`Store::private_rooms`](super::Store::private_rooms).
    pub async fn private_rooms(&self, name: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT r.name FROM room_members m JOIN rooms r ON r.name = m.room \
             WHERE m.name = $1 ORDER BY r.active_ms DESC LIMIT $2",
        )
        .bind(name)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?)
    }
}
