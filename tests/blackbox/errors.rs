//! Every error case of PROTOCOL.md, and that the connection (and the server)
//! survives each one unless the protocol says it closes.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const QUIET: Duration = Duration::from_millis(300);

/// Proves the connection still works: a `send` to `room` gets its `ack`.
async fn still_works(c: &mut Client, room: &str, what: &str) {
    let n = c.nonce();
    let v = c
        .send_msg_result(room, &format!("still works after {what}"), &n)
        .await;
    assert_eq!(
        v["type"], "ack",
        "after {what} the connection must still work: {v}"
    );
}

async fn healthy(s: &Server) {
    let (st, _) = s.get_json("/healthz").await;
    assert_eq!(st, 200, "GET /healthz after the abuse");
}

both_backends! {
async fn bad_frames_are_answered_and_the_connection_survives() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let long_room = "x".repeat(65);
    let long_body = "a".repeat(4001);

    // (raw frame, expected code(s), nonce the error must echo)
    let cases: Vec<(String, &[&str], Option<&str>)> = vec![
        ("this is not json".into(), &["bad_request"], None),
        ("{\"type\":\"join\",".into(), &["bad_request"], None),
        ("[1,2,3]".into(), &["bad_request"], None),
        ("\"hello\"".into(), &["bad_request"], None),
        ("null".into(), &["bad_request"], None),
        (
            json!({"type":"fly","room":"general"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"SEND","room":"general","body":"x"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"room":"general","body":"no type"}).to_string(),
            &["bad_request"],
            None,
        ),
        (json!({"type":5}).to_string(), &["bad_request"], None),
        // missing fields
        (json!({"type":"join"}).to_string(), &["bad_request"], None),
        (json!({"type":"leave"}).to_string(), &["bad_request"], None),
        (json!({"type":"typing"}).to_string(), &["bad_request"], None),
        (
            json!({"type":"history"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"send","room":"general","nonce":"nb"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"send","body":"x","nonce":"nr"}).to_string(),
            &["bad_request"],
            None,
        ),
        // wrong field types
        (
            json!({"type":"join","room":7}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":null}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"send","room":"general","body":5,"nonce":"t1"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"send","room":"general","body":["a"],"nonce":"t2"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"send","room":"general","body":"x","nonce":7}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"history","room":"general","before":"abc"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"history","room":"general","limit":-1}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"history","room":"general","limit":"ten"}).to_string(),
            &["bad_request"],
            None,
        ),
        // invalid room names
        (
            json!({"type":"join","room":""}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":"General"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":"a b"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":"café"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":"<script>"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":long_room}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":"dm:bob:alice"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":"dm:alice:alice"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"join","room":"dm:alice"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"leave","room":"Bad Room"}).to_string(),
            &["bad_request", "not_joined"],
            None,
        ),
        (
            json!({"type":"history","room":"Bad Room"}).to_string(),
            &["bad_request"],
            None,
        ),
        (
            json!({"type":"send","room":"Bad Room","body":"x","nonce":"br"}).to_string(),
            &["bad_request", "not_joined"],
            Some("br"),
        ),
        // someone else's direct messages
        (
            json!({"type":"join","room":"dm:bob:carol"}).to_string(),
            &["forbidden"],
            None,
        ),
        (
            json!({"type":"history","room":"dm:bob:carol"}).to_string(),
            &["forbidden"],
            None,
        ),
        (
            json!({"type":"send","room":"dm:bob:carol","body":"x","nonce":"fd"}).to_string(),
            &["forbidden", "not_joined"],
            Some("fd"),
        ),
        // not joined
        (
            json!({"type":"send","room":"random","body":"x","nonce":"nj-1"}).to_string(),
            &["not_joined"],
            Some("nj-1"),
        ),
        (
            json!({"type":"send","room":"never-created","body":"x","nonce":"nj-2"}).to_string(),
            &["not_joined"],
            Some("nj-2"),
        ),
        // bodies
        (
            json!({"type":"send","room":"general","body":"","nonce":"e1"}).to_string(),
            &["bad_request", "too_large"],
            Some("e1"),
        ),
        (
            json!({"type":"send","room":"general","body":"  \n\t ","nonce":"e2"}).to_string(),
            &["bad_request", "too_large"],
            Some("e2"),
        ),
        (
            json!({"type":"send","room":"general","body":long_body,"nonce":"e3"}).to_string(),
            &["too_large"],
            Some("e3"),
        ),
    ];

    for (frame, codes, nonce) in &cases {
        alice.send_text(frame.clone()).await;
        let v = alice
            .recv_where(&format!("answer to {frame:.80}"), |v| {
                matches!(typ(v), "error" | "ack" | "joined" | "history")
            })
            .await;
        assert_eq!(
            v["type"], "error",
            "frame {frame:.120} must be refused, got {v}"
        );
        assert!(
            codes.iter().any(|c| v["code"] == *c),
            "frame {frame:.120}: expected code {codes:?}, got {v}"
        );
        assert!(v["message"].is_string(), "error without message: {v}");
        if let Some(n) = nonce {
            assert_eq!(
                v["nonce"], *n,
                "frame {frame:.120}: error must echo the nonce: {v}"
            );
        }
        still_works(&mut alice, "general", &format!("{frame:.60}")).await;
    }

    // Nothing refused was stored: only the "still works" messages are there.
    let page = s.api_messages("general", "?limit=50").await;
    for m in arr(&page["messages"]) {
        assert!(
            m["body"].as_str().unwrap().starts_with("still works after"),
            "a refused message was stored: {m}"
        );
    }
    let mut bob = s.guest("bob").await;
    let j = bob.join("general").await;
    assert_eq!(
        arr(&j["history"]).len(),
        cases.len().min(50),
        "one valid message per case was sent"
    );
    assert_eq!(j["more"], cases.len() > 50);
    healthy(&s).await;
}
}

both_backends! {
async fn first_frame_must_be_hello() {
    let s = Server::start().await;
    let firsts = [
        json!({"type":"join","room":"general"}),
        json!({"type":"send","room":"general","body":"x","nonce":"n"}),
        json!({"type":"typing","room":"general"}),
        json!({"type":"history","room":"general"}),
        json!({"type":"leave","room":"general"}),
        json!({"type":"welcome","user":{"name":"x","guest":true},"rooms":[]}),
    ];
    for f in firsts {
        let mut c = s.client().await;
        c.send_json(f.clone()).await;
        let v = c.recv_json().await;
        assert_eq!(v["type"], "error", "first frame {f}: {v}");
        assert_eq!(v["code"], "unauthorized", "first frame {f}: {v}");
        assert_eq!(
            c.expect_close().await,
            Closed::Code(4001),
            "first frame {f} must close with 4001"
        );
    }
    // Nothing was stored by the refused `send`.
    let page = s.api_messages("general", "").await;
    assert_eq!(page["messages"], json!([]));
    healthy(&s).await;
}
}

both_backends! {
async fn invalid_names_get_bad_name_and_may_retry() {
    let s = Server::start().await;
    let mut c = s.client().await;
    let bad = [
        json!(""),
        json!("a b"),
        json!("<script>"),
        json!("x".repeat(33)),
        json!("a:b"),
        json!("al/ice"),
        json!("tab\there"),
        json!("🙂"),
    ];
    for name in bad {
        c.send_json(json!({"type":"hello","name":name})).await;
        let v = c.recv_json().await;
        assert_eq!(v["type"], "error", "name {name}: {v}");
        assert_eq!(v["code"], "bad_name", "name {name}: {v}");
    }
    // The limits themselves are fine.
    let w = c.hello(&"y".repeat(32)).await;
    assert_eq!(w["user"]["guest"], true);
    let mut c2 = s.client().await;
    c2.hello("x.y-z_9").await;
    let mut c3 = s.client().await;
    c3.hello("élodie").await;
    let mut c4 = s.client().await;
    c4.hello("a").await;
    c.join("general").await;
    still_works(&mut c, "general", "bad names").await;
}
}

both_backends! {
async fn taken_name_gets_bad_name() {
    let s = Server::start().await;
    let alice = s.guest_in("alice", "general").await;
    let mut other = s.client().await;
    other
        .send_json(json!({"type":"hello","name":"alice"}))
        .await;
    other.expect_error("bad_name").await;
    other.hello("alice2").await;
    // Nor can a guest take a bot's name.
    let s2 = Server::start_with(ServerOpts::new().with_bot()).await;
    let mut fake = s2.client().await;
    fake.send_json(json!({"type":"hello","name":BOT_NAME}))
        .await;
    fake.expect_error("bad_name").await;
    other.join("general").await;
    still_works(&mut other, "general", "a taken name").await;
    // Once alice is gone the name is free again.
    alice.close().await;
    let mut back = reconnect_guest(&s, "alice", None).await;
    back.join("general").await;
    still_works(&mut back, "general", "reconnecting").await;
}
}

both_backends! {
async fn hello_without_valid_credentials_is_unauthorized() {
    let s = Server::start_with(ServerOpts::new().with_bot()).await;
    for (i, h) in [
        json!({"type":"hello","token":"wrong-token"}),
        json!({"type":"hello","token":""}),
        json!({"type":"hello","token":"testbot"}),
        json!({"type":"hello"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = s.client().await;
        c.send_json(h.clone()).await;
        let v = c.recv_json().await;
        assert_eq!(v["type"], "error", "{h}: {v}");
        assert_eq!(v["code"], "unauthorized", "{h}: {v}");
        // PROTOCOL.md: bad input never closes the connection unless stated
        // (only a first frame that is not `hello` is stated to close).
        still_open_for_hello(&mut c, &format!("guest{i}"), &format!("{h}")).await;
    }
}
}

/// After a refused `hello`, the client may say `hello` again.
async fn still_open_for_hello(c: &mut Client, name: &str, what: &str) {
    c.send_json(json!({"type":"hello","name":name})).await;
    match c.try_recv_json_or_close(TIMEOUT).await {
        Ok(w) => assert_eq!(w["type"], "welcome", "hello after {what}: {w}"),
        Err(closed) => panic!(
            "after the `unauthorized` answer to {what} the server closed the connection \
             ({closed:?}); PROTOCOL.md: bad input never closes the connection unless stated"
        ),
    }
}

both_backends! {
async fn guests_can_be_disabled() {
    let s = Server::start_with(ServerOpts::new().with_bot().env("CAUSERIE_GUESTS", "false")).await;
    // A fresh connection: the token works.
    let mut b = s.client().await;
    b.send_json(json!({"type":"hello","token":BOT_TOKEN})).await;
    let w = b.expect_type("welcome").await;
    assert_eq!(w["user"]["name"], BOT_NAME);
    b.join("general").await;
    still_works(&mut b, "general", "hello with a token").await;
    // A guest hello is refused ...
    let mut c = s.client().await;
    c.send_json(json!({"type":"hello","name":"alice"})).await;
    c.expect_error("unauthorized").await;
    // ... and the client may then try its token on the same connection.
    c.send_json(json!({"type":"hello","token":BOT_TOKEN})).await;
    match c.try_recv_json_or_close(TIMEOUT).await {
        Ok(w) => assert_eq!(
            w["type"], "welcome",
            "token hello after a refused guest hello: {w}"
        ),
        Err(closed) => panic!(
            "after `unauthorized` for a guest hello the server closed the connection \
             ({closed:?}); PROTOCOL.md: bad input never closes the connection unless stated"
        ),
    }
}
}

both_backends! {
async fn body_length_is_counted_in_characters_after_trimming() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let ok = [
        "🌍".repeat(4000),
        "é".repeat(4000),
        format!("  \n{}\t ", "a".repeat(4000)),
        "x".to_string(),
    ];
    for (i, b) in ok.iter().enumerate() {
        let v = alice.send_msg_result("general", b, &format!("ok{i}")).await;
        assert_eq!(
            v["type"],
            "ack",
            "body #{i} ({} chars) must be accepted: {v}",
            b.chars().count()
        );
    }
    let too_long = ["🌍".repeat(4001), "a".repeat(4001), "a".repeat(10000)];
    for (i, b) in too_long.iter().enumerate() {
        let n = format!("long{i}");
        let v = alice.send_msg_result("general", b, &n).await;
        assert_eq!(v["type"], "error", "{} chars: {v}", b.chars().count());
        assert_eq!(v["code"], "too_large", "{} chars: {v}", b.chars().count());
        assert_eq!(v["nonce"], n.as_str());
    }
    let page = s.api_messages("general", "").await;
    assert_eq!(
        arr(&page["messages"]).len(),
        ok.len(),
        "only the accepted bodies are stored"
    );
    still_works(&mut alice, "general", "long bodies").await;
}
}

both_backends! {
async fn frame_over_the_soft_limit_is_too_large_and_connection_survives() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    // A valid `send` made big by an ignored field: only the frame size is wrong.
    let pad = "p".repeat(70_000);
    alice
        .send_json(json!({"type":"send","room":"general","body":"big","nonce":"big1","pad":pad}))
        .await;
    let v = alice.expect_type("error").await;
    assert_eq!(v["code"], "too_large", "{v}");
    alice
        .expect_none_where(QUIET, "ack of an oversized frame", |v| typ(v) == "ack")
        .await;
    still_works(&mut alice, "general", "an oversized frame").await;
    // Just under the limit is fine.
    let pad = "p".repeat(60_000);
    alice
        .send_json(json!({"type":"send","room":"general","body":"big","nonce":"big2","pad":pad}))
        .await;
    alice.wait_ack("big2").await;
    let page = s.api_messages("general", "").await;
    let bodies: Vec<Value> = arr(&page["messages"])
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
}
}

both_backends! {
async fn configured_frame_limits_apply() {
    let s = Server::start_with(
        ServerOpts::new()
            .env("CAUSERIE_MAX_FRAME_BYTES", 1000)
            .env("CAUSERIE_HARD_FRAME_BYTES", 100_000),
    )
    .await;
    let mut alice = s.guest_in("alice", "general").await;
    alice
        .send_json(
            json!({"type":"send","room":"general","body":"x","nonce":"c1","pad":"p".repeat(1500)}),
        )
        .await;
    alice.expect_error("too_large").await;
    alice
        .send_json(
            json!({"type":"send","room":"general","body":"x","nonce":"c2","pad":"p".repeat(800)}),
        )
        .await;
    alice.wait_ack("c2").await;
    alice
        .send_json(json!({"type":"send","room":"general","body":"x","nonce":"c3","pad":"p".repeat(150_000)}))
        .await;
    assert_eq!(alice.expect_close().await, Closed::Code(1009));
    healthy(&s).await;
}
}

both_backends! {
async fn frame_over_the_hard_limit_closes_with_1009() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    let pad = "p".repeat(1_100_000);
    let _ = alice
        .try_send_raw(WsMessage::text(
            json!({"type":"send","room":"general","body":"huge","nonce":"h","pad":pad}).to_string(),
        ))
        .await;
    assert_eq!(alice.expect_close().await, Closed::Code(1009));
    // Others are unaffected.
    still_works(&mut bob, "general", "someone else's huge frame").await;
    healthy(&s).await;
}
}

