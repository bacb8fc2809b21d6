//! A store over one SQL database: the message log each backend writes its
//! own way, and everything else in SQL both databases share.
//!
//! [`SqlStore`] joins a backend's [`MessageLog`] (batched appends, which
//! differ: SQLite has one writing process, PostgreSQL several nodes) with
//! [`History`] and [`Directory`], written once over any sqlx database that
//! implements [`Dialect`]: sqlx's SQLite driver reads the same `$1`
//! placeholders as PostgreSQL, so the SQL is the same text on both.

use super::change::search_words;
use super::dialect::Dialect;
use super::directory::Directory;
use super::history::History;
use super::rows::{AccountRow, GuestRow, MessageRow, TokenRow};
use super::{
    Account, AccountChange, AccountInfo, Around, Change, Changed, FileReaders, FileRecord, Found,
    Gate, GuestClaim, GuestName, Invite, NewMessage, Page, PendingAppend, PushSubscription,
    ReadState, Registered, Role, RoomMeta, SearchAfter, Store, StoreError, TokenInfo, Unread,
};
use crate::protocol::{FileObject, Message};
use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};

/// The part of a store each backend writes its own way: appends, and room
/// rows, whose `last_id` the writer hands out ids from.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// See [`Store::submit`].
    async fn submit(&self, msg: NewMessage) -> Result<PendingAppend, StoreError>;

    /// See [`Store::change`].
    async fn change(&self, room: &str, id: i64, change: Change) -> Result<Changed, StoreError>;

    /// Records a room (idempotent), with who made it when given (name,
    /// guest or not); an existing room keeps its maker.
    async fn create_room(
        &self,
        room: &str,
        creator: Option<(&str, bool)>,
    ) -> Result<(), StoreError>;

    /// Returns once search sees every write committed before the call
    /// (at most a short wait), for a log whose index follows its writes.
    async fn searchable(&self) {}

    /// Writes what is queued and stops the writer.
    async fn close(&self);
}

/// A store over one SQL database; see the module documentation.
pub struct SqlStore<DB: Dialect, L> {
    pub(super) log: L,
    pub(super) history: History<DB>,
    pub(super) directory: Directory<DB>,
}

