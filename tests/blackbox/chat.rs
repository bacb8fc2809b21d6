//! The chat behaviour of PROTOCOL.md over real WebSockets: session start,
//! rooms, fan-out, ordering, acks, retries, presence, history, resume,
//! persistence across restarts, typing.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(300);

fn obj_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

both_backends! {
async fn hello_gets_welcome() {
    let s = Server::start_with(ServerOpts::new().with_bot()).await;

    let mut c = s.client().await;
    c.send_json(json!({"type":"hello","name":"alice"})).await;
    let w = c.recv_json().await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["user"], json!({"name":"alice","guest":true}), "{w}");
    assert_eq!(
        sorted_names(&w["rooms"]),
        vec!["general", "random"],
        "fresh server's rooms: {w}"
    );

    // A bot: not a guest, flagged as a bot.
    let mut b = s.client().await;
    b.send_json(json!({"type":"hello","token":BOT_TOKEN})).await;
    let w = b.recv_json().await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(
        w["user"],
        json!({"name":"testbot","guest":false,"bot":true}),
        "{w}"
    );

    // Unknown fields are ignored.
    let mut c2 = s.client().await;
    c2.send_json(json!({"type":"hello","name":"carol","x-extra":[1,2]}))
        .await;
    let w = c2.expect_type("welcome").await;
    assert_eq!(w["user"]["name"], "carol");
    c2.send_json(json!({"type":"join","room":"general","whatever":true}))
        .await;
    let j = c2.expect_type("joined").await;
    assert_eq!(j["room"], "general");
}
}

