//! Reaching people who are away: the hub tells a [`Notifier`] of every
//! message this node commits, and answers whether someone is connected
//! anywhere. What to send, and how, is the notifier's business.

use super::{Hub, lock, person_key};
use crate::names::name_key;
use crate::protocol::Message;
use std::sync::Arc;

/// Told of each message committed through this node (once, whichever node
/// its readers are on). Must return at once: it runs on the send path.
pub trait Notifier: Send + Sync {
    /// A new message, as stored.
    fn committed(&self, msg: &Message);
}

impl Hub {
    /// Sets who is told of committed messages; the first call wins.
    pub fn set_notifier(&self, notifier: Arc<dyn Notifier>) {
        if self.notifier.set(notifier).is_err() {
            tracing::warn!("a notifier was already set");
        }
    }

    pub(super) fn notify_committed(&self, msg: &Message) {
        if let Some(n) = self.notifier.get() {
            n.committed(msg);
        }
    }

    /// Whether `name` has a live connection here, or is online in a room
    /// on another node.
    pub fn is_connected(&self, name: &str) -> bool {
        if self.outboxes.has(&person_key(name)) {
            return true;
        }
        let key = name_key(name);
        lock(&self.remote)
            .values()
            .any(|users| users.keys().any(|u| name_key(u) == key))
    }
}