both_backends! {
async fn binary_frames_are_bad_requests() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let frame = json!({"type":"send","room":"general","body":"bin","nonce":"b"}).to_string();
    alice.send_raw(WsMessage::binary(frame.into_bytes())).await;
    alice.expect_error("bad_request").await;
    alice
        .send_raw(WsMessage::binary(vec![0u8, 159, 146, 150]))
        .await;
    alice.expect_error("bad_request").await;
    still_works(&mut alice, "general", "binary frames").await;
    let page = s.api_messages("general", "").await;
    assert_eq!(
        arr(&page["messages"]).len(),
        1,
        "the binary send must not be stored"
    );
}
}

/// Sends `n` messages back to back and returns (acked nonces, rate_limited nonces).
async fn flood(c: &mut Client, n: usize, tag: &str) -> (Vec<String>, Vec<String>) {
    for i in 0..n {
        c.send_msg_nowait("general", &format!("{tag} {i}"), &format!("{tag}{i}"))
            .await;
    }
    let mut acked = Vec::new();
    let mut limited = Vec::new();
    for i in 0..n {
        let nonce = format!("{tag}{i}");
        let v = c
            .recv_where(&format!("answer for {nonce}"), |v| {
                matches!(typ(v), "ack" | "error") && v["nonce"] == nonce
            })
            .await;
        match typ(&v) {
            "ack" => acked.push(nonce),
            _ => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                limited.push(nonce);
            }
        }
    }
    (acked, limited)
}

