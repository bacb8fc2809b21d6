//! Removes files nothing refers to: an upload never sent within a day, and
//! a file whose last message was deleted.

use super::{Files, blobs};
use std::sync::Arc;
use std::time::Duration;

/// How long an upload waits to be sent before it is removed.
pub const UNSENT_FOR: Duration = Duration::from_secs(24 * 3600);

/// How long a file no longer referred to stays, so that an upload of the
/// same bytes on another node meanwhile still finds them.
const GRACE: Duration = Duration::from_secs(600);

/// Sweeps every `every`, forever; a failed sweep is logged and tried again.
pub fn start(files: Arc<Files>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(&files).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("removed {n} files nothing refers to"),
                Err(e) => tracing::warn!("file sweep failed: {e}"),
            }
        }
    });
}

/// One sweep: forgets old unsent uploads, then removes the records and
/// bytes of files nothing refers to. Returns how many files went.
pub async fn sweep(files: &Files) -> Result<usize, super::UploadError> {
    let now = crate::store::now_ms();
    let _writing = files.writing.lock().await;
    let gone = files
        .store
        .sweep_files(
            now - UNSENT_FOR.as_millis() as i64,
            now - GRACE.as_millis() as i64,
        )
        .await?;
    for id in &gone {
        files.blobs.delete(&blobs::key(id)).await?;
        files.blobs.delete(&blobs::thumb_key(id)).await?;
    }
    Ok(gone.len())
}