both_backends! {
async fn join_gets_online_list_and_history() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;

    let mut alice = s.guest("alice").await;
    let j = alice.join("general").await;
    assert_eq!(
        obj_keys(&j),
        // `rev`: the room's revision, to resume from (PROTOCOL-NOTES).
        vec!["history", "more", "online", "rev", "room", "type"],
        "{j}"
    );
    assert_eq!(j["room"], "general");
    assert_eq!(j["online"], json!(["alice"]));
    assert_eq!(j["history"], json!([]));
    assert_eq!(j["more"], false);

    let mut acks = Vec::new();
    for i in 0..3 {
        let n = format!("a{i}");
        acks.push(alice.send_msg("general", &format!("hello {i}"), &n).await);
    }

    let mut bob = s.guest("bob").await;
    let j = bob.join("general").await;
    assert_eq!(sorted_names(&j["online"]), vec!["alice", "bob"]);
    assert_eq!(j["more"], false);
    let h = arr(&j["history"]);
    assert_eq!(h.len(), 3, "{j}");
    for (i, m) in h.iter().enumerate() {
        assert_message_object(m);
        assert_eq!(m["room"], "general");
        assert_eq!(m["author"], "alice");
        assert_eq!(m["body"], format!("hello {i}"));
        assert_eq!(m["id"], acks[i]["id"]);
        assert_eq!(m["ts"], acks[i]["ts"]);
    }

    // Boundary: exactly 50 messages -> all of them, more=false; 51 -> the
    // newest 50, more=true.
    alice.join("edge").await;
    let mut edge_ids = Vec::new();
    for i in 0..50 {
        alice
            .send_msg_nowait("edge", &format!("e{i}"), &format!("e{i}"))
            .await;
    }
    for i in 0..50 {
        edge_ids.push(
            alice.wait_ack(&format!("e{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    edge_ids.sort();
    let mut carol = s.guest("carol").await;
    let j = carol.join("edge").await;
    assert_eq!(ids(&arr(&j["history"])), edge_ids, "{j}");
    assert_eq!(j["more"], false, "exactly 50 messages: more must be false");
    let a = alice.send_msg("edge", "e50", "e50").await;
    edge_ids.push(a["id"].as_i64().unwrap());
    let mut dave = s.guest("dave").await;
    let j = dave.join("edge").await;
    assert_eq!(ids(&arr(&j["history"])), edge_ids[1..].to_vec());
    assert_eq!(j["more"], true, "51 messages: more must be true");
    assert_eq!(arr(&j["history"])[49]["body"], "e50");
}
}

both_backends! {
async fn broadcast_reaches_every_client_exactly_once_in_order() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    const N: usize = 20;
    const M: usize = 30;
    let mut clients = Vec::new();
    for i in 0..N {
        clients.push(s.guest_in(&format!("u{i:02}"), "general").await);
    }
    let mut outsider = s.guest_in("outsider", "random").await;

    let sender = &mut clients[0];
    for i in 0..M {
        sender
            .send_msg_nowait("general", &format!("msg {i}"), &format!("b{i}"))
            .await;
    }
    let mut acks = Vec::new();
    for i in 0..M {
        let a = sender.wait_ack(&format!("b{i}")).await;
        assert_eq!(
            obj_keys(&a),
            vec!["id", "nonce", "room", "ts", "type"],
            "ack: {a}"
        );
        assert_eq!(a["room"], "general");
        assert_ts(&a["ts"]);
        acks.push(a);
    }
    // In id order (the order of one sender's pipelined sends is checked in
    // `one_connections_sends_keep_their_order`).
    acks.sort_by_key(|a| a["id"].as_i64().unwrap());
    let ack_ids = ids(&acks);
    assert_strictly_increasing(&ack_ids, "acks");

    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(ci, mut c)| {
            let acks = acks.clone();
            tokio::spawn(async move {
                let ms = c.messages("general", M).await;
                for (i, m) in ms.iter().enumerate() {
                    assert_message_frame(m);
                    assert_eq!(m["room"], "general");
                    assert_eq!(m["id"], acks[i]["id"], "client {ci} message {i}: {m}");
                    assert_eq!(m["ts"], acks[i]["ts"], "client {ci}: {m}");
                    assert_eq!(m["author"], "u00");
                    assert_eq!(m["nonce"], acks[i]["nonce"]);
                    let k = acks[i]["nonce"].as_str().unwrap().trim_start_matches('b');
                    assert_eq!(m["body"], format!("msg {k}"));
                }
                // Exactly once: nothing more arrives.
                c.expect_none_where(QUIET, "extra message", |v| typ(v) == "message")
                    .await;
                c
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
    outsider
        .expect_none_where(QUIET, "message of another room", |v| typ(v) == "message")
        .await;
}
}

both_backends! {
async fn senders_other_connections_receive_its_message() {
    let s = Server::start_with(ServerOpts::new().with_bot()).await;
    let mut a = s.bot().await;
    let mut b = s.bot().await;
    a.join("general").await;
    b.join("general").await;
    let mut watcher = s.guest_in("watcher", "general").await;

    let ack = a.send_msg("general", "from a", "bot-1").await;
    let own = a
        .recv_where("own message", |v| {
            typ(v) == "message" && v["nonce"] == "bot-1"
        })
        .await;
    let other = b.messages("general", 1).await.remove(0);
    let w = watcher.messages("general", 1).await.remove(0);
    for m in [&own, &other, &w] {
        assert_message_frame(m);
        assert_eq!(m["id"], ack["id"]);
        assert_eq!(m["ts"], ack["ts"]);
        assert_eq!(m["author"], BOT_NAME);
        assert_eq!(m["body"], "from a");
        assert_eq!(m["nonce"], "bot-1");
    }
    b.expect_none_where(QUIET, "second copy", |v| typ(v) == "message")
        .await;
}
}

both_backends! {
async fn concurrent_senders_same_order_everywhere() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    const SENDERS: usize = 5;
    const WATCHERS: usize = 5;
    const PER: usize = 20;
    const TOTAL: usize = SENDERS * PER;

    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(s.guest_in(&format!("s{i}"), "busy").await);
    }
    let mut watchers = Vec::new();
    for i in 0..WATCHERS {
        watchers.push(s.guest_in(&format!("w{i}"), "busy").await);
    }

    let mut tasks = Vec::new();
    for (si, mut c) in senders.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for k in 0..PER {
                c.send_msg_nowait("busy", &format!("s{si} #{k}"), &format!("s{si}-{k}"))
                    .await;
                if k % 5 == 4 {
                    tokio::task::yield_now().await;
                }
            }
            let mut acks = Vec::new();
            for k in 0..PER {
                acks.push(c.wait_ack(&format!("s{si}-{k}")).await);
            }
            let ms = c.messages("busy", TOTAL).await;
            (acks, ms)
        }));
    }
    for mut c in watchers.into_iter() {
        tasks.push(tokio::spawn(async move {
            let ms = c.messages("busy", TOTAL).await;
            c.expect_none_where(QUIET, "extra message", |v| typ(v) == "message")
                .await;
            (Vec::new(), ms)
        }));
    }

    let mut all_acks: HashMap<String, Value> = HashMap::new();
    let mut views = Vec::new();
    for (ti, t) in tasks.into_iter().enumerate() {
        let (acks, ms) = t.await.expect("task");
        if ti < SENDERS {
            for a in acks {
                all_acks.insert(a["nonce"].as_str().unwrap().to_string(), a);
            }
        }
        views.push(ms);
    }
    assert_eq!(all_acks.len(), TOTAL);
    let reference: Vec<(i64, String, String, String)> = views[0]
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                m["author"].as_str().unwrap().to_string(),
                m["nonce"].as_str().unwrap_or("").to_string(),
                m["body"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ref_ids: Vec<i64> = reference.iter().map(|r| r.0).collect();
    assert_strictly_increasing(&ref_ids, "room order");
    for (ci, v) in views.iter().enumerate() {
        let got: Vec<(i64, String, String, String)> = v
            .iter()
            .map(|m| {
                (
                    m["id"].as_i64().unwrap(),
                    m["author"].as_str().unwrap().to_string(),
                    m["nonce"].as_str().unwrap_or("").to_string(),
                    m["body"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, reference, "client {ci} saw a different order");
    }
    // Every message is one of the acknowledged ones, with the ack's id.
    let mut seen = BTreeSet::new();
    for (id, author, nonce, body) in &reference {
        let a = all_acks
            .get(nonce)
            .unwrap_or_else(|| panic!("message {id} with unknown nonce {nonce}"));
        assert_eq!(a["id"].as_i64().unwrap(), *id, "ack/message id of {nonce}");
        let (sender, k) = nonce.split_once('-').unwrap();
        assert_eq!(author, sender);
        assert_eq!(body, &format!("{sender} #{k}"));
        assert!(seen.insert(nonce.clone()), "nonce {nonce} twice");
    }
}
}

both_backends! {
async fn ack_means_stored() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let a = alice
            .send_msg("general", &format!("durable {i}"), &format!("d{i}"))
            .await;
        let id = a["id"].as_i64().unwrap();
        // Right after the ack, the HTTP API must show it.
        let page = s.api_messages("general", "").await;
        let got = ids(&arr(&page["messages"]));
        assert!(
            got.contains(&id),
            "acked id {id} missing from GET /api/rooms/general/messages right after the ack: {got:?}"
        );
        acked.push(id);
    }
    let mut bob = s.guest("bob").await;
    let j = bob.join("general").await;
    assert_eq!(ids(&arr(&j["history"])), acked);
    for (i, m) in arr(&j["history"]).iter().enumerate() {
        assert_eq!(m["body"], format!("durable {i}"));
        assert_eq!(m["author"], "alice");
    }
}
}

both_backends! {
async fn nonce_retry_gets_same_ack_and_no_second_message() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;

    let first = alice.send_msg("general", "only once", "retry-1").await;
    let again = alice.send_msg("general", "only once", "retry-1").await;
    assert_eq!(again, first, "a retried send must get the same ack");
    // Even with another body, the (user, nonce) pair was already stored.
    let third = alice.send_msg("general", "changed body", "retry-1").await;
    assert_eq!(third["id"], first["id"], "{third}");

    // Retries sent before the first answer arrives (pipelined duplicates).
    for _ in 0..3 {
        alice.send_msg_nowait("general", "raced", "race-1").await;
    }
    let r: Vec<Value> = vec![
        alice.wait_ack("race-1").await,
        alice.wait_ack("race-1").await,
        alice.wait_ack("race-1").await,
    ];
    assert_eq!(r[0], r[1], "duplicate in flight: same ack");
    assert_eq!(r[0], r[2], "duplicate in flight: same ack");

    // Retrying from a new connection after a drop (the real use case).
    alice.close().await;
    let mut alice = reconnect_guest(&s, "alice", None).await;
    alice.join("general").await;
    let fourth = alice.send_msg("general", "only once", "retry-1").await;
    assert_eq!(fourth["id"], first["id"], "retry after reconnect: {fourth}");

    // Another user may use the same nonce: that is a different message.
    let bobs = bob.send_msg("general", "bob's", "retry-1").await;
    assert_ne!(bobs["id"], first["id"]);

    let sentinel = alice.send_msg("general", "sentinel", "sentinel").await;
    let ms = bob
        .messages_until("general", sentinel["id"].as_i64().unwrap())
        .await;
    let bodies: Vec<&str> = ms.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        vec!["only once", "raced", "bob's", "sentinel"],
        "{ms:?}"
    );

    let page = s.api_messages("general", "").await;
    let stored: Vec<String> = arr(&page["messages"])
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, vec!["only once", "raced", "bob's", "sentinel"]);
}
}

