//! A client that stops reading while others chat: the others must not
//! notice (every message, in order, with bounded latency), and the stalled
//! connection is cut with close code 4008 once its queue overflows.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const ROOM: &str = "busy";
/// Frames a connection may have queued before it is cut. A fast client can
/// have 3 × WINDOW messages and WINDOW acks (32 frames) coming at once, and
/// a presence frame on top when the stalled client joins or is cut: the
/// queue must hold more than that, or a fast client that is scheduled late
/// on a busy machine is cut too (seen once in CI with 32).
const SEND_QUEUE: usize = 64;
/// Characters of each message body (~3 KB).
const BODY_CHARS: usize = 3000;
/// Sends each fast client keeps in flight.
const WINDOW: usize = 8;
/// Messages each fast client sends before the slow client exists.
const BEFORE: usize = 200;
/// Messages each fast client sends while the slow client is stalled.
const DURING: usize = 2000;
/// The stalled client's socket receive buffer, so that the kernel does not
/// absorb megabytes on its behalf.
const SLOW_RCVBUF: u32 = 8 * 1024;
const FAST: [&str; 3] = ["fast0", "fast1", "fast2"];

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// A fast client: a writer, a reader, and what it received.
struct Fast {
    name: String,
    tx: SplitSink<Ws, WsMessage>,
    rx: SplitStream<Ws>,
    /// Ids of every `message` frame, in arrival order.
    received: Vec<i64>,
    /// Ids of its own acks.
    acked: Vec<i64>,
}

async fn fast_client(s: &Server, name: &str) -> Fast {
    let c = s.guest_in(name, ROOM).await;
    let (ws, pending) = c.into_inner();
    assert!(
        pending.iter().all(is_noise),
        "{name}: unexpected frames before the test: {pending:?}"
    );
    let (tx, rx) = ws.split();
    Fast {
        name: name.to_string(),
        tx,
        rx,
        received: Vec::new(),
        acked: Vec::new(),
    }
}

/// Sends `k` messages (WINDOW in flight) while reading until all of its acks
/// and `expect` message frames have arrived; returns the latencies of the
/// messages received (send → receipt).
async fn phase(mut f: Fast, tag: &'static str, k: usize, expect: usize) -> (Fast, Vec<Duration>) {
    let pad = "x".repeat(BODY_CHARS);
    let (mut sent, mut in_flight, mut acks, mut got) = (0, 0, 0, 0);
    let mut lat = Vec::with_capacity(expect);
    while acks < k || got < expect {
        while sent < k && in_flight < WINDOW {
            let us = t0().elapsed().as_micros();
            let f_ = json!({"type":"send","room":ROOM,
                            "body":format!("{us} {tag} {} {sent} {pad}", f.name),
                            "nonce":format!("{tag}-{sent}")});
            f.tx.send(WsMessage::text(f_.to_string()))
                .await
                .unwrap_or_else(|e| panic!("{}: send failed: {e}", f.name));
            sent += 1;
            in_flight += 1;
        }
        let next = tokio::time::timeout(Duration::from_secs(10), f.rx.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: nothing for 10 s ({tag}: {acks}/{k} acks, {got}/{expect} messages)",
                    f.name
                )
            });
        let text = match next {
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Close(c))) => panic!("{}: a fast client was closed: {c:?}", f.name),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("{}: {e}", f.name),
            None => panic!("{}: stream ended", f.name),
        };
        let now = t0().elapsed();
        let v: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
        match typ(&v) {
            "ack" => {
                in_flight -= 1;
                acks += 1;
                f.acked.push(v["id"].as_i64().expect("ack id"));
            }
            "message" => {
                let id = v["id"].as_i64().expect("message id");
                let want = f.received.last().map_or(1, |l| l + 1);
                assert_eq!(id, want, "{}: messages out of order or missing", f.name);
                f.received.push(id);
                let body = v["body"].as_str().expect("body");
                let us: u64 = body
                    .split(' ')
                    .next()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_else(|| panic!("not one of ours: {}", &body[..40]));
                lat.push(now.saturating_sub(Duration::from_micros(us)));
                got += 1;
            }
            "error" => panic!("{}: {v}", f.name),
            _ => {}
        }
    }
    (f, lat)
}

/// Runs one phase on every fast client at once.
async fn run_phase(fast: Vec<Fast>, tag: &'static str, k: usize) -> (Vec<Fast>, Vec<Duration>) {
    let expect = k * fast.len();
    let tasks: Vec<_> = fast
        .into_iter()
        .map(|f| tokio::spawn(phase(f, tag, k, expect)))
        .collect();
    let mut out = Vec::new();
    let mut lat = Vec::new();
    for t in tasks {
        let (f, l) = t.await.expect("fast client task");
        out.push(f);
        lat.extend(l);
    }
    (out, lat)
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    assert!(!v.is_empty());
    v.sort();
    let p = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    (p(50), p(99), *v.last().unwrap())
}

async fn next_json(ws: &mut WebSocketStream<TcpStream>) -> Value {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(WsMessage::Close(c)))) => panic!("slow client closed early: {c:?}"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("slow client: {other:?}"),
        }
    }
}

