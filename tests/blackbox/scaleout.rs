//! Several nodes acting as one server: the real binary started two or three
//! times on the same PostgreSQL database and the same Redis.
//!
//! Runs when `CAUSERIE_TEST_POSTGRES` (e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `CAUSERIE_TEST_REDIS`
//! (e.g. `redis://127.0.0.1:6379`) are set; otherwise each test returns at
//! once with a note. Each test has a database of its own, and so a Redis key
//! prefix of its own (the prefix follows the database's name). Tests that
//! break Redis start a `redis-server` of their own on a free port.

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

/// How long a killed node's users may stay online elsewhere (docs/DEPLOY.md).
const PRESENCE_BOUND: Duration = Duration::from_secs(10);

/// The Redis for this run, or `None` (with a note) when the scale-out
/// tests cannot run.
fn ready(test: &str) -> Option<String> {
    match (postgres_url(), redis_url()) {
        (Some(_), Some(r)) => Some(r),
        _ => {
            eprintln!(
                "{test}: skipped (set CAUSERIE_TEST_POSTGRES=postgres://... and CAUSERIE_TEST_REDIS=redis://...)"
            );
            None
        }
    }
}

/// Options for one node of a cluster: shared database and Redis, limits
/// out of the way of bulk sends.
fn node_opts(db: &Arc<PgDb>, redis: &str) -> ServerOpts {
    ServerOpts::new()
        .pg(db.clone())
        .redis(redis)
        .no_rate_limit()
        .env("CAUSERIE_IP_RATE_PER_SEC", 100000)
        .env("CAUSERIE_IP_RATE_BURST", 100000)
}

/// `n` nodes on one fresh database and one Redis, each subscribed.
async fn cluster(n: usize, redis: &str) -> (Arc<PgDb>, Vec<Server>) {
    let db = PgDb::create();
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(Server::start_with(node_opts(&db, redis)).await);
    }
    for s in &nodes {
        s.wait_healthy(Duration::from_secs(10)).await;
    }
    (db, nodes)
}

/// Waits until `GET /api/rooms` on a node says `room` has `want` online.
async fn wait_online(s: &Server, room: &str, want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (_, v) = s.get_json("/api/rooms").await;
        let got = online_of(&rooms_rows(&v), room);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{room} on {}: online {got:?}, want {want} within {within:?}",
            s.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ids of the `message` frames of `room` a client receives until it has
/// seen every id in `want` (or the deadline passes: then it panics),
/// in arrival order.
async fn receive_ids(
    c: &mut Client,
    room: &str,
    want: &BTreeSet<i64>,
    within: Duration,
) -> Vec<i64> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut seen = BTreeSet::new();
    while !want.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{room}: missing ids {:?} after {within:?}; got {got:?}",
            want.difference(&seen).collect::<Vec<_>>()
        );
        if let Some(v) = c.try_recv_json(left.min(Duration::from_millis(200))).await
            && typ(&v) == "message"
            && v["room"] == room
        {
            let id = v["id"].as_i64().expect("message id");
            got.push(id);
            seen.insert(id);
        }
    }
    got
}

/// (body, nonce) pairs for `n` messages tagged `tag`.
fn bodies(tag: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{tag} {i}"), format!("{tag}{i}")))
        .collect()
}

