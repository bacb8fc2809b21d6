//! Private rooms, group conversations and topics over real WebSockets, on
//! both backends: the `create`, `invite`, `remove`, `member`, `rooms` and
//! `topic` frames, and every refusal changing nothing.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

/// Registers the accounts (the first is the admin) and opens a session
/// socket for each, after its `welcome` and `rooms`.
async fn people<'a>(s: &'a Server, names: &[&str]) -> Vec<(Visitor<'a>, Client)> {
    let mut out = Vec::new();
    for name in names {
        let mut v = Visitor::new(s);
        register(&mut v, name, PASSWORD).await;
        let ws = socket(&v).await;
        out.push((v, ws));
    }
    out
}

/// A session socket after `welcome` and its `rooms` frame.
async fn socket(v: &Visitor<'_>) -> Client {
    let mut ws = v.ws().await;
    ws.send_json(json!({"type":"hello"})).await;
    ws.expect_type("welcome").await;
    ws.expect_type("rooms").await;
    ws
}

fn server_opts() -> ServerOpts {
    ServerOpts::new()
        .no_rate_limit()
        .env("CAUSERIE_REGISTRATION", "open")
        .env("CAUSERIE_BOT_TOKENS", "robot:robot-token")
}

async fn refused(ws: &mut Client, frame: Value, code: &str) -> Value {
    let room = frame["room"].clone();
    ws.send_json(frame.clone()).await;
    let e = ws.recv_where("the refusal", |v| v["type"] == "error").await;
    assert_eq!(
        (&e["code"], &e["room"]),
        (&json!(code), &room),
        "{frame} → {e}"
    );
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    e
}

fn listed(rooms: &Value) -> Vec<String> {
    arr(&rooms["rooms"])
        .iter()
        .map(|r| r["room"].as_str().unwrap_or("").to_string())
        .collect()
}

