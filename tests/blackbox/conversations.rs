//! Messages that change and finding them again, over real WebSockets and
//! HTTP on both backends: mentions, replies, `edit`, `delete`, `react`, the
//! `changed` frames in revision order, resume with `{"id","rev"}`,
//! `GET /api/search` and `?around=`, and every refusal changing nothing.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn opts() -> ServerOpts {
    ServerOpts::new()
        .no_rate_limit()
        .env("CAUSERIE_REGISTRATION", "open")
}

/// A session socket of a registered account, after `welcome` and `rooms`.
async fn socket(v: &Visitor<'_>) -> Client {
    let mut ws = v.ws().await;
    ws.send_json(json!({"type":"hello"})).await;
    ws.expect_type("welcome").await;
    ws.expect_type("rooms").await;
    ws
}

/// Sends and returns the stored message as the room got it.
async fn say(ws: &mut Client, room: &str, body: &str) -> Value {
    let n = ws.nonce();
    let ack = ws.send_msg(room, body, &n).await;
    let id = ack["id"].clone();
    ws.recv_where("the message itself", |v| {
        typ(v) == "message" && v["room"] == room && v["id"] == id
    })
    .await
}

async fn changed(ws: &mut Client, room: &str, id: &Value) -> Value {
    ws.recv_where(&format!("changed {id}"), |v| {
        typ(v) == "changed" && v["room"] == room && v["message"]["id"] == *id
    })
    .await
}

async fn refused(ws: &mut Client, frame: Value, code: &str) {
    ws.send_json(frame.clone()).await;
    let e = ws
        .recv_where("the refusal", |v| typ(v) == "error" || typ(v) == "changed")
        .await;
    assert_eq!(typ(&e), "error", "{frame} was not refused: {e}");
    assert_eq!(
        (&e["code"], &e["room"]),
        (&json!(code), &frame["room"]),
        "{frame} → {e}"
    );
    assert!(e["message"].as_str().is_some_and(|m| m.len() > 5), "{e}");
}

