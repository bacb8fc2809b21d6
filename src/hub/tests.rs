//! The hub in-process: clients over outboxes, one or two hubs over the
//! loopback backplane, no socket and no server process. Each case is one
//! row of a table where the behaviour has positions (resume points,
//! refusals); the black-box tests prove the same against real databases.

use super::*;
use crate::backplane::loopback::Loopback;
use crate::backplane::{Backplane, Local};
use crate::hub::admission::People;
use crate::limits::{LimitSettings, Limits};
use crate::protocol::{ClientFrame, ErrorCode, MemberState, Resume, ServerFrame};
use crate::store::MemoryStore;
use std::collections::BTreeMap;
use std::time::Duration;

/// Everyone is someone but `nobody`.
struct Everyone;

#[async_trait::async_trait]
impl People for Everyone {
    async fn is_someone(&self, name: &str) -> Result<bool, StoreError> {
        Ok(name != "nobody")
    }

    /// Everyone but `nobody` and the guests (`guest…`) has an account.
    async fn is_account(&self, name: &str) -> Result<bool, StoreError> {
        Ok(name != "nobody" && !name.starts_with("guest"))
    }

    async fn is_admin(&self, name: &str) -> Result<bool, StoreError> {
        Ok(name == "admin")
    }
}

fn settings() -> LimitSettings {
    LimitSettings {
        user_per_sec: 1000,
        user_burst: 1000,
        ip_per_sec: 1000,
        ip_burst: 1000,
        connects_per_min: 1000,
        connections_per_ip: 1000,
        rooms_per_min: 1000,
        guest_names_per_ip_per_hour: 1000,
    }
}

fn hub_with(
    store: Arc<dyn Store>,
    backplane: Arc<dyn Backplane>,
    limits: LimitSettings,
) -> Arc<Hub> {
    let admission = Admission::new(Arc::new(Limits::new(limits)), Arc::new(Everyone), 1000);
    let hub = Hub::new(
        store,
        backplane,
        Arc::new(Metrics::new()),
        Arc::new(Outboxes::default()),
        admission,
    );
    tokio::spawn(hub.clone().run_ticker());
    hub
}

fn hub() -> Arc<Hub> {
    hub_with(MemoryStore::new(), Arc::new(Local), settings())
}

fn account(name: &str) -> Actor {
    Actor {
        name: name.to_string(),
        identity: Identity::Account,
    }
}

/// A client of a hub, and what it has been sent.
struct Peer {
    client: Client,
    reader: OutboxReader,
    hub: Arc<Hub>,
}

impl Peer {
    fn new(hub: &Arc<Hub>, name: &str) -> Self {
        Self::resuming(hub, name, BTreeMap::new())
    }

    fn resuming(hub: &Arc<Hub>, name: &str, resume: BTreeMap<String, Resume>) -> Self {
        let id = outbox::next_id();
        let (outbox, reader) = hub.outboxes.open(id, name, 100_000);
        hub.outboxes.bind(id, vec![person_key(name)]);
        Peer {
            client: Client::new(account(name), None, outbox, resume),
            reader,
            hub: hub.clone(),
        }
    }

    async fn say(&mut self, frame: ClientFrame) {
        self.client.handle(&self.hub, frame).await;
    }

    async fn join(&mut self, room: &str) {
        self.say(ClientFrame::Join { room: room.into() }).await;
    }

