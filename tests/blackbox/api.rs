//! The HTTP API of PROTOCOL.md and the operator's contract (signals).

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(300);

/// `{"error":{"code":"...","message":"..."}}` with the status.
fn assert_api_error(
    status: u16,
    body: &Value,
    want_status: &[u16],
    want_code: &[&str],
    what: &str,
) {
    assert!(
        want_status.contains(&status),
        "{what}: status {status}, expected {want_status:?}; body {body}"
    );
    let e = &body["error"];
    assert!(
        want_code.iter().any(|c| e["code"] == *c),
        "{what}: error code {}, expected {want_code:?}; body {body}",
        e["code"]
    );
    assert!(
        e["message"].is_string(),
        "{what}: error message missing: {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "{what}: error body has only `error`: {body}"
    );
}

async fn rooms(s: &Server) -> Vec<Value> {
    let (st, v) = s.get_json("/api/rooms").await;
    assert_eq!(st, 200, "GET /api/rooms: {v}");
    let rows = rooms_rows(&v);
    for r in &rows {
        assert!(r["name"].is_string(), "room row {r}");
        assert!(r["online"].is_u64(), "room row {r}");
    }
    rows
}

async fn wait_online(s: &Server, room: &str, want: i64) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let got = online_of(&rooms(s).await, room);
        if got == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "online count of {room}: {got:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends! {
async fn rooms_are_listed_with_online_counts() {
    let s = Server::start_with(ServerOpts::new().with_bot()).await;
    let rows = rooms(&s).await;
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["general", "random"], "fresh server: {rows:?}");
    assert_eq!(online_of(&rows, "general"), Some(0));
    assert_eq!(online_of(&rows, "random"), Some(0));

    let alice = s.guest_in("alice", "general").await;
    let _bob = s.guest_in("bob", "general").await;
    let _carol = s.guest_in("carol", "random").await;
    let mut b1 = s.bot().await;
    b1.join("general").await;
    let mut b2 = s.bot().await;
    b2.join("general").await;
    let rows = rooms(&s).await;
    assert_eq!(
        online_of(&rows, "general"),
        Some(3),
        "users, not connections: {rows:?}"
    );
    assert_eq!(online_of(&rows, "random"), Some(1));

    let _dave = s.guest_in("dave", "brand-new").await;
    assert_eq!(online_of(&rooms(&s).await, "brand-new"), Some(1));

    alice.close().await;
    wait_online(&s, "general", 2).await;
    b2.close().await;
    b1.send_json(json!({"type":"leave","room":"general"})).await;
    wait_online(&s, "general", 1).await;
}
}

both_backends! {
async fn messages_are_paged_oldest_first() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "archive").await;
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
    acks.sort_by_key(|a| a["id"].as_i64().unwrap());
    let all = ids(&acks);

    let check = |page: &Value, want: &[i64], more: bool, what: &str| {
        assert_eq!(page["room"], "archive", "{what}: {page}");
        let ms = arr(&page["messages"]);
        for m in &ms {
            assert_message_object(m);
            assert_eq!(m["room"], "archive");
            assert_eq!(m["author"], "alice");
        }
        assert_eq!(ids(&ms), want.to_vec(), "{what}");
        assert_eq!(page["more"], more, "{what}: more");
    };
    let p = s.api_messages("archive", "").await;
    check(&p, &all[70..], true, "default page");
    for (k, m) in arr(&p["messages"]).iter().enumerate() {
        let n = acks[70 + k]["nonce"].as_str().unwrap();
        assert_eq!(m["body"], format!("m{}", &n[1..]));
        assert_eq!(m["ts"], acks[70 + k]["ts"]);
    }
    let p = s
        .api_messages("archive", &format!("?before={}&limit=50", all[70]))
        .await;
    check(&p, &all[20..70], true, "page 2");
    let p = s
        .api_messages("archive", &format!("?before={}&limit=50", all[20]))
        .await;
    check(&p, &all[..20], false, "last page");
    let p = s
        .api_messages("archive", &format!("?before={}", all[0]))
        .await;
    check(&p, &[], false, "before the first");
    let p = s.api_messages("archive", "?limit=10").await;
    check(&p, &all[110..], true, "newest 10");
    let p = s
        .api_messages("archive", &format!("?limit=7&before={}", all[7]))
        .await;
    check(&p, &all[..7], false, "exactly the first 7");

    for q in ["?before=abc", "?limit=ten", "?limit=-5", "?before=1.5"] {
        let (st, v) = s.get_json(&format!("/api/rooms/archive/messages{q}")).await;
        assert_api_error(st, &v, &[400], &["bad_request"], q);
    }
    let (st, v) = s.get_json("/api/rooms/Bad%20Room/messages").await;
    assert_api_error(st, &v, &[400], &["bad_request"], "invalid room name");
    let (st, v) = s.get_json("/api/rooms/no-such-room/messages").await;
    assert_api_error(st, &v, &[404], &["not_found"], "unknown room");
}
}