both_backends! {
async fn flooding_is_rate_limited_and_not_stored() {
    let s = Server::start_with(
        ServerOpts::new()
            .env("CAUSERIE_RATE_PER_SEC", 1)
            .env("CAUSERIE_RATE_BURST", 5),
    )
    .await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    let (acked, limited) = flood(&mut alice, 15, "f").await;
    assert!(
        (5..=6).contains(&acked.len()),
        "burst 5 at 1/s: {} acked ({acked:?}), {} limited",
        acked.len(),
        limited.len()
    );
    assert_eq!(
        acked[..5],
        ["f0", "f1", "f2", "f3", "f4"],
        "the first ones pass"
    );
    assert_eq!(acked.len() + limited.len(), 15);

    // Stored = acknowledged, exactly.
    let page = s.api_messages("general", "").await;
    let mut stored: Vec<String> = arr(&page["messages"])
        .iter()
        .map(|m| m["body"].as_str().unwrap().replace(' ', ""))
        .collect();
    stored.sort();
    let mut acked_sorted = acked.clone();
    acked_sorted.sort();
    assert_eq!(
        stored, acked_sorted,
        "only acknowledged messages are stored"
    );
    // Others saw only the acknowledged ones.
    let ms = bob.messages("general", acked.len()).await;
    let mut seen: Vec<String> = ms
        .iter()
        .map(|m| m["nonce"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, acked_sorted);
    bob.expect_none_where(QUIET, "a rate-limited message", |v| typ(v) == "message")
        .await;
    // The limit is per user: bob still has his burst.
    still_works(&mut bob, "general", "alice's flood").await;
    // And alice gets allowance back over time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    still_works(&mut alice, "general", "waiting out the rate limit").await;
}
}

both_backends! {
async fn default_rate_limit_allows_a_burst_of_20() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let (acked, limited) = flood(&mut alice, 26, "d").await;
    assert!(
        (20..=21).contains(&acked.len()),
        "default burst 20 at 10/s: {} acked, {} limited",
        acked.len(),
        limited.len()
    );
    let page = s.api_messages("general", "").await;
    assert_eq!(arr(&page["messages"]).len(), acked.len());
}
}

