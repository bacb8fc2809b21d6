//! An upload's body, written to a spool file as it arrives: counted,
//! hashed, and stopped at the limit, so that memory stays one chunk per
//! upload however large the file.

use super::UploadError;
use super::sniff::HEAD_BYTES;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::Path;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

/// A body received whole.
pub struct Received {
    /// The bytes, on disk; removed when this is dropped.
    pub path: TempPath,
    pub size: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// The first bytes, for telling the type.
    pub head: Vec<u8>,
}

/// Reads `body` into a new file of `spool`. Refuses an empty body, one over
/// `max` bytes (as soon as it passes it), and one that ends early or fails.
pub async fn receive(
    body: axum::body::Body,
    spool: &Path,
    max: u64,
) -> Result<Received, UploadError> {
    let file = tempfile::NamedTempFile::new_in(spool).map_err(UploadError::Spool)?;
    let (file, path) = file.into_parts();
    let mut out = tokio::fs::File::from_std(file);
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        // A body cut short (the connection closed, fewer bytes than its
        // Content-Length, too slow) is an error here: nothing is kept.
        let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(UploadError::TooLarge(max));
        }
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(UploadError::Spool)?;
    }
    if size == 0 {
        return Err(UploadError::Empty);
    }
    out.flush().await.map_err(UploadError::Spool)?;
    drop(out);
    Ok(Received {
        path,
        size,
        sha256: hex::encode(hasher.finalize()),
        head,
    })
}
