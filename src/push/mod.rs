//! Web Push: telling people who are away, on their devices, of what their
//! notification levels ask for (PROTOCOL.md, "Reading, notifications").
//!
//! The hub tells a [`Pusher`] of each message this node commits; the
//! pusher works on its own tasks, behind bounded queues, so that a slow or
//! failing push service never delays a message: when the queues are full,
//! pushes are dropped (counted and logged), never the messages.

mod deliver;
mod destination;
mod payload;
mod recipients;
mod subscription;
mod vapid;

pub use deliver::{Outcome, Sender};
pub use destination::{Destinations, Refused};
pub use subscription::{BrowserSubscription, Invalid, MAX_ENDPOINT};
pub use vapid::{Vapid, VapidError};

use crate::hub::{Hub, Notifier};
use crate::metrics::Metrics;
use crate::protocol::{Message, RoomKind, parse_room};
use crate::store::{PushSubscription, Store, StoreError};
use backon::BackoffBuilder;
use recipients::{Heard, recipients};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Messages waiting to be looked at.
const MESSAGE_QUEUE: usize = 1024;
/// Pushes waiting to be sent.
const PUSH_QUEUE: usize = 4096;
/// Pushes being sent (or waiting for their next try) at once.
const IN_FLIGHT: usize = 32;
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
    metrics: Arc<Metrics>,
}

impl Notifier for Pusher {
    fn committed(&self, msg: &Message) {
        if msg.deleted {
            return;
        }
        if self.messages.try_send(msg.clone()).is_err() {
            self.metrics.pushes_failed.inc();
            tracing::warn!(room = %msg.room, id = msg.id, "push queue full: no push for this message");
        }
    }
}

impl Pusher {
    /// Starts the pusher's tasks for `hub`, and makes it the hub's notifier.
    pub fn start(hub: &Arc<Hub>, store: Arc<dyn Store>, sender: Sender, metrics: Arc<Metrics>) {
        let (messages, incoming) = mpsc::channel(MESSAGE_QUEUE);
        let (jobs, outgoing) = mpsc::channel(PUSH_QUEUE);
        tokio::spawn(plan(
            incoming,
            jobs,
            Arc::downgrade(hub),
            store.clone(),
            metrics.clone(),
        ));
        tokio::spawn(dispatch(outgoing, sender, store, metrics.clone()));
        hub.set_notifier(Arc::new(Pusher { messages, metrics }));
    }
}

/// Turns each message into pushes for the people who are away.
async fn plan(
    mut incoming: mpsc::Receiver<Message>,
    jobs: mpsc::Sender<Job>,
    hub: Weak<Hub>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
) {
    while let Some(msg) = incoming.recv().await {
        let Some(hub) = hub.upgrade() else { return };
        match pushes_for(&msg, &hub, store.as_ref()).await {
            Ok(found) => {
                for job in found {
                    if jobs.try_send(job).is_err() {
                        metrics.pushes_failed.inc();
                        tracing::warn!(room = %msg.room, "push queue full: a push dropped");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(room = %msg.room, error = %e, "could not find whom to push to")
            }
        }
    }
}

/// The pushes one message makes.
async fn pushes_for(msg: &Message, hub: &Hub, store: &dyn Store) -> Result<Vec<Job>, StoreError> {
    let Ok(kind) = parse_room(&msg.room) else {
        return Ok(Vec::new());
    };
    let members = match kind {
        RoomKind::Private => store.room_members(&msg.room).await?,
        _ => Vec::new(),
    };
    let chosen = store.chosen_levels(&msg.room).await?;
    let names = recipients(&Heard {
        kind: &kind,
        author: &msg.author,
        mentions: &msg.mentions,
        members: &members,
        chosen: &chosen,
    });
    let mut jobs = Vec::new();
    for name in names {
        if hub.is_connected(&name) {
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
async fn dispatch(
    mut outgoing: mpsc::Receiver<Job>,
    sender: Sender,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(job) = outgoing.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (sender, store, metrics) = (sender.clone(), store.clone(), metrics.clone());
        tokio::spawn(async move {
            send_with_retries(&job, &sender, store.as_ref(), &metrics).await;
            drop(slot);
        });
    }
}

async fn send_with_retries(job: &Job, sender: &Sender, store: &dyn Store, metrics: &Metrics) {
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
