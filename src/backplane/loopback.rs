//! An in-process backplane joining hubs of one test, as Redis joins nodes:
//! each node's events reach every other node's hub, and a test can lose
//! them (as pub/sub may) or announce a resubscription.

use super::{Backplane, NodeId, Remote};
use crate::protocol::{Ended, Message};
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The nodes a [`Loopback`] joins.
#[derive(Default)]
struct Net {
    nodes: Mutex<Vec<(NodeId, mpsc::Sender<Remote>)>>,
}

/// One node's end of an in-process backplane.
pub struct Loopback {
    node: NodeId,
    net: Arc<Net>,
    events: Mutex<Option<mpsc::Receiver<Remote>>>,
    /// While set, what this node publishes is lost.
    lossy: AtomicBool,
}

impl Loopback {
    /// `n` nodes joined to each other.
    pub fn nodes(n: usize) -> Vec<Arc<Loopback>> {
        let net = Arc::new(Net::default());
        (0..n)
            .map(|i| {
                let (tx, rx) = mpsc::channel(1024);
                let node = format!("node-{i}");
                net.nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((node.clone(), tx));
                Arc::new(Loopback {
                    node,
                    net: net.clone(),
                    events: Mutex::new(Some(rx)),
                    lossy: AtomicBool::new(false),
                })
            })
            .collect()
    }

    /// This node's id, as others see it in presence.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Loses (or stops losing) what this node publishes.
    pub fn set_lossy(&self, lossy: bool) {
        self.lossy.store(lossy, Ordering::SeqCst);
    }

    /// Tells this node's hub that its subscription was re-established, as
    /// a reconnect to Redis would.
    pub fn resubscribed(&self) {
        self.deliver_to(&self.node, Remote::Resubscribed);
    }

    fn deliver_to(&self, node: &str, event: Remote) {
        let nodes = self.net.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tx)) = nodes.iter().find(|(n, _)| n == node) {
            let _ = tx.try_send(event);
        }
    }

    fn publish(&self, event: Remote) {
        if self.lossy.load(Ordering::SeqCst) {
            return;
        }
        let nodes = self.net.nodes.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx) in nodes.iter().filter(|(n, _)| *n != self.node) {
            let _ = tx.try_send(event.clone());
        }
    }
}

#[async_trait]
impl Backplane for Loopback {
    async fn publish_message(&self, msg: &Message) {
        self.publish(Remote::Message(msg.clone()));
    }

    fn publish_presence(&self, room: &str, user: &str, online: bool) {
        self.publish(Remote::Presence {
            room: room.to_string(),
            user: user.to_string(),
            node: self.node.clone(),
            online,
        });
    }

    fn publish_typing(&self, room: &str, user: &str) {
        self.publish(Remote::Typing {
            room: room.to_string(),
            user: user.to_string(),
        });
    }

    fn publish_end(&self, key: &str, except: Option<&str>, why: Ended) {
        self.publish(Remote::End {
            key: key.to_string(),
            except: except.map(str::to_string),
            why,
        });
    }

    fn publish_notice(&self, notice: &super::Notice) {
        self.publish(Remote::Notice(notice.clone()));
    }

    fn take_events(&self) -> Option<mpsc::Receiver<Remote>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    async fn ping(&self) -> Result<(), String> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "loopback"
    }
}