/// A client with a small receive buffer that joins the room and then never
/// reads again (until the test says so).
async fn slow_client(s: &Server) -> WebSocketStream<TcpStream> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(SLOW_RCVBUF).unwrap();
    let tcp = sock.connect(s.addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(s.ws_url(), tcp)
        .await
        .expect("websocket handshake");
    ws.send(WsMessage::text(
        json!({"type":"hello","name":"slow"}).to_string(),
    ))
    .await
    .unwrap();
    let w = next_json(&mut ws).await;
    assert_eq!(w["type"], "welcome", "{w}");
    ws.send(WsMessage::text(
        json!({"type":"join","room":ROOM}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let v = next_json(&mut ws).await;
        if typ(&v) == "joined" {
            return ws;
        }
        assert!(is_noise(&v), "slow client before joined: {v}");
    }
}

async fn slow_consumers(s: &Server) -> u64 {
    let r = s
        .http()
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("causerie_slow_consumers_total "))
        .unwrap_or_else(|| panic!("no causerie_slow_consumers_total in /metrics:\n{text}"))
        .trim()
        .parse::<f64>()
        .expect("counter value") as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_client_is_cut_and_slows_nobody() {
    let s = Server::start_with(
        ServerOpts::new()
            .no_rate_limit()
            .env("CAUSERIE_SEND_QUEUE", SEND_QUEUE),
    )
    .await;
    t0();
    let mut fast = Vec::new();
    for n in FAST {
        fast.push(fast_client(&s, n).await);
    }

    let (fast, lat_before) = run_phase(fast, "before", BEFORE).await;
    let (b50, b99, bmax) = percentiles(lat_before);

    let mut slow = slow_client(&s).await;
    let first_live = (BEFORE * FAST.len()) as i64 + 1;
    let t = Instant::now();
    let (fast, lat_during) = run_phase(fast, "during", DURING).await;
    let stalled_for = t.elapsed();
    let (d50, d99, dmax) = percentiles(lat_during);
    println!(
        "latency of {} messages of {BODY_CHARS} chars to 3 readers: before the stalled client \
         p50 {b50:?} p99 {b99:?} max {bmax:?}; while it is stalled ({} messages in {stalled_for:?}) \
         p50 {d50:?} p99 {d99:?} max {dmax:?}",
        BEFORE * FAST.len(),
        DURING * FAST.len(),
    );

    // Every fast client got every message, in order (checked as they came),
    // and they are exactly the acknowledged ones.
    let total = ((BEFORE + DURING) * FAST.len()) as i64;
    let mut all_acked: Vec<i64> = fast.iter().flat_map(|f| f.acked.clone()).collect();
    all_acked.sort();
    assert_eq!(all_acked, (1..=total).collect::<Vec<_>>(), "acked ids");
    for f in &fast {
        assert_eq!(f.received, all_acked, "{} received", f.name);
    }
    assert!(b99 < Duration::from_secs(1), "p99 before: {b99:?}");
    assert!(
        d99 < Duration::from_secs(1),
        "p99 while a client is stalled: {d99:?}"
    );

    // Has the server let go of the stalled connection by itself? (Printed:
    // it may only notice the cut once a blocked write completes.)
    println!(
        "before the stalled client reads: causerie_slow_consumers_total = {}",
        slow_consumers(&s).await
    );

    // Now read the stalled client: what was already on its way, in order
    // and without a gap, then close code 4008.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got: Vec<i64> = Vec::new();
    let code = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, slow.next()).await {
            Err(_) => panic!(
                "the stalled client was not closed within 10 s of reading ({} messages read)",
                got.len()
            ),
            Ok(Some(Ok(WsMessage::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if typ(&v) == "message" {
                    got.push(v["id"].as_i64().unwrap());
                }
            }
            Ok(Some(Ok(WsMessage::Close(c)))) => break c.map(|c| u16::from(c.code)),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!(
                "the stalled client's connection ended without a close frame: {other:?} \
                 ({} messages read)",
                got.len()
            ),
        }
    };
    println!(
        "the stalled client read {} messages, then close {code:?}",
        got.len()
    );
    assert_eq!(
        code,
        Some(4008),
        "close code of the stalled client (too slow)"
    );
    let n = got.len() as i64;
    assert_eq!(
        got,
        (first_live..first_live + n).collect::<Vec<_>>(),
        "what the stalled client got before the cut is in order, without a gap"
    );
    assert!(
        (n as usize) < DURING * FAST.len(),
        "the stalled client got everything ({n}): it was never cut"
    );

    let deadline = Instant::now() + TIMEOUT;
    loop {
        let v = slow_consumers(&s).await;
        if v >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "causerie_slow_consumers_total is still {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The cut must take effect on the server's side without the stalled
/// client's help: a client that never reads again must not stay online
/// (presence, its name, its connection) until it does.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_client_is_let_go_without_reading() {
    let s = Server::start_with(
        ServerOpts::new()
            .no_rate_limit()
            .env("CAUSERIE_SEND_QUEUE", SEND_QUEUE),
    )
    .await;
    t0();
    let f = fast_client(&s, "fast0").await;
    let _slow = slow_client(&s).await;
    let online = |rows: &[Value]| online_of(rows, ROOM);
    let (_, rows) = s.get_json("/api/rooms").await;
    assert_eq!(online(&rooms_rows(&rows)), Some(2), "{rows}");

    // ~9 MB for the stalled client: far past its kernel buffers and queue.
    let (_fast, _) = run_phase(vec![f], "flood", 3000).await;

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, rows) = s.get_json("/api/rooms").await;
        let n = online(&rooms_rows(&rows));
        let cut = slow_consumers(&s).await;
        if n == Some(1) && cut >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "5 s after its queue overflowed, the stalled client (never read) is still \
             online: online {n:?}, causerie_slow_consumers_total {cut}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
