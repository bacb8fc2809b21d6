//! Files' records (PROTOCOL.md 1.1, "Files"): what each stored file is,
//! who uploaded it and has not sent it yet, and which messages carry it.
//! Written once for both databases, as part of the [`Directory`]; the
//! message log writes `message_files` with the messages themselves.

use super::dialect::Dialect;
use super::directory::Directory;
use super::{FileReaders, FileRecord, StoreError};
use crate::protocol::FileObject;
use sqlx::{Decode, Encode, Executor, IntoArguments, Type};

/// A file's columns: id, size, mime, width, height.
type FileRow = (String, i64, String, Option<i64>, Option<i64>);

/// A file's columns and the name it goes by.
type NamedFileRow = (String, i64, String, Option<i64>, Option<i64>, String);

/// The file object of a row and the name it goes by.
pub fn file_object((id, size, mime, width, height): FileRow, name: String) -> FileObject {
    FileObject {
        id,
        name,
        size: u64::try_from(size).unwrap_or(0),
        mime,
        width: width.and_then(|w| u32::try_from(w).ok()),
        height: height.and_then(|h| u32::try_from(h).ok()),
    }
}

/// The stored form of a message's files: NULL when none.
pub fn attachments_json(files: &[FileObject]) -> Option<String> {
    (!files.is_empty()).then(|| serde_json::to_string(files).unwrap_or_default())
}

impl<DB> Directory<DB>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    (String, i64, String, Option<i64>, Option<i64>): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String, i64, String, Option<i64>, Option<i64>, String): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String, i64, Option<String>): for<'r> sqlx::FromRow<'r, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    /// See [`Store::save_upload`](super::Store::save_upload).
    pub async fn save_upload(
        &self,
        file: &FileObject,
        account: &str,
        thumb_mime: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        // The same bytes again: the record stays, fresh for the sweep.
        sqlx::query(
            "INSERT INTO files (id, size, mime, width, height, thumb, created_ms, touched_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (id) DO UPDATE SET touched_ms = excluded.touched_ms",
        )
        .bind(file.id.as_str())
        .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
        .bind(file.mime.as_str())
        .bind(file.width.map(i64::from))
        .bind(file.height.map(i64::from))
        .bind(thumb_mime)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        // Uploaded again under another name: the last name wins.
        sqlx::query(
            "INSERT INTO file_uploads (file_id, account, name, created_ms) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (file_id, account) DO UPDATE SET name = excluded.name, \
             created_ms = excluded.created_ms",
        )
        .bind(file.id.as_str())
        .bind(account)
        .bind(file.name.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// See [`Store::upload_total`](super::Store::upload_total).
    pub async fn upload_total(&self, account: &str) -> Result<u64, StoreError> {
        let total: i64 = sqlx::query_scalar(
            "SELECT CAST(coalesce(sum(size), 0) AS BIGINT) FROM files WHERE id IN \
             (SELECT file_id FROM file_uploads WHERE account = $1 \
              UNION SELECT file_id FROM message_files WHERE author = $1)",
        )
        .bind(account)
        .fetch_one(&self.read)
        .await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// See [`Store::attachable`](super::Store::attachable).
    pub async fn attachable(
        &self,
        account: &str,
        room: &str,
        ids: &[String],
    ) -> Result<Option<Vec<FileObject>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // The account's own upload, else the file as the room has it
            // (a retried send, or a file shared again in its room).
            let row: Option<NamedFileRow> = sqlx::query_as(
                "SELECT f.id, f.size, f.mime, f.width, f.height, u.name FROM files f \
                     JOIN file_uploads u ON u.file_id = f.id AND u.account = $2 \
                     WHERE f.id = $1 \
                     UNION ALL \
                     SELECT f.id, f.size, f.mime, f.width, f.height, m.name FROM files f \
                     JOIN message_files m ON m.file_id = f.id AND m.room = $3 \
                     WHERE f.id = $1 LIMIT 1",
            )
            .bind(id.as_str())
            .bind(account)
            .bind(room)
            .fetch_optional(&self.read)
            .await?;
            let Some((id, size, mime, width, height, name)) = row else {
                return Ok(None);
            };
            out.push(file_object((id, size, mime, width, height), name));
        }
        Ok(Some(out))
    }

    /// See [`Store::file`](super::Store::file).
    pub async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let row: Option<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT mime, size, thumb FROM files WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(mime, size, thumb_mime)| FileRecord {
            mime,
            size: u64::try_from(size).unwrap_or(0),
            thumb_mime,
        }))
    }

    /// See [`Store::file_readers`](super::Store::file_readers).
    pub async fn file_readers(
        &self,
        id: &str,
        account: Option<&str>,
    ) -> Result<FileReaders, StoreError> {
        let rooms: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT room FROM message_files WHERE file_id = $1")
                .bind(id)
                .fetch_all(&self.read)
                .await?;
        let uploader = match account {
            Some(a) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM file_uploads WHERE file_id = $1 AND account = $2",
                )
                .bind(id)
                .bind(a)
                .fetch_one(&self.read)
                .await?
                    > 0
            }
            None => false,
        };
        Ok(FileReaders { rooms, uploader })
    }

    /// See [`Store::sweep_files`](super::Store::sweep_files).
    pub async fn sweep_files(
        &self,
        unsent_before_ms: i64,
        untouched_before_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM file_uploads WHERE created_ms < $1")
            .bind(unsent_before_ms)
            .execute(&mut *tx)
            .await?;
        let gone: Vec<String> = sqlx::query_scalar(
            "DELETE FROM files WHERE touched_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM file_uploads u WHERE u.file_id = files.id) \
             AND NOT EXISTS (SELECT 1 FROM message_files m WHERE m.file_id = files.id) \
             RETURNING id",
        )
        .bind(untouched_before_ms)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(gone)
    }
}

/// Records, in the message log's transaction, that `message` carries its
/// files; its author's uploads of them are then sent, no longer pending.
pub async fn carry_files<DB>(
    conn: &mut DB::Connection,
    message: &crate::protocol::Message,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    for file in &message.attachments {
        sqlx::query(
            "INSERT INTO message_files (file_id, room, msg_id, name, author) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(file.id.as_str())
        .bind(message.room.as_str())
        .bind(message.id)
        .bind(file.name.as_str())
        .bind(message.author.as_str())
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM file_uploads WHERE file_id = $1 AND account = $2")
            .bind(file.id.as_str())
            .bind(message.author.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records, in the change's transaction, that a deleted message carries
/// no file any more; the sweep removes those nothing else refers to.
pub async fn drop_files<DB>(
    conn: &mut DB::Connection,
    room: &str,
    id: i64,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    sqlx::query("DELETE FROM message_files WHERE room = $1 AND msg_id = $2")
        .bind(room)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
