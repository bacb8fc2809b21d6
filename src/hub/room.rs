//! One room on this node: its local members, who is online, and the
//! sequencer that hands messages to members strictly in id order.
//!
//! Everything here is synchronous and runs under the room's lock, which is
//! never held across an `.await`. Who is online on other nodes is the
//! hub's ([`RemoteUsers`]); methods that speak of the whole room's
//! presence take it as an argument.

use super::outbox::{ConnId, Frame, Outbox, encode};
use super::revisions::Revisions;
use crate::backplane::NodeId;
use crate::protocol::{Message, PresenceState, ServerFrame};
use std::collections::{BTreeMap, BTreeSet, HashMap};
// The runtime's clock, so that tests can pause and advance it.
use tokio::time::Instant;

/// Users online in one room on other nodes, with the nodes they are on.
pub type RemoteUsers = HashMap<String, BTreeSet<NodeId>>;

/// Above this many members, presence changes are sent as one coalesced
/// update per tick instead of one frame per change.
pub const COALESCE_ABOVE: usize = 50;

/// The state of one room, guarded by its mutex.
pub struct RoomState {
    name: String,
    members: HashMap<ConnId, Outbox>,
    /// Local connections per user: presence changes at 0 ↔ 1.
    users: HashMap<std::sync::Arc<str>, usize>,
    /// The last id handed to members; `None` until read from the store.
    last: Option<i64>,
    /// Messages that arrived ahead of a missing id.
    pending: BTreeMap<i64, Message>,
    /// Since when the sequencer has waited for a missing id.
    pub gap_since: Option<Instant>,
    /// Dropped from the hub's rooms: a join that holds it starts over.
    pub forgotten: bool,
    /// Presence changes waiting for the next tick (busy rooms only).
    batch_joined: BTreeSet<String>,
    batch_left: BTreeSet<String>,
    /// The order of the room's changes to its messages.
    pub revs: Revisions,
}

impl RoomState {
    /// An empty room whose last delivered id is not known yet.
    pub fn new(name: &str) -> Self {
        RoomState {
            name: name.to_string(),
            members: HashMap::new(),
            users: HashMap::new(),
            last: None,
            pending: BTreeMap::new(),
            gap_since: None,
            forgotten: false,
            batch_joined: BTreeSet::new(),
            batch_left: BTreeSet::new(),
            revs: Revisions::default(),
        }
    }

    /// The last id handed to members, if known.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// Sets the starting point once the store has said where the room is.
    pub fn init_last(&mut self, id: i64) {
        if self.last.is_none() {
            self.last = Some(id);
            self.pending = self.pending.split_off(&(id + 1));
            self.drain_pending();
            // What arrived early may still wait on a missing id.
            self.gap_since = (!self.pending.is_empty()).then(Instant::now);
        }
    }

    /// Whether the room has no local members left.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Online user names, here and on other nodes, sorted.
    pub fn online(&self, remote: Option<&RemoteUsers>) -> Vec<String> {
        let mut v: BTreeSet<String> = self.users.keys().map(|u| u.to_string()).collect();
        if let Some(r) = remote {
            v.extend(r.keys().cloned());
        }
        v.into_iter().collect()
    }

    /// How many distinct users are online, here and on other nodes.
    pub fn online_count(&self, remote: Option<&RemoteUsers>) -> usize {
        let elsewhere = remote.map_or(0, |r| {
            r.keys()
                .filter(|u| !self.users.contains_key(u.as_str()))
                .count()
        });
        self.users.len() + elsewhere
    }

    /// Whether a user has a connection in the room on this node.
    pub fn has_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The connections of `user` in the room.
    pub fn connections_of(&self, user: &str) -> Vec<ConnId> {
        self.members
            .values()
            .filter(|o| &*o.user == user)
            .map(|o| o.id)
            .collect()
    }

    /// Whether a connection is a member.
    pub fn has_member(&self, id: ConnId) -> bool {
        self.members.contains_key(&id)
    }

