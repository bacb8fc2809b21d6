//! Faults: the server process killed (`kill -9`) while clients send, a
//! store that cannot write (its SQLite file locked by another process), and
//! an HTTP client that hangs up while its message is being stored.
//!
//! What must hold: an acknowledged message is never lost, ids stay dense,
//! resuming clients miss nothing and see nothing twice, a retried nonce is
//! stored at most once, a store that cannot write answers `unavailable`
//! without acknowledging anything, then recovers; a lock shorter than the
//! busy timeout is waited out; a stored message is always broadcast.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const QUIET: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// kill -9 while clients send
// ---------------------------------------------------------------------------

const CRASH_ROOM: &str = "crash";
/// Sends each client keeps in flight.
const WINDOW: usize = 8;
/// Acknowledged sends (all clients) before the kill.
const KILL_AFTER: usize = 450;

fn nonce_of(name: &str, i: usize) -> String {
    format!("{name}-{i}")
}

fn body_of(name: &str, i: usize) -> String {
    format!("{name} says {i}")
}

/// What one client saw before the server died.
struct Stream {
    name: String,
    /// Sends written to the socket: nonces `name-0` .. `name-(sent-1)`.
    sent: usize,
    /// nonce → acknowledged id.
    acked: HashMap<String, i64>,
    /// Ids of the `message` frames received, in arrival order.
    received: Vec<i64>,
    /// How the connection ended.
    end: String,
}