/// Sends a `join` for each room without waiting, then returns how many were
/// joined and how many refused with `code`.
async fn join_all(c: &mut Client, rooms: &[String], code: &str) -> (usize, usize) {
    for room in rooms {
        c.send_json(json!({"type":"join","room":room})).await;
    }
    let (mut joined, mut refused) = (0, 0);
    for _ in rooms {
        let v = c
            .recv_where("a join's answer", |v| matches!(typ(v), "joined" | "error"))
            .await;
        if typ(&v) == "joined" {
            joined += 1;
        } else {
            assert_eq!(v["code"], code, "{v}");
            refused += 1;
        }
    }
    (joined, refused)
}

both_backends! {
async fn room_requests_are_rate_limited() {
    // Joining creates rooms in the store, history reads it: a loop of
    // either must be refused, and a refused join must create nothing.
    // (New rooms have an allowance of their own: tests/blackbox/security.rs.)
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_ROOMS_PER_MIN", 1000)).await;
    let mut alice = s.guest_in("alice", "general").await;
    for _ in 0..150 {
        alice
            .send_json(json!({"type":"history","room":"general","before":1}))
            .await;
    }
    let rooms: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
    for room in &rooms {
        alice.send_json(json!({"type":"join","room":room})).await;
    }
    let (mut pages, mut joined, mut limited) = (0, 0, 0);
    for _ in 0..200 {
        let v = alice
            .recv_where("an answer", |v| {
                matches!(typ(v), "history" | "joined" | "error")
            })
            .await;
        match typ(&v) {
            "history" => pages += 1,
            "joined" => joined += 1,
            _ => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                limited += 1;
            }
        }
    }
    assert!(
        (115..=140).contains(&(pages + joined)),
        "burst 120 at 20/s, one spent on general: {pages} pages and {joined} joins done, \
         {limited} refused"
    );
    assert!(joined < rooms.len(), "the joins came last and were refused");
    let (st, listed) = s.get_json("/api/rooms").await;
    assert_eq!(st, 200);
    let made = arr(&listed)
        .iter()
        .filter(|r| rooms.iter().any(|n| r["name"] == n.as_str()))
        .count();
    assert_eq!(made, joined, "refused joins create no room: {listed}");
    still_works(&mut alice, "general", "a flood of room requests").await;
    // The limit is per user, and it refills.
    let mut bob = s.guest_in("bob", "general").await;
    still_works(&mut bob, "general", "alice's flood").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (joined, _) = join_all(&mut alice, &["later".to_string()], "rate_limited").await;
    assert_eq!(joined, 1, "the allowance comes back");
}
}