    async fn send(&mut self, room: &str, body: &str, nonce: Option<&str>) {
        self.say(ClientFrame::Send {
            room: room.into(),
            body: body.into(),
            nonce: nonce.map(str::to_string),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
        self.client.answer_all().await;
    }

    /// Every frame queued so far.
    fn frames(&mut self) -> Vec<ServerFrame> {
        let mut out = Vec::new();
        while let Some(Queued::Frames(frames)) = self.reader.try_recv() {
            for f in frames {
                out.push(serde_json::from_str(f.as_str()).expect("the hub encodes valid frames"));
            }
        }
        out
    }

    /// Frames until one matches, waiting up to two seconds for it.
    async fn until(&mut self, what: impl Fn(&ServerFrame) -> bool) -> Vec<ServerFrame> {
        let mut seen = Vec::new();
        for _ in 0..200 {
            seen.extend(self.frames());
            if seen.iter().any(&what) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no such frame; got {seen:?}");
    }
}

fn ids(frames: &[ServerFrame], room: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    for f in frames {
        match f {
            ServerFrame::Joined {
                room: r, history, ..
            } if r == room => ids.extend(history.iter().map(|m| m.id)),
            ServerFrame::Message(m) if m.room == room => ids.push(m.id),
            _ => {}
        }
    }
    ids
}

/// Whether a frame carries the message `body`, live or in a join's history.
fn carries(frame: &ServerFrame, body: &str) -> bool {
    match frame {
        ServerFrame::Message(m) => m.body == body,
        ServerFrame::Joined { history, .. } => history.iter().any(|m| m.body == body),
        _ => false,
    }
}

fn error_of(frames: &[ServerFrame]) -> Option<(ErrorCode, Option<String>, Option<String>)> {
    frames.iter().find_map(|f| match f {
        ServerFrame::Error {
            code, nonce, room, ..
        } => Some((*code, nonce.clone(), room.clone())),
        _ => None,
    })
}

#[tokio::test]
async fn a_message_reaches_every_member_once_in_order() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    let mut bob = Peer::new(&hub, "bob");
    alice.join("general").await;
    bob.join("general").await;
    for i in 0..5 {
        alice
            .send("general", &format!("m{i}"), Some(&format!("n{i}")))
            .await;
    }
    let seen = bob
        .until(|f| matches!(f, ServerFrame::Message(m) if m.body == "m4"))
        .await;
    assert_eq!(ids(&seen, "general"), vec![1, 2, 3, 4, 5]);
    let acks = alice
        .frames()
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::Ack { .. }))
        .count();
    assert_eq!(acks, 5);
}

#[tokio::test]
async fn a_repeated_nonce_is_acked_again_and_stored_once() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    alice.join("general").await;
    alice.send("general", "hello", Some("once")).await;
    alice.send("general", "hello", Some("once")).await;
    let frames = alice.frames();
    let acks: Vec<i64> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Ack { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![1, 1]);
    assert_eq!(
        ids(&frames, "general"),
        vec![1],
        "one message, delivered once"
    );
}

/// A join while messages are being delivered: the joined history and the
/// live messages after it meet with neither a gap nor a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_racing_delivery_has_no_gap_and_no_duplicate() {
    let hub = hub();
    let mut writer = Peer::new(&hub, "writer");
    writer.join("race").await;
    let sending = tokio::spawn(async move {
        for i in 0..300 {
            writer.send("race", &format!("m{i}"), None).await;
            // Let the joins in between sends.
            tokio::task::yield_now().await;
        }
    });
    let mut joiners = Vec::new();
    for n in 0..8 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut p = Peer::new(&hub, &format!("reader{n}"));
        p.join("race").await;
        joiners.push(p);
    }
    sending.await.expect("the writer finishes");
    for mut p in joiners {
        let seen = p.until(|f| carries(f, "m299")).await;
        let got = ids(&seen, "race");
        let first = got[0];
        let want: Vec<i64> = (first..=300).collect();
        assert_eq!(got, want, "contiguous from the joined history on");
    }
}

/// Resume from every position of a room of five messages: the client gets
/// exactly what it missed.
#[tokio::test]
async fn resume_from_each_position_gets_exactly_what_was_missed() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    alice.join("general").await;
    for i in 1..=5 {
        alice.send("general", &format!("m{i}"), None).await;
    }
    for after in 0..=5_i64 {
        let resume = BTreeMap::from([("general".to_string(), Resume::Id(after))]);
        let mut bob = Peer::resuming(&hub, &format!("bob{after}"), resume);
        bob.join("general").await;
        let frames = bob.frames();
        let (history, more) = frames
            .iter()
            .find_map(|f| match f {
                ServerFrame::Joined { history, more, .. } => Some((history.clone(), *more)),
                _ => None,
            })
            .expect("joined");
        let got: Vec<i64> = history.iter().map(|m| m.id).collect();
        let want: Vec<i64> = (after + 1..=5).collect();
        assert_eq!(got, want, "resume after {after}");
        assert_eq!(
            more,
            after > 0,
            "resume after {after}: older messages exist"
        );
    }
}

