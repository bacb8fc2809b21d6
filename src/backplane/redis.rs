//! The Redis backplane: events between nodes over one pub/sub channel,
//! presence kept per node in Redis with a liveness key, and a shared
//! per-user send allowance.
//!
//! Keys (under the cluster's prefix `P`):
//!
//! | key | what |
//! |---|---|
//! | `P:events` | the pub/sub channel every node publishes on and listens to |
//! | `P:nodes` | set of node ids that registered |
//! | `P:alive:<node>` | present while the node lives (refreshed every 2 s, expires after 6 s) |
//! | `P:presence:<node>` | hash `room|user` → `1`: who is online in which room on that node |
//! | `P:rate:<user>` | the user's GCRA "theoretical arrival time", in Redis milliseconds |
//!
//! Pub/sub delivers at most once and says nothing when it drops an event,
//! so nothing here is the guarantee: the subscriber checks that it hears its
//! own heartbeat, resubscribes when it does not, and then tells the hub to
//! read every active room from the store ([`Remote::Resubscribed`]).

use super::{Backplane, BackplaneError, NodeId, Notice, PresenceMap, RedisSettings, Remote};
use crate::metrics::Metrics;
use crate::protocol::{Ended, Message};
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often a node renews its liveness key.
const REFRESH: Duration = Duration::from_secs(2);
/// How long a liveness key outlives its last renewal: a node that stopped
/// renewing drops out of presence within `ALIVE_TTL + SNAPSHOT` (9 s).
const ALIVE_TTL: Duration = Duration::from_secs(6);
/// How often each node re-reads who is online on the others.
const SNAPSHOT: Duration = Duration::from_secs(3);
/// How often a node publishes a heartbeat it expects to hear back.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A heartbeat not heard back within this long means the subscription
/// stopped silently: resubscribe.
const HEARTBEAT_LOST: Duration = Duration::from_millis(3500);
/// Bounds on each Redis round trip, so a hung Redis never holds up a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// A shared rate-limit check that takes longer is skipped (the local limit
/// still holds): a send must not wait on Redis.
const RATE_TIMEOUT: Duration = Duration::from_millis(250);
/// Events waiting for the publisher; beyond that, messages are recorded
/// as missed and announced later as tips.
const OUT_QUEUE: usize = 16 * 1024;
/// Events from other nodes waiting for the hub.
const IN_QUEUE: usize = 16 * 1024;
/// Most events sent in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// GCRA: allow when the user's theoretical arrival time is at most
/// `tolerance` ahead of now; Redis's clock, so nodes' clocks do not matter.
/// Sent by its SHA1 ([`redis::Script`]), whole only when Redis lacks it.
const RATE_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return 0 end
local new = tat + interval
redis.call('SET', KEYS[1], new, 'PX', math.ceil(new - now) + 1000)
return 1
"#;

/// One event on the wire: who sent it, and what.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The publishing node.
    n: String,
    #[serde(flatten)]
    e: Wire,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Wire {
    Message {
        m: Message,
    },
    Presence {
        room: String,
        user: String,
        on: bool,
    },
    Typing {
        room: String,
        user: String,
    },
    Tip {
        room: String,
        id: i64,
    },
    /// Credentials ended: close the connections bound to `key`.
    End {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<String>,
        why: Ended,
    },
    /// A change of a room's members or topic.
    Notice {
        x: Notice,
    },
    /// The node re-wrote its presence: re-read it.
    Sync,
    Heartbeat {
        seq: u64,
    },
}

/// What the hub asked to publish.
enum Out {
    Message(Message),
    Presence {
        room: String,
        user: String,
        online: bool,
    },
    Typing {
        room: String,
        user: String,
    },
    End {
        key: String,
        except: Option<String>,
        why: Ended,
    },
    Notice(Notice),
}

/// The command connection: a [`ConnectionManager`] reconnects after a
/// dropped connection; every call also has a deadline, so a hung Redis
/// never holds up a node.
struct Commands {
    conn: ConnectionManager,
}

impl Commands {
    /// A connection made on first use. One connection attempt per
    /// reconnection, no retries: while Redis is away a call fails at once
    /// (the local limit holds, missed messages become tips) and the next
    /// call tries again.
    fn new(client: redis::Client) -> Result<Self, RedisError> {
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(0);
        Ok(Commands {
            conn: ConnectionManager::new_lazy_with_config(client, cfg)?,
        })
    }