    /// Adds a member after queueing its first frame (`joined`), so that no
    /// live frame can overtake it. `None` if the queue refused it; else
    /// whether this is the user's first connection in the room on this node
    /// (the others are told when the user is new to the whole room).
    pub fn add_member(
        &mut self,
        outbox: &Outbox,
        first: &Frame,
        remote: Option<&RemoteUsers>,
    ) -> Option<bool> {
        if !outbox.push(first) {
            return None;
        }
        self.members.insert(outbox.id, outbox.clone());
        let count = self.users.entry(outbox.user.clone()).or_insert(0);
        *count += 1;
        let first_here = *count == 1;
        if first_here && !remote.is_some_and(|r| r.contains_key(&*outbox.user)) {
            let online = self.online_count(remote);
            self.presence(&outbox.user, PresenceState::Joined, Some(outbox.id), online);
        }
        Some(first_here)
    }

    /// Removes a member; tells the others if it was the user's last
    /// connection in the whole room. Returns the member's user and whether
    /// it was their last connection in the room on this node.
    pub fn remove_member(
        &mut self,
        id: ConnId,
        remote: Option<&RemoteUsers>,
    ) -> Option<(std::sync::Arc<str>, bool)> {
        let outbox = self.members.remove(&id)?;
        let mut last_here = false;
        if let Some(count) = self.users.get_mut(&outbox.user) {
            *count -= 1;
            if *count == 0 {
                self.users.remove(&outbox.user);
                last_here = true;
                if !remote.is_some_and(|r| r.contains_key(&*outbox.user)) {
                    let online = self.online_count(remote);
                    self.presence(&outbox.user, PresenceState::Left, Some(id), online);
                }
            }
        }
        Some((outbox.user, last_here))
    }

    /// Tells the members that a user with no connection here came to the
    /// room on another node, or left it there; `online` counts every node.
    pub fn remote_presence(&mut self, user: &str, state: PresenceState, online: usize) {
        self.presence(user, state, None, online);
    }

    fn presence(
        &mut self,
        user: &str,
        state: PresenceState,
        except: Option<ConnId>,
        online: usize,
    ) {
        if self.members.len() > COALESCE_ABOVE {
            // A crowd joining costs each member one frame per tick, not one per join.
            let (add, sub) = match state {
                PresenceState::Joined => (&mut self.batch_joined, &mut self.batch_left),
                PresenceState::Left => (&mut self.batch_left, &mut self.batch_joined),
            };
            if !sub.remove(user) {
                add.insert(user.to_string());
            }
            return;
        }
        let frame = encode(&ServerFrame::Presence {
            room: self.name.clone(),
            user: Some(user.to_string()),
            state: Some(state),
            joined: None,
            left: None,
            online,
        });
        self.broadcast_ephemeral(&frame, |o| Some(o.id) != except);
    }

    /// Sends the coalesced presence update, if any is waiting; `online`
    /// counts every node.
    pub fn flush_presence(&mut self, online: usize) {
        if self.batch_joined.is_empty() && self.batch_left.is_empty() {
            return;
        }
        let frame = encode(&ServerFrame::Presence {
            room: self.name.clone(),
            user: None,
            state: None,
            joined: Some(std::mem::take(&mut self.batch_joined).into_iter().collect()),
            left: Some(std::mem::take(&mut self.batch_left).into_iter().collect()),
            online,
        });
        self.broadcast_ephemeral(&frame, |_| true);
    }

    /// Queues a frame for every member that `to` selects; returns the number
    /// of members it reached.
    pub fn broadcast(&self, frame: &Frame, to: impl Fn(&Outbox) -> bool) -> usize {
        self.members
            .values()
            .filter(|o| to(o))
            .filter(|o| o.push(frame))
            .count()
    }

    /// Like [`broadcast`](Self::broadcast), for frames that are news only
    /// now (typing, presence): a member far behind goes without them.
    pub fn broadcast_ephemeral(&self, frame: &Frame, to: impl Fn(&Outbox) -> bool) -> usize {
        self.members
            .values()
            .filter(|o| to(o))
            .filter(|o| o.push_ephemeral(frame))
            .count()
    }