both_backends! {
async fn presence_is_announced_to_others_with_online_counts() {
    let s = Server::start_with(ServerOpts::new().with_bot()).await;
    let mut alice = s.guest_in("alice", "general").await;

    let mut bob = s.guest("bob").await;
    let j = bob.join("general").await;
    assert_eq!(sorted_names(&j["online"]), vec!["alice", "bob"]);
    assert_eq!(
        wait_presence(&mut alice, "general", "bob", "joined").await,
        2
    );
    let p = alice
        .pending()
        .iter()
        .find(|v| typ(v) == "presence")
        .cloned();
    assert!(p.is_none(), "extra presence frame: {p:?}");

    // The single-user form, as in the protocol example.
    let mut carol = s.guest("carol").await;
    carol.join("general").await;
    let p = alice
        .recv_where("presence carol", |v| typ(v) == "presence")
        .await;
    if p.get("user").is_some() {
        assert_eq!(
            p,
            json!({"type":"presence","room":"general","user":"carol","state":"joined","online":3})
        );
    }

    // A user's first connection is announced, the second is not.
    let mut bot1 = s.bot().await;
    bot1.join("general").await;
    assert_eq!(
        wait_presence(&mut alice, "general", BOT_NAME, "joined").await,
        4
    );
    let mut bot2 = s.bot().await;
    let j = bot2.join("general").await;
    assert_eq!(
        sorted_names(&j["online"]),
        vec!["alice", "bob", "carol", "testbot"],
        "online lists users, once each"
    );
    alice
        .expect_none_where(QUIET, "presence for a second connection", |v| {
            typ(v) == "presence"
        })
        .await;
    // Closing one of two connections: still online.
    bot2.close().await;
    alice
        .expect_none_where(QUIET, "presence while another connection stays", |v| {
            typ(v) == "presence"
        })
        .await;
    // Leaving with the last one: announced.
    bot1.send_json(json!({"type":"leave","room":"general"}))
        .await;
    assert_eq!(
        wait_presence(&mut alice, "general", BOT_NAME, "left").await,
        3
    );
    // Closing the connection counts as leaving.
    bob.close().await;
    assert_eq!(wait_presence(&mut alice, "general", "bob", "left").await, 2);
    carol.drop_abruptly();
    assert_eq!(
        wait_presence(&mut alice, "general", "carol", "left").await,
        1
    );

    // Nobody is told about their own arrival.
    let mut dave = s.guest_in("dave", "general").await;
    dave.expect_none_where(QUIET, "presence about oneself", |v| {
        typ(v) == "presence" && v["user"] == "dave"
    })
    .await;
    let _ = bot1;
}
}