#[async_trait]
impl<DB, L> Store for SqlStore<DB, L>
where
    DB: Dialect,
    L: MessageLog,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Decode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    (String, i64, String, Option<i64>, Option<i64>): for<'r> FromRow<'r, DB::Row>,
    (String, i64, String, Option<i64>, Option<i64>, String): for<'r> FromRow<'r, DB::Row>,
    (String, i64, Option<String>): for<'r> FromRow<'r, DB::Row>,
    for<'r> MessageRow: FromRow<'r, DB::Row>,
    for<'r> AccountRow: FromRow<'r, DB::Row>,
    for<'r> TokenRow: FromRow<'r, DB::Row>,
    for<'r> GuestRow: FromRow<'r, DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn submit(&self, msg: NewMessage) -> Result<PendingAppend, StoreError> {
        self.log.submit(msg).await
    }

    async fn page_before(
        &self,
        room: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.history.page_before(room, before, limit).await
    }

    async fn range(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.history.range(room, after, upto, limit).await
    }

    async fn last_id(&self, room: &str) -> Result<i64, StoreError> {
        self.history.last_id(room).await
    }

    async fn change(&self, room: &str, id: i64, change: Change) -> Result<Changed, StoreError> {
        self.log.change(room, id, change).await
    }

    async fn changes(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>, StoreError> {
        self.history.changes(room, after, upto, limit).await
    }

    async fn last_rev(&self, room: &str) -> Result<i64, StoreError> {
        self.history.last_rev(room).await
    }

    async fn message(&self, room: &str, id: i64) -> Result<Option<Message>, StoreError> {
        self.history.message(room, id).await
    }

    async fn around(&self, room: &str, id: i64, limit: usize) -> Result<Around, StoreError> {
        self.history.around(room, id, limit).await
    }

    async fn search(
        &self,
        rooms: &[String],
        query: &str,
        after: Option<&SearchAfter>,
        limit: usize,
    ) -> Result<Found, StoreError> {
        let words = search_words(query);
        if words.is_empty() || rooms.is_empty() || limit == 0 {
            return Ok(Found::default());
        }
        // The cursor's message gives its key; one gone since (its room
        // deleted) ends the results.
        let below = match after {
            None => i64::MAX,
            Some(a) => match self.history.seq(&a.room, a.id).await? {
                Some(seq) => seq,
                None => return Ok(Found::default()),
            },
        };
        self.log.searchable().await;
        let rows = DB::search(self.history.pool(), rooms, &words, below, limit).await?;
        let next = rows
            .last()
            .filter(|_| rows.len() >= limit)
            .map(|r| SearchAfter {
                room: r.room.clone(),
                id: r.id,
            });
        let messages = rows.into_iter().map(Message::from).collect();
        Ok(Found { messages, next })
    }

    async fn create_room(&self, room: &str) -> Result<(), StoreError> {
        self.log.create_room(room, None).await
    }

    async fn create_room_by(
        &self,
        room: &str,
        creator: &str,
        guest: bool,
    ) -> Result<(), StoreError> {
        self.log.create_room(room, Some((creator, guest))).await
    }

    async fn public_room_count(&self) -> Result<i64, StoreError> {
        self.directory.public_room_count().await
    }

    async fn expire_empty_rooms(&self, before_ms: i64, keep: &[String]) -> Result<u64, StoreError> {
        self.directory.expire_empty_rooms(before_ms, keep).await
    }

    async fn room_exists(&self, room: &str) -> Result<bool, StoreError> {
        self.directory.room_exists(room).await
    }

    async fn public_rooms(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.directory.public_rooms(limit).await
    }

    async fn dm_rooms(&self, user: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.directory.dm_rooms(user, limit).await
    }

    async fn create_account(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.directory.create_account(name, password_hash).await
    }

    async fn create_account_for_guest(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
    ) -> Result<bool, StoreError> {
        self.directory
            .create_account_for_guest(name, key, password_hash, holder, keep_ms)
            .await
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        sessions_from_ms: i64,
    ) -> Result<bool, StoreError> {
        self.directory
            .set_password(name, password_hash, sessions_from_ms)
            .await
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.directory.account(name).await
    }

    async fn create_token(
        &self,
        owner: &str,
        label: &str,
        token_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        self.directory.create_token(owner, label, token_hash).await
    }

    async fn tokens(&self, owner: &str) -> Result<Vec<TokenInfo>, StoreError> {
        self.directory.tokens(owner).await
    }

    async fn revoke_token(&self, owner: &str, id: i64) -> Result<Option<String>, StoreError> {
        self.directory.revoke_token(owner, id).await
    }

    async fn token_owner(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        self.directory.token_owner(token_hash).await
    }

    async fn guest_name(&self, key: &str, name: &str) -> Result<Option<GuestName>, StoreError> {
        self.directory.guest_name(key, name).await
    }

    async fn claim_guest_name(
        &self,
        name: &str,
        key: &str,
        holder: &str,
        keep_ms: i64,
        max_names: u32,
    ) -> Result<GuestClaim, StoreError> {
        self.directory
            .claim_guest_name(name, key, holder, keep_ms, max_names)
            .await
    }

    async fn setting_or(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        self.directory.setting_or(name, fresh).await
    }

    async fn create_private_room(
        &self,
        room: &str,
        owner: &str,
        topic: &str,
        members: &[String],
    ) -> Result<bool, StoreError> {
        self.directory
            .create_private_room(room, owner, topic, members)
            .await
    }

    async fn room_meta(&self, room: &str) -> Result<Option<RoomMeta>, StoreError> {
        self.directory.room_meta(room).await
    }

    async fn set_topic(&self, room: &str, topic: &str) -> Result<bool, StoreError> {
        self.directory.set_topic(room, topic).await
    }

    async fn room_topics(&self, rooms: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        self.directory.room_topics(rooms).await
    }

    async fn is_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        self.directory.is_room_member(room, name).await
    }

    async fn add_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        self.directory.add_room_member(room, name).await
    }

    async fn remove_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        self.directory.remove_room_member(room, name).await
    }

    async fn room_members(&self, room: &str) -> Result<Vec<String>, StoreError> {
        self.directory.room_members(room).await
    }

    async fn private_rooms(&self, name: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.directory.private_rooms(name, limit).await
    }

    // ---- Reading and notification levels (issue 16) ----

    async fn read_states(&self, account: &str) -> Result<Vec<ReadState>, StoreError> {
        self.directory.read_states(account).await
    }

    async fn mark_read(
        &self,
        account: &str,
        room: &str,
        id: i64,
    ) -> Result<(i64, bool), StoreError> {
        self.directory.mark_read(account, room, id).await
    }

    async fn save_upload(
        &self,
        file: &FileObject,
        account: &str,
        thumb_mime: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.directory
            .save_upload(file, account, thumb_mime, now_ms)
            .await
    }

    async fn upload_total(&self, account: &str) -> Result<u64, StoreError> {
        self.directory.upload_total(account).await
    }

    async fn attachable(
        &self,
        account: &str,
        room: &str,
        ids: &[String],
    ) -> Result<Option<Vec<FileObject>>, StoreError> {
        self.directory.attachable(account, room, ids).await
    }

    async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        self.directory.file(id).await
    }

    async fn file_readers(
        &self,
        id: &str,
        account: Option<&str>,
    ) -> Result<FileReaders, StoreError> {
        self.directory.file_readers(id, account).await
    }

    async fn sweep_files(
        &self,
        unsent_before_ms: i64,
        untouched_before_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.directory
            .sweep_files(unsent_before_ms, untouched_before_ms)
            .await
    }

    async fn save_push(&self, sub: &PushSubscription, keep: usize) -> Result<(), StoreError> {
        self.directory.save_push(sub, keep).await
    }

    async fn delete_push(&self, account: &str, endpoint: &str) -> Result<bool, StoreError> {
        self.directory.delete_push(account, endpoint).await
    }

    async fn forget_push(&self, endpoint: &str) -> Result<(), StoreError> {
        self.directory.forget_push(endpoint).await
    }

    async fn pushes(&self, account: &str) -> Result<Vec<PushSubscription>, StoreError> {
        self.directory.pushes(account).await
    }

    async fn push_accounts(&self) -> Result<Vec<String>, StoreError> {
        self.directory.push_accounts().await
    }

    async fn chosen_levels(
        &self,
        room: &str,
    ) -> Result<Vec<(String, crate::protocol::NotifyLevel)>, StoreError> {
        self.directory.chosen_levels(room).await
    }

    async fn set_notify(
        &self,
        account: &str,
        room: &str,
        level: crate::protocol::NotifyLevel,
    ) -> Result<(), StoreError> {
        self.directory.set_notify(account, room, level).await
    }

    async fn unread(
        &self,
        account: &str,
        room: &str,
        after: i64,
        cap: u64,
    ) -> Result<Unread, StoreError> {
        self.directory.unread(account, room, after, cap).await
    }

    // ---- Team accounts (issue 14) ----

    async fn register_account(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
        gate: Gate<'_>,
    ) -> Result<Registered, StoreError> {
        self.directory
            .register_account(name, key, password_hash, holder, keep_ms, gate)
            .await
    }

    async fn accounts_exist(&self) -> Result<bool, StoreError> {
        self.directory.accounts_exist().await
    }

    async fn set_role(&self, name: &str, role: Role) -> Result<AccountChange, StoreError> {
        self.directory.set_role(name, role).await
    }

    async fn set_banned(&self, name: &str, banned: bool) -> Result<AccountChange, StoreError> {
        self.directory.set_banned(name, banned).await
    }

    async fn account_list(&self) -> Result<Vec<AccountInfo>, StoreError> {
        self.directory.account_list().await
    }

    async fn touch_seen(&self, name: &str) -> Result<(), StoreError> {
        self.directory.touch_seen(name).await
    }

    async fn banned_since(&self, since_ms: i64) -> Result<Vec<String>, StoreError> {
        self.directory.banned_since(since_ms).await
    }

    async fn create_invite(
        &self,
        code: &str,
        created_by: &str,
        uses: i64,
        expires_ms: i64,
    ) -> Result<Invite, StoreError> {
        self.directory
            .create_invite(code, created_by, uses, expires_ms)
            .await
    }

    async fn invite(&self, code: &str) -> Result<Option<Invite>, StoreError> {
        self.directory.invite(code).await
    }

    async fn live_invites(&self) -> Result<Vec<Invite>, StoreError> {
        self.directory.live_invites().await
    }

    async fn revoke_invite(&self, code: &str) -> Result<bool, StoreError> {
        self.directory.revoke_invite(code).await
    }

    async fn block_guest(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        self.directory.block_guest(key, until_ms).await
    }

    async fn guest_blocked(&self, key: &str) -> Result<bool, StoreError> {
        self.directory.guest_blocked(key).await
    }

    // ---- end of team accounts ----

    async fn ping(&self) -> Result<(), StoreError> {
        self.history.ping().await
    }

    async fn close(&self) {
        self.log.close().await;
        self.history.close().await;
    }
}