both_backends! {
async fn a_connection_is_in_at_most_100_rooms() {
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_ROOMS_PER_MIN", 1000)).await;
    let mut alice = s.guest_in("alice", "r0").await;
    // All at once, as a client in 100 rooms does when it reconnects.
    let rooms: Vec<String> = (1..100).map(|i| format!("r{i}")).collect();
    let (joined, _) = join_all(&mut alice, &rooms, "rate_limited").await;
    assert_eq!(joined, rooms.len(), "100 rooms fit in the request burst");
    alice
        .send_json(json!({"type":"join","room":"one-too-many"}))
        .await;
    let v = alice.expect_error("forbidden").await;
    assert!(
        v["message"].as_str().unwrap().contains("100"),
        "the error says the cap: {v}"
    );
    // Joining a room it is in is still fine, and leaving makes room.
    let (joined, _) = join_all(&mut alice, &["r5".to_string()], "forbidden").await;
    assert_eq!(joined, 1);
    alice.send_json(json!({"type":"leave","room":"r5"})).await;
    let (joined, _) = join_all(&mut alice, &["one-too-many".to_string()], "forbidden").await;
    assert_eq!(joined, 1, "a left room frees a place");
    still_works(&mut alice, "r0", "the room cap").await;
}
}

both_backends! {
async fn a_typing_flood_reaches_others_once_a_second() {
    let s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest_in("bob", "general").await;
    let typing = json!({"type":"typing","room":"general"});
    for _ in 0..50 {
        alice.send_json(typing.clone()).await;
    }
    bob.recv_where("alice typing", |v| typ(v) == "typing").await;
    bob.expect_none_where(QUIET, "a repeated typing notice", |v| typ(v) == "typing")
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    alice.send_json(typing.clone()).await;
    bob.recv_where("alice typing a second later", |v| typ(v) == "typing")
        .await;
    // A message ends the notice: typing right after it is news at once.
    still_works(&mut alice, "general", "a typing flood").await;
    alice.send_json(typing.clone()).await;
    bob.recv_where("alice typing again after her message", |v| {
        typ(v) == "typing"
    })
    .await;
    alice.send_json(typing).await;
    bob.expect_none_where(QUIET, "a repeated typing notice", |v| typ(v) == "typing")
        .await;
}
}