/// Every refusal of the one way in, with the room it was about.
#[tokio::test]
async fn refusals_are_typed_and_name_their_room() {
    let strict = LimitSettings {
        user_per_sec: 1,
        user_burst: 2,
        ..settings()
    };
    let hub = hub_with(MemoryStore::new(), Arc::new(Local), strict);
    let mut alice = Peer::new(&hub, "alice");
    alice.join("general").await;
    alice.frames();
    let cases: Vec<(ClientFrame, ErrorCode, &str)> = vec![
        (
            ClientFrame::Send {
                room: "elsewhere".into(),
                body: "hi".into(),
                nonce: Some("a".into()),
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::NotJoined,
            "elsewhere",
        ),
        (
            ClientFrame::Send {
                room: "general".into(),
                body: "  ".into(),
                nonce: Some("b".into()),
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::BadRequest,
            "general",
        ),
        (
            ClientFrame::Send {
                room: "general".into(),
                body: "a\0b".into(),
                nonce: Some("c".into()),
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::BadRequest,
            "general",
        ),
        (
            ClientFrame::Send {
                room: "general".into(),
                body: "x".repeat(5000),
                nonce: Some("d".into()),
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::TooLarge,
            "general",
        ),
        (
            ClientFrame::Join {
                room: "dm:bob:carol".into(),
            },
            ErrorCode::Forbidden,
            "dm:bob:carol",
        ),
        (
            ClientFrame::Join {
                room: "dm:alice:nobody".into(),
            },
            ErrorCode::NotFound,
            "dm:alice:nobody",
        ),
        (
            ClientFrame::Join {
                room: "Bad Room".into(),
            },
            ErrorCode::BadRequest,
            "Bad Room",
        ),
        (
            ClientFrame::Leave {
                room: "never".into(),
            },
            ErrorCode::NotJoined,
            "never",
        ),
        (
            ClientFrame::Typing {
                room: "never".into(),
            },
            ErrorCode::NotJoined,
            "never",
        ),
    ];
    for (frame, code, room) in cases {
        let said = format!("{frame:?}");
        alice.say(frame).await;
        alice.client.answer_all().await;
        let frames = alice.frames();
        let (got, _, about) =
            error_of(&frames).unwrap_or_else(|| panic!("{said}: no error in {frames:?}"));
        assert_eq!(got, code, "{said}");
        assert_eq!(about.as_deref(), Some(room), "{said}");
    }
    // Two messages at once, then the allowance is spent.
    alice.send("general", "one", Some("n1")).await;
    alice.send("general", "two", Some("n2")).await;
    alice.send("general", "three", Some("n3")).await;
    let frames = alice.frames();
    assert_eq!(
        error_of(&frames),
        Some((
            ErrorCode::RateLimited,
            Some("n3".into()),
            Some("general".into())
        ))
    );
    assert_eq!(ids(&frames, "general").len(), 2);
}

#[tokio::test]
async fn a_connection_may_be_in_a_bounded_number_of_rooms() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    for i in 0..MAX_ROOMS_PER_CONNECTION {
        alice.join(&format!("room{i}")).await;
    }
    alice.frames();
    alice.join("one-more").await;
    let (code, _, room) = error_of(&alice.frames()).expect("refused");
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(room.as_deref(), Some("one-more"));
    // Joining one it is in again is no new room.
    alice.join("room0").await;
    assert!(error_of(&alice.frames()).is_none());
}

#[tokio::test]
async fn a_post_over_http_opens_its_room_and_reaches_members() {
    let hub = hub();
    let mut bob = Peer::new(&hub, "bob");
    bob.join("news").await;
    let bot = account("bot");
    let caller = Caller {
        actor: &bot,
        ip: None,
    };
    let post = Post {
        room: "fresh".into(),
        body: "first".into(),
        nonce: None,
        reply_to: None,
        attachments: Vec::new(),
    };
    let stored = hub
        .post(caller, post, Via::Straight)
        .await
        .expect("admitted")
        .await;
    assert_eq!(stored.expect("stored").message.id, 1);
    let post = Post {
        room: "news".into(),
        body: "hello".into(),
        nonce: Some("k".into()),
        reply_to: None,
        attachments: Vec::new(),
    };
    hub.post(caller, post, Via::Straight)
        .await
        .expect("admitted")
        .await
        .expect("stored");
    bob.until(|f| matches!(f, ServerFrame::Message(m) if m.body == "hello"))
        .await;
}

fn two_nodes() -> (Arc<Hub>, Arc<Hub>, Vec<Arc<Loopback>>) {
    let store: Arc<dyn Store> = MemoryStore::new();
    let nodes = Loopback::nodes(2);
    let a = hub_with(store.clone(), nodes[0].clone(), settings());
    let b = hub_with(store, nodes[1].clone(), settings());
    (a, b, nodes)
}

#[tokio::test]
async fn two_hubs_over_the_backplane_share_messages_and_presence() {
    let (a, b, _nodes) = two_nodes();
    let mut alice = Peer::new(&a, "alice");
    let mut bob = Peer::new(&b, "bob");
    alice.join("general").await;
    bob.join("general").await;
    // Bob's node hears that alice is online there.
    for _ in 0..100 {
        if b.online("general") == ["alice", "bob"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.online("general"), ["alice", "bob"]);
    alice
        .until(|f| matches!(f, ServerFrame::Presence { .. }))
        .await;
    alice.send("general", "across", None).await;
    bob.until(|f| matches!(f, ServerFrame::Message(m) if m.body == "across"))
        .await;
    // Leaving is heard too.
    alice.client.leave_all(&a);
    for _ in 0..100 {
        if b.online("general") == ["bob"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.online("general"), ["bob"]);
}

/// A message whose announcement was lost reaches the other node's members
/// from the store, when that node resubscribes.
#[tokio::test]
async fn a_lost_announcement_is_caught_up_from_the_store() {
    let (a, b, nodes) = two_nodes();
    let mut alice = Peer::new(&a, "alice");
    let mut bob = Peer::new(&b, "bob");
    alice.join("general").await;
    bob.join("general").await;
    nodes[0].set_lossy(true);
    alice.send("general", "lost", None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !bob.frames()
            .iter()
            .any(|f| matches!(f, ServerFrame::Message(_))),
        "the announcement was lost"
    );
    nodes[0].set_lossy(false);
    nodes[1].resubscribed();
    let seen = bob
        .until(|f| matches!(f, ServerFrame::Message(m) if m.body == "lost"))
        .await;
    assert_eq!(ids(&seen, "general"), vec![1]);
}

/// A later message announces that an earlier one was missed: the
/// sequencer fills the gap from the store, in order.
#[tokio::test]
async fn a_gap_in_ids_is_filled_in_order() {
    let (a, b, nodes) = two_nodes();
    let mut alice = Peer::new(&a, "alice");
    let mut bob = Peer::new(&b, "bob");
    alice.join("general").await;
    bob.join("general").await;
    nodes[0].set_lossy(true);
    alice.send("general", "first", None).await;
    nodes[0].set_lossy(false);
    alice.send("general", "second", None).await;
    let seen = bob
        .until(|f| matches!(f, ServerFrame::Message(m) if m.body == "second"))
        .await;
    assert_eq!(ids(&seen, "general"), vec![1, 2]);
}

#[tokio::test]
async fn a_down_store_refuses_with_unavailable_and_loses_nothing_acked() {
    let store = MemoryStore::new();
    let hub = hub_with(store.clone(), Arc::new(Local), settings());
    let mut alice = Peer::new(&hub, "alice");
    alice.join("general").await;
    alice.send("general", "kept", Some("k1")).await;
    store.set_unavailable(true);
    alice.send("general", "refused", Some("k2")).await;
    let frames = alice.frames();
    assert_eq!(
        error_of(&frames).map(|(c, n, _)| (c, n)),
        Some((ErrorCode::Unavailable, Some("k2".into())))
    );
    store.set_unavailable(false);
    let page = hub
        .store()
        .page_before("general", None, 50)
        .await
        .expect("readable");
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["kept"]);
}

/// The sequencer holds a message that came before the one it waits for,
/// and reads the missing one from the store once the gap has lasted: not
/// before (a late announcement may still come), and not much after.
#[tokio::test(start_paused = true)]
async fn a_held_message_waits_for_the_gap_then_the_store() {
    let (a, b, nodes) = two_nodes();
    let mut alice = Peer::new(&a, "alice");
    let mut bob = Peer::new(&b, "bob");
    alice.join("general").await;
    bob.join("general").await;
    bob.frames();
    nodes[0].set_lossy(true);
    alice.send("general", "first", None).await;
    nodes[0].set_lossy(false);
    alice.send("general", "second", None).await;
    tokio::time::sleep(GAP_WAIT / 2).await;
    assert_eq!(ids(&bob.frames(), "general"), Vec::<i64>::new(), "held");
    tokio::time::sleep(GAP_WAIT + TICK * 2).await;
    assert_eq!(
        ids(&bob.frames(), "general"),
        vec![1, 2],
        "filled, in order"
    );
}

fn create(room: &str, members: &[&str]) -> ClientFrame {
    ClientFrame::Create {
        room: room.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        topic: Some("plans".into()),
    }
}

fn remove(room: &str, user: &str) -> ClientFrame {
    ClientFrame::Remove {
        room: room.into(),
        user: user.into(),
    }
}

fn member_changes(frames: &[ServerFrame]) -> Vec<(String, MemberState)> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Member { user, state, .. } => Some((user.clone(), *state)),
            _ => None,
        })
        .collect()
}

fn listed(frames: &[ServerFrame]) -> Option<Vec<String>> {
    frames.iter().rev().find_map(|f| match f {
        ServerFrame::Rooms { rooms } => Some(rooms.iter().map(|r| r.room.clone()).collect()),
        _ => None,
    })
}

#[tokio::test]
async fn a_private_room_exists_for_its_members_only() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    let mut bob = Peer::new(&hub, "bob");
    let mut carol = Peer::new(&hub, "carol");
    alice.say(create("~team", &["bob"])).await;
    let seen = alice.frames();
    assert!(matches!(&seen[..], [.., ServerFrame::Joined { room, .. }] if room == "~team"));
    assert!(listed(&seen).is_some_and(|r| r.contains(&"~team".to_string())));
    let told = bob.frames();
    assert_eq!(member_changes(&told), [("bob".into(), MemberState::Added)]);
    assert!(listed(&told).is_some_and(|r| r.contains(&"~team".to_string())));
    assert!(listed(&carol.frames()).is_none(), "carol is told nothing");

    alice.send("~team", "secret", Some("s1")).await;
    bob.join("~team").await;
    assert!(bob.frames().iter().any(|f| carries(f, "secret")));

    // To carol, it answers as a room that does not exist, on every request.
    let nowhere = |e: Option<(ErrorCode, Option<String>, Option<String>)>| {
        assert_eq!(
            e.map(|(c, _, r)| (c, r)),
            Some((ErrorCode::NotFound, Some("~team".into())))
        )
    };
    carol.join("~team").await;
    nowhere(error_of(&carol.frames()));
    carol
        .say(ClientFrame::History {
            room: "~team".into(),
            before: None,
            limit: None,
        })
        .await;
    nowhere(error_of(&carol.frames()));
    carol.say(remove("~team", "bob")).await;
    nowhere(error_of(&carol.frames()));
    carol.join("~nothing").await;
    assert_eq!(
        error_of(&carol.frames()).map(|(c, _, r)| (c, r)),
        Some((ErrorCode::NotFound, Some("~nothing".into())))
    );
    // Join never makes a private room.
    assert!(hub.store.room_meta("~nothing").await.unwrap().is_none());
    // The name is taken.
    carol.say(create("~team", &[])).await;
    assert_eq!(
        error_of(&carol.frames()).map(|e| e.0),
        Some(ErrorCode::BadName)
    );
}

