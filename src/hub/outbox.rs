//! A connection's bounded queue of pre-encoded frames: the hub pushes, the
//! connection takes everything queued in one go and writes it as one burst.
//!
//! Not a tokio `mpsc`: its first block (32 slots) and cache-padded channel
//! cost every idle connection about 1.5 KB up front. Here an idle queue is
//! one small allocation, the frames' buffer exists only while frames wait,
//! and the writer takes a whole burst under one lock. The reader is polled
//! (`poll_recv`), not awaited, so the connection's loop keeps no waiter
//! future of its own: the one task that reads leaves its waker here.

use crate::protocol::Ended;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Utf8Bytes;

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

struct Shared {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    /// The queue overflowed: the connection is too slow to keep.
    cut: bool,
    /// The connection is gone; nothing more is queued.
    closed: bool,
    /// The server is shutting down: the connection should say goodbye.
    going_away: bool,
    /// Time to see whether the client is still there.
    ping_due: bool,
    /// The connection's credentials ended (a sign-out, a revoked token).
    ended: Option<Ended>,
    /// The reading task, woken when the queue goes from empty to not, and
    /// when it is cut.
    waker: Option<Waker>,
}

impl State {
    /// Leaves the reader's waker for the next push or cut.
    fn park(&mut self, cx: &Context<'_>) {
        match &mut self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something ever did, the
        // queue's state is still a plain, valid value.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets a flag the reader finds on its next look, and wakes it.
    fn signal(&self, flag: fn(&mut State) -> &mut bool) {
        let mut state = self.lock();
        *flag(&mut state) = true;
        wake_reader(state);
    }
}

/// Releases the lock, then wakes the reader if it is parked: woken outside
/// the lock, since it may run at once on another thread. The reader takes
/// everything queued when it runs, so only the first push of a burst finds
/// a waker to wake.
fn wake_reader(mut state: MutexGuard<'_, State>) {
    let waker = state.waker.take();
    drop(state);
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The sending side of a connection, held by every room it joined.
#[derive(Clone)]
pub struct Outbox {
    pub id: ConnId,
    /// Who the connection speaks as.
    pub user: Arc<str>,
    shared: Arc<Shared>,
}

/// What the connection finds when it looks at its queue.
pub enum Queued {
    /// Every frame queued so far, oldest first.
    Frames(VecDeque<Frame>),
    /// The queue overflowed: close the connection as too slow.
    Cut,
    /// The server is shutting down; frames still queued stay for
    /// [`OutboxReader::try_recv`].
    GoingAway,
    /// Time to see whether the client is still there: see
    /// [`Outboxes::keep_alive`].
    Ping,
    /// What the connection spoke as is no longer valid: close. See
    /// [`Outboxes::end`].
    Ended(Ended),
}

/// The receiving side, owned by the connection's task.
pub struct OutboxReader {
    shared: Arc<Shared>,
    /// Where the outbox is registered, if it is.
    registry: Option<Arc<Outboxes>>,
    id: ConnId,
}

/// Every live connection's outbox, so that shutdown and the keep-alive
/// pings reach them all. Each connection learns of both from its own queue,
/// the one thing it already polls, rather than keeping a timer and a waiter on
/// a shared token of its own: 100,000 connections make one timer, not
/// 100,000, and a wake-up takes no lock shared by all connections.
#[derive(Default)]
pub struct Outboxes {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    live: HashMap<ConnId, Weak<Shared>>,
    /// What each connection that has credentials speaks through (see
    /// [`Outboxes::bind`]); only those connections have an entry.
    keys: HashMap<ConnId, Box<[Box<str>]>>,
    /// Set by [`Outboxes::go_away`]: outboxes opened later start going away.
    going_away: bool,
}

impl Registry {
    fn live(&self) -> Vec<Arc<Shared>> {
        self.live.values().filter_map(Weak::upgrade).collect()
    }
}

impl Outboxes {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new registered outbox: see [`Outbox::new`].
    pub fn open(
        self: &Arc<Self>,
        id: ConnId,
        user: &str,
        capacity: usize,
    ) -> (Outbox, OutboxReader) {
        let (outbox, mut reader) = Outbox::new(id, user, capacity);
        let mut registry = self.lock();
        if registry.going_away {
            outbox.shared.signal(|s| &mut s.going_away);
        }
        registry.live.insert(id, Arc::downgrade(&outbox.shared));
        drop(registry);
        reader.registry = Some(self.clone());
        (outbox, reader)
    }

    /// Records what a connection's identity rests on (a session, a token,
    /// an account), so that [`Outboxes::end`] finds it when that ends.
    pub fn bind(&self, id: ConnId, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let keys = keys.into_iter().map(String::into_boxed_str).collect();
        self.lock().keys.insert(id, keys);
    }

    /// Closes every connection bound to `key`, saying why; returns how
    /// many. Rare (a sign-out, a revocation), so a scan of the bound
    /// connections is fine.
    pub fn end(&self, key: &str, why: Ended) -> usize {
        self.end_except(key, None, why)
    }

    /// Like [`end`](Self::end), sparing the connections also bound to
    /// `except` (the session that changed the password).
    pub fn end_except(&self, key: &str, except: Option<&str>, why: Ended) -> usize {
        let bound = |keys: &[Box<str>], k: &str| keys.iter().any(|b| &**b == k);
        let due: Vec<Arc<Shared>> = {
            let registry = self.lock();
            registry
                .keys
                .iter()
                .filter(|(_, keys)| bound(keys, key) && !except.is_some_and(|e| bound(keys, e)))
                .filter_map(|(id, _)| registry.live.get(id)?.upgrade())
                .collect()
        };
        for shared in &due {
            let mut state = shared.lock();
            state.ended = Some(why);
            wake_reader(state);
        }
        due.len()
    }

    /// Whether a live connection is bound to `key`.
    pub fn has(&self, key: &str) -> bool {
        let registry = self.lock();
        registry
            .keys
            .iter()
            .filter(|(_, keys)| keys.iter().any(|b| &**b == key))
            .any(|(id, _)| registry.live.get(id).is_some_and(|w| w.strong_count() > 0))
    }

    /// Queues a frame to every connection bound to `key` (see
    /// [`Outboxes::bind`]); returns how many. Rare (a person added to a
    /// room), so a scan of the bound connections is fine.
    pub fn push_to(&self, key: &str, frame: &Frame) -> usize {
        let due: Vec<Arc<Shared>> = {
            let registry = self.lock();
            registry
                .keys
                .iter()
                .filter(|(_, keys)| keys.iter().any(|b| &**b == key))
                .filter_map(|(id, _)| registry.live.get(id)?.upgrade())
                .collect()
        };
        for shared in &due {
            let mut state = shared.lock();
            if state.closed || state.cut || state.frames.len() >= shared.capacity {
                continue;
            }
            state.frames.push_back(frame.clone());
            wake_reader(state);
        }
        due.len()
    }

    /// Tells every connection, now and to come, that the server is going away.
    pub fn go_away(&self) {
        let live = {
            let mut registry = self.lock();
            registry.going_away = true;
            registry.live()
        };
        for shared in live {
            shared.signal(|s| &mut s.going_away);
        }
    }

    /// Has every connection check on its client once per `every`: each
    /// pings it, and closes it if it has been silent for the idle timeout
    /// (so `every` is half that timeout). Runs for the process's life.
    pub async fn keep_alive(self: Arc<Self>, every: Duration) {
        // In eighths, so that 100,000 connections do not all ping at once.
        const SHARES: u64 = 8;
        let mut ticks = tokio::time::interval(every / SHARES as u32);
        ticks.reset();
        for share in (0..SHARES).cycle() {
            ticks.tick().await;
            self.ping(share, SHARES);
        }
    }

    /// Asks the connections whose id is `share` modulo `shares` to ping.
    fn ping(&self, share: u64, shares: u64) {
        // Collected first: the registry's lock is not held while waking.
        let due: Vec<Arc<Shared>> = self
            .lock()
            .live
            .iter()
            .filter(|(id, _)| *id % shares == share)
            .filter_map(|(_, shared)| shared.upgrade())
            .collect();
        for shared in due {
            shared.signal(|s| &mut s.ping_due);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().live.len()
    }
}

impl Outbox {
    /// A new outbox that holds up to `capacity` frames not yet taken, and its
    /// reading end.
    pub fn new(id: ConnId, user: &str, capacity: usize) -> (Outbox, OutboxReader) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            capacity,
        });
        let outbox = Outbox {
            id,
            user: Arc::from(user),
            shared: shared.clone(),
        };
        let reader = OutboxReader {
            shared,
            registry: None,
            id,
        };
        (outbox, reader)
    }

