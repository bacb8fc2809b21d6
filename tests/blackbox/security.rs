//! Regression tests for the findings of the security review (docs/SECURITY.md):
//! what no backend can store, large frames, typing floods, room floods and
//! credentials that end while a connection is open.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How long a test listens to be sure that something does not come.
const QUIET: Duration = Duration::from_millis(600);

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
}

/// The public rooms `GET /api/rooms` lists, in its order.
async fn listed_rooms(s: &Server) -> Vec<String> {
    let (st, v) = s.get_json("/api/rooms").await;
    assert_eq!(st, 200, "{v}");
    arr(&v)
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Joins each room in turn; returns the rooms joined and the errors met.
async fn join_each(c: &mut Client, rooms: &[String]) -> (Vec<String>, Vec<Value>) {
    let (mut joined, mut errors) = (Vec::new(), Vec::new());
    for room in rooms {
        c.send_json(json!({"type":"join","room":room})).await;
        let v = c
            .recv_where(&format!("joined {room} or an error"), |v| {
                (typ(v) == "joined" && v["room"] == room.as_str()) || typ(v) == "error"
            })
            .await;
        if typ(&v) == "joined" {
            joined.push(room.clone());
        } else {
            errors.push(v);
        }
    }
    (joined, errors)
}

both_backends! {
async fn a_nul_character_is_refused_and_stops_nobody_else() {
    // PostgreSQL text cannot hold U+0000: once it failed the whole batch of
    // other people's messages written with it. Refused at the door now, on
    // both backends alike, with a reason a person can read.
    let s = Server::start_with(ServerOpts::new().with_bot()).await;
    let mut frank = s.guest_in("frank", "general").await;
    let mut nul_senders = Vec::new();
    for i in 0..5 {
        nul_senders.push(s.guest_in(&format!("nul{i}"), "general").await);
    }
    let mut refused_nonces = Vec::new();
    for (i, c) in nul_senders.iter_mut().enumerate() {
        let nonce = c.nonce();
        c.send_msg_nowait("general", "\u{0}", &nonce).await;
        let inner = c.nonce();
        c.send_msg_nowait("general", &format!("a\u{0}b {i}"), &inner).await;
        refused_nonces.push(vec![nonce, inner]);
    }
    let frank_nonces: Vec<String> = (0..10).map(|_| frank.nonce()).collect();
    for (i, n) in frank_nonces.iter().enumerate() {
        frank.send_msg_nowait("general", &format!("frank {i}"), n).await;
    }
    for (c, nonces) in nul_senders.iter_mut().zip(&refused_nonces) {
        for n in nonces {
            let v = c
                .recv_where("the refusal", |v| typ(v) == "error" && v["nonce"] == n.as_str())
                .await;
            assert_eq!(v["code"], "bad_request", "{v}");
            assert!(v["message"].as_str().unwrap().contains("NUL"), "{v}");
        }
    }
    for n in &frank_nonces {
        frank.wait_ack(n).await;
    }
    // A nonce with NUL in it is refused the same way.
    frank
        .send_json(json!({"type":"send","room":"general","body":"hi","nonce":"x\u{0}"}))
        .await;
    let v = frank.recv_where("the refusal", |v| typ(v) == "error").await;
    assert_eq!(v["code"], "bad_request", "{v}");
    assert!(v["message"].as_str().unwrap().contains("NUL"), "{v}");

    // Over HTTP: the bad post is a 400, every other post is stored.
    let (st, v) = s.api_post("general", Some(BOT_TOKEN), &json!({"body":"\u{0}"})).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "bad_request", "{v}");
    for i in 0..10 {
        let (st, v) = s
            .api_post("general", Some(BOT_TOKEN), &json!({"body":format!("bot {i}")}))
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let page = s.api_messages("general", "?limit=200").await;
    let bodies: Vec<&str> = arr(&page["messages"])
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies.len(), 20, "frank's ten and the bot's ten: {bodies:?}");
    assert!(bodies.iter().all(|b| !b.contains('\u{0}')));
}
}