#[tokio::test]
async fn removal_takes_effect_at_once_and_follows_the_rules() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    let mut bob = Peer::new(&hub, "bob");
    let mut dan = Peer::new(&hub, "dan");
    let mut admin = Peer::new(&hub, "admin");
    alice.say(create("~team", &["bob", "dan", "admin"])).await;
    bob.join("~team").await;
    dan.join("~team").await;
    for p in [&mut alice, &mut bob, &mut dan] {
        p.frames();
    }
    // A member who is not the owner removes only themself.
    bob.say(remove("~team", "dan")).await;
    assert_eq!(
        error_of(&bob.frames()).map(|e| e.0),
        Some(ErrorCode::Forbidden)
    );
    // Guests and unknown names are not invited.
    for (who, code) in [
        ("guest-1", ErrorCode::BadRequest),
        ("nobody", ErrorCode::NotFound),
    ] {
        alice
            .say(ClientFrame::Invite {
                room: "~team".into(),
                user: who.into(),
            })
            .await;
        assert_eq!(error_of(&alice.frames()).map(|e| e.0), Some(code), "{who}");
    }

    alice.say(remove("~team", "bob")).await;
    let told = bob.frames();
    assert_eq!(
        member_changes(&told),
        [("bob".into(), MemberState::Removed)]
    );
    assert!(listed(&told).is_some_and(|r| !r.contains(&"~team".to_string())));
    alice.send("~team", "after", Some("a1")).await;
    dan.until(|f| carries(f, "after")).await;
    assert!(!bob.frames().iter().any(|f| carries(f, "after")));
    bob.send("~team", "still here?", Some("b1")).await;
    assert_eq!(
        error_of(&bob.frames()).map(|e| e.0),
        Some(ErrorCode::NotJoined)
    );
    bob.join("~team").await;
    assert_eq!(
        error_of(&bob.frames()).map(|e| e.0),
        Some(ErrorCode::NotFound)
    );

    // An admin removes anyone; anyone leaves.
    admin.say(remove("~team", "dan")).await;
    assert_eq!(error_of(&admin.frames()), None);
    assert_eq!(
        member_changes(&dan.frames()),
        [("dan".into(), MemberState::Removed)]
    );
    alice.say(remove("~team", "alice")).await;
    assert_eq!(error_of(&alice.frames()), None);
    assert_eq!(hub.store.room_members("~team").await.unwrap(), ["admin"]);
}