both_backends! {
async fn history_scrollback_pages() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "archive").await;

    let mut bob = s.guest("bob").await;
    let j = bob.join("archive").await;
    assert_eq!(j["history"], json!([]));
    assert_eq!(j["more"], false);
    let h = bob.history("archive", None, None).await;
    assert_eq!(h["messages"], json!([]));
    assert_eq!(h["more"], false);

    const N: usize = 120;
    for i in 0..N {
        alice
            .send_msg_nowait("archive", &format!("m{i}"), &format!("h{i}"))
            .await;
    }
    let mut acks = Vec::new();
    for i in 0..N {
        acks.push(alice.wait_ack(&format!("h{i}")).await);
    }
    let all = sorted_ids(&acks);
    let body_of: HashMap<i64, String> = acks
        .iter()
        .map(|a| {
            let n = a["nonce"].as_str().unwrap();
            (a["id"].as_i64().unwrap(), format!("m{}", &n[1..]))
        })
        .collect();

    let mut carol = s.guest("carol").await;
    let j = carol.join("archive").await;
    let h = arr(&j["history"]);
    assert_eq!(
        ids(&h),
        all[70..].to_vec(),
        "joined: newest 50, oldest first"
    );
    assert_eq!(j["more"], true);
    for m in h.iter() {
        assert_message_object(m);
        assert_eq!(m["body"], body_of[&m["id"].as_i64().unwrap()].as_str());
        assert_eq!(m["author"], "alice");
    }

    let check = |h: &Value, want: &[i64], more: bool, what: &str| {
        assert_eq!(h["room"], "archive", "{what}: {h}");
        let ms = arr(&h["messages"]);
        for m in &ms {
            assert_message_object(m);
            assert_eq!(m["room"], "archive");
        }
        assert_eq!(ids(&ms), want.to_vec(), "{what}");
        assert_eq!(h["more"], more, "{what}: more");
    };
    let h = carol.history("archive", Some(all[70]), Some(50)).await;
    check(&h, &all[20..70], true, "page 2");
    let h = carol.history("archive", Some(all[20]), Some(50)).await;
    check(&h, &all[..20], false, "page 3 (last)");
    let h = carol.history("archive", Some(all[0]), Some(50)).await;
    check(&h, &[], false, "before the first message");
    let h = carol.history("archive", Some(all[70]), Some(10)).await;
    check(&h, &all[60..70], true, "limit 10");
    let h = carol.history("archive", Some(all[10]), Some(10)).await;
    check(&h, &all[..10], false, "exactly the first 10");
    let h = carol.history("archive", None, Some(5)).await;
    check(&h, &all[115..], true, "newest 5");
    let h = carol.history("archive", None, None).await;
    check(&h, &all[70..], true, "default page");
    // A large limit: PROTOCOL.md sets no maximum for `history` (the server
    // may cap it, at 50 or more); whatever comes back is the newest k before
    // `before`, oldest first, and `more` tells whether older ones remain.
    let h = carol.history("archive", Some(all[100]), Some(500)).await;
    let k = arr(&h["messages"]).len();
    assert!(
        (50..=100).contains(&k),
        "limit 500 with 100 older messages: got {k}"
    );
    check(&h, &all[100 - k..100], k < 100, "large limit");
    // `before` an id that is not in the room (e.g. far in the future).
    let h = carol
        .history("archive", Some(all[119] + 1000), Some(3))
        .await;
    check(&h, &all[117..], true, "before beyond the newest");

    // Scroll-back needs no join of public rooms? It must at least work after one;
    // and history of an empty, fresh room is empty.
    carol.join("empty-room").await;
    let h = carol.history("empty-room", None, None).await;
    assert_eq!(h["messages"], json!([]));
    assert_eq!(h["more"], false);
}
}