    /// Queues a frame without waiting. A full queue means the client cannot
    /// keep up: it is cut rather than allowed to slow everyone else.
    pub fn push(&self, frame: &Frame) -> bool {
        self.queue(frame, false)
    }

    /// Queues a frame that is news only now (typing, presence): behind a
    /// queue already half full it is dropped instead, so that such frames
    /// alone never cut a slow reader, and never crowd out its messages.
    pub fn push_ephemeral(&self, frame: &Frame) -> bool {
        self.queue(frame, true)
    }

    fn queue(&self, frame: &Frame, ephemeral: bool) -> bool {
        let mut state = self.shared.lock();
        if state.closed || state.cut {
            return false;
        }
        if ephemeral && state.frames.len() >= self.shared.capacity / 2 {
            return false;
        }
        if state.frames.len() >= self.shared.capacity {
            state.cut = true;
            // The connection will close without writing them.
            state.frames = VecDeque::new();
            wake_reader(state);
            return false;
        }
        state.frames.push_back(frame.clone());
        wake_reader(state);
        true
    }
}

impl OutboxReader {
    /// What the connection should do next: the queue's cut, shutdown, every
    /// frame queued, or a ping, in that order. When there is nothing, the
    /// task is woken by the next push or signal.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Queued> {
        let mut state = self.shared.lock();
        if state.cut {
            Poll::Ready(Queued::Cut)
        } else if let Some(why) = state.ended {
            Poll::Ready(Queued::Ended(why))
        } else if state.going_away {
            Poll::Ready(Queued::GoingAway)
        } else if !state.frames.is_empty() {
            Poll::Ready(Queued::Frames(std::mem::take(&mut state.frames)))
        } else if std::mem::take(&mut state.ping_due) {
            Poll::Ready(Queued::Ping)
        } else {
            state.park(cx);
            Poll::Pending
        }
    }

    /// Takes whatever is queued now, if anything.
    pub fn try_recv(&self) -> Option<Queued> {
        let mut state = self.shared.lock();
        if state.cut {
            Some(Queued::Cut)
        } else if state.frames.is_empty() {
            None
        } else {
            Some(Queued::Frames(std::mem::take(&mut state.frames)))
        }
    }

    /// Ready once the queue is cut. Frames pushed meanwhile stay queued for
    /// the next [`poll_recv`](Self::poll_recv); a push may wake the task
    /// early, which then polls again.
    pub fn poll_cut(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.cut {
            Poll::Ready(())
        } else {
            state.park(cx);
            Poll::Pending
        }
    }
}

