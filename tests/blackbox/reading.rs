//! Read positions and notification levels kept on the server, over real
//! WebSockets on both backends: the `read` and `notify` frames, the counts
//! of `rooms`, every session of an account in step, and each refusal.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn server_opts() -> ServerOpts {
    ServerOpts::new()
        .no_rate_limit()
        .with_bot()
        .env("CAUSERIE_REGISTRATION", "open")
}

/// Registers accounts, each signed in in a browser of its own.
async fn accounts<'a>(s: &'a Server, names: &[&str]) -> Vec<Visitor<'a>> {
    let mut out = Vec::new();
    for name in names {
        let mut v = Visitor::new(s);
        register(&mut v, name, PASSWORD).await;
        out.push(v);
    }
    out
}

/// A session of a signed-in browser, after `welcome` and its `rooms` frame.
async fn session(v: &Visitor<'_>) -> (Client, Value) {
    let mut ws = v.ws().await;
    ws.send_json(json!({"type":"hello"})).await;
    ws.expect_type("welcome").await;
    let rooms = ws.expect_type("rooms").await;
    (ws, rooms)
}

/// The entry of `room` in a `rooms` frame.
fn entry<'a>(rooms: &'a Value, room: &str) -> &'a Value {
    rooms["rooms"]
        .as_array()
        .and_then(|l| l.iter().find(|r| r["room"] == room))
        .unwrap_or_else(|| panic!("{room} not listed in {rooms}"))
}

/// The counts of an entry: (last_read, unread, mentions, notify).
fn counts(e: &Value) -> (i64, u64, u64, String) {
    (
        e["last_read"].as_i64().unwrap_or(-1),
        e["unread"].as_u64().unwrap_or(999),
        e["mentions"].as_u64().unwrap_or(999),
        e["notify"].as_str().unwrap_or("").to_string(),
    )
}

async fn read_frame(ws: &mut Client, room: &str) -> Value {
    ws.recv_where(&format!("read of {room}"), |v| {
        typ(v) == "read" && v["room"] == room
    })
    .await
}