/// Sends `n` messages in small pipelined bursts (a steady stream for a
/// couple of seconds at most); returns their ids, sorted.
async fn talk(c: &mut Client, room: &str, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for burst in (0..n).collect::<Vec<_>>().chunks(5) {
        for i in burst {
            c.send_msg_nowait(room, &format!("flow {i}"), &format!("f{i}"))
                .await;
        }
        for i in burst {
            out.push(c.wait_ack(&format!("f{i}")).await["id"].as_i64().unwrap());
        }
    }
    out.sort();
    out
}

/// Reads a resumed room after `join`: the `joined` history followed by any
/// `message` frames, until `last` is seen.
async fn resumed_ids(c: &mut Client, room: &str, last_seen: i64, last: i64) -> Vec<i64> {
    let j = c.join(room).await;
    let hist = arr(&j["history"]);
    let mut got = ids(&hist);
    if let Some(first) = got.first() {
        assert!(
            *first > last_seen,
            "resume {{{room}:{last_seen}}}: joined history starts at {first}, an already seen id"
        );
    }
    if got.last().is_none_or(|l| *l < last) {
        let ms = c.messages_until(room, last).await;
        for m in &ms {
            assert_message_frame(m);
        }
        got.extend(ids(&ms));
    }
    got
}

both_backends! {
async fn resume_after_disconnect_no_gap_no_duplicate() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;

    let mut before = Vec::new();
    for i in 0..5 {
        before.push(
            bob.send_msg("general", &format!("seen {i}"), &format!("p{i}"))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let seen = alice.messages("general", 5).await;
    assert_eq!(ids(&seen), before);
    let last_seen = *before.last().unwrap();
    alice.close().await;

    const MISSED: usize = 65;
    for i in 0..MISSED {
        bob.send_msg_nowait("general", &format!("missed {i}"), &format!("m{i}"))
            .await;
    }
    let mut missed = Vec::new();
    for i in 0..MISSED {
        missed.push(bob.wait_ack(&format!("m{i}")).await["id"].as_i64().unwrap());
    }
    missed.sort();

    let mut alice = reconnect_guest(&s, "alice", Some(json!({"general": last_seen}))).await;
    let got = resumed_ids(&mut alice, "general", last_seen, *missed.last().unwrap()).await;
    assert_eq!(
        got, missed,
        "resumed client must get exactly the missed messages, in order"
    );

    // Then live ones, and nothing twice.
    let mut live = Vec::new();
    for i in 0..3 {
        live.push(
            bob.send_msg("general", &format!("live {i}"), &format!("l{i}"))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let ms = alice.messages("general", 3).await;
    assert_eq!(ids(&ms), live);
    assert_eq!(ms[2]["body"], "live 2");
    alice
        .expect_none_where(QUIET, "duplicate message", |v| typ(v) == "message")
        .await;
}
}

both_backends! {
async fn resume_while_messages_keep_flowing() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    let a = bob.send_msg("general", "start", "start").await;
    let last_seen = a["id"].as_i64().unwrap();
    assert_eq!(alice.messages("general", 1).await[0]["id"], last_seen);
    alice.close().await;

    // Bob keeps talking while Alice comes back.
    let sender = tokio::spawn(async move {
        let out = talk(&mut bob, "general", 150).await;
        (bob, out)
    });
    tokio::time::sleep(Duration::from_millis(40)).await;
    let mut alice = reconnect_guest(&s, "alice", Some(json!({"general": last_seen}))).await;
    let j = alice.join("general").await;
    let (_bob, sent) = sender.await.unwrap();
    let last = *sent.last().unwrap();

    let mut got = ids(&arr(&j["history"]));
    if got.last().is_none_or(|l| *l < last) {
        got.extend(ids(&alice.messages_until("general", last).await));
    }
    assert_eq!(
        got, sent,
        "no gap, no duplicate, in order across the resume"
    );
    alice
        .expect_none_where(QUIET, "duplicate message", |v| typ(v) == "message")
        .await;
}
}

both_backends! {
async fn history_survives_restart() {
    let dir = fresh_dir();
    let s = Server::start_with(ServerOpts::new().dir(dir.clone())).await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut acks = Vec::new();
    for i in 0..5 {
        acks.push(
            alice
                .send_msg("general", &format!("persist {i}"), &format!("r{i}"))
                .await,
        );
    }
    alice.join("made-here").await;
    let made = alice.send_msg("made-here", "in a new room", "r-new").await;
    drop(alice);
    let dir = s.stop().await;

    let s2 = Server::start_with(ServerOpts::new().dir(dir)).await;
    let mut bob = s2.guest("bob").await;
    let j = bob.join("general").await;
    let h = arr(&j["history"]);
    assert_eq!(ids(&h), ids(&acks), "history after restart: {j}");
    for (i, m) in h.iter().enumerate() {
        assert_eq!(m["body"], format!("persist {i}"));
        assert_eq!(m["author"], "alice");
        assert_eq!(m["ts"], acks[i]["ts"]);
    }
    let j = bob.join("made-here").await;
    assert_eq!(ids(&arr(&j["history"])), vec![made["id"].as_i64().unwrap()]);
    let next = bob.send_msg("general", "after restart", "r5").await;
    assert!(
        next["id"].as_i64().unwrap() > acks[4]["id"].as_i64().unwrap(),
        "ids keep increasing across restarts: {next}"
    );
}
}

both_backends! {
async fn typing_is_relayed_to_others_not_to_self() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    let mut carol = s.guest_in("carol", "random").await;

    alice
        .send_json(json!({"type":"typing","room":"general"}))
        .await;
    let t = bob.recv_where("typing", |v| typ(v) == "typing").await;
    assert_eq!(t, json!({"type":"typing","room":"general","user":"alice"}));

    let a = alice.send_msg("general", "done typing", "t1").await;
    alice
        .recv_where("own message", |v| typ(v) == "message" && v["id"] == a["id"])
        .await;
    alice
        .expect_none_where(QUIET, "own typing", |v| typ(v) == "typing")
        .await;
    carol
        .expect_none_where(QUIET, "typing of another room", |v| typ(v) == "typing")
        .await;
}
}

both_backends! {
async fn leave_stops_delivery() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    alice
        .send_json(json!({"type":"leave","room":"general"}))
        .await;
    assert_eq!(wait_presence(&mut bob, "general", "alice", "left").await, 1);
    bob.send_msg("general", "alice is gone", "x1").await;
    alice
        .expect_none_where(QUIET, "message after leave", |v| typ(v) == "message")
        .await;
    let e = alice.send_msg_result("general", "still here?", "x2").await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "not_joined", "{e}");
    assert_eq!(e["nonce"], "x2", "{e}");
    // Joining again works and shows what was missed.
    let j = alice.join("general").await;
    let h = arr(&j["history"]);
    assert_eq!(h.last().unwrap()["body"], "alice is gone");
}
}