both_backends! {
async fn origin_is_checked_at_upgrade() {
    let s = Server::start().await;
    // No Origin (bots, CLI) and the server's own origin are fine.
    let mut c = s
        .ws_connect(None)
        .await
        .expect("no Origin must be accepted");
    c.hello("no-origin").await;
    let own = s.origin();
    let mut c = s
        .ws_connect(Some(&own))
        .await
        .unwrap_or_else(|e| panic!("own origin {own} must be accepted: {e}"));
    c.hello("own-origin").await;
    for foreign in [
        "http://evil.example",
        "http://a.example",
        "https://127.0.0.1.evil.example",
        "null",
        &format!("http://{}.evil.example", s.addr.ip()),
        &format!("http://localhost.evil.example:{}", s.addr.port()),
    ] {
        match s.ws_connect(Some(foreign)).await {
            Ok(_) => panic!("Origin {foreign} must be refused"),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status().as_u16(), 403, "Origin {foreign}")
            }
            Err(e) => panic!("Origin {foreign}: expected HTTP 403, got {e}"),
        }
    }
    healthy(&s).await;
}
}

both_backends! {
async fn configured_origins_are_accepted() {
    let s = Server::start_with(
        ServerOpts::new().env("CAUSERIE_ORIGINS", "http://a.example,http://b.example"),
    )
    .await;
    for (o, name) in [
        ("http://a.example", "from-a"),
        ("http://b.example", "from-b"),
    ] {
        let mut c = s
            .ws_connect(Some(o))
            .await
            .unwrap_or_else(|e| panic!("listed origin {o} must be accepted: {e}"));
        c.hello(name).await;
    }
    let own = s.origin();
    s.ws_connect(Some(&own))
        .await
        .expect("own origin still accepted");
    s.ws_connect(None).await.expect("no origin still accepted");
    for foreign in [
        "http://c.example",
        "http://a.example.evil",
        "https://a.example",
    ] {
        match s.ws_connect(Some(foreign)).await {
            Ok(_) => panic!("Origin {foreign} must be refused"),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status().as_u16(), 403, "Origin {foreign}")
            }
            Err(e) => panic!("Origin {foreign}: expected HTTP 403, got {e}"),
        }
    }
}
}

