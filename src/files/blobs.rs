//! Where files' bytes are kept, by content: a directory, or an
//! S3-compatible bucket, both through `object_store`. Keys are
//! `ab/abcdef…` (the SHA-256 in hex, after its first two digits) and
//! `ab/abcdef….thumb` for an image's thumbnail.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Bytes read from a file at a time when it is copied into the store; S3
/// takes parts of at least 5 MiB.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// A store of blobs by key.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Where uploads wait while they arrive.
    spool: PathBuf,
}

/// A failure of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("file storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("file storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("CAUSERIE_FILES: {0}")]
    Config(String),
}

/// The key of a file's bytes.
pub fn key(id: &str) -> Key {
    Key::from(format!("{}/{id}", &id[..2.min(id.len())]))
}

/// The key of an image's thumbnail.
pub fn thumb_key(id: &str) -> Key {
    Key::from(format!("{}/{id}.thumb", &id[..2.min(id.len())]))
}

impl Blobs {
    /// Opens the store `location` names: `s3://BUCKET[/PREFIX]` (settings
    /// from the `AWS_*` variables), else a directory, made if missing.
    pub fn open(location: &str) -> Result<Blobs, BlobError> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            };
            let spool = std::env::temp_dir().join("causerie-uploads");
            std::fs::create_dir_all(&spool)?;
            return Ok(Blobs { store, spool });
        }
        if location.contains("://") {
            return Err(BlobError::Config(format!(
                "{location:?} is neither a directory nor s3://BUCKET"
            )));
        }
        let dir = PathBuf::from(location);
        // The spool is inside, so that a finished upload is renamed, not copied.
        let spool = dir.join(".uploading");
        std::fs::create_dir_all(&spool)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)?
            .with_automatic_cleanup(true);
        Ok(Blobs {
            store: Arc::new(store),
            spool,
        })
    }

    /// Where uploads wait while they arrive.
    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// Whether `key` is stored.
    pub async fn has(&self, key: &Key) -> Result<bool, BlobError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores `bytes` at `key`.
    pub async fn put(&self, key: &Key, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.store.put(key, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Stores the file at `path` at `key`, a part at a time.
    pub async fn put_file(&self, key: &Key, path: &Path) -> Result<(), BlobError> {
        let mut file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        if len <= PART_BYTES as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf).await?;
            return self.put(key, buf).await;
        }
        let mut upload =
            WriteMultipart::new_with_chunk_size(self.store.put_multipart(key).await?, PART_BYTES);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            // At most two parts in flight: memory stays a few parts per upload.
            upload.wait_for_capacity(2).await?;
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            upload.write(&buf[..n]);
        }
        upload.finish().await?;
        Ok(())
    }

    /// The bytes at `key` as they are read, with their length; `None` when
    /// nothing is stored there.
    pub async fn get(
        &self,
        key: &Key,
    ) -> Result<Option<(u64, BoxStream<'static, object_store::Result<Bytes>>)>, BlobError> {
        match self.store.get(key).await {
            Ok(got) => Ok(Some((got.meta.size, got.into_stream()))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes what is at `key`, if anything.
    pub async fn delete(&self, key: &Key) -> Result<(), BlobError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