both_backends! {
async fn direct_messages_between_their_two_members() {
    // DMs need accounts (this server refuses them to guests, whose names are
    // not owned): operator tokens stand in for accounts.
    let s = Server::start_with(ServerOpts::new().with_accounts()).await;
    let mut alice = s.account("alice").await;
    alice.join("general").await;
    let mut bob = s.account("bob").await;
    bob.join("general").await;
    let mut carol = s.account("carol").await;
    carol.join("general").await;

    let j = alice.join("dm:alice:bob").await;
    assert_eq!(j["room"], "dm:alice:bob");
    bob.join("dm:alice:bob").await;
    let a = alice.send_msg("dm:alice:bob", "psst", "dm1").await;
    let m = bob.messages("dm:alice:bob", 1).await.remove(0);
    assert_eq!(m["id"], a["id"]);
    assert_eq!(m["body"], "psst");
    assert_eq!(m["author"], "alice");
    carol
        .expect_none_where(QUIET, "someone else's DM", |v| typ(v) == "message")
        .await;
    carol
        .send_json(json!({"type":"join","room":"dm:alice:bob"}))
        .await;
    carol.expect_error("forbidden").await;
    // History of the DM is there for its members, in both directions.
    let b = bob.send_msg("dm:alice:bob", "pong", "dm2").await;
    let m = alice
        .recv_where("bob's DM", |v| typ(v) == "message" && v["id"] == b["id"])
        .await;
    assert_eq!(m["author"], "bob");
    let h = bob.history("dm:alice:bob", None, None).await;
    assert_eq!(
        ids(&arr(&h["messages"])),
        vec![a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap()]
    );
}
}