/// One row PostgreSQL refuses (here through a CHECK constraint the test
/// adds) fails its own send only, never the others' written in its batch,
/// and its error tells nothing of the database.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_refused_row_fails_alone() {
    if postgres_url().is_none() {
        eprintln!("skipped: set CAUSERIE_TEST_POSTGRES=postgres://...");
        return;
    }
    let db = PgDb::create();
    let s = Server::start_with(ServerOpts::new().pg(db.clone()).no_rate_limit()).await;
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        sqlx::query("ALTER TABLE messages ADD CONSTRAINT no_poison CHECK (body <> 'poison')")
            .execute(&mut conn)
            .await
            .expect("add the constraint");
    }
    let mut poisoner = s.guest_in("poisoner", "general").await;
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(s.guest_in(&format!("other{i}"), "general").await);
    }
    const ROUNDS: usize = 30;
    let mut poison_nonces = Vec::new();
    let mut other_nonces: Vec<Vec<String>> = vec![Vec::new(); others.len()];
    // Pipelined from every client at once, so batches mix the two kinds.
    for i in 0..ROUNDS {
        let n = poisoner.nonce();
        poisoner.send_msg_nowait("general", "poison", &n).await;
        poison_nonces.push(n);
        for (k, c) in others.iter_mut().enumerate() {
            let n = c.nonce();
            c.send_msg_nowait("general", &format!("fine {k} {i}"), &n)
                .await;
            other_nonces[k].push(n);
        }
    }
    for n in &poison_nonces {
        let v = poisoner
            .recv_where("the poison's answer", |v| {
                matches!(typ(v), "ack" | "error") && v["nonce"] == n.as_str()
            })
            .await;
        assert_eq!(v["code"], "unavailable", "{v}");
        let text = v["message"].as_str().unwrap();
        assert!(
            !text.contains("constraint") && !text.contains("no_poison"),
            "no database text for people: {v}"
        );
    }
    for (c, nonces) in others.iter_mut().zip(&other_nonces) {
        for n in nonces {
            c.wait_ack(n).await;
        }
    }
    let page = s.api_messages("general", "?limit=200").await;
    assert_eq!(arr(&page["messages"]).len(), ROUNDS * others.len());
}