both_backends! {
async fn bot_post_is_stored_and_broadcast_live() {
    let s = Server::start_with(ServerOpts::new().with_bot()).await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut other = s.guest_in("other", "random").await;

    let (st, m) = s
        .api_post(
            "general",
            Some(BOT_TOKEN),
            &json!({"body":"hello from a bot"}),
        )
        .await;
    assert_eq!(st, 201, "POST as bot: {m}");
    assert_message_object(&m);
    assert_eq!(m["room"], "general");
    assert_eq!(m["author"], BOT_NAME);
    assert_eq!(m["body"], "hello from a bot");

    let live = alice.messages("general", 1).await.remove(0);
    assert_message_frame(&live);
    for k in ["room", "id", "author", "body", "ts"] {
        assert_eq!(live[k], m[k], "{k}: live {live} vs POST answer {m}");
    }
    other
        .expect_none_where(QUIET, "message of another room", |v| typ(v) == "message")
        .await;

    let page = s.api_messages("general", "").await;
    let stored = arr(&page["messages"]);
    assert_eq!(stored.len(), 1);
    for k in ["room", "id", "author", "body", "ts"] {
        assert_eq!(stored[0][k], m[k]);
    }

    // Ids stay one sequence with WebSocket sends.
    let a = alice.send_msg("general", "human", "h1").await;
    assert!(a["id"].as_i64().unwrap() > m["id"].as_i64().unwrap());
    let (st, m2) = s
        .api_post("general", Some(BOT_TOKEN), &json!({"body":"  second  "}))
        .await;
    assert_eq!(st, 201, "{m2}");
    assert!(m2["id"].as_i64().unwrap() > a["id"].as_i64().unwrap());
    let ms = alice.messages("general", 2).await;
    assert_eq!(ms[0]["id"], a["id"]);
    assert_eq!(ms[1]["id"], m2["id"]);
}
}