async fn refused(ws: &mut Client, frame: Value, code: &str) {
    ws.send_json(frame.clone()).await;
    let e = ws.recv_where("the refusal", |v| typ(v) == "error").await;
    assert_eq!(e["code"], code, "{frame} → {e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
}

both_backends! {
    async fn read_positions_follow_an_account_on_every_session() {
        let s = Server::start_with(server_opts()).await;
        let people = accounts(&s, &["alice", "bob"]).await;
        let (mut bob, _) = session(&people[1]).await;
        bob.join("general").await;
        for body in ["one", "two, @alice", "three"] {
            let n = bob.nonce();
            bob.send_msg("general", body, &n).await;
        }
        let (mut a1, rooms) = session(&people[0]).await;
        // A public room counts from the account's first read there.
        assert_eq!(counts(entry(&rooms, "general")), (0, 0, 0, "mentions".into()));
        let (mut a2, _) = session(&people[0]).await;

        a1.send_json(json!({"type":"read","room":"general","id":1})).await;
        let expected = json!({"type":"read","room":"general","id":1,"unread":2,"mentions":1});
        assert_eq!(read_frame(&mut a1, "general").await, expected);
        assert_eq!(read_frame(&mut a2, "general").await, expected);

        a2.send_json(json!({"type":"read","room":"general","id":3})).await;
        let expected = json!({"type":"read","room":"general","id":3,"unread":0,"mentions":0});
        assert_eq!(read_frame(&mut a1, "general").await, expected);
        assert_eq!(read_frame(&mut a2, "general").await, expected);

        // Backwards moves nothing: the asker is told where it stands, the
        // other session nothing.
        a1.send_json(json!({"type":"read","room":"general","id":2})).await;
        assert_eq!(read_frame(&mut a1, "general").await, expected);
        a2.expect_none_where(Duration::from_millis(500), "read", |v| typ(v) == "read").await;

        // Counts follow new messages by others, never one's own, never a
        // deleted one.
        for body in ["four", "five for @Alice"] {
            let n = bob.nonce();
            bob.send_msg("general", body, &n).await;
        }
        a1.join("general").await;
        let n = a1.nonce();
        a1.send_msg("general", "mine", &n).await;
        bob.send_json(json!({"type":"delete","room":"general","id":4})).await;
        bob.recv_where("the deletion", |v| typ(v) == "changed").await;
        let (_, rooms) = session(&people[0]).await;
        assert_eq!(counts(entry(&rooms, "general")), (3, 1, 1, "mentions".into()));
    }

    async fn direct_and_private_rooms_count_from_the_start_and_levels_are_kept() {
        let s = Server::start_with(server_opts()).await;
        let people = accounts(&s, &["alice", "bob"]).await;
        let (mut bob, _) = session(&people[1]).await;
        bob.join("dm:alice:bob").await;
        for body in ["hi", "@alice are you there?"] {
            let n = bob.nonce();
            bob.send_msg("dm:alice:bob", body, &n).await;
        }
        let (mut a1, rooms) = session(&people[0]).await;
        assert_eq!(counts(entry(&rooms, "dm:alice:bob")), (0, 2, 1, "all".into()));
        let (mut a2, _) = session(&people[0]).await;

        a1.send_json(json!({"type":"notify","room":"dm:alice:bob","level":"none"})).await;
        a1.send_json(json!({"type":"notify","room":"general","level":"all"})).await;
        for ws in [&mut a1, &mut a2] {
            let rooms = ws
                .recv_where("rooms with both levels", |v| {
                    typ(v) == "rooms" && v.to_string().contains(r#""notify":"all","#)
                        && v.to_string().contains(r#""notify":"none""#)
                })
                .await;
            assert_eq!(entry(&rooms, "general")["notify"], "all");
            assert_eq!(entry(&rooms, "dm:alice:bob")["notify"], "none");
        }
        // Kept for the next session, counts untouched.
        let (_, rooms) = session(&people[0]).await;
        assert_eq!(counts(entry(&rooms, "dm:alice:bob")), (0, 2, 1, "none".into()));
        assert_eq!(entry(&rooms, "general")["notify"], "all");
    }

    async fn reads_and_levels_refuse_what_they_cannot_keep() {
        let s = Server::start_with(server_opts()).await;
        let people = accounts(&s, &["alice", "bob", "carol"]).await;
        let (mut bob, _) = session(&people[1]).await;
        bob.join("general").await;
        let n = bob.nonce();
        bob.send_msg("general", "one", &n).await;
        bob.send_json(json!({"type":"create","room":"~secret","members":[]})).await;
        bob.recv_where("joined ~secret", |v| typ(v) == "joined" && v["room"] == "~secret").await;
        let n = bob.nonce();
        bob.send_msg("~secret", "hush", &n).await;
        bob.join("dm:bob:carol").await;
        let n = bob.nonce();
        bob.send_msg("dm:bob:carol", "psst", &n).await;

        let (mut alice, _) = session(&people[0]).await;
        for (frame, code) in [
            (json!({"type":"read","room":"general","id":2}), "bad_request"),
            (json!({"type":"read","room":"general","id":0}), "bad_request"),
            (json!({"type":"read","room":"general","id":-5}), "bad_request"),
            (json!({"type":"read","room":"~secret","id":1}), "not_found"),
            (json!({"type":"read","room":"~nothing","id":1}), "not_found"),
            (json!({"type":"read","room":"dm:bob:carol","id":1}), "forbidden"),
            (json!({"type":"read","room":"no such room!","id":1}), "bad_request"),
            (json!({"type":"read","room":"general"}), "bad_request"),
            (json!({"type":"notify","room":"general","level":"loud"}), "bad_request"),
            (json!({"type":"notify","room":"~secret","level":"all"}), "not_found"),
            (json!({"type":"notify","room":"dm:bob:carol","level":"all"}), "forbidden"),
            (json!({"type":"notify","room":"never-made","level":"all"}), "not_found"),
        ] {
            refused(&mut alice, frame, code).await;
        }
        // None of it moved or set anything.
        let (_, rooms) = session(&people[0]).await;
        assert_eq!(counts(entry(&rooms, "general")), (0, 0, 0, "mentions".into()));

        // Guests and bots keep no read state here.
        let mut guest = s.guest("gus").await;
        refused(&mut guest, json!({"type":"read","room":"general","id":1}), "forbidden").await;
        refused(&mut guest, json!({"type":"notify","room":"general","level":"all"}), "forbidden").await;
        let mut bot = s.bot().await;
        refused(&mut bot, json!({"type":"read","room":"general","id":1}), "forbidden").await;
    }
}