fn is_increasing(ids: &[i64]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

/// A `redis-server` of the test's own, on a free port, that it can kill.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut r = OwnRedis { port, child: None };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port, with nothing kept from before.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: Redis vanishes without a word, as in a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs one command on it.
    async fn cmd(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to own redis");
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut c).await.expect("redis command")
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A message sent on node A reaches the clients of nodes B and C, in id
/// order, once each; typing notices cross too.
#[tokio::test(flavor = "multi_thread")]
async fn chat_across_nodes() {
    let Some(redis) = ready("chat_across_nodes") else {
        return;
    };
    let (_db, nodes) = cluster(3, &redis).await;
    let mut alice = nodes[0].guest_in("alice", "general").await;
    let mut bob = nodes[1].guest_in("bob", "general").await;
    let mut carol = nodes[2].guest_in("carol", "general").await;

    let mut acked = BTreeSet::new();
    for i in 0..20 {
        let a = alice
            .send_msg("general", &format!("hello {i}"), &format!("x{i}"))
            .await;
        acked.insert(a["id"].as_i64().unwrap());
    }
    for (who, c) in [("bob", &mut bob), ("carol", &mut carol)] {
        let got = receive_ids(c, "general", &acked, Duration::from_secs(5)).await;
        assert_eq!(
            got,
            acked.iter().copied().collect::<Vec<_>>(),
            "{who} on another node: every message once, in id order"
        );
    }

    // Typing on B reaches A and C, not B's own sender.
    bob.send_json(json!({"type":"typing","room":"general"}))
        .await;
    for c in [&mut alice, &mut carol] {
        let t = c
            .recv_where("typing from bob", |v| typ(v) == "typing")
            .await;
        assert_eq!(t["user"], "bob", "{t}");
        assert_eq!(t["room"], "general", "{t}");
    }
    bob.expect_none_where(Duration::from_millis(300), "own typing", |v| {
        typ(v) == "typing"
    })
    .await;

    // The HTTP API of another node sees the same history.
    let page = nodes[2].api_messages("general", "?limit=50").await;
    assert_eq!(
        ids(&arr(&page["messages"])),
        acked.iter().copied().collect::<Vec<_>>()
    );

    // The metrics count the traffic between nodes.
    let text = nodes[1]
        .http()
        .get(nodes[1].url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "causerie_backplane_published_total",
        "causerie_backplane_received_total",
        "causerie_backplane_resubscribes_total",
        "causerie_backplane_catch_ups_total",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    let received = text
        .lines()
        .find(|l| l.starts_with("causerie_backplane_received_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(received >= 20.0, "node B received {received} events");
}

/// Senders on every node at once: every client on every node sees the same
/// ids in the same order, dense and strictly increasing, matching the acks.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_senders_on_different_nodes_same_order() {
    let Some(redis) = ready("concurrent_senders_on_different_nodes_same_order") else {
        return;
    };
    let (_db, nodes) = cluster(3, &redis).await;
    const PER_CLIENT: usize = 40;
    let mut clients = Vec::new();
    for (n, s) in nodes.iter().enumerate() {
        for k in 0..2 {
            clients.push(s.guest_in(&format!("u{n}x{k}"), "general").await);
        }
    }
    let total = clients.len() * PER_CLIENT;
    // Let every node learn of every member before the burst.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tasks = Vec::new();
    for (ci, mut c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_CLIENT {
                c.send_msg_nowait("general", &format!("c{ci} m{i}"), &format!("c{ci}-{i}"))
                    .await;
            }
            let mut acks = BTreeSet::new();
            let mut order = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while acks.len() < PER_CLIENT || order.len() < total {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "client {ci}: {} acks, {} messages",
                    acks.len(),
                    order.len()
                );
                let Some(v) = c.try_recv_json(left).await else {
                    continue;
                };
                match typ(&v) {
                    "ack" => {
                        acks.insert(v["id"].as_i64().unwrap());
                    }
                    "message" => order.push(v["id"].as_i64().unwrap()),
                    "error" => panic!("client {ci}: {v}"),
                    _ => {}
                }
            }
            (acks, order)
        }));
    }
    let mut all_acks = BTreeSet::new();
    let mut orders = Vec::new();
    for t in tasks {
        let (acks, order) = t.await.expect("client task");
        for a in &acks {
            assert!(all_acks.insert(*a), "id {a} acknowledged twice");
        }
        orders.push(order);
    }
    let want: Vec<i64> = (1..=total as i64).collect();
    assert_eq!(
        all_acks.iter().copied().collect::<Vec<_>>(),
        want,
        "acks: dense ids"
    );
    for (i, o) in orders.iter().enumerate() {
        assert_eq!(o, &want, "client {i}: ids in order, each once");
    }
}