    /// Runs a pipeline with a deadline.
    async fn run<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, String> {
        let mut c = self.conn.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<T>(&mut c)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("redis did not answer in time".into()),
        }
    }

    /// Runs a script (`EVALSHA`, loading it when Redis does not know it)
    /// with a deadline.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
        within: Duration,
    ) -> Result<T, String> {
        let mut c = self.conn.clone();
        match tokio::time::timeout(within, call.invoke_async::<T>(&mut c)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("redis did not answer in time".into()),
        }
    }
}

struct Inner {
    node: NodeId,
    prefix: String,
    channel: String,
    client: redis::Client,
    commands: Commands,
    /// [`RATE_SCRIPT`], with its SHA1.
    rate_script: redis::Script,
    metrics: Arc<Metrics>,
    /// Whether the subscription is up, for `/healthz`.
    subscribed: AtomicBool,
    /// Messages whose publication failed: room → highest id, announced as
    /// a tip once Redis answers again.
    missed: Mutex<HashMap<String, i64>>,
    /// GCRA emission interval and tolerance, in milliseconds.
    rate_interval_ms: u64,
    rate_tolerance_ms: u64,
}

impl Inner {
    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.prefix)
    }

    fn envelope(&self, e: Wire) -> String {
        // Plain data: serialising cannot fail in practice.
        serde_json::to_string(&Envelope {
            n: self.node.clone(),
            e,
        })
        .unwrap_or_default()
    }

    fn note_missed(&self, room: &str, id: i64) {
        let mut m = self.missed.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(room.to_string()).or_insert(id);
        *e = (*e).max(id);
    }
}

/// Fan-out between nodes over Redis.
pub struct RedisBackplane {
    inner: Arc<Inner>,
    out: mpsc::Sender<Out>,
    events: Mutex<Option<mpsc::Receiver<Remote>>>,
}

impl RedisBackplane {
    /// Starts the publisher and subscriber tasks; they connect (and
    /// reconnect) on their own, so this fails only on a malformed URL.
    pub fn start(s: RedisSettings, metrics: Arc<Metrics>) -> Result<Self, BackplaneError> {
        let client = redis::Client::open(s.url.as_str()).map_err(|e| BackplaneError::BadUrl {
            url: s.url.clone(),
            reason: e.to_string(),
        })?;
        let node = format!("{:016x}", rand::random::<u64>());
        let interval = 1000 / u64::from(s.rate_per_sec.max(1));
        let inner = Arc::new(Inner {
            channel: format!("{}:events", s.prefix),
            prefix: s.prefix,
            commands: Commands::new(client.clone()).map_err(|e| BackplaneError::BadUrl {
                url: s.url.clone(),
                reason: e.to_string(),
            })?,
            rate_script: redis::Script::new(RATE_SCRIPT),
            client,
            node,
            metrics,
            subscribed: AtomicBool::new(false),
            missed: Mutex::new(HashMap::new()),
            rate_interval_ms: interval.max(1),
            rate_tolerance_ms: interval.max(1) * u64::from(s.rate_burst.max(1) - 1),
        });
        tracing::info!(node = %inner.node, prefix = %inner.prefix, "redis backplane");
        let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
        let (in_tx, in_rx) = mpsc::channel(IN_QUEUE);
        tokio::spawn(publisher(inner.clone(), out_rx));
        tokio::spawn(subscriber(inner.clone(), in_tx));
        Ok(RedisBackplane {
            inner,
            out: out_tx,
            events: Mutex::new(Some(in_rx)),
        })
    }

    fn queue(&self, out: Out) {
        if let Err(mpsc::error::TrySendError::Full(out) | mpsc::error::TrySendError::Closed(out)) =
            self.out.try_send(out)
        {
            self.inner.metrics.backplane_publish_failures.inc();
            if let Out::Message(m) = out {
                self.inner.note_missed(&m.room, m.id);
            }
        }
    }
}

#[async_trait]
impl Backplane for RedisBackplane {
    async fn publish_message(&self, msg: &Message) {
        self.queue(Out::Message(msg.clone()));
    }

    fn publish_presence(&self, room: &str, user: &str, online: bool) {
        self.queue(Out::Presence {
            room: room.to_string(),
            user: user.to_string(),
            online,
        });
    }

    fn publish_typing(&self, room: &str, user: &str) {
        self.queue(Out::Typing {
            room: room.to_string(),
            user: user.to_string(),
        });
    }

