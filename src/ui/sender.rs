//! The page's way to the socket. `app` makes one [`Sender`] and gives it
//! through context; the connection loop (`client`) attaches to it while a
//! connection is up, and the chat state's wrapper hands it the frames the
//! reducer returns.

use crate::protocol::ClientFrame;
use leptos::prelude::*;
use std::sync::Arc;

/// Where frames go while a connection is up.
type Out = Arc<dyn Fn(ClientFrame) + Send + Sync>;

/// Frames for the socket; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Sender {
    out: StoredValue<Option<Out>>,
    /// Whether a connection loop runs (one per page).
    running: StoredValue<bool>,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            out: StoredValue::new(None),
            running: StoredValue::new(false),
        }
    }
}

impl Sender {
    /// Sends a frame if a connection is up. With none, it is dropped: what
    /// matters (joins, pending lines) goes again after the next `welcome`.
    pub fn send(&self, frame: ClientFrame) {
        if let Some(out) = self.out.get_value() {
            out(frame);
        }
    }

    /// Sends frames in order.
    pub fn send_all(&self, frames: Vec<ClientFrame>) {
        for f in frames {
            self.send(f);
        }
    }

    /// Directs frames to a connection.
    pub fn attach(&self, out: impl Fn(ClientFrame) + Send + Sync + 'static) {
        self.out.set_value(Some(Arc::new(out)));
    }

    /// The connection ended: frames are dropped until the next one.
    pub fn detach(&self) {
        self.out.set_value(None);
    }

    /// Marks a connection loop as running; false if one already was.
    pub fn claim(&self) -> bool {
        !self
            .running
            .try_update_value(|r| std::mem::replace(r, true))
            .unwrap_or(true)
    }

    /// The connection loop ended.
    pub fn release(&self) {
        self.running.set_value(false);
    }
}