/// kill -9 of a node mid-burst: its clients resume on another node and
/// find every acknowledged message; the other node's clients get them too.
#[tokio::test(flavor = "multi_thread")]
async fn killed_node_clients_resume_elsewhere() {
    let Some(redis) = ready("killed_node_clients_resume_elsewhere") else {
        return;
    };
    let (_db, mut nodes) = cluster(2, &redis).await;
    let mut bob = nodes[1].guest_in("bob", "general").await;
    let mut alice = nodes[0].guest_in("alice", "general").await;
    const N: usize = 200;
    for i in 0..N {
        alice
            .send_msg_nowait("general", &format!("burst {i}"), &format!("b{i}"))
            .await;
    }
    let mut acked = BTreeSet::new();
    let mut seen = Vec::new();
    // Read until some acks are in, then kill the node under alice.
    while acked.len() < 20 {
        let v = alice.recv_json().await;
        match typ(&v) {
            "ack" => {
                acked.insert(v["id"].as_i64().unwrap());
            }
            "message" => seen.push(v["id"].as_i64().unwrap()),
            _ => {}
        }
    }
    nodes[0].child.kill().expect("kill -9");
    // Whatever the socket still delivers counts as received.
    loop {
        match alice.try_recv_json_or_close(Duration::from_secs(5)).await {
            Ok(v) if typ(&v) == "ack" => {
                acked.insert(v["id"].as_i64().unwrap());
            }
            Ok(v) if typ(&v) == "message" => seen.push(v["id"].as_i64().unwrap()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(is_increasing(&seen), "alice before the kill: {seen:?}");
    let last_seen = seen.last().copied().unwrap_or(0);

    // Alice resumes on node B from the last id she saw.
    let mut alice2 = nodes[1].client().await;
    alice2
        .send_json(json!({"type":"hello","name":"alice","resume":{"general": last_seen}}))
        .await;
    alice2.expect_type("welcome").await;
    alice2
        .send_json(json!({"type":"join","room":"general"}))
        .await;
    let j = alice2.expect_type("joined").await;
    let mut resumed = ids(&arr(&j["history"]));
    assert!(
        resumed.first().is_none_or(|f| *f == last_seen + 1),
        "resume starts right after {last_seen}: {resumed:?}"
    );
    // Anything stored after the join comes live.
    let store_last = nodes[1]
        .api_messages("general", "?limit=1")
        .await
        .get("messages")
        .map(arr)
        .and_then(|m| m.last().and_then(|m| m["id"].as_i64()))
        .unwrap_or(0);
    if resumed.last().copied().unwrap_or(last_seen) < store_last {
        let want: BTreeSet<i64> =
            (resumed.last().copied().unwrap_or(last_seen) + 1..=store_last).collect();
        resumed.extend(receive_ids(&mut alice2, "general", &want, Duration::from_secs(5)).await);
    }
    let have: BTreeSet<i64> = seen.iter().chain(resumed.iter()).copied().collect();
    let missing: Vec<&i64> = acked.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never received by alice: {missing:?}"
    );
    assert!(is_increasing(&resumed), "resumed: {resumed:?}");

    // Bob, on the surviving node all along, has every acknowledged message,
    // in order (what node A never announced is read from the store once A
    // stops heartbeating).
    let got = receive_ids(&mut bob, "general", &acked, Duration::from_secs(15)).await;
    assert!(is_increasing(&got), "bob: {got:?}");
}

/// Redis loses every subscription (`CLIENT KILL TYPE pubsub`), then
/// crashes and comes back empty: nodes keep serving their own clients,
/// and afterwards the other node's clients have every message, no gap.
#[tokio::test(flavor = "multi_thread")]
async fn redis_lost_and_back_leaves_no_gap() {
    let Some(_) = ready("redis_lost_and_back_leaves_no_gap") else {
        return;
    };
    let mut own = OwnRedis::start();
    let (_db, nodes) = cluster(2, &own.url()).await;
    let mut alice = nodes[0].guest_in("alice", "general").await;
    let mut alice_too = nodes[0].guest_in("alice2", "general").await;
    let mut bob = nodes[1].guest_in("bob", "general").await;
    let mut acked = BTreeSet::new();
    // 1. Every subscription cut at once.
    own.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    for (body, nonce) in bodies("cut", 10) {
        let a = alice.send_msg("general", &body, &nonce).await;
        acked.insert(a["id"].as_i64().unwrap());
    }
    let got = receive_ids(&mut bob, "general", &acked, Duration::from_secs(10)).await;
    assert!(is_increasing(&got), "bob after the cut: {got:?}");

    // 2. Redis crashes: local delivery goes on, health says so.
    own.kill();
    let mut during = BTreeSet::new();
    for (body, nonce) in bodies("down", 10) {
        let a = alice.send_msg("general", &body, &nonce).await;
        during.insert(a["id"].as_i64().unwrap());
    }
    let local = receive_ids(&mut alice_too, "general", &during, Duration::from_secs(5)).await;
    assert!(is_increasing(&local), "same-node delivery without Redis");
    let (st, body) = nodes[0].get_json("/healthz").await;
    assert_eq!(st, 503, "healthz without Redis: {body}");
    assert_eq!(body["store"], "ok", "{body}");
    // Bob may or may not see some of these now: the periodic comparison
    // with the store (every 15 s) can fall in this window, and that is
    // fine as long as what he gets is complete and in order.

    // 3. Redis comes back empty: bob's node reads what it missed from the
    // store by itself (no later message needed to reveal the gap).
    own.restart();
    let got2 = receive_ids(&mut bob, "general", &during, Duration::from_secs(10)).await;
    assert_eq!(
        got2,
        during.iter().copied().collect::<Vec<_>>(),
        "bob after Redis came back"
    );
    nodes[0].wait_healthy(Duration::from_secs(10)).await;
    nodes[1].wait_healthy(Duration::from_secs(10)).await;
    acked.extend(&during);

    // 4. And the cluster goes on as one, both ways.
    let b = bob.send_msg("general", "bob is back", "bb").await;
    acked.insert(b["id"].as_i64().unwrap());
    let mut later = BTreeSet::new();
    for (body, nonce) in bodies("after", 5) {
        let a = alice.send_msg("general", &body, &nonce).await;
        later.insert(a["id"].as_i64().unwrap());
    }
    acked.extend(&later);
    later.insert(b["id"].as_i64().unwrap());
    let got3 = receive_ids(&mut bob, "general", &later, Duration::from_secs(5)).await;
    let all: Vec<i64> = got.iter().chain(&got2).chain(&got3).copied().collect();
    assert!(
        is_increasing(&all),
        "bob, no duplicate and in order: {all:?}"
    );
    let mut on_a = Vec::new();
    on_a.extend(receive_ids(&mut alice, "general", &acked, Duration::from_secs(10)).await);
    assert!(is_increasing(&on_a), "alice: {on_a:?}");
}

/// Online lists and counts are the cluster's, presence frames cross nodes,
/// and a killed node's users drop out within the documented bound.
#[tokio::test(flavor = "multi_thread")]
async fn presence_across_nodes_and_killed_node_drops_out() {
    let Some(redis) = ready("presence_across_nodes_and_killed_node_drops_out") else {
        return;
    };
    let (_db, mut nodes) = cluster(2, &redis).await;
    let mut alice = nodes[0].guest_in("alice", "general").await;
    wait_online(&nodes[1], "general", 1, Duration::from_secs(5)).await;

    let mut bob = nodes[1].guest("bob").await;
    let j = bob.join("general").await;
    assert_eq!(sorted_names(&j["online"]), vec!["alice", "bob"], "{j}");
    assert_eq!(
        wait_presence(&mut alice, "general", "bob", "joined").await,
        2
    );

    // A second connection of bob on the other node says nothing new.
    let mut bob_a = nodes[0].guest("bob").await;
    let j = bob_a.join("general").await;
    assert_eq!(sorted_names(&j["online"]), vec!["alice", "bob"], "{j}");
    let mut carol = nodes[0].guest_in("carol", "general").await;
    assert_eq!(
        wait_presence(&mut bob, "general", "carol", "joined").await,
        3
    );
    alice
        .expect_none_where(Duration::from_millis(500), "bob joining twice", |v| {
            typ(v) == "presence" && v["user"] == "bob"
        })
        .await;
    for s in &nodes {
        wait_online(s, "general", 3, Duration::from_secs(5)).await;
    }

    // Bob leaves on B but is still in the room on A: no presence change.
    bob.send_json(json!({"type":"leave","room":"general"}))
        .await;
    alice
        .expect_none_where(Duration::from_millis(500), "bob still here", |v| {
            typ(v) == "presence" && v["user"] == "bob"
        })
        .await;
    // Dave joins on B, then B is killed: dave drops out on A in bounded time.
    let mut dave = nodes[1].guest_in("dave", "general").await;
    assert_eq!(
        wait_presence(&mut carol, "general", "dave", "joined").await,
        4
    );
    let _ = dave.try_recv_json(Duration::from_millis(10)).await;
    nodes[1].child.kill().expect("kill -9");
    let killed = Instant::now();
    let v = carol
        .recv_where_within(
            "dave left",
            |v| {
                typ(v) == "presence"
                    && ((v["user"] == "dave" && v["state"] == "left")
                        || v["left"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|x| x == "dave")))
            },
            PRESENCE_BOUND + Duration::from_secs(2),
        )
        .await;
    let took = killed.elapsed();
    assert!(took <= PRESENCE_BOUND, "dave dropped out after {took:?}");
    assert_eq!(v["online"], 3, "{v}");
    wait_online(&nodes[0], "general", 3, Duration::from_secs(1)).await;
    eprintln!("a killed node's user dropped out after {took:?}");
}

/// PostgreSQL refuses the node: sends get `unavailable`, nothing is
/// acknowledged, `/healthz` says so; once it is back, sends work and no
/// refused message was stored.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_down_means_unavailable() {
    let Some(redis) = ready("postgres_down_means_unavailable") else {
        return;
    };
    let (db, nodes) = cluster(1, &redis).await;
    let s = &nodes[0];
    let mut alice = s.guest_in("alice", "general").await;
    alice.send_msg("general", "before", "p0").await;

    db.cut_off();
    let mut refused = Vec::new();
    for i in 0..3 {
        let nonce = format!("down{i}");
        alice
            .send_msg_nowait("general", &format!("while down {i}"), &nonce)
            .await;
        let v = alice
            .recv_where_within(
                "answer while the database is down",
                |v| matches!(typ(v), "ack" | "error") && v["nonce"] == nonce.as_str(),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(typ(&v), "error", "no ack while the database is down: {v}");
        assert_eq!(v["code"], "unavailable", "{v}");
        refused.push(nonce);
    }
    let (st, body) = s.get_json("/healthz").await;
    assert_eq!(st, 503, "healthz without the database: {body}");

    db.let_back();
    s.wait_healthy(Duration::from_secs(10)).await;
    let a = alice.send_msg("general", "after", "p1").await;
    assert_eq!(a["id"], 2, "the refused sends took no id: {a}");
    let page = s.api_messages("general", "?limit=50").await;
    let bodies: Vec<Value> = arr(&page["messages"])
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("before"), json!("after")]);
}