both_backends! {
    async fn mentions_replies_reactions_edits_and_deletions_reach_everyone() {
        let s = Server::start_with(opts()).await;
        let mut alice = s.guest_in("alice", "general").await;
        let mut bob = s.guest_in("bob", "general").await;
        let first = say(&mut alice, "general", "hi @bob and @carol, see @bob.").await;
        assert_eq!(first["mentions"], json!(["bob", "carol"]));
        let id = first["id"].clone();

        let n = bob.nonce();
        bob.send_json(json!({"type":"send","room":"general","body":"hello back","nonce":n,"reply_to":id})).await;
        bob.wait_ack(&n).await;
        let reply = alice.recv_where("the reply", |v| typ(v) == "message" && v["body"] == "hello back").await;
        assert_eq!(reply["reply_to"], id);

        alice.send_json(json!({"type":"react","room":"general","id":id,"emoji":"👍","on":true})).await;
        let c1 = changed(&mut bob, "general", &id).await;
        assert_eq!(c1["message"]["reactions"], json!({"👍":["alice"]}));
        bob.send_json(json!({"type":"react","room":"general","id":id,"emoji":"👍","on":true})).await;
        let c2 = changed(&mut alice, "general", &id).await;
        assert_eq!(c2["message"]["reactions"], json!({"👍":["alice","bob"]}));
        assert!(c2["rev"].as_i64() > c1["rev"].as_i64(), "{c1} then {c2}");
        // Twice the same reaction changes nothing.
        bob.send_json(json!({"type":"react","room":"general","id":id,"emoji":"👍","on":true})).await;
        bob.send_json(json!({"type":"react","room":"general","id":id,"emoji":"👍","on":false})).await;
        let c3 = changed(&mut alice, "general", &id).await;
        assert_eq!(c3["message"]["reactions"], json!({"👍":["alice"]}));
        assert_eq!(c3["rev"].as_i64(), c2["rev"].as_i64().map(|r| r + 1), "no revision for nothing");

        alice.send_json(json!({"type":"edit","room":"general","id":id,"body":"hi @dan, fixed"})).await;
        let c4 = changed(&mut bob, "general", &id).await;
        let m = &c4["message"];
        assert_eq!((&m["body"], &m["mentions"]), (&json!("hi @dan, fixed"), &json!(["dan"])));
        assert!(m["edited"].as_str().is_some_and(|t| t.ends_with('Z')), "{m}");
        assert_eq!(m["reactions"], json!({"👍":["alice"]}), "an edit keeps the reactions");
        // The author's own connection hears of it too.
        changed(&mut alice, "general", &id).await;

        alice.send_json(json!({"type":"delete","room":"general","id":id})).await;
        let c5 = changed(&mut bob, "general", &id).await;
        assert_eq!(
            c5["message"],
            json!({"room":"general","id":id,"author":"alice","body":"","ts":first["ts"],"deleted":true}),
            "nothing kept but id, author and ts"
        );
        let revs: Vec<i64> = [&c1, &c2, &c3, &c4, &c5].iter().filter_map(|c| c["rev"].as_i64()).collect();
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");

        // History and the HTTP API show them as they now stand.
        let page = s.api_messages("general", "").await;
        let msgs = arr(&page["messages"]);
        assert_eq!(msgs[0]["deleted"], true);
        assert_eq!(msgs[0]["body"], "");
        assert_eq!(msgs[1]["reply_to"], id);
        let mut carol = s.guest("carol").await;
        let joined = carol.join("general").await;
        assert_eq!(arr(&joined["history"])[0]["deleted"], true);
        assert!(joined["rev"].as_i64() >= c5["rev"].as_i64(), "{joined}");
    }

    async fn every_bad_change_is_refused_and_changes_nothing() {
        let s = Server::start_with(opts()).await;
        let mut alice = s.guest_in("alice", "general").await;
        let mut bob = s.guest_in("bob", "general").await;
        bob.join("random").await;
        let mine = say(&mut alice, "general", "alice's words").await;
        let id = mine["id"].clone();
        let elsewhere = say(&mut bob, "random", "in random").await;
        alice.clear();
        bob.clear();

        refused(&mut bob, json!({"type":"edit","room":"general","id":id,"body":"not mine"}), "forbidden").await;
        refused(&mut bob, json!({"type":"delete","room":"general","id":id}), "forbidden").await;
        refused(&mut bob, json!({"type":"react","room":"general","id":9999,"emoji":"👍","on":true}), "not_found").await;
        refused(&mut bob, json!({"type":"edit","room":"general","id":elsewhere["id"],"body":"x"}), "not_found").await;
        refused(&mut bob, json!({"type":"react","room":"general","id":id,"emoji":"ok","on":true}), "bad_request").await;
        refused(&mut bob, json!({"type":"react","room":"general","id":id,"emoji":"👍".repeat(200),"on":true}), "bad_request").await;
        refused(&mut bob, json!({"type":"react","room":"general","id":id,"emoji":"👍👎","on":true}), "bad_request").await;
        refused(&mut alice, json!({"type":"edit","room":"general","id":id,"body":"   "}), "bad_request").await;
        refused(&mut alice, json!({"type":"edit","room":"general","id":id,"body":"x".repeat(4001)}), "too_large").await;
        refused(&mut alice, json!({"type":"edit","room":"lobby","id":id,"body":"not joined"}), "not_joined").await;
        // A frame that cannot be read names no room.
        alice.send_json(json!({"type":"edit","room":"general","id":"seven","body":"x"})).await;
        alice.expect_error("bad_request").await;
        // A reply to a message of another room is no reply.
        let n = alice.nonce();
        alice.send_json(json!({"type":"send","room":"general","body":"re","nonce":n,"reply_to":elsewhere["id"].as_i64().map(|i| i + 100)})).await;
        let e = alice.recv_where("refused reply", |v| v["nonce"] == n).await;
        assert_eq!((typ(&e), &e["code"]), ("error", &json!("not_found")), "{e}");

        // 10,000 mentions in one body: a bounded list, the body kept whole.
        let many: String = (0..2000).map(|i| format!("@u{i} ")).collect();
        let m = say(&mut alice, "general", &many).await;
        assert_eq!(arr(&m["mentions"]).len(), 20, "{}", m["mentions"]);
        let repeated = say(&mut alice, "general", &"@bob ".repeat(800)).await;
        assert_eq!(repeated["mentions"], json!(["bob"]));

        // Nothing changed: no `changed` frame anywhere, the message intact.
        alice.expect_none_where(Duration::from_millis(300), "changed", |v| typ(v) == "changed").await;
        bob.expect_none_where(Duration::from_millis(10), "changed", |v| typ(v) == "changed").await;
        let page = s.api_messages("general", "").await;
        assert_eq!(arr(&page["messages"])[0], json!({"room":"general","id":id,"author":"alice","body":"alice's words","ts":mine["ts"],"nonce":mine["nonce"]}));

        // A deleted message cannot be edited or reacted to.
        alice.send_json(json!({"type":"delete","room":"general","id":id})).await;
        changed(&mut bob, "general", &id).await;
        refused(&mut alice, json!({"type":"edit","room":"general","id":id,"body":"back"}), "bad_request").await;
        refused(&mut bob, json!({"type":"react","room":"general","id":id,"emoji":"👍","on":true}), "bad_request").await;
        // The connection still works.
        say(&mut bob, "general", "still here").await;
    }

    async fn an_admin_deletes_anyones_message_and_a_member_only_their_own() {
        let s = Server::start_with(opts()).await;
        let mut ann_v = Visitor::new(&s);
        register(&mut ann_v, "ann", PASSWORD).await;
        let mut bob_v = Visitor::new(&s);
        register(&mut bob_v, "bob", PASSWORD).await;
        let mut ann = socket(&ann_v).await;
        let mut bob = socket(&bob_v).await;
        ann.join("general").await;
        bob.join("general").await;
        let by_bob = say(&mut bob, "general", "bob's").await;
        let by_ann = say(&mut ann, "general", "ann's").await;
        refused(&mut bob, json!({"type":"delete","room":"general","id":by_ann["id"]}), "forbidden").await;
        refused(&mut ann, json!({"type":"edit","room":"general","id":by_bob["id"],"body":"an admin edits no one"}), "forbidden").await;
        ann.send_json(json!({"type":"delete","room":"general","id":by_bob["id"]})).await;
        let c = changed(&mut bob, "general", &by_bob["id"]).await;
        assert_eq!(c["message"]["deleted"], true);
    }

    async fn a_resume_with_rev_gets_each_change_made_while_away_once_in_order() {
        let s = Server::start_with(opts()).await;
        let mut alice = s.guest_in("alice", "general").await;
        let mut bob = s.guest("bob").await;
        let mut ids = Vec::new();
        for i in 1..=4 {
            ids.push(say(&mut alice, "general", &format!("m{i}")).await["id"].clone());
        }
        // An early change, which bob saw.
        alice.send_json(json!({"type":"react","room":"general","id":ids[0],"emoji":"🎉","on":true})).await;
        changed(&mut alice, "general", &ids[0]).await;
        let joined = bob.join("general").await;
        let rev = joined["rev"].as_i64().expect("joined carries the room's rev");
        assert_eq!(arr(&joined["history"])[0]["reactions"], json!({"🎉":["alice"]}));
        let last = ids[3].as_i64().unwrap();
        drop(bob);

        // While bob is away: an edit, a reaction, a deletion, an edit of a
        // message edited twice, and a new message, itself then edited.
        alice.send_json(json!({"type":"edit","room":"general","id":ids[1],"body":"m2 edited"})).await;
        alice.send_json(json!({"type":"react","room":"general","id":ids[2],"emoji":"👀","on":true})).await;
        alice.send_json(json!({"type":"delete","room":"general","id":ids[3]})).await;
        alice.send_json(json!({"type":"edit","room":"general","id":ids[1],"body":"m2 edited twice"})).await;
        for id in [&ids[1], &ids[2], &ids[3], &ids[1]] {
            changed(&mut alice, "general", id).await;
        }
        let m5 = say(&mut alice, "general", "m5").await;
        alice.send_json(json!({"type":"edit","room":"general","id":m5["id"],"body":"m5 edited"})).await;
        changed(&mut alice, "general", &m5["id"]).await;

        let mut bob = s.client().await;
        bob.send_json(json!({"type":"hello","name":"bob","resume":{"general":{"id":last,"rev":rev}}})).await;
        bob.expect_type("welcome").await;
        let joined = bob.join("general").await;
        let changed_ids: Vec<i64> = arr(&joined["changed"]).iter().filter_map(|m| m["id"].as_i64()).collect();
        assert_eq!(changed_ids, [ids[2].as_i64().unwrap(), last, ids[1].as_i64().unwrap()], "each once, in revision order: {joined}");
        let ch = arr(&joined["changed"]);
        assert_eq!(ch[0]["reactions"], json!({"👀":["alice"]}));
        assert_eq!(ch[1]["deleted"], true);
        assert_eq!(ch[2]["body"], "m2 edited twice");
        let history = arr(&joined["history"]);
        assert_eq!(history.len(), 1, "{joined}");
        assert_eq!(history[0]["body"], "m5 edited", "new messages come as they now stand");
        bob.expect_none_where(Duration::from_millis(400), "a change twice", |v| typ(v) == "changed").await;

        // Version 1's integer resume still works, without `changed`.
        let mut old = s.client().await;
        old.send_json(json!({"type":"hello","name":"dan","resume":{"general":last}})).await;
        old.expect_type("welcome").await;
        let joined = old.join("general").await;
        assert!(joined.get("changed").is_none(), "{joined}");
        assert_eq!(arr(&joined["history"]).len(), 1);
    }

    async fn search_finds_words_without_accents_as_they_now_stand() {
        let s = Server::start_with(opts()).await;
        let mut alice = s.guest_in("alice", "general").await;
        alice.join("random").await;
        let cafe = say(&mut alice, "general", "On prend un café crème à l'été ?").await;
        say(&mut alice, "random", "ETE is a word too, and Cafe").await;
        let typo = say(&mut alice, "general", "the quarterly numbres are in").await;
        say(&mut alice, "general", "the deleted needle").await;
        let gone = say(&mut alice, "general", "another needle, deleted later").await;

        let search = |q: &str| format!("/api/search?q={}", urlencode(q));
        let (st, page) = s.get_json(&search("cafe")).await;
        assert_eq!(st, 200, "{page}");
        let found = arr(&page["messages"]);
        assert_eq!(found.len(), 2, "{page}");
        assert_eq!(found[0]["room"], "random", "newest first");
        assert_eq!(found[1]["id"], cafe["id"]);
        let (_, page) = s.get_json(&search("ÉTÉ")).await;
        assert_eq!(arr(&page["messages"]).len(), 2, "{page}");
        let (_, page) = s.get_json(&format!("{}&room=general", search("cafe"))).await;
        assert_eq!(arr(&page["messages"]).len(), 1, "{page}");

        // Search syntax is text: never an error, never a 500.
        for q in ["\"", "NEAR", "needle*", "-needle", "needle AND", "(", "café\" OR \"x", "*", "NEAR(a b)", "^", ":"] {
            let (st, page) = s.get_json(&search(q)).await;
            assert_eq!(st, 200, "{q}: {page}");
        }
        let (st, page) = s.get_json(&search(&"x".repeat(10_000))).await;
        assert_eq!((st, &page["error"]["code"]), (400, &json!("bad_request")), "{page}");
        let (st, _) = s.get_json("/api/search?q=").await;
        assert_eq!(st, 400);
        let (st, page) = s.get_json(&format!("{}&cursor=nonsense", search("cafe"))).await;
        assert_eq!((st, &page["error"]["code"]), (400, &json!("bad_request")), "{page}");

        // Kept in step with edits and deletions.
        alice.send_json(json!({"type":"edit","room":"general","id":typo["id"],"body":"the quarterly numbers are in"})).await;
        changed(&mut alice, "general", &typo["id"]).await;
        alice.send_json(json!({"type":"delete","room":"general","id":gone["id"]})).await;
        changed(&mut alice, "general", &gone["id"]).await;
        let (_, page) = s.get_json(&search("numbres")).await;
        assert!(arr(&page["messages"]).is_empty(), "the old text is not kept: {page}");
        let (_, page) = s.get_json(&search("numbers")).await;
        assert_eq!(arr(&page["messages"]).len(), 1, "{page}");
        let (_, page) = s.get_json(&search("needle")).await;
        let found = arr(&page["messages"]);
        assert_eq!(found.len(), 1, "deleted messages are never found: {page}");
        assert_eq!(found[0]["body"], "the deleted needle");
    }

    async fn search_pages_with_a_cursor_and_around_jumps() {
        let s = Server::start_with(opts()).await;
        let mut alice = s.guest_in("alice", "general").await;
        let mut ids = Vec::new();
        for i in 0..25 {
            ids.push(say(&mut alice, "general", &format!("match number {i}")).await["id"].as_i64().unwrap());
            say(&mut alice, "general", "filler").await;
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..5 {
            let path = match &cursor {
                Some(c) => format!("/api/search?q=match&limit=10&cursor={c}"),
                None => "/api/search?q=match&limit=10".to_string(),
            };
            let (st, page) = s.get_json(&path).await;
            assert_eq!(st, 200, "{page}");
            seen.extend(arr(&page["messages"]).iter().filter_map(|m| m["id"].as_i64()));
            match page["next"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let mut want = ids.clone();
        want.reverse();
        assert_eq!(seen, want, "every result once, newest first");

        let mid = ids[12];
        let page = s.api_messages("general", &format!("?around={mid}&limit=11")).await;
        let got: Vec<i64> = arr(&page["messages"]).iter().filter_map(|m| m["id"].as_i64()).collect();
        assert_eq!(got, ((mid - 5)..=(mid + 5)).collect::<Vec<_>>(), "{page}");
        assert_eq!((&page["more"], &page["more_after"]), (&json!(true), &json!(true)));
        let page = s.api_messages("general", "?around=1&limit=5").await;
        let got: Vec<i64> = arr(&page["messages"]).iter().filter_map(|m| m["id"].as_i64()).collect();
        assert_eq!(got.first(), Some(&1), "{page}");
        assert_eq!(page["more"], false);
    }

    async fn search_never_shows_what_the_caller_may_not_read() {
        let s = Server::start_with(opts()).await;
        let mut people = Vec::new();
        for name in ["ann", "bob", "cat"] {
            let mut v = Visitor::new(&s);
            register(&mut v, name, PASSWORD).await;
            people.push(v);
        }
        let mut ann = socket(&people[0]).await;
        ann.send_json(json!({"type":"create","room":"~secret","members":["bob"]})).await;
        ann.expect_type("joined").await;
        say(&mut ann, "~secret", "needle in the private room").await;
        ann.join("dm:ann:bob").await;
        say(&mut ann, "dm:ann:bob", "needle in the direct room").await;
        ann.join("general").await;
        say(&mut ann, "general", "needle in public").await;

        let found = |v: &Value| -> Vec<String> {
            arr(&v["messages"]).iter().map(|m| m["room"].as_str().unwrap_or("").to_string()).collect()
        };
        let cookie = |i: usize| people[i].cookie.clone().expect("signed in");
        let (_, bob_sees) = s.get_json_with_cookie("/api/search?q=needle", &cookie(1)).await;
        let mut rooms = found(&bob_sees);
        rooms.sort();
        assert_eq!(rooms, ["dm:ann:bob", "general", "~secret"], "{bob_sees}");
        let (_, cat_sees) = s.get_json_with_cookie("/api/search?q=needle", &cookie(2)).await;
        assert_eq!(found(&cat_sees), ["general"], "{cat_sees}");
        let (_, visitor_sees) = s.get_json("/api/search?q=needle").await;
        assert_eq!(found(&visitor_sees), ["general"], "{visitor_sees}");
        // Asking for the room by name: the private room does not exist for
        // cat, the direct room is forbidden.
        let (st, missing) = s.get_json_with_cookie("/api/search?q=needle&room=~nothing", &cookie(2)).await;
        let (st2, private) = s.get_json_with_cookie("/api/search?q=needle&room=~secret", &cookie(2)).await;
        assert_eq!((st, st2), (404, 404));
        assert_eq!(missing["error"]["message"].as_str().map(|m| m.replace("~nothing", "~secret")), private["error"]["message"].as_str().map(str::to_string));
        let (st, _) = s.get_json_with_cookie("/api/search?q=needle&room=dm:ann:bob", &cookie(2)).await;
        assert_eq!(st, 403);

        // Once bob leaves the private room, he no longer finds it.
        let mut bob = socket(&people[1]).await;
        bob.send_json(json!({"type":"remove","room":"~secret","user":"bob"})).await;
        bob.recv_where("removed", |v| typ(v) == "member").await;
        let (_, bob_sees) = s.get_json_with_cookie("/api/search?q=needle", &cookie(1)).await;
        let mut rooms = found(&bob_sees);
        rooms.sort();
        assert_eq!(rooms, ["dm:ann:bob", "general"], "{bob_sees}");
    }
}

#[tokio::test]
async fn changes_count_against_the_send_allowance() {
    let s = Server::start_with(
        ServerOpts::new()
            .env("CAUSERIE_RATE_BURST", 5)
            .env("CAUSERIE_RATE_PER_SEC", 1),
    )
    .await;
    let mut alice = s.guest_in("alice", "general").await;
    let m = say(&mut alice, "general", "react to me").await;
    let mut limited = false;
    for i in 0..30 {
        let on = i % 2 == 0;
        alice
            .send_json(json!({"type":"react","room":"general","id":m["id"],"emoji":"👍","on":on}))
            .await;
        let v = alice
            .recv_where("changed or refused", |v| {
                matches!(typ(v), "changed" | "error")
            })
            .await;
        if typ(&v) == "error" {
            assert_eq!(v["code"], "rate_limited", "{v}");
            limited = true;
            break;
        }
    }
    assert!(limited, "30 reactions at once pass a burst of 5");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