/// Sends continuously (WINDOW in flight) until the connection dies,
/// recording every ack and every message received.
async fn stream(mut c: Client, name: String, acks: Arc<AtomicUsize>) -> Stream {
    let mut st = Stream {
        name,
        sent: 0,
        acked: HashMap::new(),
        received: Vec::new(),
        end: String::new(),
    };
    let mut in_flight: HashSet<String> = HashSet::new();
    loop {
        while in_flight.len() < WINDOW {
            let i = st.sent;
            let f = json!({"type":"send","room":CRASH_ROOM,
                           "body":body_of(&st.name, i),"nonce":nonce_of(&st.name, i)});
            if let Err(e) = c.try_send_raw(WsMessage::text(f.to_string())).await {
                st.end = format!("send failed: {e}");
                return st;
            }
            in_flight.insert(nonce_of(&st.name, i));
            st.sent += 1;
        }
        match c.recv_or_closed(Duration::from_secs(10)).await {
            Ok(Some(v)) => match typ(&v) {
                "ack" => {
                    let n = v["nonce"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{}: ack without nonce: {v}", st.name))
                        .to_string();
                    assert!(
                        in_flight.remove(&n),
                        "{}: ack for a nonce not in flight: {v}",
                        st.name
                    );
                    assert_eq!(v["room"], CRASH_ROOM, "{v}");
                    let id = v["id"].as_i64().unwrap_or_else(|| panic!("ack id: {v}"));
                    st.acked.insert(n, id);
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                "message" => {
                    let id = v["id"].as_i64().unwrap_or_else(|| panic!("id: {v}"));
                    let expect = st.received.last().map_or(1, |l| l + 1);
                    assert_eq!(
                        id, expect,
                        "{}: live messages must come in id order, without a gap: {v}",
                        st.name
                    );
                    st.received.push(id);
                }
                "error" => panic!("{}: error while streaming: {v}", st.name),
                _ => {}
            },
            Ok(None) => panic!("{}: nothing received for 10 s while streaming", st.name),
            Err(closed) => {
                st.end = format!("{closed:?}");
                return st;
            }
        }
    }
}

/// Every message of a room over HTTP, paging back with `before`; oldest first.
async fn all_messages(s: &Server, room: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = match before {
            Some(b) => format!("?limit=200&before={b}"),
            None => "?limit=200".to_string(),
        };
        let page = s.api_messages(room, &q).await;
        let mut ms = arr(&page["messages"]);
        let page_ids = ids(&ms);
        assert_strictly_increasing(&page_ids, "a page of GET messages");
        if let (Some(last), Some(b)) = (page_ids.last(), before) {
            assert!(*last < b, "page before={b} holds id {last}");
        }
        let more = page["more"]
            .as_bool()
            .unwrap_or_else(|| panic!("more: {page}"));
        if more {
            assert!(!ms.is_empty(), "more:true on an empty page: {page}");
        }
        before = page_ids.first().copied();
        ms.extend(out);
        out = ms;
        if !more {
            return out;
        }
    }
}

fn resume_map(room: &str, id: i64) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(room.to_string(), json!(id));
    Value::Object(m)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_stream_loses_no_acknowledged_message() {
    let dir = fresh_dir();
    let mut s = Server::start_with(ServerOpts::new().no_rate_limit().dir(dir.clone())).await;
    let names = ["c0", "c1", "c2"];
    let mut clients = Vec::new();
    for n in names {
        clients.push(s.guest_in(n, CRASH_ROOM).await);
    }

    let acks = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(names)
        .map(|(c, n)| tokio::spawn(stream(c, n.to_string(), acks.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acks.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} acks within 10 s",
            acks.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    s.kill9();
    let mut runs = Vec::new();
    for t in tasks {
        let run = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("a client did not notice the kill within 10 s")
            .expect("client task");
        runs.push(run);
    }
    drop(s);

    // Same database, new process.
    let s = Server::start_with(ServerOpts::new().no_rate_limit().dir(dir.clone())).await;
    let hist = all_messages(&s, CRASH_ROOM).await;
    let m = hist.len() as i64;
    assert_eq!(
        ids(&hist),
        (1..=m).collect::<Vec<_>>(),
        "ids after the restart must be dense and strictly increasing"
    );
    // (author, nonce) → stored message; each stored at most once.
    let mut stored: HashMap<(String, String), Value> = HashMap::new();
    for msg in &hist {
        assert_message_object(msg);
        assert_eq!(msg["room"], CRASH_ROOM, "{msg}");
        let author = msg["author"].as_str().unwrap().to_string();
        let nonce = msg["nonce"]
            .as_str()
            .unwrap_or_else(|| panic!("stored without its nonce: {msg}"))
            .to_string();
        let i: usize = nonce
            .strip_prefix(&format!("{author}-"))
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("a message nobody sent: {msg}"));
        assert_eq!(msg["body"], body_of(&author, i), "{msg}");
        let prev = stored.insert((author, nonce), msg.clone());
        assert!(prev.is_none(), "stored twice: {msg} and {prev:?}");
    }
    let mut acked_total = 0;
    let mut unacked_total = 0;
    let mut unacked_stored = 0;
    for run in &runs {
        acked_total += run.acked.len();
        for (n, id) in &run.acked {
            let msg = stored
                .get(&(run.name.clone(), n.clone()))
                .unwrap_or_else(|| panic!("acknowledged {n} (id {id}) is missing after kill -9"));
            assert_eq!(msg["id"], *id, "acknowledged {n}: {msg}");
        }
        if let Some(last) = run.received.last() {
            assert!(
                *last <= m,
                "{} saw id {last}, history ends at {m}",
                run.name
            );
        }
        for i in 0..run.sent {
            let n = nonce_of(&run.name, i);
            if !run.acked.contains_key(&n) {
                unacked_total += 1;
                if stored.contains_key(&(run.name.clone(), n)) {
                    unacked_stored += 1;
                }
            }
        }
    }
    println!(
        "kill -9: {acked_total} acked, {unacked_total} in flight (of which {unacked_stored} \
         stored before the kill), history has {m}; clients ended with {:?}",
        runs.iter().map(|r| r.end.as_str()).collect::<Vec<_>>()
    );
    assert!(acked_total >= KILL_AFTER);

    // Each client resumes from the last id it saw: everything after it, in
    // order, once, then nothing more.
    let mut resumed = Vec::new();
    for run in &runs {
        let last_seen = run.received.last().copied().unwrap_or(0);
        let mut c = reconnect_guest(&s, &run.name, Some(resume_map(CRASH_ROOM, last_seen))).await;
        let j = c.join(CRASH_ROOM).await;
        let h = arr(&j["history"]);
        assert_eq!(
            ids(&h),
            ((last_seen + 1)..=m).collect::<Vec<_>>(),
            "{} resuming after {last_seen}",
            run.name
        );
        for x in &h {
            let id = x["id"].as_i64().unwrap();
            assert_eq!(x, &hist[(id - 1) as usize], "resumed history item");
        }
        c.expect_none_where(QUIET, "a message after the resumed history", |v| {
            typ(v) == "message"
        })
        .await;
        resumed.push(c);
    }

    // Unacknowledged sends retried with their nonce: the old id if they were
    // stored before the kill, else the next id; a second retry changes nothing.
    let mut next_id = m;
    let mut retried: Vec<(usize, String, i64)> = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        for i in 0..run.sent {
            let n = nonce_of(&run.name, i);
            if run.acked.contains_key(&n) {
                continue;
            }
            let a = resumed[k]
                .send_msg_result(CRASH_ROOM, &body_of(&run.name, i), &n)
                .await;
            assert_eq!(typ(&a), "ack", "retry of {n}: {a}");
            let id = a["id"].as_i64().unwrap();
            match stored.get(&(run.name.clone(), n.clone())) {
                Some(old) => assert_eq!(
                    old["id"], id,
                    "{n} was stored before the kill: its retry must get the old id"
                ),
                None => {
                    next_id += 1;
                    assert_eq!(id, next_id, "{n} was lost: its retry is the next message");
                }
            }
            retried.push((k, n, id));
        }
    }
    for (k, n, id) in &retried {
        let i: usize = n.rsplit('-').next().unwrap().parse().unwrap();
        let a = resumed[*k]
            .send_msg_result(CRASH_ROOM, &body_of(&runs[*k].name, i), n)
            .await;
        assert_eq!(typ(&a), "ack", "second retry of {n}: {a}");
        assert_eq!(a["id"], *id, "second retry of {n}: {a}");
    }
    for (k, c) in resumed.iter_mut().enumerate() {
        if next_id > m {
            let live = c.messages_until(CRASH_ROOM, next_id).await;
            assert_eq!(
                ids(&live),
                ((m + 1)..=next_id).collect::<Vec<_>>(),
                "{}: live messages of the retries",
                runs[k].name
            );
        }
        c.expect_none_where(QUIET, "a duplicate message", |v| typ(v) == "message")
            .await;
    }

    let hist = all_messages(&s, CRASH_ROOM).await;
    assert_eq!(
        ids(&hist),
        (1..=next_id).collect::<Vec<_>>(),
        "ids after the retries"
    );
    let mut seen = HashSet::new();
    for msg in &hist {
        let key = (
            msg["author"].as_str().unwrap().to_string(),
            msg["nonce"].as_str().unwrap().to_string(),
        );
        assert!(seen.insert(key), "stored twice: {msg}");
    }
    for run in &runs {
        for i in 0..run.sent {
            assert!(
                seen.contains(&(run.name.clone(), nonce_of(&run.name, i))),
                "{} is not stored after its retry",
                nonce_of(&run.name, i)
            );
        }
    }
    println!(
        "kill -9: {} retried, {} of them stored anew; history ends at {next_id}",
        retried.len(),
        next_id - m
    );
}

// ---------------------------------------------------------------------------
// A store that cannot write
// ---------------------------------------------------------------------------

const LOCK_ROOM: &str = "locked";

/// Takes SQLite's write lock on the server's database from another
/// connection (another process, as far as the server can tell).
async fn lock_db(path: &Path) -> SqliteConnection {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = SqliteConnection::connect_with(&opts)
        .await
        .expect("open the server's database");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .expect("BEGIN EXCLUSIVE");
    conn
}

async fn unlock_db(mut conn: SqliteConnection) {
    sqlx::query("ROLLBACK")
        .execute(&mut conn)
        .await
        .expect("ROLLBACK");
    conn.close().await.expect("close the locking connection");
}

/// The `ack` or `error` for each of `nonces`, waiting up to `within` in
/// all; any other ack or message meanwhile fails the test.
async fn answers_for(c: &mut Client, nonces: &[&str], within: Duration) -> HashMap<String, Value> {
    let deadline = Instant::now() + within;
    let mut out = HashMap::new();
    while out.len() < nonces.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv_or_closed(left).await {
            Ok(Some(v)) => {
                let n = v["nonce"].as_str().unwrap_or("");
                if matches!(typ(&v), "ack" | "error") && nonces.contains(&n) {
                    let prev = out.insert(n.to_string(), v.clone());
                    assert!(prev.is_none(), "two answers for {n}: {prev:?} and {v}");
                } else {
                    assert!(
                        !matches!(typ(&v), "ack" | "message"),
                        "nothing may be acknowledged or delivered while the store is locked: {v}"
                    );
                }
            }
            Ok(None) => {
                panic!("no ack or error for all of {nonces:?} within {within:?}; got {out:?}")
            }
            Err(e) => panic!("connection closed ({e:?}) while waiting for {nonces:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_store_answers_unavailable_then_recovers() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit().with_bot()).await;
    let mut alice = s.guest_in("alice", LOCK_ROOM).await;
    let mut bob = s.guest_in("bob", LOCK_ROOM).await;
    let first = alice.send_msg(LOCK_ROOM, "before the lock", "x0").await;
    assert_eq!(first["id"], 1, "{first}");
    assert_eq!(ids(&bob.messages(LOCK_ROOM, 1).await), vec![1]);
    assert_eq!(ids(&alice.messages(LOCK_ROOM, 1).await), vec![1]);

    let lock = lock_db(&s.db_path()).await;
    let t = Instant::now();
    for i in 1..=3 {
        alice
            .send_msg_nowait(LOCK_ROOM, &format!("during {i}"), &format!("x{i}"))
            .await;
    }
    let answers = answers_for(&mut alice, &["x1", "x2", "x3"], Duration::from_secs(15)).await;
    for i in 1..=3 {
        let n = format!("x{i}");
        let v = &answers[&n];
        assert_eq!(typ(v), "error", "a send while the store is locked: {v}");
        assert_eq!(v["code"], "unavailable", "{v}");
        assert_eq!(v["nonce"], n.as_str(), "{v}");
        assert!(v["message"].is_string(), "{v}");
    }
    println!("locked store: three sends refused after {:?}", t.elapsed());

    // The HTTP API says the same, with its JSON error and 503.
    let t = Instant::now();
    let (st, body) = s
        .api_post(
            LOCK_ROOM,
            Some(BOT_TOKEN),
            &json!({"body":"posted during the lock","nonce":"p1"}),
        )
        .await;
    assert_eq!(st, 503, "POST while the store is locked: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only `error`: {body}"
    );
    println!("locked store: POST answered 503 after {:?}", t.elapsed());

    // Readers are not blocked by a writer's lock (WAL): health answers, and
    // the history holds nothing new.
    let (st, h) = s.get_json("/healthz").await;
    println!("locked store: /healthz {st} {h}");
    assert!(st == 200 || st == 503, "/healthz while locked: {st} {h}");
    assert!(h.is_object(), "/healthz body: {h}");
    let page = s.api_messages(LOCK_ROOM, "").await;
    assert_eq!(ids(&arr(&page["messages"])), vec![1], "{page}");
    bob.expect_none_where(QUIET, "a message while the store is locked", |v| {
        typ(v) == "message"
    })
    .await;
    alice
        .expect_none_where(QUIET, "an ack or message while locked", |v| {
            matches!(typ(v), "ack" | "message")
        })
        .await;

    unlock_db(lock).await;

    // Recovery: the refused nonces are stored now, once each, in the order
    // this connection sent them.
    for i in 1..=3 {
        alice
            .send_msg_nowait(LOCK_ROOM, &format!("during {i}"), &format!("x{i}"))
            .await;
    }
    for i in 1..=3 {
        let a = alice.wait_ack(&format!("x{i}")).await;
        assert_eq!(a["id"], 1 + i, "retry of x{i} after the lock: {a}");
    }
    let (st, posted) = s
        .api_post(
            LOCK_ROOM,
            Some(BOT_TOKEN),
            &json!({"body":"posted during the lock","nonce":"p1"}),
        )
        .await;
    assert_eq!(st, 201, "POST retried after the lock: {posted}");
    assert_eq!(posted["id"], 5, "{posted}");
    let (st, again) = s
        .api_post(
            LOCK_ROOM,
            Some(BOT_TOKEN),
            &json!({"body":"posted during the lock","nonce":"p1"}),
        )
        .await;
    assert_eq!(st, 200, "POST retried twice: {again}");
    assert_eq!(again["id"], 5, "{again}");
    let new = alice.send_msg(LOCK_ROOM, "after the lock", "x4").await;
    assert_eq!(new["id"], 6, "{new}");
    let dup = alice.send_msg(LOCK_ROOM, "during 1", "x1").await;
    assert_eq!(dup["id"], 2, "x1 retried once more: {dup}");

    let live = bob.messages(LOCK_ROOM, 5).await;
    assert_eq!(ids(&live), vec![2, 3, 4, 5, 6]);
    bob.expect_none_where(QUIET, "a duplicate message", |v| typ(v) == "message")
        .await;
    let page = s.api_messages(LOCK_ROOM, "").await;
    let hist = arr(&page["messages"]);
    assert_eq!(ids(&hist), vec![1, 2, 3, 4, 5, 6], "{page}");
    let nonces: Vec<&str> = hist.iter().map(|m| m["nonce"].as_str().unwrap()).collect();
    assert_eq!(nonces, vec!["x0", "x1", "x2", "x3", "p1", "x4"], "{page}");
    let (st, _) = s.get_json("/healthz").await;
    assert_eq!(st, 200);
}

/// SQLite's busy timeout (2 s) is there so that a lock held briefly by
/// another writer (the accounts and sessions pool of this same process, a
/// backup, an operator's sqlite3 shell) is waited out, not reported.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_shorter_than_the_busy_timeout_is_waited_out() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", LOCK_ROOM).await;
    let first = alice.send_msg(LOCK_ROOM, "before the lock", "y0").await;
    assert_eq!(first["id"], 1, "{first}");

    let lock = lock_db(&s.db_path()).await;
    let held = Duration::from_millis(500);
    let release = tokio::spawn(async move {
        tokio::time::sleep(held).await;
        unlock_db(lock).await;
    });
    let t = Instant::now();
    let a = alice
        .send_msg_result(LOCK_ROOM, "during a short lock", "y1")
        .await;
    let waited = t.elapsed();
    release.await.unwrap();
    assert_eq!(
        typ(&a),
        "ack",
        "a send during a lock of {held:?} (busy timeout 2 s) must wait and be stored; \
         got after {waited:?}: {a}"
    );
    assert_eq!(a["id"], 2, "{a}");
    assert!(
        waited >= held - Duration::from_millis(100),
        "acknowledged after {waited:?}, before the lock was released"
    );
}

/// `POST /api/rooms/{room}/messages` "stores and broadcasts exactly like
/// `send`": a message the store committed reaches the room's members even
/// when the HTTP client hung up while the commit was slow.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_whose_client_hangs_up_is_still_broadcast() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit().with_bot()).await;
    let mut bob = s.guest_in("bob", LOCK_ROOM).await;
    let (st, first) = s
        .api_post(LOCK_ROOM, Some(BOT_TOKEN), &json!({"body":"first"}))
        .await;
    assert_eq!(st, 201, "{first}");
    assert_eq!(ids(&bob.messages(LOCK_ROOM, 1).await), vec![1]);

    // A slow commit (another writer holds the lock for 1 s; no nonce, so the
    // writer's first statement waits on SQLite's busy timeout), and a client
    // that gives up after 200 ms.
    let lock = lock_db(&s.db_path()).await;
    let impatient = http_client()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let r = impatient
        .post(s.url(&format!("/api/rooms/{LOCK_ROOM}/messages")))
        .bearer_auth(BOT_TOKEN)
        .json(&json!({"body":"posted by a client that hung up"}))
        .send()
        .await;
    assert!(r.is_err(), "the POST was answered within 200 ms: {r:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    unlock_db(lock).await;

    // Stored? (If not, nothing was promised and there is nothing to deliver.)
    let deadline = Instant::now() + Duration::from_secs(3);
    let stored = loop {
        let page = s.api_messages(LOCK_ROOM, "").await;
        let hist = arr(&page["messages"]);
        if hist.len() == 2 || Instant::now() > deadline {
            break hist;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("hung-up POST: history {:?}", ids(&stored));
    assert_eq!(
        ids(&stored),
        vec![1, 2],
        "a lock of 800 ms is within the busy timeout: the POST's message is stored"
    );
    assert_eq!(stored[1]["body"], "posted by a client that hung up");
    let deadline = Instant::now() + Duration::from_secs(2);
    let got = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match bob.recv_or_closed(left).await {
            Ok(Some(v)) if typ(&v) == "message" => break Some(v),
            Ok(Some(_)) => continue,
            Ok(None) => break None,
            Err(e) => panic!("bob's connection closed: {e:?}"),
        }
    };
    assert!(
        got.as_ref().is_some_and(|v| v["id"] == 2),
        "message 2 is stored but bob, in the room, did not get it within 2 s \
         (no other message was sent): {got:?}"
    );
}
