//! Uploaded files (PROTOCOL.md 1.1, "Files"): received within limits,
//! typed from their content, images decoded and written again without
//! metadata, stored once per content, and swept when nothing refers to
//! them. Who may read a file is the store's record of the rooms whose
//! messages carry it; the HTTP layer asks the hub.

pub mod backup;
pub mod blobs;
pub mod image;
mod receive;
pub mod sniff;
mod sweep;

use crate::protocol::{ErrorCode, FileObject, clean_file_name};
use crate::store::{Store, StoreError};
use blobs::{BlobError, Blobs};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

/// The limits on uploads (`causerie --help`).
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Uploads per account per minute.
    pub per_min: u32,
    /// Bytes of files one account may hold.
    pub quota_bytes: u64,
    /// Largest image, in pixels.
    pub max_pixels: u64,
}

/// Longest an image may take to decode, write again and thumbnail.
const IMAGE_TIME: Duration = Duration::from_secs(30);

/// Why an upload was refused; the text is meant for people.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Name(#[from] crate::protocol::Invalid),
    #[error("give the file's name: POST /api/files?name=NAME")]
    NoName,
    #[error("the file is empty")]
    Empty,
    #[error("this file is over the {} limit of this server", human_size(*.0))]
    TooLarge(u64),
    #[error("this file would take you over your {} of files; delete some messages with files first", human_size(*.0))]
    Quota(u64),
    #[error("slow down: too many uploads; wait a minute")]
    Rate,
    #[error("the upload did not arrive whole: {0}")]
    Body(String),
    #[error("{0}")]
    Image(#[from] image::ImageError),
    #[error("this image took too long to read")]
    ImageTime,
    #[error("only accounts can share files; sign in")]
    NotAccount,
    #[error("the server could not keep the upload: {0}")]
    Spool(std::io::Error),
    #[error("{0}")]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl UploadError {
    /// The protocol's error code for it.
    pub fn code(&self) -> ErrorCode {
        match self {
            UploadError::Name(_) | UploadError::NoName => ErrorCode::BadName,
            UploadError::Empty | UploadError::Body(_) => ErrorCode::BadRequest,
            UploadError::TooLarge(_) | UploadError::Quota(_) => ErrorCode::TooLarge,
            UploadError::Image(image::ImageError::TooManyPixels { .. }) => ErrorCode::TooLarge,
            UploadError::Image(_) => ErrorCode::BadRequest,
            UploadError::Rate => ErrorCode::RateLimited,
            UploadError::NotAccount => ErrorCode::Forbidden,
            UploadError::ImageTime
            | UploadError::Spool(_)
            | UploadError::Blob(_)
            | UploadError::Store(_) => ErrorCode::Unavailable,
        }
    }
}

/// `bytes` as people read sizes: `25 MiB`, `1.5 GiB`, `300 KiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The upload service: limits, the blob store and the records.
pub struct Files {
    blobs: Blobs,
    store: Arc<dyn Store>,
    limits: FileLimits,
    /// Images decoded at once: each may hold a few hundred MiB.
    decoding: Arc<Semaphore>,
    uploads: DefaultKeyedRateLimiter<String>,
    /// Held while an upload stores its bytes and record, and while the
    /// sweep removes a file's record and bytes: the sweep can then never
    /// remove bytes an upload has just counted on.
    writing: Mutex<()>,
}

/// A file to serve: its bytes as they are read, and what they are.
pub struct Opened {
    pub size: u64,
    pub mime: String,
    pub body: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
}