impl Drop for OutboxReader {
    fn drop(&mut self) {
        // Rooms may still hold the outbox for a moment: refuse further
        // frames and free the queued ones now.
        let mut state = self.shared.lock();
        state.closed = true;
        state.frames = VecDeque::new();
        state.waker = None;
        drop(state);
        if let Some(registry) = &self.registry {
            let mut registry = registry.lock();
            registry.live.remove(&self.id);
            registry.keys.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn recv(r: &OutboxReader) -> Queued {
        std::future::poll_fn(|cx| r.poll_recv(cx)).await
    }

    fn text(frames: Queued) -> Vec<String> {
        match frames {
            Queued::Frames(f) => f.iter().map(|f| f.as_str().to_string()).collect(),
            _ => panic!("expected frames"),
        }
    }

    #[tokio::test]
    async fn a_burst_is_taken_in_order_and_in_one_go() {
        let (o, r) = Outbox::new(1, "ann", 8);
        for i in 0..3 {
            assert!(o.push(&Frame::from(format!("f{i}"))));
        }
        assert_eq!(text(recv(&r).await), ["f0", "f1", "f2"]);
        assert!(r.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_a_push() {
        let (o, r) = Outbox::new(1, "ann", 8);
        let reader = tokio::spawn(async move { text(recv(&r).await) });
        tokio::task::yield_now().await;
        assert!(o.push(&Frame::from_static("late")));
        assert_eq!(reader.await.expect("reader"), ["late"]);
    }

    #[tokio::test]
    async fn overflow_cuts_the_connection_and_wakes_the_cut_waiter() {
        let (o, r) = Outbox::new(1, "ann", 2);
        let r = Arc::new(r);
        let waiter = {
            let r = r.clone();
            tokio::spawn(async move { std::future::poll_fn(|cx| r.poll_cut(cx)).await })
        };
        assert!(o.push(&Frame::from_static("a")));
        assert!(o.push(&Frame::from_static("b")));
        assert!(
            !o.push(&Frame::from_static("c")),
            "the third frame overflows"
        );
        waiter.await.expect("cut waiter");
        assert!(matches!(recv(&r).await, Queued::Cut));
        assert!(
            !o.push(&Frame::from_static("d")),
            "a cut queue takes nothing"
        );
    }

    #[tokio::test]
    async fn frames_taken_free_the_capacity_again() {
        let (o, r) = Outbox::new(1, "ann", 2);
        for round in 0..5 {
            assert!(o.push(&Frame::from(format!("{round}a"))));
            assert!(o.push(&Frame::from(format!("{round}b"))));
            assert_eq!(text(recv(&r).await).len(), 2);
        }
        assert!(r.try_recv().is_none(), "not cut, nothing left");
    }

    #[tokio::test]
    async fn ephemeral_frames_are_dropped_behind_a_half_full_queue_never_cut() {
        let (o, r) = Outbox::new(1, "ann", 4);
        assert!(o.push(&Frame::from_static("m1")));
        assert!(o.push_ephemeral(&Frame::from_static("t1")));
        for _ in 0..100 {
            assert!(!o.push_ephemeral(&Frame::from_static("t")));
        }
        assert!(o.push(&Frame::from_static("m2")), "messages still fit");
        assert_eq!(text(recv(&r).await), ["m1", "t1", "m2"]);
        assert!(o.push_ephemeral(&Frame::from_static("t2")), "room again");
    }

    #[test]
    fn a_closed_reader_refuses_frames() {
        let (o, r) = Outbox::new(1, "ann", 2);
        drop(r);
        assert!(!o.push(&Frame::from_static("a")));
    }

    #[tokio::test]
    async fn going_away_reaches_every_outbox_and_keeps_their_frames() {
        let all = Arc::new(Outboxes::default());
        let (o, r) = all.open(1, "ann", 8);
        let (_o2, r2) = all.open(2, "bob", 8);
        // Parked on its queue, as an idle connection is.
        let waiting = tokio::spawn(async move { (recv(&r).await, r) });
        tokio::task::yield_now().await;
        assert!(o.push(&Frame::from_static("last words")));
        all.go_away();
        let (first, r) = waiting.await.expect("reader");
        assert!(matches!(first, Queued::GoingAway), "going away comes first");
        assert_eq!(text(r.try_recv().expect("queued")), ["last words"]);
        assert!(matches!(recv(&r2).await, Queued::GoingAway));
        let (_o3, r3) = all.open(3, "cy", 8);
        assert!(
            matches!(recv(&r3).await, Queued::GoingAway),
            "an outbox opened after shutdown goes away at once"
        );
    }

    #[tokio::test]
    async fn ending_a_key_closes_the_connections_bound_to_it_only() {
        let all = Arc::new(Outboxes::default());
        let (_a, ra) = all.open(1, "ann", 8);
        let (_b, rb) = all.open(2, "ann", 8);
        let (_c, rc) = all.open(3, "bob", 8);
        all.bind(1, vec!["session:s1".into(), "account:ann".into()]);
        all.bind(2, vec!["token:t1".into(), "account:ann".into()]);
        assert_eq!(all.end("session:s1", Ended::SignedOut), 1);
        assert!(matches!(recv(&ra).await, Queued::Ended(Ended::SignedOut)));
        assert!(rb.try_recv().is_none() && rc.try_recv().is_none());
        assert_eq!(all.end("account:ann", Ended::Banned), 2);
        assert!(matches!(recv(&rb).await, Queued::Ended(Ended::Banned)));
        assert_eq!(all.end("account:bob", Ended::Banned), 0);
        let (_d, rd) = all.open(4, "ann", 8);
        all.bind(4, vec!["session:s2".into(), "account:ann".into()]);
        assert_eq!(
            all.end_except("account:ann", Some("session:s2"), Ended::PasswordChanged),
            2,
            "all of ann's but the session that changed it"
        );
        assert!(rd.try_recv().is_none());
        drop(ra);
        assert_eq!(
            all.end("session:s1", Ended::SignedOut),
            0,
            "gone with its reader"
        );
    }

    #[test]
    fn a_dropped_reader_leaves_the_registry() {
        let all = Arc::new(Outboxes::default());
        let (_a, ra) = all.open(1, "ann", 8);
        let (_b, rb) = all.open(2, "bob", 8);
        assert_eq!(all.len(), 2);
        drop(ra);
        assert_eq!(all.len(), 1);
        drop(rb);
        assert_eq!(all.len(), 0);
    }

    #[tokio::test]
    async fn a_ping_comes_once_after_the_frames_to_its_share_only() {
        let all = Arc::new(Outboxes::default());
        let (o, r) = all.open(1, "ann", 8);
        let (_o2, r2) = all.open(2, "bob", 8);
        assert!(o.push(&Frame::from_static("news")));
        all.ping(1, 2);
        assert_eq!(text(recv(&r).await), ["news"]);
        assert!(matches!(recv(&r).await, Queued::Ping));
        assert!(r.try_recv().is_none(), "one ping per call");
        assert!(r2.try_recv().is_none(), "id 2 is in the other share");
        let parked = tokio::spawn(async move { matches!(recv(&r).await, Queued::Ping) });
        tokio::task::yield_now().await;
        all.ping(1, 2);
        assert!(parked.await.expect("reader"), "a parked reader is woken");
        all.ping(0, 2);
        assert!(matches!(recv(&r2).await, Queued::Ping));
    }
}