both_backends! {
async fn bodies_are_plain_text_stored_verbatim() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    let body = "<script>alert('x')</script> &amp; <b>é 🌍</b> \"quoted\"\nline 2";
    let a = alice.send_msg("general", body, "v1").await;
    let m = bob.messages("general", 1).await.remove(0);
    assert_eq!(m["body"], body);
    let page = s.api_messages("general", "").await;
    let stored = arr(&page["messages"]);
    assert_eq!(stored.last().unwrap()["id"], a["id"]);
    assert_eq!(stored.last().unwrap()["body"], body);
    let j = s.guest("carol").await.join("general").await;
    assert_eq!(arr(&j["history"])[0]["body"], body);
}
}

both_backends! {
async fn logs_name_the_peer_on_connect_and_disconnect() {
    let s = Server::start().await;
    let c = s.guest("alice").await;
    let peer = c.local_addr.to_string();
    s.wait_log(&format!("mentioning peer {peer} on connect"), |l| {
        l.contains(&peer)
    })
    .await;
    c.close().await;
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let n = s.log_lines().iter().filter(|l| l.contains(&peer)).count();
        if n >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected a connect and a disconnect log line naming {peer}; logs:\n{}",
            s.log_lines().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
}

both_backends! {
async fn idle_connections_are_closed_live_ones_kept() {
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_IDLE_TIMEOUT_SECS", 2)).await;
    let mut active = s.guest_in("active", "general").await;
    let mut silent = s.guest_in("silent", "general").await;

    // `active` keeps reading (and so answers the server's pings); `silent`
    // is never polled, so it neither sends frames nor answers pings.
    let until = std::time::Instant::now() + Duration::from_millis(4500);
    let mut seen = Vec::new();
    while std::time::Instant::now() < until {
        if let Some(v) = active.try_recv_json(Duration::from_millis(100)).await {
            seen.push(v);
        }
    }
    let ack = active.send_msg("general", "still here", "alive").await;
    assert_eq!(ack["type"], "ack");

    let c = silent.expect_close_within(Duration::from_secs(5)).await;
    // Any way of ending the connection is fine here; it must be gone.
    eprintln!("idle connection ended with {c:?}");
    let left = seen.iter().any(|v| {
        typ(v) == "presence"
            && ((v["user"] == "silent" && v["state"] == "left")
                || v["left"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "silent")))
    });
    if !left {
        assert_eq!(
            wait_presence(&mut active, "general", "silent", "left").await,
            1
        );
    }
}
}