    /// Takes a stored message from this node or another; hands it (and any
    /// that waited for it) to members in id order. Returns how many
    /// deliveries it made.
    pub fn deliver(&mut self, msg: Message) -> usize {
        let Some(last) = self.last else {
            self.pending.insert(msg.id, msg);
            return 0;
        };
        if msg.id <= last {
            return 0; // already delivered (a retry, or a gap filled twice)
        }
        self.pending.insert(msg.id, msg);
        let n = self.drain_pending();
        if self.pending.is_empty() {
            self.gap_since = None;
        } else if self.gap_since.is_none() {
            self.gap_since = Some(Instant::now());
        }
        n
    }

    fn drain_pending(&mut self) -> usize {
        let mut delivered = 0;
        while let Some(last) = self.last {
            let Some(msg) = self.pending.remove(&(last + 1)) else {
                break;
            };
            self.last = Some(msg.id);
            let frame = encode(&ServerFrame::Message(msg));
            delivered += self.broadcast(&frame, |_| true);
        }
        // Changes that waited for these messages may go now.
        delivered + self.drain_changes()
    }

    /// Takes a stored change to a message, from this node or another, and
    /// hands members every change that is ready, in revision order.
    /// Returns how many deliveries it made.
    pub fn deliver_change(&mut self, rev: i64, msg: Message) -> usize {
        self.revs.take(rev, msg);
        self.drain_changes()
    }

    /// Hands members the changes that are ready.
    pub fn drain_changes(&mut self) -> usize {
        let ready = self.revs.ready(self.last);
        ready
            .into_iter()
            .map(|(rev, message)| {
                let frame = encode(&ServerFrame::Changed {
                    room: self.name.clone(),
                    rev,
                    message,
                });
                self.broadcast(&frame, |_| true)
            })
            .sum()
    }

    /// Gives up on a gap the store cannot fill and delivers what follows it.
    pub fn skip_gap(&mut self) -> usize {
        let Some(first) = self.pending.keys().next().copied() else {
            return 0;
        };
        self.last = Some(first - 1);
        let n = self.drain_pending();
        self.gap_since = (!self.pending.is_empty()).then(Instant::now);
        n
    }

    /// The first missing id and the first id that arrived after it, when the
    /// sequencer is waiting on a gap.
    pub fn gap(&self) -> Option<(i64, i64)> {
        let last = self.last?;
        let first_pending = *self.pending.keys().next()?;
        Some((last, first_pending))
    }
}

#[cfg(test)]
mod tests {
    //! Properties of the sequencer and of presence, for any arrival order.

    use super::*;
    use crate::hub::outbox::{OutboxReader, Queued};
    use proptest::prelude::*;
    use proptest::sample::Index;
    use std::collections::{BTreeSet, HashMap};

    const JOINED: &str = r#"{"type":"joined"}"#;

    fn msg(id: i64) -> Message {
        Message {
            room: "r".into(),
            id,
            author: "author".into(),
            body: format!("body {id}"),
            ts: "2026-11-21T10:15:30.123Z".into(),
            nonce: None,
            ..Default::default()
        }
    }

    fn member(id: ConnId, user: &str, cap: usize) -> (Outbox, OutboxReader) {
        Outbox::new(id, user, cap)
    }

    fn drain(rx: &mut OutboxReader) -> Vec<serde_json::Value> {
        match rx.try_recv() {
            None => Vec::new(),
            Some(Queued::Frames(frames)) => frames
                .iter()
                .map(|f| serde_json::from_str(f.as_str()).expect("frames are JSON"))
                .collect(),
            Some(_) => panic!("the queue was cut"),
        }
    }

    /// Ids of message frames, checking that each is the message with that id.
    fn message_ids(frames: &[serde_json::Value]) -> Vec<i64> {
        frames
            .iter()
            .map(|f| {
                assert_eq!(f["type"], "message", "{f}");
                let id = f["id"].as_i64().expect("id");
                assert_eq!(f["body"], format!("body {id}"), "{f}");
                id
            })
            .collect()
    }

