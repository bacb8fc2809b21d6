//! A connection's bounded queue of pre-encoded frames, as the hub sees it.

use axum::extract::ws::Utf8Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc};

/// Identifies one WebSocket connection for the life of the process.
pub type ConnId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh connection id.
pub fn next_id() -> ConnId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// One frame, encoded once and shared among all its recipients.
pub type Frame = Utf8Bytes;

/// Encodes a server frame; the types are plain data, so this cannot fail in
/// practice, and if it ever did the frame would be an error frame.
pub fn encode(frame: &crate::protocol::ServerFrame) -> Frame {
    match serde_json::to_string(frame) {
        Ok(s) => Utf8Bytes::from(s),
        Err(_) => Utf8Bytes::from_static(
            r#"{"type":"error","code":"unavailable","message":"the server could not encode a frame"}"#,
        ),
    }
}

/// The sending side of a connection, held by every room it joined.
#[derive(Clone)]
pub struct Outbox {
    pub id: ConnId,
    /// Who the connection speaks as.
    pub user: Arc<str>,
    tx: mpsc::Sender<Frame>,
    cut: Arc<Cut>,
}

/// Raised when a connection's queue overflowed: it is too slow to keep.
#[derive(Default)]
pub struct Cut {
    raised: AtomicBool,
    notify: Notify,
}

impl Cut {
    /// Waits until the connection is cut.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.raised.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl Outbox {
    /// A new outbox with room for `capacity` frames, its receiving end, and
    /// the flag raised when it overflows.
    pub fn new(
        id: ConnId,
        user: &str,
        capacity: usize,
    ) -> (Outbox, mpsc::Receiver<Frame>, Arc<Cut>) {
        let (tx, rx) = mpsc::channel(capacity);
        let cut = Arc::new(Cut::default());
        let outbox = Outbox {
            id,
            user: Arc::from(user),
            tx,
            cut: cut.clone(),
        };
        (outbox, rx, cut)
    }

    /// Queues a frame without waiting. A full queue means the client cannot
    /// keep up: it is cut rather than allowed to slow everyone else.
    pub fn push(&self, frame: &Frame) -> bool {
        match self.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.cut.raised.swap(true, Ordering::AcqRel) {
                    self.cut.notify.notify_waiters();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether the connection has been cut as too slow.
    pub fn is_cut(&self) -> bool {
        self.cut.raised.load(Ordering::Acquire)
    }
}