both_backends! {
async fn direct_message_rooms_only_for_their_members() {
    let s = Server::start_with(ServerOpts::new().with_accounts()).await;
    let mut alice = s.account("alice").await;
    let j = alice.join("dm:alice:bob").await;
    assert_eq!(j["room"], "dm:alice:bob");
    for (f, code) in [
        // No one holds "zed": a room with no one is not made.
        (json!({"type":"join","room":"dm:alice:zed"}), "not_found"),
        (json!({"type":"join","room":"dm:bob:carol"}), "forbidden"),
        (json!({"type":"history","room":"dm:bob:carol"}), "forbidden"),
        (json!({"type":"join","room":"dm:alex:bob"}), "forbidden"),
    ] {
        alice.send_json(f.clone()).await;
        let v = alice.expect_type("error").await;
        assert_eq!(v["code"], code, "{f}: {v}");
    }
    still_works(&mut alice, "dm:alice:bob", "forbidden rooms").await;
}
}

both_backends! {
async fn server_stays_healthy_after_abuse() {
    let s = Server::start().await;
    // Connections that die in every way.
    for i in 0..5 {
        let mut c = s.client().await;
        c.send_text("garbage").await;
        let _ = c.expect_close().await;
        let c = s.guest(&format!("drop{i}")).await;
        c.drop_abruptly();
        let mut c = s.guest_in(&format!("half{i}"), "general").await;
        let _ = c
            .try_send_raw(WsMessage::text(
                json!({"type":"send","room":"general","body":"x","nonce":"z","pad":"p".repeat(1_100_000)})
                    .to_string(),
            ))
            .await;
        let _ = c.expect_close().await;
    }
    healthy(&s).await;
    let mut ok = s.guest_in("fine", "general").await;
    still_works(&mut ok, "general", "abuse by others").await;
    let j = s.guest("check").await.join("general").await;
    assert_eq!(
        sorted_names(&j["online"]),
        vec!["check", "fine"],
        "dead connections left the room: {j}"
    );
}
}

both_backends! {
async fn origin_matching_a_spoofed_host_is_still_foreign() {
    // DNS rebinding: a page at http://evil.example:PORT whose name resolves
    // to this server sends Host and Origin that agree with each other. The
    // server's own origin is the address it is bound to, not whatever Host
    // the request claims.
    let s = Server::start().await;
    let evil_host = format!("evil.example:{}", s.addr.port());
    let evil_origin = format!("http://{evil_host}");
    match s
        .ws_connect_with(&[("Host", &evil_host), ("Origin", &evil_origin)])
        .await
    {
        Ok(_) => panic!("Origin {evil_origin} with Host {evil_host} must be refused"),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 403)
        }
        Err(e) => panic!("expected HTTP 403, got {e}"),
    }
}
}