/// The per-user allowance holds across nodes: a user sending on two nodes
/// at once gets one allowance, not one per node.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_is_shared_by_nodes() {
    let Some(redis) = ready("rate_limit_is_shared_by_nodes") else {
        return;
    };
    let db = PgDb::create();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let opts = ServerOpts::new()
            .pg(db.clone())
            .redis(&redis)
            .with_accounts()
            .env("CAUSERIE_RATE_PER_SEC", 1)
            .env("CAUSERIE_RATE_BURST", 10);
        nodes.push(Server::start_with(opts).await);
    }
    for s in &nodes {
        s.wait_healthy(Duration::from_secs(10)).await;
    }
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for (n, s) in nodes.iter().enumerate() {
        let mut c = s.account("alice").await;
        c.join("general").await;
        for i in 0..10 {
            let nonce = format!("r{n}-{i}");
            let v = c.send_msg_result("general", "hi", &nonce).await;
            let key = match typ(&v) {
                "ack" => "ack".to_string(),
                _ => v["code"].as_str().unwrap_or("?").to_string(),
            };
            *outcomes.entry(key).or_default() += 1;
        }
    }
    let acks = outcomes.get("ack").copied().unwrap_or(0);
    assert!(
        (10..=12).contains(&acks),
        "a burst of 10 shared by two nodes (a second may refill one or two): {outcomes:?}"
    );
    assert!(
        outcomes.get("rate_limited").copied().unwrap_or(0) >= 8,
        "{outcomes:?}"
    );
}

