//! Other nodes. The backplane only moves events between nodes (committed
//! messages, presence, typing); ordering, gap-filling and presence
//! bookkeeping are the hub's job.
//!
//! [`Local`] is a single node: nothing to carry. [`RedisBackplane`] carries
//! events over Redis pub/sub, which delivers at most once: a lost event is
//! never the guarantee, the store is (see [`Remote::Resubscribed`]).

#[cfg(test)]
pub mod loopback;
mod redis;

pub use self::redis::RedisBackplane;

use crate::metrics::Metrics;
use crate::protocol::{Ended, Message};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Identifies one server process of a cluster (random, per start).
pub type NodeId = String;

/// Who is online in each room on the other nodes: room → user → nodes.
pub type PresenceMap = HashMap<String, HashMap<String, BTreeSet<NodeId>>>;

/// Something another node did, or something that happened to the link.
#[derive(Debug, Clone)]
pub enum Remote {
    /// A message another node committed.
    Message(Message),
    /// A user's first connection on `node` joined `room` (`online`), or
    /// their last one there left.
    Presence {
        room: String,
        user: String,
        node: NodeId,
        online: bool,
    },
    /// A user typing in a room on another node.
    Typing { room: String, user: String },
    /// Another node committed messages up to `id` in `room` that it could
    /// not announce at the time.
    Tip { room: String, id: i64 },
    /// The subscription was (re)established: events may have been lost
    /// meanwhile, so every active room must be read from the store.
    Resubscribed,
    /// Nodes stopped heartbeating; they may have committed messages they
    /// never announced.
    NodesLost(Vec<NodeId>),
    /// Everyone online on the other live nodes, replacing what the hub
    /// knew (taken in order with the events, so it is never stale).
    Snapshot(PresenceMap),
    /// Credentials ended on another node: close the connections bound to
    /// `key` here too.
    End {
        key: String,
        except: Option<String>,
        why: Ended,
    },
    /// A change of a room's members or topic, made on another node.
    Notice(Notice),
}

/// What a change to a room (its members, its topic, one of its messages)
/// asks of every node: frames already encoded by the node that made the
/// change, removals, and changed messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Notice {
    /// A frame for every connection in `room` but `except`'s.
    Room {
        room: String,
        frame: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<String>,
    },
    /// A frame for every connection bound to `key` (see
    /// `hub::Outboxes::bind`).
    Person { key: String, frame: String },
    /// `user` is no longer in `room`: take their connections out of it.
    Evict { room: String, user: String },
    /// A message of `room` changed (edited, deleted, reacted to), at
    /// revision `rev`; the hub orders it among the room's changes.
    Changed {
        room: String,
        rev: i64,
        /// Boxed: a message with its lists is many times the other variants.
        message: Box<Message>,
    },
}

/// Why a backplane could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackplaneError {
    #[error("REDIS_URL {url:?} is not usable: {reason}")]
    BadUrl { url: String, reason: String },
}

/// Carries events to the other nodes of a cluster.
#[async_trait]
pub trait Backplane: Send + Sync + 'static {
    /// Tells other nodes about a committed message. At most once: a lost
    /// publication is filled from the store by the receiving hub.
    async fn publish_message(&self, msg: &Message);

    /// Tells other nodes that a user's first connection on this node joined
    /// a room (`online`), or that their last one here left it. Never waits.
    fn publish_presence(&self, _room: &str, _user: &str, _online: bool) {}

    /// Relays a typing notice to other nodes. Never waits.
    fn publish_typing(&self, _room: &str, _user: &str) {}

    /// Tells other nodes to close the connections bound to `key` (but those
    /// also bound to `except`). Never waits.
    fn publish_end(&self, _key: &str, _except: Option<&str>, _why: Ended) {}

    /// Tells other nodes of a change to a room's members or topic. Never
    /// waits; at most once, like every event.
    fn publish_notice(&self, _notice: &Notice) {}

    /// The events from other nodes, for the hub; `None` after the first
    /// call, and always for a single node.
    fn take_events(&self) -> Option<mpsc::Receiver<Remote>> {
        None
    }

    /// Takes one message from a user's allowance shared by every node:
    /// `Ok(false)` when it is spent, `Err` when the backplane cannot tell
    /// (then the caller's local limit alone applies).
    async fn take_send(&self, _user: &str) -> Result<bool, String> {
        Ok(true)
    }

    /// Checks that the backplane answers.
    async fn ping(&self) -> Result<(), String>;

    /// A short name for logs and `/healthz`.
    fn kind(&self) -> &'static str;
}

/// A single node: nothing to carry.
pub struct Local;

#[async_trait]
impl Backplane for Local {
    async fn publish_message(&self, _msg: &Message) {}

    async fn ping(&self) -> Result<(), String> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

/// Settings of a Redis backplane.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prefix of every key and channel, so that several clusters (or
    /// tests) can share one Redis.
    pub prefix: String,
    /// The shared per-user send allowance: sustained rate and burst.
    pub rate_per_sec: u32,
    pub rate_burst: u32,
}

/// The backplane for a configuration: Redis when `REDIS_URL` is set,
/// otherwise a single node. Redis is connected in the background; a node
/// serves its own clients whether or not Redis answers.
pub fn open(
    settings: Option<RedisSettings>,
    metrics: Arc<Metrics>,
) -> Result<Arc<dyn Backplane>, BackplaneError> {
    match settings {
        None => Ok(Arc::new(Local)),
        Some(s) => Ok(Arc::new(RedisBackplane::start(s, metrics)?)),
    }
}

/// The key prefix a cluster uses unless told otherwise: derived from the
/// database's name, which every node of one cluster shares and two
/// clusters (or two test servers) on one Redis do not.
pub fn default_prefix(database_url: &str) -> String {
    let without_query = database_url.split(['?', '#']).next().unwrap_or("");
    let name = without_query
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("causerie");
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("causerie:{clean}")
}

#[cfg(test)]
mod tests {
    use super::default_prefix;

    #[test]
    fn prefix_follows_the_database_name() {
        assert_eq!(
            default_prefix("postgres://u@h:5432/chat?sslmode=disable"),
            "causerie:chat"
        );
        assert_eq!(
            default_prefix("sqlite:///var/lib/x y.db"),
            "causerie:x_y.db"
        );
        assert_eq!(default_prefix("postgres://h/"), "causerie:causerie");
    }
}