#[tokio::test]
async fn a_removal_on_one_node_takes_the_room_away_on_the_other() {
    let (a, b, _nodes) = two_nodes();
    let mut alice = Peer::new(&a, "alice");
    let mut bob = Peer::new(&b, "bob");
    alice.say(create("~ops", &["bob"])).await;
    bob.until(|f| matches!(f, ServerFrame::Member { .. })).await;
    bob.join("~ops").await;
    alice.send("~ops", "before", Some("n1")).await;
    bob.until(|f| carries(f, "before")).await;
    alice.say(remove("~ops", "bob")).await;
    let told = bob
        .until(|f| {
            matches!(
                f,
                ServerFrame::Member {
                    state: MemberState::Removed,
                    ..
                }
            )
        })
        .await;
    assert_eq!(
        member_changes(&told),
        [("bob".into(), MemberState::Removed)]
    );
    // The eviction travels with the notice, ahead of the next message.
    alice.send("~ops", "after", Some("n2")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = bob.frames();
    assert!(!later.iter().any(|f| carries(f, "after")), "{later:?}");
    assert!(member_changes(&later).is_empty(), "told once: {later:?}");
}

fn changes_of(frames: &[ServerFrame], room: &str) -> Vec<(i64, Message)> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Changed {
                room: r,
                rev,
                message,
            } if r == room => Some((*rev, message.clone())),
            _ => None,
        })
        .collect()
}

