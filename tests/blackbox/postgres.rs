//! What only PostgreSQL can show: several processes writing one history.
//! (Every other behaviour runs on both stores in chat.rs, api.rs and
//! errors.rs.) No Redis here: each node delivers only its own commits live,
//! so these tests read the outcome from acks and the HTTP API.
//!
//! Runs when `CAUSERIE_TEST_POSTGRES` is set (e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`); otherwise each test
//! returns at once with a note.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::common::*;
use serde_json::json;

fn ready(test: &str) -> bool {
    if postgres_url().is_none() {
        eprintln!("{test}: skipped (set CAUSERIE_TEST_POSTGRES=postgres://...)");
        return false;
    }
    true
}

fn node(db: &Arc<PgDb>) -> ServerOpts {
    ServerOpts::new()
        .pg(db.clone())
        .with_bot()
        .no_rate_limit()
        .env("CAUSERIE_IP_RATE_PER_SEC", 100000)
        .env("CAUSERIE_IP_RATE_BURST", 100000)
}

/// Every stored message of a room over HTTP, oldest first.
async fn all_ids(s: &Server, room: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let p = s.api_messages(room, &format!("?limit=200{before}")).await;
        let page = ids(&arr(&p["messages"]));
        let Some(first) = page.first().copied() else {
            break;
        };
        out.splice(0..0, page);
        if p["more"] != true {
            break;
        }
        before = format!("&before={first}");
    }
    out
}

/// Two processes appending to the same rooms at once: ids stay unique,
/// dense and in acknowledgement order within each connection.
#[tokio::test(flavor = "multi_thread")]
async fn two_writers_keep_ids_dense_and_unique() {
    if !ready("two_writers_keep_ids_dense_and_unique") {
        return;
    }
    let db = PgDb::create();
    let a = Server::start_with(node(&db)).await;
    let b = Server::start_with(node(&db)).await;
    const PER: usize = 150;
    let mut tasks = Vec::new();
    for (n, s) in [&a, &b].into_iter().enumerate() {
        for k in 0..3 {
            let mut c = s.guest(&format!("w{n}x{k}")).await;
            c.join("general").await;
            c.join("random").await;
            tasks.push(tokio::spawn(async move {
                for i in 0..PER {
                    let room = if i % 3 == 0 { "random" } else { "general" };
                    c.send_msg_nowait(room, "x", &format!("n{i}")).await;
                }
                let mut acks = Vec::new();
                while acks.len() < PER {
                    let v = c
                        .recv_where("ack", |v| matches!(typ(v), "ack" | "error"))
                        .await;
                    assert_eq!(typ(&v), "ack", "{v}");
                    let i: usize = v["nonce"].as_str().unwrap()[1..].parse().unwrap();
                    acks.push((
                        i,
                        v["room"].as_str().unwrap().to_string(),
                        v["id"].as_i64().unwrap(),
                    ));
                }
                // Acks may come in any order; the store's order is the sends'.
                acks.sort();
                acks.into_iter()
                    .map(|(_, r, id)| (r, id))
                    .collect::<Vec<_>>()
            }));
        }
    }
    let mut by_room: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for t in tasks {
        let acks = t.await.expect("writer");
        // One connection's sends are stored in the order it sent them.
        for room in ["general", "random"] {
            let mine: Vec<i64> = acks
                .iter()
                .filter(|(r, _)| r == room)
                .map(|(_, i)| *i)
                .collect();
            assert_strictly_increasing(&mine, room);
        }
        for (r, i) in acks {
            by_room.entry(r).or_default().push(i);
        }
    }
    for (room, mut got) in by_room {
        got.sort();
        let n = got.len() as i64;
        assert_eq!(
            got,
            (1..=n).collect::<Vec<_>>(),
            "{room}: dense, each id once"
        );
        assert_eq!(all_ids(&a, &room).await, got, "{room} as node A reads it");
        assert_eq!(all_ids(&b, &room).await, got, "{room} as node B reads it");
    }
}

/// A send retried on another node (same author, same nonce) finds the
/// first one, even when both arrive at once.
#[tokio::test(flavor = "multi_thread")]
async fn nonce_retry_on_another_node_is_stored_once() {
    if !ready("nonce_retry_on_another_node_is_stored_once") {
        return;
    }
    let db = PgDb::create();
    let a = Server::start_with(node(&db)).await;
    let b = Server::start_with(node(&db)).await;

    let body = json!({"body":"once","nonce":"same-1"});
    let (st1, m1) = a.api_post("general", Some(BOT_TOKEN), &body).await;
    let (st2, m2) = b.api_post("general", Some(BOT_TOKEN), &body).await;
    assert_eq!(st1, 201, "{m1}");
    assert_eq!(st2, 200, "the retry is not a new message: {m2}");
    assert_eq!(m1, m2, "the retry gets the first answer");

    // Both at once, many times over.
    let mut pairs = Vec::new();
    for i in 0..40 {
        let body = json!({"body":format!("race {i}"),"nonce":format!("race-{i}")});
        let (ba, bb) = (body.clone(), body);
        let (ua, ub) = (
            a.url("/api/rooms/general/messages"),
            b.url("/api/rooms/general/messages"),
        );
        let http = a.http();
        let http2 = http.clone();
        pairs.push(tokio::spawn(async move {
            let ra = http.post(ua).bearer_auth(BOT_TOKEN).json(&ba).send();
            let rb = http2.post(ub).bearer_auth(BOT_TOKEN).json(&bb).send();
            let (ra, rb) = tokio::join!(ra, rb);
            let (ra, rb) = (ra.expect("post A"), rb.expect("post B"));
            let sa = ra.status().as_u16();
            let sb = rb.status().as_u16();
            let ja: serde_json::Value = ra.json().await.expect("json A");
            let jb: serde_json::Value = rb.json().await.expect("json B");
            (sa, sb, ja, jb)
        }));
    }
    let mut ids_seen = BTreeSet::new();
    for p in pairs {
        let (sa, sb, ja, jb) = p.await.expect("pair");
        let mut st = [sa, sb];
        st.sort();
        if st != [200, 201] {
            // The nodes' own words say why (the answer only says "unavailable").
            let why: Vec<String> = [&a, &b]
                .iter()
                .flat_map(|s| s.log_lines())
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            panic!(
                "one stores, one finds it: {sa} {ja} / {sb} {jb}; logs:\n{}",
                why.join("\n")
            );
        }
        assert_eq!(ja["id"], jb["id"], "same message: {ja} {jb}");
        assert!(ids_seen.insert(ja["id"].as_i64().unwrap()));
    }
    let stored = all_ids(&a, "general").await;
    assert_eq!(stored.len(), 41, "one message per nonce: {stored:?}");
    assert_eq!(stored, (1..=41).collect::<Vec<_>>(), "dense");
}