both_backends! {
async fn post_needs_a_valid_bearer_token() {
    let s = Server::start_with(ServerOpts::new().with_bot()).await;
    let body = json!({"body":"x"});
    let (st, v) = s.api_post("general", None, &body).await;
    assert_api_error(st, &v, &[401], &["unauthorized"], "no token");
    let (st, v) = s.api_post("general", Some("wrong"), &body).await;
    assert_api_error(st, &v, &[401], &["unauthorized"], "wrong token");
    let (st, v) = s.api_post("general", Some("testbot"), &body).await;
    assert_api_error(st, &v, &[401], &["unauthorized"], "bot name as token");
    // Not a Bearer scheme.
    let r = s
        .http()
        .post(s.url("/api/rooms/general/messages"))
        .header("Authorization", format!("Basic {BOT_TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_api_error(st, &v, &[401], &["unauthorized"], "Basic scheme");
    let page = s.api_messages("general", "").await;
    assert_eq!(page["messages"], json!([]), "nothing stored");
}
}

both_backends! {
async fn post_rejects_bad_bodies() {
    let s = Server::start_with(ServerOpts::new().with_bot().no_rate_limit()).await;
    let raw = |b: &'static str| {
        let s = &s;
        async move {
            let r = s
                .http()
                .post(s.url("/api/rooms/general/messages"))
                .bearer_auth(BOT_TOKEN)
                .header("Content-Type", "application/json")
                .body(b)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (st, v)
        }
    };
    for b in [
        "not json",
        "{\"body\":",
        "[]",
        "{}",
        "{\"body\":5}",
        "{\"body\":null}",
        "{\"text\":\"x\"}",
    ] {
        let (st, v) = raw(b).await;
        assert_api_error(st, &v, &[400], &["bad_request"], b);
    }
    for b in [json!({"body":""}), json!({"body":"  \n "})] {
        let (st, v) = s.api_post("general", Some(BOT_TOKEN), &b).await;
        assert_api_error(
            st,
            &v,
            &[400, 413],
            &["bad_request", "too_large"],
            &b.to_string(),
        );
    }
    let (st, v) = s
        .api_post(
            "general",
            Some(BOT_TOKEN),
            &json!({"body":"a".repeat(4001)}),
        )
        .await;
    assert_api_error(st, &v, &[413], &["too_large"], "4001 characters");
    let (st, v) = s
        .api_post(
            "general",
            Some(BOT_TOKEN),
            &json!({"body":"🌍".repeat(4001)}),
        )
        .await;
    assert_api_error(st, &v, &[413], &["too_large"], "4001 emoji");
    let (st, v) = s
        .api_post(
            "general",
            Some(BOT_TOKEN),
            &json!({"body":"🌍".repeat(4000)}),
        )
        .await;
    assert_eq!(st, 201, "4000 emoji are fine: {v}");
    let (st, v) = s
        .api_post("Bad%20Room", Some(BOT_TOKEN), &json!({"body":"x"}))
        .await;
    assert_api_error(st, &v, &[400], &["bad_request"], "invalid room");
    let (st, v) = s
        .api_post("dm:alice:bob", Some(BOT_TOKEN), &json!({"body":"x"}))
        .await;
    assert_api_error(st, &v, &[403], &["forbidden"], "someone else's DM");

    let page = s.api_messages("general", "").await;
    assert_eq!(
        arr(&page["messages"]).len(),
        1,
        "only the valid post is stored"
    );
    let (st, _) = s.get_json("/healthz").await;
    assert_eq!(st, 200);
}
}

both_backends! {
async fn direct_messages_are_not_public_over_http() {
    let s = Server::start_with(ServerOpts::new().with_accounts()).await;
    let mut alice = s.account("alice").await;
    alice.join("dm:alice:bob").await;
    let mut bob = s.account("bob").await;
    bob.join("dm:alice:bob").await;
    let a = alice.send_msg("dm:alice:bob", "secret", "s1").await;
    bob.messages("dm:alice:bob", 1).await;
    let rows = rooms(&s).await;
    assert!(
        rows.iter()
            .all(|r| !r["name"].as_str().unwrap().starts_with("dm:")),
        "GET /api/rooms lists a DM room: {rows:?}"
    );
    let (st, v) = s.get_json("/api/rooms/dm:alice:bob/messages").await;
    assert!(
        [401, 403, 404].contains(&st),
        "GET of a DM room's messages without credentials: {st} {v}"
    );
    assert!(!v.to_string().contains("secret"));
    // Another account's token does not open it either.
    let r = s
        .http()
        .get(s.url("/api/rooms/dm:alice:bob/messages"))
        .bearer_auth("carol-token")
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_api_error(
        st,
        &v,
        &[403],
        &["forbidden"],
        "carol reading alice and bob's DM",
    );
    // A member's token does.
    let r = s
        .http()
        .get(s.url("/api/rooms/dm:alice:bob/messages"))
        .bearer_auth("bob-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(ids(&arr(&v["messages"])), vec![a["id"].as_i64().unwrap()]);
    assert_eq!(v["messages"][0]["body"], "secret");
}
}

both_backends! {
async fn healthz_and_metrics() {
    let s = Server::start().await;
    let r = s.http().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Some traffic first.
    let mut alice = s.guest_in("alice", "general").await;
    alice.send_msg("general", "counted", "c1").await;

    let r = s.http().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "metrics content-type {ct:?}");
    let text = r.text().await.unwrap();
    let mut samples = 0;
    let mut types = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let kind = rest.split_whitespace().nth(1).unwrap_or("");
            assert!(
                matches!(
                    kind,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ),
                "bad TYPE line {line:?}"
            );
            types += 1;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        // name{labels} value [timestamp]
        let (name_labels, value) = match line.rfind('}') {
            Some(i) => (&line[..=i], line[i + 1..].trim()),
            None => {
                let mut it = line.splitn(2, ' ');
                (it.next().unwrap(), it.next().unwrap_or("").trim())
            }
        };
        let name = name_labels.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .enumerate()
                    .all(|(i, c)| c.is_ascii_alphabetic()
                        || c == '_'
                        || c == ':'
                        || (i > 0 && c.is_ascii_digit())),
            "bad metric name in {line:?}"
        );
        let v = value.split_whitespace().next().unwrap_or("");
        assert!(
            v.parse::<f64>().is_ok() || matches!(v, "+Inf" | "-Inf" | "NaN"),
            "bad sample value in {line:?}"
        );
        samples += 1;
    }
    assert!(types > 0 && samples > 0, "no metrics:\n{text}");
}
}

