//! A connection's bounded queue of pre-encoded frames: the hub pushes, the
//! connection takes everything queued in one go and writes it as one burst.
//!
//! Not a tokio `mpsc`: its first block (32 slots) and cache-padded channel
//! cost every idle connection about 1.5 KB up front. Here an idle queue is
//! one small allocation, the frames' buffer exists only while frames wait,
//! and the writer takes a whole burst under one lock.

use axum::extract::ws::Utf8Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

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
    /// Woken when the queue goes from empty to not, and when it is cut.
    ready: Notify,
    capacity: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    /// The queue overflowed: the connection is too slow to keep.
    cut: bool,
    /// The connection is gone; nothing more is queued.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something ever did, the
        // queue's state is still a plain, valid value.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
}

/// The receiving side, owned by the connection's task.
pub struct OutboxReader {
    shared: Arc<Shared>,
}

impl Outbox {
    /// A new outbox that holds up to `capacity` frames not yet taken, and its
    /// reading end.
    pub fn new(id: ConnId, user: &str, capacity: usize) -> (Outbox, OutboxReader) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            capacity,
        });
        let outbox = Outbox {
            id,
            user: Arc::from(user),
            shared: shared.clone(),
        };
        (outbox, OutboxReader { shared })
    }

    /// Queues a frame without waiting. A full queue means the client cannot
    /// keep up: it is cut rather than allowed to slow everyone else.
    pub fn push(&self, frame: &Frame) -> bool {
        let mut state = self.shared.lock();
        if state.closed || state.cut {
            return false;
        }
        if state.frames.len() >= self.shared.capacity {
            state.cut = true;
            // The connection will close without writing them.
            state.frames = VecDeque::new();
            drop(state);
            self.shared.ready.notify_one();
            return false;
        }
        let was_empty = state.frames.is_empty();
        state.frames.push_back(frame.clone());
        drop(state);
        // Queued frames are taken all at once, so only the first of a burst
        // needs to wake the reader.
        if was_empty {
            self.shared.ready.notify_one();
        }
        true
    }
}

impl OutboxReader {
    /// Waits for frames, then takes all of them; or says the queue was cut.
    pub async fn recv(&self) -> Queued {
        loop {
            if let Some(queued) = self.try_recv() {
                return queued;
            }
            // A push between the check and here leaves a permit: no lost wake-up.
            self.shared.ready.notified().await;
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

    /// Resolves once the queue is cut. Frames pushed meanwhile stay queued
    /// for the next [`recv`](Self::recv).
    pub async fn cut(&self) {
        loop {
            if self.shared.lock().cut {
                return;
            }
            self.shared.ready.notified().await;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frames: Queued) -> Vec<String> {
        match frames {
            Queued::Frames(f) => f.iter().map(|f| f.as_str().to_string()).collect(),
            Queued::Cut => panic!("cut"),
        }
    }

    #[tokio::test]
    async fn a_burst_is_taken_in_order_and_in_one_go() {
        let (o, r) = Outbox::new(1, "ann", 8);
        for i in 0..3 {
            assert!(o.push(&Frame::from(format!("f{i}"))));
        }
        assert_eq!(text(r.recv().await), ["f0", "f1", "f2"]);
        assert!(r.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_a_push() {
        let (o, r) = Outbox::new(1, "ann", 8);
        let reader = tokio::spawn(async move { text(r.recv().await) });
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
            tokio::spawn(async move { r.cut().await })
        };
        assert!(o.push(&Frame::from_static("a")));
        assert!(o.push(&Frame::from_static("b")));
        assert!(
            !o.push(&Frame::from_static("c")),
            "the third frame overflows"
        );
        waiter.await.expect("cut waiter");
        assert!(matches!(r.recv().await, Queued::Cut));
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
            assert_eq!(text(r.recv().await).len(), 2);
        }
        assert!(r.try_recv().is_none(), "not cut, nothing left");
    }

    #[test]
    fn a_closed_reader_refuses_frames() {
        let (o, r) = Outbox::new(1, "ann", 2);
        drop(r);
        assert!(!o.push(&Frame::from_static("a")));
    }
}
