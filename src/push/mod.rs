//! Web Push: telling people who are away, on their devices, of what their
//! notification levels ask for (PROTOCOL.md, "Reading, notifications").
//!
//! The hub tells a [`Pusher`] of each message this node commits; the
//! pusher works on its own tasks, behind bounded queues, so that a slow or
//! failing push service never delays a message: when the queues are full,
//! pushes are dropped (counted and logged), never the messages.

mod deliver;
mod destination;
mod drops;
mod payload;
mod recipients;
mod subscribers;
mod subscription;
mod vapid;

pub use deliver::{Outcome, Sender};
pub use destination::{Destinations, Refused};
pub use subscription::{BrowserSubscription, Invalid, MAX_ENDPOINT};
pub use vapid::{Vapid, VapidError};

use crate::hub::{Hub, Notifier};
use crate::metrics::Metrics;
use crate::protocol::{Message, NotifyLevel, RoomKind, parse_room};
use crate::store::{PushSubscription, Store, StoreError};
use backon::BackoffBuilder;
use drops::Drops;
use recipients::{Heard, recipients};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;
use subscribers::Subscribers;
use tokio::sync::{Semaphore, mpsc};

/// Messages waiting to be looked at.
const MESSAGE_QUEUE: usize = 1024;
/// Pushes waiting to be sent.
const PUSH_QUEUE: usize = 4096;
/// Pushes being sent (or waiting for their next try) at once.
const IN_FLIGHT: usize = 32;
/// Messages planned together: the rooms' members and levels are read once
/// per batch.
const BATCH: usize = 64;
/// How often the list of accounts with devices is read again, for devices
/// added or removed through other nodes.
const RELOAD: Duration = Duration::from_secs(30);
/// Tries of one push, the first included.
const TRIES: usize = 3;
/// Devices kept per account; a new one pushes out the oldest.
pub const DEVICES_PER_ACCOUNT: usize = 20;

/// One push to one device.
struct Job {
    sub: PushSubscription,
    payload: Vec<u8>,
}