both_backends! {
async fn sigterm_closes_websockets_with_1001_and_exits_0() {
    let mut s = Server::start().await;
    let mut alice = s.guest_in("alice", "general").await;
    let mut bob = s.guest("bob").await;
    let mut fresh = s.client().await; // before hello
    alice.send_msg("general", "before shutdown", "b1").await;

    s.sigterm();
    assert_eq!(alice.expect_close().await, Closed::Code(1001));
    assert_eq!(bob.expect_close().await, Closed::Code(1001));
    let c = fresh.expect_close().await;
    assert!(
        matches!(c, Closed::Code(1001) | Closed::Eof),
        "not-yet-greeted connection: {c:?}"
    );
    let st = s.wait_exit(Duration::from_secs(10)).await;
    assert!(
        st.success(),
        "exit status {st}; logs:\n{}",
        s.log_lines().join("\n")
    );
    // No longer accepting.
    assert!(
        tokio::net::TcpStream::connect(s.addr).await.is_err(),
        "still accepting after exit"
    );
}
}

both_backends! {
async fn sigterm_keeps_every_acknowledged_message() {
    let dir = fresh_dir();
    let mut s = Server::start_with(ServerOpts::new().dir(dir.clone()).no_rate_limit()).await;
    let mut alice = s.guest_in("alice", "general").await;
    const N: usize = 200;
    for i in 0..N {
        alice
            .send_msg_nowait("general", &format!("late {i}"), &format!("z{i}"))
            .await;
    }
    s.sigterm();
    // Collect whatever was acknowledged before the close.
    let mut acked = Vec::new();
    let closed = loop {
        match alice.try_recv_json_or_close(TIMEOUT).await {
            Ok(v) if typ(&v) == "ack" => acked.push(v["id"].as_i64().unwrap()),
            Ok(_) => {}
            Err(c) => break c,
        }
    };
    let st = s.wait_exit(Duration::from_secs(15)).await;
    assert!(st.success(), "exit status {st}");
    drop(s);

    let s2 = Server::start_with(ServerOpts::new().dir(dir)).await;
    let mut stored = Vec::new();
    let mut before = String::new();
    loop {
        let p = s2
            .api_messages("general", &format!("?limit=50{before}"))
            .await;
        let ms = ids(&arr(&p["messages"]));
        if ms.is_empty() {
            break;
        }
        before = format!("&before={}", ms[0]);
        stored.splice(0..0, ms);
        if p["more"] != true {
            break;
        }
    }
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged message {id} lost across shutdown ({} acked, {} stored)",
            acked.len(),
            stored.len()
        );
    }
    eprintln!(
        "{} of {N} acked before shutdown, {} stored",
        acked.len(),
        stored.len()
    );
    // A client still sending when the server stops must still see 1001
    // (not a TCP reset), so that it knows to reconnect and resume.
    assert_eq!(
        closed,
        Closed::Code(1001),
        "close seen by a client with frames in flight at SIGTERM"
    );
}
}

/// Built files go out precompressed when the browser takes brotli or gzip,
/// and every answer says it depends on Accept-Encoding, so that a shared
/// cache never hands compressed bytes to a client that did not ask for them.
#[tokio::test(flavor = "multi_thread")]
async fn static_files_are_precompressed_and_vary_by_encoding() {
    let s = Server::start().await;
    let http = s.http();
    for (asked, want) in [
        ("br", Some("br")),
        ("gzip", Some("gzip")),
        ("identity", None),
    ] {
        let r = http
            .get(s.url("/pkg/causerie.wasm"))
            .header("accept-encoding", asked)
            .send()
            .await
            .expect("GET /pkg/causerie.wasm");
        assert_eq!(r.status().as_u16(), 200, "{asked}");
        let encoding = r
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok());
        assert_eq!(encoding, want, "content-encoding for {asked}");
        let vary: Vec<String> = r
            .headers()
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .collect();
        assert!(
            vary.iter().any(|v| v.contains("accept-encoding")),
            "{asked}: vary {vary:?}"
        );
        let body = r.bytes().await.expect("body");
        if want.is_none() {
            // The real file: a WebAssembly module.
            assert_eq!(&body[..4], b"\0asm", "identity body");
        }
    }
}

/// A connection that never finishes its request (a browser's preconnected
/// socket, a stalled client) cannot keep the process alive after SIGTERM:
/// graceful shutdown waits for HTTP connections only up to its bound.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_despite_connections_that_never_send_a_request() {
    use tokio::io::AsyncWriteExt;
    let mut s = Server::start().await;
    let _silent = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let mut partial = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    partial
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("half a request");
    // The bound is 10 s (SHUTDOWN_WAIT); without it the process never exits.
    s.sigterm_and_expect_clean_exit(Duration::from_secs(25))
        .await;
}