impl Files {
    /// The service over `blobs` and `store`.
    pub fn new(blobs: Blobs, store: Arc<dyn Store>, limits: FileLimits) -> Arc<Files> {
        let per_min = NonZeroU32::new(limits.per_min).unwrap_or(NonZeroU32::MIN);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Files {
            blobs,
            store,
            limits,
            decoding: Arc::new(Semaphore::new(cores)),
            uploads: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_min)),
            writing: Mutex::new(()),
        })
    }

    /// Checks what can be checked before the body is read: the name, the
    /// announced length, the account's rate and total. Returns the name.
    pub async fn admit<'a>(
        &self,
        account: &str,
        name: Option<&'a str>,
        length: Option<u64>,
    ) -> Result<&'a str, UploadError> {
        let name = clean_file_name(name.ok_or(UploadError::NoName)?)?;
        if length.is_some_and(|n| n > self.limits.max_bytes) {
            return Err(UploadError::TooLarge(self.limits.max_bytes));
        }
        if length == Some(0) {
            return Err(UploadError::Empty);
        }
        if self.uploads.check_key(&account.to_string()).is_err() {
            return Err(UploadError::Rate);
        }
        let held = self.store.upload_total(account).await?;
        if held + length.unwrap_or(1) > self.limits.quota_bytes {
            return Err(UploadError::Quota(self.limits.quota_bytes));
        }
        Ok(name)
    }

    /// Receives, checks and stores an upload by `account` named `name`
    /// (from [`Files::admit`]). Nothing is stored unless all of it is.
    pub async fn upload(
        &self,
        account: &str,
        name: &str,
        body: axum::body::Body,
    ) -> Result<FileObject, UploadError> {
        let received = receive::receive(body, self.blobs.spool(), self.limits.max_bytes).await?;
        let mut file = FileObject {
            name: name.to_string(),
            ..Default::default()
        };
        let mut thumb: Option<(Vec<u8>, &'static str)> = None;
        let mut bytes: Option<Vec<u8>> = None;
        if let Some(format) = image::format_of(&received.head) {
            let processed = self.process_image(&received.path, format).await?;
            file.id = sha256_hex(&processed.bytes);
            file.size = processed.bytes.len() as u64;
            file.mime = processed.mime.to_string();
            file.width = Some(processed.width);
            file.height = Some(processed.height);
            thumb = Some((processed.thumb, processed.thumb_mime));
            bytes = Some(processed.bytes);
        } else {
            file.id = received.sha256.clone();
            file.size = received.size;
            file.mime = sniff::mime_of(&received.head, received.size <= sniff::HEAD_BYTES as u64);
        }
        let held = self.store.upload_total(account).await?;
        if held + file.size > self.limits.quota_bytes {
            return Err(UploadError::Quota(self.limits.quota_bytes));
        }
        let _writing = self.writing.lock().await;
        let key = blobs::key(&file.id);
        if !self.blobs.has(&key).await? {
            match bytes {
                Some(b) => self.blobs.put(&key, b).await?,
                None => self.blobs.put_file(&key, &received.path).await?,
            }
        }
        let thumb_mime = match thumb {
            Some((t, mime)) => {
                let key = blobs::thumb_key(&file.id);
                if !self.blobs.has(&key).await? {
                    self.blobs.put(&key, t).await?;
                }
                Some(mime)
            }
            None => None,
        };
        self.store
            .save_upload(&file, account, thumb_mime, crate::store::now_ms())
            .await?;
        Ok(file)
    }

    /// Decodes, writes again and thumbnails an image on a blocking thread,
    /// a few at a time, within [`IMAGE_TIME`].
    async fn process_image(
        &self,
        path: &std::path::Path,
        format: ::image::ImageFormat,
    ) -> Result<image::Processed, UploadError> {
        let permit = self
            .decoding
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| UploadError::ImageTime)?;
        let raw = tokio::fs::read(path).await.map_err(UploadError::Spool)?;
        let max_pixels = self.limits.max_pixels;
        // The permit goes with the work: an image past its time still holds
        // its place until its thread is done with it.
        let work = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            image::process(&raw, format, max_pixels)
        });
        match tokio::time::timeout(IMAGE_TIME, work).await {
            Ok(Ok(done)) => Ok(done?),
            Ok(Err(e)) => Err(UploadError::Image(image::ImageError::Unreadable(
                e.to_string(),
            ))),
            Err(_) => Err(UploadError::ImageTime),
        }
    }

    /// A stored file's bytes (or its thumbnail's) with their type; `None`
    /// when there is no such file. The caller has checked who may read it.
    pub async fn open(&self, id: &str, thumb: bool) -> Result<Option<Opened>, UploadError> {
        let Some(record) = self.store.file(id).await? else {
            return Ok(None);
        };
        let (key, mime) = if thumb {
            match record.thumb_mime {
                Some(m) => (blobs::thumb_key(id), m),
                None => return Ok(None),
            }
        } else {
            (blobs::key(id), record.mime)
        };
        Ok(self
            .blobs
            .get(&key)
            .await?
            .map(|(size, body)| Opened { size, mime, body }))
    }

    /// Starts the sweep of files nothing refers to, every `every`.
    pub fn start_sweeping(self: &Arc<Self>, every: Duration) {
        sweep::start(self.clone(), every);
    }
}

/// SHA-256 of `bytes`, lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(25 * 1024 * 1024), "25 MiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(12), "12 bytes");
    }
}