/// Takes committed messages off the send path; see the module's doc.
pub struct Pusher {
    messages: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

/// What the pusher's tasks share with it. Not the queue's sender: once the
/// pusher goes, its queue closes and its tasks end.
struct Shared {
    subscribers: Subscribers,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    drops: Drops,
}

impl Shared {
    async fn devices_changed(&self) -> Result<(), StoreError> {
        self.subscribers.reload(self.store.as_ref()).await
    }
}

impl Notifier for Pusher {
    fn committed(&self, msg: &Message) {
        // Nobody has a device: nothing to copy, nothing to look up.
        if msg.deleted || !self.shared.subscribers.any() {
            return;
        }
        if self.messages.try_send(msg.clone()).is_err() {
            self.shared
                .drops
                .dropped(&self.shared.metrics, "a message's pushes");
        }
    }
}

impl Pusher {
    /// Starts the pusher's tasks for `hub`, and makes it the hub's notifier.
    pub async fn start(
        hub: &Arc<Hub>,
        store: Arc<dyn Store>,
        sender: Sender,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Pusher>, StoreError> {
        let (messages, incoming) = mpsc::channel(MESSAGE_QUEUE);
        let (jobs, outgoing) = mpsc::channel(PUSH_QUEUE);
        let shared = Arc::new(Shared {
            subscribers: Subscribers::default(),
            store,
            metrics,
            drops: Drops::new(),
        });
        shared.devices_changed().await?;
        tokio::spawn(plan(incoming, jobs, Arc::downgrade(hub), shared.clone()));
        tokio::spawn(dispatch(outgoing, sender, shared.clone()));
        tokio::spawn(reload_now_and_then(Arc::downgrade(&shared)));
        let pusher = Arc::new(Pusher { messages, shared });
        hub.set_notifier(pusher.clone());
        Ok(pusher)
    }

    /// To be called once a device was added or removed: whether anyone may
    /// be pushed to is read again.
    pub async fn devices_changed(&self) -> Result<(), StoreError> {
        self.shared.devices_changed().await
    }
}

/// Devices added or removed through other nodes are noticed within [`RELOAD`].
async fn reload_now_and_then(pusher: Weak<Shared>) {
    let mut every = tokio::time::interval(RELOAD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(pusher) = pusher.upgrade() else {
            return;
        };
        if let Err(e) = pusher.devices_changed().await {
            tracing::warn!(error = %e, "could not read which accounts have push devices");
        }
    }
}

/// What a room's messages need looked up once per batch.
struct RoomFacts {
    members: Vec<String>,
    chosen: Vec<(String, NotifyLevel)>,
}

/// Turns each message into pushes for the people who are away.
async fn plan(
    mut incoming: mpsc::Receiver<Message>,
    jobs: mpsc::Sender<Job>,
    hub: Weak<Hub>,
    pusher: Arc<Shared>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while incoming.recv_many(&mut batch, BATCH).await > 0 {
        let Some(hub) = hub.upgrade() else { return };
        let subscribed = pusher.subscribers.snapshot();
        let mut rooms: HashMap<String, RoomFacts> = HashMap::new();
        for msg in batch.drain(..) {
            match pushes_for(&msg, &hub, &pusher, &subscribed, &mut rooms).await {
                Ok(found) => {
                    for job in found {
                        if jobs.try_send(job).is_err() {
                            pusher.drops.dropped(&pusher.metrics, "a push");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(room = %msg.room, error = %e, "could not find whom to push to")
                }
            }
        }
    }
}

/// The pushes one message makes.
async fn pushes_for(
    msg: &Message,
    hub: &Hub,
    pusher: &Shared,
    subscribed: &HashSet<String>,
    rooms: &mut HashMap<String, RoomFacts>,
) -> Result<Vec<Job>, StoreError> {
    let Ok(kind) = parse_room(&msg.room) else {
        return Ok(Vec::new());
    };
    let store = pusher.store.as_ref();
    if !rooms.contains_key(&msg.room) {
        let members = match kind {
            RoomKind::Private => store.room_members(&msg.room).await?,
            _ => Vec::new(),
        };
        let chosen = store.chosen_levels(&msg.room).await?;
        rooms.insert(msg.room.clone(), RoomFacts { members, chosen });
    }
    let Some(facts) = rooms.get(&msg.room) else {
        return Ok(Vec::new());
    };
    let names = recipients(&Heard {
        kind: &kind,
        author: &msg.author,
        mentions: &msg.mentions,
        members: &facts.members,
        chosen: &facts.chosen,
    });
    let mut jobs = Vec::new();
    for name in names {
        if !subscribed.contains(&crate::names::name_key(&name)) || hub.is_connected(&name) {
            continue;
        }
        for sub in store.pushes(&name).await? {
            let payload = payload::of(msg, &kind, sub.previews);
            jobs.push(Job { sub, payload });
        }
    }
    Ok(jobs)
}

/// Sends the pushes, a bounded number at once, each with its retries.
async fn dispatch(mut outgoing: mpsc::Receiver<Job>, sender: Sender, pusher: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(job) = outgoing.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (sender, pusher) = (sender.clone(), pusher.clone());
        tokio::spawn(async move {
            send_with_retries(&job, &sender, &pusher).await;
            drop(slot);
        });
    }
}

async fn send_with_retries(job: &Job, sender: &Sender, pusher: &Shared) {
    let (store, metrics) = (pusher.store.as_ref(), pusher.metrics.as_ref());
    let mut waits = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .with_max_times(TRIES - 1)
        .build();
    let endpoint = job.sub.endpoint.as_str();
    loop {
        match sender.send(&job.sub, &job.payload).await {
            Outcome::Delivered => {
                metrics.pushes_sent.inc();
                return;
            }
            Outcome::Gone(why) => {
                tracing::info!(account = %job.sub.account, why, "forgetting a push subscription");
                if let Err(e) = store.forget_push(endpoint).await {
                    tracing::warn!(error = %e, "could not forget a push subscription");
                } else if let Err(e) = pusher.devices_changed().await {
                    tracing::warn!(error = %e, "could not read which accounts have push devices");
                }
                metrics.pushes_failed.inc();
                return;
            }
            Outcome::Failed(why) => {
                tracing::warn!(account = %job.sub.account, why, "a push failed");
                metrics.pushes_failed.inc();
                return;
            }
            Outcome::Retry(asked, why) => match waits.next() {
                Some(wait) => {
                    let wait = asked.map_or(wait, |a| a.max(wait));
                    tracing::debug!(why, ?wait, "a push will be tried again");
                    tokio::time::sleep(wait).await;
                }
                None => {
                    tracing::warn!(account = %job.sub.account, why, "a push failed after its retries");
                    metrics.pushes_failed.inc();
                    return;
                }
            },
        }
    }
}