both_backends! {
async fn one_connections_sends_keep_their_order() {
    // A client that sends "a" then "b" without waiting expects them shown
    // in that order: ids follow the order of one connection's frames.
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    const N: usize = 200;
    for i in 0..N {
        alice
            .send_msg_nowait("general", &format!("seq {i}"), &format!("q{i}"))
            .await;
    }
    let mut acked = Vec::new();
    for i in 0..N {
        acked.push(
            alice.wait_ack(&format!("q{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let ms = bob.messages("general", N).await;
    let order: Vec<String> = ms
        .iter()
        .map(|m| m["nonce"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..N).map(|i| format!("q{i}")).collect();
    assert_eq!(
        order, want,
        "bob sees alice's messages in the order she sent them"
    );
    assert_strictly_increasing(&acked, "ack ids in send order");
}
}

both_backends! {
async fn a_guest_name_is_shared_by_connections_with_the_same_cookie() {
    // The page sets a guest cookie (`causerie_guest`, an implementation
    // detail of this server); tabs of one browser share the name.
    let s = Server::start().await;
    let cookie = "causerie_guest=tab-cookie-1";
    let mut t1 = s.ws_connect_with(&[("Cookie", cookie)]).await.unwrap();
    t1.hello("alice").await;
    let mut t2 = s.ws_connect_with(&[("Cookie", cookie)]).await.unwrap();
    t2.hello("alice").await;
    // Without the cookie, or with another one, the name is taken.
    let mut other = s.client().await;
    other
        .send_json(json!({"type":"hello","name":"alice"}))
        .await;
    other.expect_error("bad_name").await;
    let mut other2 = s
        .ws_connect_with(&[("Cookie", "causerie_guest=someone-else")])
        .await
        .unwrap();
    other2
        .send_json(json!({"type":"hello","name":"alice"}))
        .await;
    other2.expect_error("bad_name").await;

    t1.join("general").await;
    t2.join("general").await;
    let a = t1.send_msg("general", "from tab 1", "tab1").await;
    let m = t2.messages("general", 1).await.remove(0);
    assert_eq!(m["id"], a["id"]);
    assert_eq!(m["author"], "alice");
    let own = t1.messages("general", 1).await.remove(0);
    assert_eq!(own["id"], a["id"]);
}
}

both_backends! {
async fn join_while_messages_flow_has_no_gap_and_no_duplicate() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut bob = s.guest_in("bob", "general").await;
    let mut all = Vec::new();
    for i in 0..30 {
        all.push(
            bob.send_msg("general", &format!("early {i}"), &format!("e{i}"))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let sender = tokio::spawn(async move {
        let out = talk(&mut bob, "general", 150).await;
        (bob, out)
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut carol = s.guest("carol").await;
    let j = carol.join("general").await;
    let (_bob, flowed) = sender.await.unwrap();
    all.extend(flowed);
    let last = *all.last().unwrap();

    let hist = ids(&arr(&j["history"]));
    let l = *hist.last().expect("history is not empty");
    let pos = all
        .iter()
        .position(|&x| x == l)
        .expect("history ends with a stored id");
    let from = (pos + 1).saturating_sub(50);
    assert_eq!(
        hist,
        all[from..=pos].to_vec(),
        "joined history: the newest 50 at join time"
    );
    eprintln!("carol joined after {} of {} messages", pos + 1, all.len());
    let live = if l < last {
        ids(&carol.messages_until("general", last).await)
    } else {
        Vec::new()
    };
    assert_eq!(
        live,
        all[pos + 1..].to_vec(),
        "live messages right after the joined history: no gap, no duplicate"
    );
    carol
        .expect_none_where(QUIET, "duplicate message", |v| typ(v) == "message")
        .await;
}
}

both_backends! {
async fn resume_after_a_long_absence_in_two_rooms() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    alice.join("random").await;
    let mut bob = s.guest_in("bob", "general").await;
    bob.join("random").await;
    let g0 = bob.send_msg("general", "g start", "g-start").await["id"]
        .as_i64()
        .unwrap();
    let r0 = bob.send_msg("random", "r start", "r-start").await["id"]
        .as_i64()
        .unwrap();
    alice
        .recv_where("last seen in general", |v| {
            v["id"] == g0 && v["room"] == "general"
        })
        .await;
    alice
        .recv_where("last seen in random", |v| {
            v["id"] == r0 && v["room"] == "random"
        })
        .await;
    alice.close().await;

    // Far more than one page in each room, interleaved.
    const N: usize = 260;
    for i in 0..N {
        let room = if i % 3 == 0 { "random" } else { "general" };
        bob.send_msg_nowait(room, &format!("{room} {i}"), &format!("x{i}"))
            .await;
    }
    let mut missed_g = Vec::new();
    let mut missed_r = Vec::new();
    for i in 0..N {
        let a = bob.wait_ack(&format!("x{i}")).await;
        let id = a["id"].as_i64().unwrap();
        if i % 3 == 0 {
            missed_r.push(id)
        } else {
            missed_g.push(id)
        }
    }
    missed_g.sort();
    missed_r.sort();

    let mut alice = reconnect_guest(&s, "alice", Some(json!({"general": g0, "random": r0}))).await;
    let got_g = resumed_ids(&mut alice, "general", g0, *missed_g.last().unwrap()).await;
    assert_eq!(got_g, missed_g, "general: every missed message, in order");
    let got_r = resumed_ids(&mut alice, "random", r0, *missed_r.last().unwrap()).await;
    assert_eq!(got_r, missed_r, "random: every missed message, in order");
    alice
        .expect_none_where(QUIET, "duplicate message", |v| typ(v) == "message")
        .await;
}
}