// ---------------------------------------------------------------------------
// Benchmark (ignored by default): the latency a second node adds to fan-out.
// CAUSERIE_TEST_POSTGRES=... CAUSERIE_TEST_REDIS=... cargo test --release
//   --features ssr --test blackbox -- --ignored --nocapture scaleout::bench_
// ---------------------------------------------------------------------------

/// Receives `message` frames until `stop`, returning each one's latency (µs)
/// from the send time written in its body (`t=<unix ns>`).
async fn bench_receiver(mut c: Client, stop: Arc<std::sync::atomic::AtomicBool>) -> Vec<u64> {
    let mut lat = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        let Some(v) = c.try_recv_json(Duration::from_millis(100)).await else {
            continue;
        };
        if typ(&v) != "message" {
            continue;
        }
        let now = unix_ns();
        if let Some(t) = v["body"]
            .as_str()
            .and_then(|b| b.strip_prefix("t="))
            .and_then(|t| t.parse::<u64>().ok())
        {
            lat.push(now.saturating_sub(t) / 1000);
        }
    }
    lat
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One fan-out run: `senders` clients on the first node send `rate` msg/s
/// in total for `secs`; receivers are spread over the nodes as given.
/// Prints and returns (deliveries/s, per-node (p50, p99) µs).
async fn bench_run(
    nodes: &[&Server],
    receivers_per_node: &[usize],
    rate: f64,
    secs: f64,
    room: &str,
) -> (f64, Vec<(u64, u64, usize)>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let mut per_node = Vec::new();
    for (n, (s, k)) in nodes.iter().zip(receivers_per_node).enumerate() {
        let mut tasks = Vec::new();
        for i in 0..*k {
            let c = s.guest_in(&format!("r{n}x{i}"), room).await;
            tasks.push(tokio::spawn(bench_receiver(c, stop.clone())));
        }
        per_node.push(tasks);
    }
    let mut sender = nodes[0].guest_in("bench-sender", room).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = (rate * secs) as usize;
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    for i in 0..total {
        let due = start + period.mul_f64(i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let body = format!("t={}", unix_ns());
        sender
            .send_msg_nowait(room, &body, &format!("{room}-{i}"))
            .await;
        // Keep the sender's own queue drained.
        while let Some(v) = sender.try_recv_json(Duration::ZERO).await {
            assert_ne!(typ(&v), "error", "bench sender: {v}");
        }
    }
    let sent_for = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Release);
    let mut out = Vec::new();
    let mut deliveries = 0usize;
    for tasks in per_node {
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("receiver"));
        }
        all.sort_unstable();
        deliveries += all.len();
        out.push((pct(&all, 0.5), pct(&all, 0.99), all.len()));
    }
    let per_sec = deliveries as f64 / sent_for;
    (per_sec, out)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_second_node_fanout() {
    let Some(redis) = ready("bench_second_node_fanout") else {
        return;
    };
    let (_db, nodes) = cluster(2, &redis).await;
    const RECEIVERS: usize = 100;
    for rate in [100.0, 400.0, 1000.0] {
        let secs = 5.0;
        let (one, one_lat) = bench_run(
            &[&nodes[0]],
            &[RECEIVERS],
            rate,
            secs,
            &format!("one-{}", rate as u64),
        )
        .await;
        let (two, two_lat) = bench_run(
            &[&nodes[0], &nodes[1]],
            &[RECEIVERS / 2, RECEIVERS / 2],
            rate,
            secs,
            &format!("two-{}", rate as u64),
        )
        .await;
        eprintln!(
            "{}",
            json!({
                "rate_msgs_per_s": rate,
                "receivers": RECEIVERS,
                "one_node": {"deliveries_per_s": one.round(), "p50_us": one_lat[0].0, "p99_us": one_lat[0].1, "received": one_lat[0].2},
                "two_nodes": {
                    "deliveries_per_s": two.round(),
                    "sender_node": {"p50_us": two_lat[0].0, "p99_us": two_lat[0].1, "received": two_lat[0].2},
                    "other_node": {"p50_us": two_lat[1].0, "p99_us": two_lat[1].1, "received": two_lat[1].2},
                },
            })
        );
    }
}