/// A frame just under the hard limit is answered `too_large`; the socket's
/// read buffer that grew for it must not stay grown.
#[tokio::test(flavor = "multi_thread")]
async fn large_frames_leave_no_large_buffers_behind() {
    const CONNECTIONS: usize = 150;
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_CONNECTIONS_PER_IP", 2000)).await;
    let mut clients = Vec::new();
    for i in 0..CONNECTIONS {
        clients.push(s.guest(&format!("big{i}")).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = s.rss_kib();
    // 1 MiB is the hard limit: 1 KiB under it is refused, and kept open.
    let big = format!(
        "{{\"type\":\"send\",\"room\":\"general\",\"body\":\"{}\"}}",
        "x".repeat(1024 * 1024 - 1024 - 60)
    );
    for c in clients.iter_mut() {
        c.send_raw(WsMessage::text(big.clone())).await;
    }
    for c in clients.iter_mut() {
        c.expect_error("too_large").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = s.rss_kib();
    let grown = after.saturating_sub(before);
    eprintln!(
        "RSS with {CONNECTIONS} connections: {before} KiB before, {after} KiB after one \
         ~1 MiB frame each (+{grown} KiB, {} KiB per connection)",
        grown / CONNECTIONS as u64
    );
    // Before the fix each connection kept its 1 MiB buffer: +150 MiB.
    assert!(
        grown < 30 * 1024,
        "{grown} KiB kept after {CONNECTIONS} large frames"
    );
    // The connections are still good for normal frames.
    let mut first = clients.swap_remove(0);
    first.join("general").await;
    let n = first.nonce();
    first.send_msg("general", "still here", &n).await;
    drop(clients);
    drop(first);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    eprintln!("RSS after they closed: {} KiB", s.rss_kib());
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_in_turn_across_rooms_is_limited_too() {
    let s = Server::start().await;
    let mut attacker = s.guest("attacker").await;
    attacker.join("a").await;
    attacker.join("b").await;
    let mut watcher = s.guest("watcher").await;
    watcher.join("a").await;
    watcher.join("b").await;
    watcher.clear();
    let started = Instant::now();
    for i in 0..1000 {
        let room = if i % 2 == 0 { "a" } else { "b" };
        attacker
            .send_json(json!({"type":"typing","room":room}))
            .await;
    }
    let mut relayed = 0;
    while let Some(v) = watcher.try_recv_json(QUIET).await {
        if typ(&v) == "typing" {
            relayed += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{relayed} of 1000 alternating typing notices relayed in {secs:.1} s");
    // One per room and second, and a few a second over all rooms.
    assert!(
        relayed <= 4 + (secs * 2.0).ceil() as usize,
        "{relayed} typing notices relayed in {secs:.1} s"
    );
    assert!(relayed >= 2, "one in each room at first: {relayed}");
}

/// The attack of the review: a flood of typing notices from one client
/// got a member who was not reading cut as too slow, without one message.
#[tokio::test(flavor = "multi_thread")]
async fn a_typing_flood_never_cuts_a_member_who_is_not_reading() {
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_SEND_QUEUE", 64)).await;
    let mut attacker = s.guest("attacker").await;
    attacker.join("a").await;
    attacker.join("b").await;
    // A member with a small socket buffer, who reads nothing meanwhile.
    let mut sleeper = s.client_with_rcvbuf(4 * 1024).await;
    for f in [
        json!({"type":"hello","name":"sleeper"}),
        json!({"type":"join","room":"a"}),
        json!({"type":"join","room":"b"}),
    ] {
        sleeper.send_json(f).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..20_000 {
        let room = if i % 2 == 0 { "a" } else { "b" };
        attacker
            .send_json(json!({"type":"typing","room":room}))
            .await;
    }
    // The attacker is still heard, and then the sleeper wakes up.
    let n = attacker.nonce();
    attacker.send_msg("a", "done typing", &n).await;
    let v = sleeper
        .recv_where("the attacker's message", |v| {
            typ(v) == "message" && v["body"] == "done typing"
        })
        .await;
    assert_eq!(v["author"], "attacker");
    let n = sleeper.nonce();
    sleeper.send_msg("a", "I was only asleep", &n).await;
}

both_backends! {
async fn new_rooms_have_an_allowance_per_identity_and_address() {
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_ROOMS_PER_MIN", 5)).await;
    let mut mallory = s.guest("mallory").await;
    let rooms: Vec<String> = (0..12).map(|i| format!("flood-{i}")).collect();
    let (joined, errors) = join_each(&mut mallory, &rooms).await;
    assert_eq!(joined.len(), 5, "a burst of five: {joined:?} {errors:?}");
    for e in &errors {
        assert_eq!(e["code"], "rate_limited", "{e}");
        assert!(e["message"].as_str().unwrap().contains("new rooms"), "{e}");
    }
    // Existing rooms stay free to join.
    let (joined, errors) = join_each(&mut mallory, &["general".to_string()]).await;
    assert_eq!(joined.len(), 1, "{errors:?}");
    // Another name from the same address gets nothing more.
    let mut sybil = s.guest("sybil").await;
    let (joined, errors) = join_each(&mut sybil, &["sybil-room".to_string()]).await;
    assert!(joined.is_empty(), "the address's allowance is spent: {errors:?}");
    let listed = listed_rooms(&s).await;
    let made: Vec<&String> = listed.iter().filter(|r| r.starts_with("flood-") || r.starts_with("sybil")).collect();
    assert_eq!(made.len(), 5, "refused joins make no room: {listed:?}");
    // Posting over HTTP into a new room draws on the same allowance.
    drop(mallory);
    drop(sybil);
}
}

both_backends! {
async fn the_number_of_public_rooms_is_bounded() {
    let s = Server::start_with(
        ServerOpts::new()
            .with_bot()
            .env("CAUSERIE_ROOMS_PER_MIN", 1000)
            .env("CAUSERIE_MAX_ROOMS", 5),
    )
    .await;
    let mut eve = s.guest("eve").await;
    // general and random exist: three more fit.
    let rooms: Vec<String> = (0..4).map(|i| format!("extra-{i}")).collect();
    let (joined, errors) = join_each(&mut eve, &rooms).await;
    assert_eq!(joined.len(), 3, "{errors:?}");
    assert_eq!(errors[0]["code"], "forbidden", "{errors:?}");
    assert!(errors[0]["message"].as_str().unwrap().contains("as many rooms"), "{errors:?}");
    let (st, v) = s.api_post("extra-9", Some(BOT_TOKEN), &json!({"body":"hi"})).await;
    assert_eq!(st, 403, "{v}");
    // The rooms that exist still take messages.
    let (st, v) = s.api_post("extra-0", Some(BOT_TOKEN), &json!({"body":"hi"})).await;
    assert_eq!(st, 201, "{v}");
}
}

both_backends! {
async fn rooms_in_use_stay_listed_before_a_flood_of_empty_ones() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let n = alice.nonce();
    alice.send_msg("general", "we talk here", &n).await;
    let mut flooder = s.guest("flooder").await;
    let rooms: Vec<String> = (0..99).map(|i| format!("empty-{i:03}")).collect();
    let (joined, errors) = join_each(&mut flooder, &rooms).await;
    assert_eq!(joined.len(), rooms.len(), "{errors:?}");
    drop(flooder);
    let listed = listed_rooms(&s).await;
    assert_eq!(listed.first().map(String::as_str), Some("general"), "{listed:?}");
    let mut newcomer = s.client().await;
    newcomer.send_json(json!({"type":"hello","name":"newcomer"})).await;
    let w = newcomer.expect_type("welcome").await;
    let welcome: Vec<&str> = arr(&w["rooms"]).iter().filter_map(|r| r.as_str()).collect();
    assert_eq!(welcome.first(), Some(&"general"), "{welcome:?}");
}
}

both_backends! {
async fn empty_rooms_made_by_guests_expire() {
    let s = Server::start_with(
        ServerOpts::new()
            .with_bot()
            .no_rate_limit()
            .env("CAUSERIE_EMPTY_ROOM_TTL", "2s"),
    )
    .await;
    let mut guest = s.guest("ghost").await;
    let (joined, _) = join_each(
        &mut guest,
        &["left-empty".to_string(), "talked-in".to_string(), "still-here".to_string()],
    )
    .await;
    assert_eq!(joined.len(), 3);
    let n = guest.nonce();
    guest.send_msg("talked-in", "a word", &n).await;
    guest.send_json(json!({"type":"leave","room":"left-empty"})).await;
    guest.send_json(json!({"type":"leave","room":"talked-in"})).await;
    let mut bot = s.bot().await;
    bot.join("bot-room").await;
    bot.send_json(json!({"type":"leave","room":"bot-room"})).await;
    let listed = listed_rooms(&s).await;
    assert!(listed.contains(&"left-empty".to_string()), "{listed:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = listed_rooms(&s).await;
        if !listed.contains(&"left-empty".to_string()) {
            for kept in ["talked-in", "still-here", "bot-room", "general", "random"] {
                assert!(listed.contains(&kept.to_string()), "{kept} kept: {listed:?}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "left-empty never expired: {listed:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The name is free again, and the room can be made anew.
    guest.join("left-empty").await;
}
}

/// The figure for docs/SECURITY.md: how many rooms one address makes in a
/// minute of trying as hard as it can, under five names (the review's
/// attack made 66,698 in 30 s). A minute long, so not part of the suite.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn rooms_one_address_makes_in_a_minute() {
    let s = Server::start().await;
    let before = listed_rooms(&s).await.len();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..5 {
        let mut c = s.guest(&format!("maker{k}")).await;
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(60) {
                // Within the connection's 100 rooms: leave each one made.
                let room = format!("m{k}-{i}");
                c.send_json(json!({"type":"join","room":room})).await;
                c.send_json(json!({"type":"leave","room":room})).await;
                i += 1;
                if i % 20 == 0 {
                    // Read the answers, or the server cuts a client that does not.
                    while c.try_recv_json(Duration::from_millis(2)).await.is_some() {}
                }
            }
            i
        }));
    }
    let mut tried = 0;
    for t in tasks {
        tried += t.await.expect("maker");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let made = listed_rooms(&s).await.len() - before;
    eprintln!("one address, five names, 60 s: {tried} joins of new rooms tried, {made} rooms made");
    assert!(made <= 25, "{made}");
}