    /// `ids` in an order picked by the strategy, with duplicates of any of
    /// `dups_from` spliced in at random places.
    fn arrivals(ids: Vec<i64>, dups_from: Vec<i64>) -> impl Strategy<Value = Vec<i64>> {
        let n = ids.len().max(1);
        let dups = prop::collection::vec((any::<Index>(), any::<Index>()), 0..=n);
        (Just(ids).prop_shuffle(), dups).prop_map(move |(mut order, dups)| {
            if !dups_from.is_empty() {
                for (which, at) in dups {
                    let id = dups_from[which.index(dups_from.len())];
                    order.insert(at.index(order.len() + 1), id);
                }
            }
            order
        })
    }

    /// N, then 1..=N in any order with random duplicates.
    fn permutation_with_dups() -> impl Strategy<Value = (i64, Vec<i64>)> {
        (1i64..=120).prop_flat_map(|n| {
            let ids: Vec<i64> = (1..=n).collect();
            (Just(n), arrivals(ids.clone(), ids))
        })
    }

    /// The sequencer's bookkeeping: a gap is waited on (timer running)
    /// exactly when messages wait behind a missing id.
    fn check_gap_state(room: &RoomState, seen: &BTreeSet<i64>) -> Result<(), TestCaseError> {
        let last = room.last().expect("known");
        let waiting: Vec<i64> = seen.range(last + 1..).copied().collect();
        match room.gap() {
            None => prop_assert!(waiting.is_empty(), "no gap, yet {waiting:?} wait"),
            Some((l, first)) => {
                prop_assert_eq!(l, last);
                prop_assert_eq!(Some(&first), waiting.first());
                prop_assert!(first > last + 1, "a gap without a hole: {l} {first}");
            }
        }
        prop_assert_eq!(
            room.gap_since.is_some(),
            room.gap().is_some(),
            "gap timer running iff a gap is waited on (gap {:?}, timer {:?})",
            room.gap(),
            room.gap_since
        );
        Ok(())
    }