both_backends! {
    async fn a_private_room_is_made_joined_and_left() {
        let s = Server::start_with(server_opts()).await;
        let mut p = people(&s, &["ann", "bob", "cat"]).await;
        let (_, ann) = &mut p[0];
        ann.send_json(json!({"type":"create","room":"~design","members":["bob"],"topic":"Mock-ups"})).await;
        let rooms = ann.expect_type("rooms").await;
        let entry = arr(&rooms["rooms"]).into_iter().find(|r| r["room"] == "~design").expect("listed");
        assert_eq!(entry, json!({"room":"~design","kind":"private","topic":"Mock-ups","unread":0,"mentions":0,"last_read":0,"notify":"mentions"}));
        let joined = ann.expect_type("joined").await;
        assert_eq!(joined["room"], "~design");
        let n = ann.nonce();
        ann.send_msg("~design", "welcome bob", &n).await;

        // Bob is told at once, on his open socket, and can read it all.
        let (_, bob) = &mut p[1];
        let added = bob.expect_type("member").await;
        assert_eq!(added, json!({"type":"member","room":"~design","user":"bob","state":"added","by":"ann"}));
        assert!(listed(&bob.expect_type("rooms").await).contains(&"~design".to_string()));
        let joined = bob.join("~design").await;
        assert!(arr(&joined["history"]).iter().any(|m| m["body"] == "welcome bob"));

        // Cat is not; to her the room does not exist.
        let (_, cat) = &mut p[2];
        let e = refused(cat, json!({"type":"join","room":"~design"}), "not_found").await;
        assert_eq!(e["message"], "no room \"~design\"");
        let e2 = refused(cat, json!({"type":"join","room":"~nothing-here"}), "not_found").await;
        assert_eq!(e2["message"], "no room \"~nothing-here\"");
        refused(cat, json!({"type":"invite","room":"~design","user":"cat"}), "not_found").await;
        refused(cat, json!({"type":"create","room":"~design"}), "bad_name").await;

        // Ann invites cat; then cat leaves on her own.
        let (_, ann) = &mut p[0];
        ann.send_json(json!({"type":"invite","room":"~design","user":"cat"})).await;
        let m = ann.recv_where("member cat", |v| v["type"] == "member" && v["user"] == "cat").await;
        assert_eq!(m["state"], "added");
        let (_, cat) = &mut p[2];
        cat.expect_type("member").await;
        assert!(listed(&cat.expect_type("rooms").await).contains(&"~design".to_string()));
        cat.join("~design").await;
        cat.send_json(json!({"type":"remove","room":"~design","user":"cat"})).await;
        let gone = cat.recv_where("cat removed", |v| v["type"] == "member" && v["state"] == "removed").await;
        assert_eq!(gone["by"], "cat");
        assert!(!listed(&cat.expect_type("rooms").await).contains(&"~design".to_string()));
        let (_, ann) = &mut p[0];
        ann.recv_where("cat left", |v| v["type"] == "member" && v["user"] == "cat" && v["state"] == "removed").await;
    }

    async fn removal_reaches_every_open_connection_of_the_person_at_once() {
        let s = Server::start_with(server_opts()).await;
        let mut p = people(&s, &["ann", "bob"]).await;
        let (_, ann) = &mut p[0];
        ann.send_json(json!({"type":"create","room":"~ops","members":["bob"]})).await;
        ann.expect_type("joined").await;
        // Bob has two tabs in the room and one elsewhere.
        let bob_cookie = p[1].0.cookies();
        let mut tabs = Vec::new();
        for _ in 0..2 {
            let mut t = socket(&p[1].0).await;
            t.join("~ops").await;
            tabs.push(t);
        }
        let mut elsewhere = socket(&p[1].0).await;
        let (_, ann) = &mut p[0];
        let n = ann.nonce();
        ann.send_msg("~ops", "before", &n).await;
        for t in tabs.iter_mut() {
            t.messages("~ops", 1).await;
        }
        ann.send_json(json!({"type":"remove","room":"~ops","user":"bob"})).await;
        ann.recv_where("bob removed", |v| v["type"] == "member" && v["user"] == "bob").await;
        let n = ann.nonce();
        ann.send_msg("~ops", "after", &n).await;
        for t in tabs.iter_mut().chain(std::iter::once(&mut elsewhere)) {
            let m = t.recv_where("removed", |v| v["type"] == "member").await;
            assert_eq!(m, json!({"type":"member","room":"~ops","user":"bob","state":"removed","by":"ann"}));
            t.expect_none_where(Duration::from_millis(500), "the room's next message", |v| {
                v["type"] == "message" && v["room"] == "~ops"
            })
            .await;
        }
        // Sending there is refused; joining again says the room is not there.
        let t = &mut tabs[0];
        let n = t.nonce();
        let r = t.send_msg_result("~ops", "still?", &n).await;
        assert_eq!(r["code"], "not_joined", "{r}");
        refused(t, json!({"type":"join","room":"~ops"}), "not_found").await;
        // And the HTTP API agrees.
        let (status, _) = s.get_json_with_cookie("/api/rooms/~ops/messages", &bob_cookie).await;
        assert_eq!(status, 404);
    }

    async fn only_the_owner_or_an_admin_removes_others_and_refusals_change_nothing() {
        let s = Server::start_with(server_opts()).await;
        // The first account is the admin.
        let mut p = people(&s, &["root", "ann", "bob", "cat"]).await;
        let (_, ann) = &mut p[1];
        ann.send_json(json!({"type":"create","room":"~x","members":["bob","cat"]})).await;
        ann.expect_type("joined").await;
        let (_, bob) = &mut p[2];
        refused(bob, json!({"type":"remove","room":"~x","user":"cat"}), "forbidden").await;
        refused(bob, json!({"type":"invite","room":"~x","user":"nobody-here"}), "not_found").await;
        refused(bob, json!({"type":"invite","room":"~x","user":"cat"}), "bad_request").await;
        refused(bob, json!({"type":"remove","room":"~x","user":"root"}), "forbidden").await;
        refused(bob, json!({"type":"invite","room":"general","user":"cat"}), "bad_request").await;
        refused(bob, json!({"type":"create","room":"plain","members":[]}), "bad_request").await;
        refused(bob, json!({"type":"create","room":"~Bad Name"}), "bad_request").await;
        let mut guest = s.guest("gus").await;
        guest.expect_type("rooms").await;
        refused(&mut guest, json!({"type":"create","room":"~g"}), "forbidden").await;
        // A guest without a kept name is no one; a bot is someone, but no account.
        refused(bob, json!({"type":"invite","room":"~x","user":"gus"}), "not_found").await;
        refused(bob, json!({"type":"invite","room":"~x","user":"robot"}), "bad_request").await;
        let (_, ann) = &mut p[1];
        refused(ann, json!({"type":"remove","room":"~x","user":"root"}), "not_found").await;
        // The members are as they were.
        let (status, rooms) = s.get_json_with_cookie("/api/rooms", &p[3].0.cookies()).await;
        assert_eq!(status, 200);
        assert!(rooms_rows(&rooms).iter().any(|r| r["name"] == "~x"));
        // The admin, who is not in the room, cannot see it either...
        let (_, root) = &mut p[0];
        refused(root, json!({"type":"remove","room":"~x","user":"cat"}), "not_found").await;
        // ...until invited; then removes anyone.
        let (_, ann) = &mut p[1];
        ann.send_json(json!({"type":"invite","room":"~x","user":"root"})).await;
        let (_, root) = &mut p[0];
        root.recv_where("added", |v| v["type"] == "member" && v["user"] == "root").await;
        root.send_json(json!({"type":"remove","room":"~x","user":"cat"})).await;
        let (_, cat) = &mut p[3];
        let m = cat.recv_where("removed", |v| v["type"] == "member" && v["state"] == "removed").await;
        assert_eq!(m["by"], "root");
    }

    async fn group_conversations_and_topics() {
        let s = Server::start_with(server_opts()).await;
        let mut p = people(&s, &["ann", "bob", "cat", "dan"]).await;
        let (_, ann) = &mut p[0];
        ann.join("dm:ann:bob:cat").await;
        let n = ann.nonce();
        ann.send_msg("dm:ann:bob:cat", "hi both", &n).await;
        let (_, cat) = &mut p[2];
        let j = cat.join("dm:ann:bob:cat").await;
        assert!(arr(&j["history"]).iter().any(|m| m["body"] == "hi both"));
        let (_, dan) = &mut p[3];
        refused(dan, json!({"type":"join","room":"dm:ann:bob:cat"}), "forbidden").await;
        let (_, ann) = &mut p[0];
        refused(ann, json!({"type":"join","room":"dm:ann:bob:zed"}), "not_found").await;
        refused(ann, json!({"type":"join","room":"dm:bob:ann:cat"}), "bad_request").await;
        refused(ann, json!({"type":"invite","room":"dm:ann:bob:cat","user":"dan"}), "bad_request").await;
        // Any member sets a direct room's topic; the others see it.
        ann.send_json(json!({"type":"topic","room":"dm:ann:bob:cat","topic":"  Friday lunch "})).await;
        let (_, cat) = &mut p[2];
        let t = cat.recv_where("topic", |v| v["type"] == "topic").await;
        assert_eq!(t, json!({"type":"topic","room":"dm:ann:bob:cat","topic":"Friday lunch","by":"ann"}));
        // A public room's topic is the admin's (ann, the first account).
        let (_, bob) = &mut p[1];
        refused(bob, json!({"type":"topic","room":"general","topic":"mine"}), "forbidden").await;
        refused(bob, json!({"type":"topic","room":"general","topic":"a\nb"}), "bad_request").await;
        let (_, ann) = &mut p[0];
        ann.send_json(json!({"type":"topic","room":"general","topic":"Everything else"})).await;
        ann.recv_where("own topic", |v| v["type"] == "topic" && v["room"] == "general").await;
        let (status, rooms) = s.get_json("/api/rooms").await;
        assert_eq!(status, 200);
        let general = rooms_rows(&rooms).into_iter().find(|r| r["name"] == "general").expect("general");
        assert_eq!(general["topic"], "Everything else");
        assert_eq!(general["kind"], "public");
    }
}