/// Edits, deletions and reactions reach every member, the author's own
/// connection included, in revision order; refusals change nothing.
#[tokio::test]
async fn changes_reach_every_member_in_revision_order() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    let mut bob = Peer::new(&hub, "bob");
    alice.join("general").await;
    bob.join("general").await;
    alice.send("general", "hello @bob", None).await;
    let react = |emoji: &str, on| ClientFrame::React {
        room: "general".into(),
        id: 1,
        emoji: emoji.into(),
        on,
    };
    bob.say(react("👍", true)).await;
    alice.say(react("🎉", true)).await;
    bob.say(react("👍", true)).await; // nothing new
    alice
        .say(ClientFrame::Edit {
            room: "general".into(),
            id: 1,
            body: "hello @carol".into(),
        })
        .await;
    bob.say(ClientFrame::Edit {
        room: "general".into(),
        id: 1,
        body: "not mine".into(),
    })
    .await;
    alice
        .say(ClientFrame::Delete {
            room: "general".into(),
            id: 1,
        })
        .await;
    let seen = bob
        .until(|f| matches!(f, ServerFrame::Changed { message, .. } if message.deleted))
        .await;
    let changes = changes_of(&seen, "general");
    assert_eq!(
        changes.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(changes[1].1.reactions.len(), 2);
    assert_eq!(changes[2].1.mentions, ["carol"]);
    assert!(changes[2].1.edited.is_some());
    assert_eq!(
        (changes[3].1.body.as_str(), changes[3].1.reactions.len()),
        ("", 0)
    );
    assert_eq!(
        error_of(&seen).map(|(code, _, room)| (code, room)),
        Some((ErrorCode::Forbidden, Some("general".into())))
    );
    let mine = alice
        .until(|f| matches!(f, ServerFrame::Changed { rev: 4, .. }))
        .await;
    assert_eq!(changes_of(&mine, "general").len(), 4);
}