    fn publish_end(&self, key: &str, except: Option<&str>, why: Ended) {
        self.queue(Out::End {
            key: key.to_string(),
            except: except.map(str::to_string),
            why,
        });
    }

    fn publish_notice(&self, notice: &Notice) {
        self.queue(Out::Notice(notice.clone()));
    }

    fn take_events(&self) -> Option<mpsc::Receiver<Remote>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    async fn take_send(&self, user: &str) -> Result<bool, String> {
        let i = &self.inner;
        let mut call = i.rate_script.key(i.key(&format!("rate:{user}")));
        call.arg(i.rate_interval_ms).arg(i.rate_tolerance_ms);
        match i.commands.invoke::<i64>(&call, RATE_TIMEOUT).await {
            Ok(allowed) => Ok(allowed == 1),
            Err(e) => Err(format!("redis rate check: {e}")),
        }
    }

    async fn ping(&self) -> Result<(), String> {
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        self.inner
            .commands
            .run::<(String,)>(&pipe)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        if !self.inner.subscribed.load(Ordering::Acquire) {
            return Err("redis: not subscribed to the other nodes (reconnecting)".into());
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// Publishes what the hub asks, in order, a pipeline per batch; keeps the
/// node's liveness key and its presence hash in Redis.
async fn publisher(inner: Arc<Inner>, mut rx: mpsc::Receiver<Out>) {
    // This node's presence as Redis should know it: (room, user).
    let mut own: BTreeSet<(String, String)> = BTreeSet::new();
    // Presence must be written whole again (first start, a failed write, or
    // Redis lost our keys).
    let mut rewrite = true;
    // Whether the last publication failed (to log an outage once).
    let mut failing = false;
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = Vec::with_capacity(PUBLISH_BATCH);
    let presence_key = inner.key(&format!("presence:{}", inner.node));
    loop {
        tokio::select! {
            n = rx.recv_many(&mut buf, PUBLISH_BATCH) => {
                if n == 0 {
                    return;
                }
                let mut pipe = redis::pipe();
                let mut messages = Vec::new();
                let count = buf.len();
                for out in buf.drain(..) {
                    let wire = match out {
                        Out::Message(m) => {
                            messages.push((m.room.clone(), m.id));
                            Wire::Message { m }
                        }
                        Out::Presence { room, user, online } => {
                            let field = format!("{room}|{user}");
                            if online {
                                pipe.cmd("HSET").arg(&presence_key).arg(&field).arg(1).ignore();
                                own.insert((room.clone(), user.clone()));
                            } else {
                                pipe.cmd("HDEL").arg(&presence_key).arg(&field).ignore();
                                own.remove(&(room.clone(), user.clone()));
                            }
                            Wire::Presence { room, user, on: online }
                        }
                        Out::Typing { room, user } => Wire::Typing { room, user },
                        Out::End { key, except, why } => Wire::End { key, except, why },
                        Out::Notice(x) => Wire::Notice { x },
                    };
                    pipe.cmd("PUBLISH").arg(&inner.channel).arg(inner.envelope(wire)).ignore();
                }
                match inner.commands.run::<()>(&pipe).await {
                    Ok(()) => {
                        inner.metrics.backplane_published.inc_by(count as u64);
                        failing = false;
                    }
                    Err(e) => {
                        // Once per outage at warn level: every send would repeat it.
                        if failing {
                            tracing::debug!(error = %e, events = count, "redis publish failed");
                        } else {
                            tracing::warn!(error = %e, events = count, "redis publish failed; other nodes will catch up from the store");
                        }
                        failing = true;
                        inner.metrics.backplane_publish_failures.inc_by(count as u64);
                        for (room, id) in messages {
                            inner.note_missed(&room, id);
                        }
                        // The presence writes may or may not have landed.
                        rewrite = true;
                    }
                }
            }
            _ = refresh.tick() => {
                let mut pipe = redis::pipe();
                let alive = inner.key(&format!("alive:{}", inner.node));
                pipe.cmd("EXISTS").arg(&alive)
                    .cmd("SET").arg(&alive).arg(1).arg("PX").arg(ALIVE_TTL.as_millis() as u64).ignore()
                    .cmd("SADD").arg(inner.key("nodes")).arg(&inner.node).ignore();
                match inner.commands.run::<(i64,)>(&pipe).await {
                    // Our key had expired (Redis restarted, or we stalled and
                    // another node cleared our presence as dead): write it again.
                    Ok((0,)) => rewrite = true,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "redis liveness refresh failed");
                        rewrite = true;
                    }
                }
            }
        }
        if rewrite {
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("DEL").arg(&presence_key).ignore();
            if !own.is_empty() {
                let fields: Vec<(String, i64)> =
                    own.iter().map(|(r, u)| (format!("{r}|{u}"), 1)).collect();
                pipe.cmd("HSET").arg(&presence_key).arg(fields).ignore();
            }
            pipe.cmd("PUBLISH")
                .arg(&inner.channel)
                .arg(inner.envelope(Wire::Sync))
                .ignore();
            if inner.commands.run::<()>(&pipe).await.is_ok() {
                rewrite = false;
            }
        }
        let missed: Vec<(String, i64)> = {
            let m = inner.missed.lock().unwrap_or_else(|e| e.into_inner());
            m.iter().map(|(r, i)| (r.clone(), *i)).collect()
        };
        if !missed.is_empty() {
            let mut pipe = redis::pipe();
            for (room, id) in &missed {
                let wire = Wire::Tip {
                    room: room.clone(),
                    id: *id,
                };
                pipe.cmd("PUBLISH")
                    .arg(&inner.channel)
                    .arg(inner.envelope(wire))
                    .ignore();
            }
            if inner.commands.run::<()>(&pipe).await.is_ok() {
                let mut m = inner.missed.lock().unwrap_or_else(|e| e.into_inner());
                for (room, id) in missed {
                    if m.get(&room) == Some(&id) {
                        m.remove(&room);
                    }
                }
            }
        }
    }
}

/// Listens to the other nodes and hands their events to the hub, in order,
/// with presence snapshots taken in the same order.
async fn subscriber(inner: Arc<Inner>, tx: mpsc::Sender<Remote>) {
    let mut backoff = Duration::from_millis(100);
    // Nodes seen alive at the last snapshot, to notice one that died.
    let mut alive: HashSet<NodeId> = HashSet::new();
    loop {
        let stream = match subscribe(&inner).await {
            Ok(s) => s,
            Err(e) => {
                inner.subscribed.store(false, Ordering::Release);
                tracing::debug!(error = %e, "redis subscribe failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        inner.subscribed.store(true, Ordering::Release);
        inner.metrics.backplane_resubscribes.inc();
        tracing::info!(node = %inner.node, "subscribed to the other nodes");
        if tx.send(Remote::Resubscribed).await.is_err() {
            return;
        }
        let why = listen(&inner, &tx, stream, &mut alive).await;
        inner.subscribed.store(false, Ordering::Release);
        match why {
            Some(why) => {
                tracing::warn!(node = %inner.node, why, "lost the other nodes; resubscribing")
            }
            None => return, // the hub is gone
        }
    }
}

async fn subscribe(inner: &Inner) -> Result<redis::aio::PubSubStream, String> {
    let connect = async {
        let mut ps = inner
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        ps.subscribe(&inner.channel)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(ps.into_on_message())
    };
    tokio::time::timeout(CONNECT_TIMEOUT * 2, connect)
        .await
        .map_err(|_| "redis subscribe timed out".to_string())?
}

/// Forwards events until the subscription ends or goes silent; `None` when
/// the hub no longer listens.
async fn listen(
    inner: &Inner,
    tx: &mpsc::Sender<Remote>,
    mut stream: redis::aio::PubSubStream,
    alive: &mut HashSet<NodeId>,
) -> Option<&'static str> {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut snapshot_every = tokio::time::interval(SNAPSHOT);
    let mut seq: u64 = 0;
    let mut heard: u64 = 0;
    // Heartbeats published successfully and not heard back yet.
    let mut sent: VecDeque<(u64, Instant)> = VecDeque::new();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Some("the subscription connection closed");
                };
                let Ok(env) = serde_json::from_slice::<Envelope>(msg.get_payload_bytes()) else {
                    tracing::warn!("ignoring an unreadable backplane event");
                    continue;
                };
                let own = env.n == inner.node;
                let remote = match env.e {
                    Wire::Heartbeat { seq } if own => {
                        heard = heard.max(seq);
                        while sent.front().is_some_and(|(s, _)| *s <= heard) {
                            sent.pop_front();
                        }
                        continue;
                    }
                    _ if own => continue,
                    Wire::Heartbeat { .. } => continue,
                    Wire::Sync => {
                        inner.metrics.backplane_received.inc();
                        match snapshot(inner, alive).await {
                            Ok(events) => {
                                for e in events {
                                    tx.send(e).await.ok()?;
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "presence snapshot failed"),
                        }
                        continue;
                    }
                    Wire::Message { m } => Remote::Message(m),
                    Wire::Presence { room, user, on } => Remote::Presence {
                        room,
                        user,
                        node: env.n,
                        online: on,
                    },
                    Wire::Typing { room, user } => Remote::Typing { room, user },
                    Wire::Tip { room, id } => Remote::Tip { room, id },
                    Wire::End { key, except, why } => Remote::End { key, except, why },
                    Wire::Notice { x } => Remote::Notice(x),
                };
                inner.metrics.backplane_received.inc();
                tx.send(remote).await.ok()?;
            }
            _ = snapshot_every.tick() => {
                match snapshot(inner, alive).await {
                    Ok(events) => {
                        for e in events {
                            tx.send(e).await.ok()?;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "presence snapshot failed"),
                }
            }
            _ = heartbeat.tick() => {
                if sent.front().is_some_and(|(_, at)| at.elapsed() >= HEARTBEAT_LOST) {
                    return Some("our own heartbeat did not come back");
                }
                seq += 1;
                let mut pipe = redis::pipe();
                pipe.cmd("PUBLISH")
                    .arg(&inner.channel)
                    .arg(inner.envelope(Wire::Heartbeat { seq }))
                    .ignore();
                // Only a heartbeat Redis took counts: while Redis is away the
                // subscription closes by itself.
                if inner.commands.run::<()>(&pipe).await.is_ok() {
                    sent.push_back((seq, Instant::now()));
                }
            }
        }
    }
}

/// Reads who is online on every live node, clears the presence of dead
/// ones, and returns the events for the hub (lost nodes first).
async fn snapshot(inner: &Inner, alive: &mut HashSet<NodeId>) -> Result<Vec<Remote>, String> {
    let mut pipe = redis::pipe();
    pipe.cmd("SMEMBERS").arg(inner.key("nodes"));
    let (nodes,): (Vec<String>,) = inner.commands.run(&pipe).await?;
    let mut pipe = redis::pipe();
    for n in &nodes {
        pipe.cmd("EXISTS").arg(inner.key(&format!("alive:{n}")));
    }
    let exists: Vec<i64> = if nodes.is_empty() {
        Vec::new()
    } else {
        inner.commands.run(&pipe).await?
    };
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for (n, e) in nodes.into_iter().zip(exists) {
        if e == 1 {
            live.push(n);
        } else {
            dead.push(n);
        }
    }
    if !dead.is_empty() {
        // A node wrongly taken for dead (it stalled) finds its key gone at
        // its next refresh and writes its presence again.
        let mut pipe = redis::pipe();
        for n in &dead {
            pipe.cmd("SREM")
                .arg(inner.key("nodes"))
                .arg(n)
                .ignore()
                .cmd("DEL")
                .arg(inner.key(&format!("presence:{n}")))
                .ignore();
        }
        inner.commands.run::<()>(&pipe).await?;
    }
    let others: Vec<&String> = live.iter().filter(|n| **n != inner.node).collect();
    let mut map: PresenceMap = HashMap::new();
    if !others.is_empty() {
        let mut pipe = redis::pipe();
        for n in &others {
            pipe.cmd("HKEYS").arg(inner.key(&format!("presence:{n}")));
        }
        let fields: Vec<Vec<String>> = inner.commands.run(&pipe).await?;
        for (node, fields) in others.iter().zip(fields) {
            for f in fields {
                if let Some((room, user)) = f.split_once('|') {
                    map.entry(room.to_string())
                        .or_default()
                        .entry(user.to_string())
                        .or_default()
                        .insert((*node).clone());
                }
            }
        }
    }
    let now: HashSet<NodeId> = others.into_iter().cloned().collect();
    let lost: Vec<NodeId> = alive.difference(&now).cloned().collect();
    *alive = now;
    let mut events = Vec::with_capacity(2);
    if !lost.is_empty() {
        tracing::warn!(nodes = ?lost, "nodes stopped heartbeating");
        events.push(Remote::NodesLost(lost));
    }
    events.push(Remote::Snapshot(map));
    Ok(events)
}