    proptest! {
        /// Any order of 1..=N with duplicates comes out as 1..=N, in order,
        /// once each; each frame leaves as soon as its predecessor did.
        #[test]
        fn deliver_hands_out_ids_in_order_once((n, order) in permutation_with_dups()) {
            let mut room = RoomState::new("r");
            room.init_last(0);
            let (o, mut rx) = member(1, "alice", order.len() + 8);
            prop_assert!(room.add_member(&o, &Frame::from_static(JOINED), None).is_some());
            let first = drain(&mut rx);
            prop_assert_eq!(first.len(), 1);
            prop_assert_eq!(&first[0]["type"], "joined");

            let mut seen = BTreeSet::new();
            let mut got: Vec<i64> = Vec::new();
            for id in &order {
                let n_before = got.len();
                let delivered = room.deliver(msg(*id));
                seen.insert(*id);
                let frames = drain(&mut rx);
                got.extend(message_ids(&frames));
                prop_assert_eq!(delivered, got.len() - n_before, "deliver's count");
                // Exactly the prefix 1..=k of what has arrived is out.
                let k = (1..).take_while(|i| seen.contains(i)).count() as i64;
                prop_assert_eq!(&got, &(1..=k).collect::<Vec<_>>(), "after {} arrived", id);
                prop_assert_eq!(room.last(), Some(k));
                check_gap_state(&room, &seen)?;
            }
            prop_assert_eq!(&got, &(1..=n).collect::<Vec<_>>());

            // At or below the last delivered id: dropped.
            for id in 0..=n {
                prop_assert_eq!(room.deliver(msg(id)), 0, "id {} again", id);
            }
            prop_assert!(drain(&mut rx).is_empty());
            prop_assert_eq!(room.last(), Some(n));
            prop_assert_eq!(room.gap(), None);
        }

        /// Messages that arrive before the room knows where it starts wait;
        /// `init_last(s)` drops those at or below `s` and hands out the rest
        /// in order.
        #[test]
        fn messages_before_init_last_wait_for_it(
            (s, n, order, split) in (0i64..40, 1i64..60).prop_flat_map(|(s, extra)| {
                let n = s + extra;
                let fresh: Vec<i64> = (s + 1..=n).collect();
                let old: Vec<i64> = (1..=s.max(1)).collect();
                let all: Vec<i64> = (1..=n).collect();
                let order = arrivals(fresh, if s > 0 { old } else { all });
                (Just(s), Just(n), order, any::<Index>())
            })
        ) {
            let mut room = RoomState::new("r");
            let (o, mut rx) = member(1, "alice", order.len() + 8);
            prop_assert!(room.add_member(&o, &Frame::from_static(JOINED), None).is_some());
            drain(&mut rx);
            let split = split.index(order.len() + 1);
            for id in &order[..split] {
                prop_assert_eq!(room.deliver(msg(*id)), 0, "delivered before init_last");
            }
            prop_assert!(drain(&mut rx).is_empty());
            room.init_last(s);
            let mut seen: BTreeSet<i64> = order[..split].iter().copied().collect();
            seen.extend(1..=s);
            check_gap_state(&room, &seen)?;
            for id in &order[split..] {
                room.deliver(msg(*id));
                seen.insert(*id);
                check_gap_state(&room, &seen)?;
            }
            let got = message_ids(&drain(&mut rx));
            prop_assert_eq!(got, (s + 1..=n).collect::<Vec<_>>());
            // A second init_last changes nothing.
            room.init_last(0);
            prop_assert_eq!(room.last(), Some(n));
        }

        /// Ids with holes: what precedes the first hole goes out at once;
        /// each `skip_gap` then hands out the next run, in order; a late
        /// message for a skipped id is dropped.
        #[test]
        fn skip_gap_delivers_what_follows_a_hole(
            (n, present, order) in (1i64..=80)
                .prop_flat_map(|n| (Just(n), prop::collection::vec(any::<bool>(), n as usize)))
                .prop_flat_map(|(n, keep)| {
                    let present: Vec<i64> =
                        (1..=n).filter(|i| keep[(*i - 1) as usize]).collect();
                    (Just(n), Just(present.clone()), arrivals(present.clone(), present))
                })
        ) {
            let mut room = RoomState::new("r");
            room.init_last(0);
            let (o, mut rx) = member(1, "alice", order.len() + 8);
            prop_assert!(room.add_member(&o, &Frame::from_static(JOINED), None).is_some());
            drain(&mut rx);
            let mut seen = BTreeSet::new();
            for id in &order {
                room.deliver(msg(*id));
                seen.insert(*id);
            }
            check_gap_state(&room, &seen)?;
            let mut got = message_ids(&drain(&mut rx));
            let prefix = (1..).take_while(|i| seen.contains(i)).count() as i64;
            prop_assert_eq!(&got, &(1..=prefix).collect::<Vec<_>>());

            let mut skips = 0;
            while let Some((last, first)) = room.gap() {
                let k = room.skip_gap();
                let run = message_ids(&drain(&mut rx));
                let want: Vec<i64> = (first..).take_while(|i| seen.contains(i)).collect();
                prop_assert!(last < first - 1);
                prop_assert_eq!(k, run.len());
                prop_assert_eq!(&run, &want, "skip_gap after {}", last);
                got.extend(run);
                skips += 1;
                prop_assert!(skips <= n, "skip_gap does not progress");
                check_gap_state(&room, &seen)?;
            }
            prop_assert_eq!(&got, &present);
            prop_assert_eq!(room.skip_gap(), 0, "nothing left to skip to");
            let end = present.last().copied().unwrap_or(0);
            prop_assert_eq!(room.last(), Some(end));
            for id in (1..=end).filter(|i| !seen.contains(i)) {
                prop_assert_eq!(room.deliver(msg(id)), 0, "late message for skipped id {}", id);
            }
            prop_assert!(drain(&mut rx).is_empty());
        }

        /// Members come and go; `online()` is always the set of users with at
        /// least one connection here, and presence frames go out exactly when
        /// a user's first connection arrives or last one leaves.
        #[test]
        fn presence_follows_the_users_connections(
            ops in prop::collection::vec((any::<bool>(), 0u64..8, 0usize..4), 0..120)
        ) {
            let users = ["ann", "bob", "cid", "dee"];
            let mut room = RoomState::new("r");
            room.init_last(0);
            // conn → (user, receiver)
            let mut conns: HashMap<u64, (&str, OutboxReader)> = HashMap::new();
            for (add, conn, user) in ops {
                let before: BTreeSet<&str> = conns.values().map(|(u, _)| *u).collect();
                if add && !conns.contains_key(&conn) {
                    let user = users[user];
                    let (o, rx) = member(conn, user, 64);
                    prop_assert!(room.add_member(&o, &Frame::from_static(JOINED), None).is_some());
                    conns.insert(conn, (user, rx));
                    let online: BTreeSet<&str> = conns.values().map(|(u, _)| *u).collect();
                    for (c, (_, rx)) in conns.iter_mut() {
                        let frames = drain(rx);
                        if *c == conn {
                            prop_assert_eq!(frames.len(), 1);
                            prop_assert_eq!(&frames[0]["type"], "joined");
                        } else if !before.contains(user) {
                            prop_assert_eq!(frames.len(), 1, "{} told of {}", c, user);
                            prop_assert_eq!(&frames[0]["type"], "presence");
                            prop_assert_eq!(&frames[0]["user"], user);
                            prop_assert_eq!(&frames[0]["state"], "joined");
                            prop_assert_eq!(&frames[0]["online"], online.len());
                        } else {
                            prop_assert!(frames.is_empty(), "{} told of {}'s 2nd connection", c, user);
                        }
                    }
                } else if !add {
                    let was = conns.remove(&conn);
                    prop_assert_eq!(room.remove_member(conn, None).is_some(), was.is_some());
                    let online: BTreeSet<&str> = conns.values().map(|(u, _)| *u).collect();
                    for (c, (_, rx)) in conns.iter_mut() {
                        let frames = drain(rx);
                        match &was {
                            Some((user, _)) if !online.contains(user) => {
                                prop_assert_eq!(frames.len(), 1, "{} told of {} leaving", c, user);
                                prop_assert_eq!(&frames[0]["type"], "presence");
                                prop_assert_eq!(&frames[0]["user"], *user);
                                prop_assert_eq!(&frames[0]["state"], "left");
                                prop_assert_eq!(&frames[0]["online"], online.len());
                            }
                            _ => prop_assert!(frames.is_empty()),
                        }
                    }
                }
                let want: Vec<String> = conns
                    .values()
                    .map(|(u, _)| u.to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                prop_assert_eq!(room.online(None), want.clone());
                prop_assert_eq!(room.online_count(None), want.len());
                prop_assert_eq!(room.is_empty(), conns.is_empty());
                for c in 0..8 {
                    prop_assert_eq!(room.has_member(c), conns.contains_key(&c));
                }
            }
        }

        /// The same in a crowd (coalesced presence above 50 members):
        /// `online()` stays exact, and a flushed batch names who came and went.
        #[test]
        fn presence_stays_exact_in_a_crowd(
            ops in prop::collection::vec((any::<bool>(), 0u64..90, 0usize..70), 0..300)
        ) {
            let mut room = RoomState::new("r");
            room.init_last(0);
            let mut conns: HashMap<u64, String> = HashMap::new();
            let mut keep = Vec::new();
            for (add, conn, user) in ops {
                if add && !conns.contains_key(&conn) {
                    let user = format!("u{user}");
                    let (o, rx) = member(conn, &user, 1024);
                    prop_assert!(room.add_member(&o, &Frame::from_static(JOINED), None).is_some());
                    keep.push(rx);
                    conns.insert(conn, user);
                } else if !add {
                    prop_assert_eq!(room.remove_member(conn, None).is_some(), conns.remove(&conn).is_some());
                }
                let n = room.online_count(None);
                room.flush_presence(n);
                let want: Vec<String> =
                    conns.values().cloned().collect::<BTreeSet<_>>().into_iter().collect();
                prop_assert_eq!(room.online(None), want.clone());
                prop_assert_eq!(room.online_count(None), want.len());
            }
        }
    }
}
