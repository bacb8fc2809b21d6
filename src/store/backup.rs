//! `causerie backup`: a consistent copy of the SQLite database, made while
//! the server serves. `VACUUM INTO` reads one snapshot (a read transaction
//! in WAL mode does not stop the writer), so the copy holds exactly the
//! transactions committed before it began: every acknowledged message up to
//! then, with dense ids.

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::path::Path;
use std::time::Duration;

/// Why a backup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the database is PostgreSQL: back it up with pg_dump (e.g. `pg_dump -Fc -f causerie.dump \"$DATABASE_URL\"`) and restore with pg_restore"
    )]
    Postgres,
    #[error("unsupported DATABASE_URL {0:?}: expected sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("{0} already exists; give a path for a new file")]
    Exists(String),
    #[error("there is no database at {0}")]
    NoDatabase(String),
    #[error("the backup failed: {0}")]
    Sqlite(#[from] sqlx::Error),
}

/// Copies the database of `url` to a new file at `to`.
pub async fn backup(url: &str, to: &Path) -> Result<(), BackupError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(BackupError::Postgres);
    }
    let Some(from) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(BackupError::BadUrl(url.to_string()));
    };
    if to.exists() {
        return Err(BackupError::Exists(to.display().to_string()));
    }
    if !Path::new(from).exists() {
        return Err(BackupError::NoDatabase(from.to_string()));
    }
    let opts = SqliteConnectOptions::new()
        .filename(from)
        .create_if_missing(false)
        // Waits out the server's write lock rather than failing.
        .busy_timeout(Duration::from_secs(10));
    let mut conn = SqliteConnection::connect_with(&opts).await?;
    sqlx::query("VACUUM INTO $1")
        .bind(to.to_string_lossy().as_ref())
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