/// A change made on one node reaches the other's members; a lost one is
/// read from the store when the next change shows the gap.
#[tokio::test]
async fn changes_cross_nodes_and_lost_ones_are_read_back() {
    let (a, b, nodes) = two_nodes();
    let mut alice = Peer::new(&a, "alice");
    let mut bob = Peer::new(&b, "bob");
    alice.join("general").await;
    bob.join("general").await;
    alice.send("general", "one", None).await;
    bob.until(|f| matches!(f, ServerFrame::Message(_))).await;
    let edit = |body: &str| ClientFrame::Edit {
        room: "general".into(),
        id: 1,
        body: body.into(),
    };
    alice.say(edit("two")).await;
    bob.until(|f| matches!(f, ServerFrame::Changed { rev: 1, .. }))
        .await;
    nodes[0].set_lossy(true);
    alice.say(edit("three")).await;
    nodes[0].set_lossy(false);
    alice
        .say(ClientFrame::React {
            room: "general".into(),
            id: 1,
            emoji: "👀".into(),
            on: true,
        })
        .await;
    let seen = bob
        .until(|f| matches!(f, ServerFrame::Changed { rev: 3, .. }))
        .await;
    let changes = changes_of(&seen, "general");
    // Revision 2 was superseded by 3 before it could be read back: the
    // message as it stands at 3 carries it.
    let last = &changes.last().expect("a change").1;
    assert_eq!((last.body.as_str(), last.reactions.len()), ("three", 1));
    assert!(changes.windows(2).all(|w| w[0].0 < w[1].0));
}

/// A client resuming with a revision gets what changed while it was away
/// in `joined.changed`, each message once, and the room's revision.
#[tokio::test]
async fn a_resume_with_rev_gets_the_changes_it_missed() {
    let hub = hub();
    let mut alice = Peer::new(&hub, "alice");
    alice.join("general").await;
    for i in 1..=3 {
        alice.send("general", &format!("m{i}"), None).await;
    }
    alice
        .say(ClientFrame::Edit {
            room: "general".into(),
            id: 1,
            body: "m1 seen".into(),
        })
        .await;
    // Bob saw up to message 3 and revision 1; then two more changes.
    for body in ["m2 missed", "m2 missed again"] {
        alice
            .say(ClientFrame::Edit {
                room: "general".into(),
                id: 2,
                body: body.into(),
            })
            .await;
    }
    let resume = BTreeMap::from([("general".to_string(), Resume::At { id: 3, rev: 1 })]);
    let mut bob = Peer::resuming(&hub, "bob", resume);
    bob.join("general").await;
    let seen = bob.until(|f| matches!(f, ServerFrame::Joined { .. })).await;
    let Some(ServerFrame::Joined {
        history,
        changed,
        rev,
        ..
    }) = seen
        .into_iter()
        .find(|f| matches!(f, ServerFrame::Joined { .. }))
    else {
        panic!("no joined");
    };
    assert!(history.is_empty());
    assert_eq!(rev, Some(3));
    assert_eq!(
        changed
            .iter()
            .map(|m| (m.id, m.body.as_str()))
            .collect::<Vec<_>>(),
        [(2, "m2 missed again")]
    );
}
