//! The security review's HTTP findings (issue 12), black-box against the
//! real binary over raw TCP, HTTP and WebSocket: connection timeouts and
//! caps, sessions stored only when used, security headers, close 1007 for
//! invalid UTF-8, and server-function errors a person can read.

use crate::common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A second loopback address: the server sees it as another client.
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Connects from a given local address (loopback has all of 127/8).
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from, 0))?;
    tokio::time::timeout(TIMEOUT, sock.connect(to))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// Reads until the server closes the connection or `within` passes; the
/// time it took to close, or `None` if still open.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// One HTTP/1.1 request on its own connection; (status, headers, body).
async fn raw_get(from: IpAddr, to: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = connect_from(from, to).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    Ok((status, text))
}

/// A form body, `application/x-www-form-urlencoded`.
fn urlencoded<K: AsRef<str>, V: AsRef<str>>(form: &[(K, V)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k.as_ref()), enc(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
}

fn short_timeouts() -> ServerOpts {
    ServerOpts::new()
        .env("CAUSERIE_HEADER_TIMEOUT_SECS", 2)
        .env("CAUSERIE_BODY_TIMEOUT_SECS", 2)
}

// ---------------------------------------------------------------------------
// 1. Connections time out and are capped per address
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let s = Server::start_with(short_timeouts()).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let took = closed_within(&mut c, Duration::from_secs(6)).await;
    let took = took.expect("a connection that never sends a request must be closed");
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kept_alive_connection_is_closed() {
    let s = Server::start_with(short_timeouts()).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    c.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(TIMEOUT, c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut c, Duration::from_secs(6))
            .await
            .is_some(),
        "an idle kept-alive connection must be closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_sent_a_byte_at_a_time_are_cut() {
    let s = Server::start_with(short_timeouts()).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let start = Instant::now();
    let head = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Slow: ", s.addr);
    let mut bytes = head.into_bytes().into_iter().chain(std::iter::repeat(b'a'));
    // One byte every 100 ms for up to 8 s: never a whole header.
    let mut cut = false;
    while start.elapsed() < Duration::from_secs(8) {
        let b = bytes.next().unwrap_or(b'a');
        if c.write_all(&[b]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            // An answer (408) before closing counts as cut too.
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    }
    assert!(
        cut,
        "a header trickled for 8 s must be cut (header timeout 2 s)"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "cut after {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowly_trickled_body_is_cut() {
    let s = Server::start_with(short_timeouts()).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /_sfn/whoami HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        s.addr
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut ended = false;
    // One byte every 200 ms: 1000 bytes would take 200 s.
    while start.elapsed() < Duration::from_secs(8) {
        if c.write_all(b"a").await.is_err() {
            ended = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                ended = true;
                break;
            }
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(
        ended || !answer.is_empty(),
        "a body trickled for 8 s must be cut (body timeout 2 s)"
    );
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "cut after {:?}",
        start.elapsed()
    );
    if !answer.is_empty() {
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_per_address_are_capped_at_accept() {
    let s = Server::start_with(
        ServerOpts::new()
            .env("CAUSERIE_HTTP_CONNECTIONS_PER_IP", 20)
            .env("CAUSERIE_HEADER_TIMEOUT_SECS", 30),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // Let the server accept them all before the next one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = TcpStream::connect(s.addr).await.unwrap();
    let took = closed_within(&mut over, Duration::from_secs(3)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "the 21st connection from one address must be closed at once: {took:?}"
    );
    // Another address is not affected.
    let (status, _) = raw_get(OTHER, s.addr, "/healthz").await.unwrap();
    assert_eq!(status, 200);
    // The held ones still work (they were admitted).
    let c = &mut held[0];
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.addr
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, c.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));

    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = raw_get(Ipv4Addr::LOCALHOST.into(), s.addr, "/healthz")
        .await
        .unwrap();
    assert_eq!(status, 200, "slots free once the connections close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_counts_against_the_address_cap() {
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_HTTP_CONNECTIONS_PER_IP", 2)).await;
    let a = s.guest("ann").await;
    let b = s.guest("ben").await;
    assert!(
        s.ws_connect(None).await.is_err(),
        "a third connection is refused"
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_outlives_the_header_and_body_timeouts() {
    let s = Server::start_with(
        ServerOpts::new()
            .env("CAUSERIE_HEADER_TIMEOUT_SECS", 1)
            .env("CAUSERIE_BODY_TIMEOUT_SECS", 1),
    )
    .await;
    let mut c = s.guest_in("wendy", "general").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ack = c.send_msg("general", "still here", "w-1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_file_limit_still_leaves_room_for_healthz_and_the_store() {
    // A file limit of 256: before the fix 400 silent connections used
    // every descriptor and /healthz failed with "Too many open files".
    let s = Server::start_with(
        ServerOpts::new()
            .nofile(256)
            .env("CAUSERIE_HEADER_TIMEOUT_SECS", 30),
    )
    .await;
    let line = s
        .wait_log("the connection budget", |l| l.contains("connections"))
        .await;
    assert!(line.contains("file"), "{line}");
    let mut ws = s.guest_in("olive", "general").await;
    let mut held = Vec::new();
    for _ in 0..400 {
        match TcpStream::connect(s.addr).await {
            Ok(c) => held.push(c),
            Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = raw_get(OTHER, s.addr, "/healthz").await.expect("/healthz");
    assert_eq!(status, 200, "/healthz from another address still answers");
    let ack = ws.send_msg("general", "stored", "o-1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    drop(held);
}

// ---------------------------------------------------------------------------
// 2. Sessions are stored only when something is put in them
// ---------------------------------------------------------------------------

async fn session_rows(s: &Server) -> i64 {
    use sqlx::Row;
    if s.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&s.database_url).await.unwrap();
        let n = sqlx::query("SELECT count(*) AS n FROM tower_sessions.session")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get::<i64, _>("n");
        pool.close().await;
        n
    } else {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(s.db_path())
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let n = sqlx::query("SELECT count(*) AS n FROM tower_sessions")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get::<i64, _>("n");
        pool.close().await;
        n
    }
}

/// The cookies a response sets, as `name=value`.
fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_string)
        .collect()
}

/// The hidden CSRF field of a rendered form.
fn form_csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\"").expect("a csrf field");
    let rest = &html[i..];
    let v = rest.find("value=\"").expect("its value") + "value=\"".len();
    rest[v..v + rest[v..].find('"').unwrap()].to_string()
}

both_backends! {
    async fn anonymous_requests_store_no_session() {
        let s = Server::start().await;
        let http = s.http();
        let before = session_rows(&s).await;
        for _ in 0..20 {
            let res = http.get(s.url("/login")).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let res = http
                .post(s.url("/_sfn/whoami"))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert!(
                !set_cookies(&res).iter().any(|c| c.starts_with("causerie_session=")),
                "no session cookie for a visitor"
            );
        }
        assert_eq!(session_rows(&s).await, before, "anonymous visits stored sessions");
    }

    async fn the_forms_work_without_a_stored_session() {
        let s = Server::start().await;
        let http = s.http();
        // The first page embeds a token for the browser's new guest cookie.
        let res = http.get(s.url("/register")).send().await.unwrap();
        let cookies = set_cookies(&res);
        let guest = cookies
            .iter()
            .find(|c| c.starts_with("causerie_guest="))
            .expect("a guest cookie with the first page")
            .clone();
        let csrf = form_csrf(&res.text().await.unwrap());
        assert!(!csrf.is_empty());
        let post = |cookie: String, form: Vec<(&'static str, String)>, ep: &'static str| {
            let http = http.clone();
            let url = s.url(&format!("/_sfn/{ep}"));
            async move {
                let res = http
                    .post(url)
                    .header("cookie", cookie)
                    .header("accept", "application/json")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(urlencoded(&form))
                    .send()
                    .await
                    .unwrap();
                let cookies = set_cookies(&res);
                (res.status().as_u16(), cookies, res.text().await.unwrap())
            }
        };
        // Another browser's token is refused, and so is none.
        let (status, _, body) = post(
            "causerie_guest=someone-else".into(),
            vec![("name", "zoe".into()), ("password", "password1".into()), ("csrf", csrf.clone())],
            "register",
        )
        .await;
        assert!(status >= 400 && body.contains("expired"), "{status} {body}");
        let (status, _, body) = post(
            guest.clone(),
            vec![("name", "zoe".into()), ("password", "password1".into()), ("csrf", String::new())],
            "register",
        )
        .await;
        assert!(status >= 400 && body.contains("expired"), "{status} {body}");
        assert_eq!(session_rows(&s).await, 0);

        let (status, cookies, body) = post(
            guest.clone(),
            vec![("name", "zoe".into()), ("password", "password1".into()), ("csrf", csrf)],
            "register",
        )
        .await;
        assert!(status < 400, "register: {status} {body}");
        let session = cookies
            .iter()
            .find(|c| c.starts_with("causerie_session="))
            .expect("a session once signed in")
            .clone();
        assert_eq!(session_rows(&s).await, 1, "one session: the signed-in one");
        let both = format!("{guest}; {session}");
        let (status, _, body) = post(both.clone(), vec![], "whoami").await;
        assert_eq!(status, 200);
        let me: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(me["name"], "zoe");
        let signed_in_csrf = me["csrf"].as_str().unwrap().to_string();
        let (status, _, body) = post(
            both.clone(),
            vec![("label", "bot".into()), ("csrf", signed_in_csrf.clone())],
            "create_token",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, _, body) = post(both.clone(), vec![("csrf", signed_in_csrf)], "logout").await;
        assert!(status < 400, "logout: {status} {body}");
        assert_eq!(session_rows(&s).await, 0, "signing out deletes the session");

        // Signing in again goes through the same anonymous token.
        let (status, _, body) = post(guest.clone(), vec![], "whoami").await;
        assert_eq!(status, 200);
        let me: Value = serde_json::from_str(&body).unwrap();
        let (status, _, body) = post(
            guest,
            vec![
                ("name", "zoe".into()),
                ("password", "password1".into()),
                ("csrf", me["csrf"].as_str().unwrap().to_string()),
            ],
            "login",
        )
        .await;
        assert!(status < 400, "login: {status} {body}");
    }
}

// ---------------------------------------------------------------------------
// 3. Security headers
// ---------------------------------------------------------------------------

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let s = Server::start().await;
    let http = s.http();
    for path in [
        "/",
        "/login",
        "/r/general",
        "/healthz",
        "/api/rooms",
        "/nowhere",
        "/favicon.svg",
    ] {
        let res = http.get(s.url(path)).send().await.unwrap();
        let csp = header(&res, "content-security-policy");
        for part in [
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{path}: CSP {csp:?} lacks {part}");
        }
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer", "{path}");
    }
    // A page's scripts carry the nonce its policy names, a new one each time.
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let res = http.get(s.url("/r/general")).send().await.unwrap();
        let csp = header(&res, "content-security-policy");
        assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .expect("a nonce in the policy")
            .to_string();
        let html = res.text().await.unwrap();
        assert!(html.contains("<script"), "the page has scripts");
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{tag} lacks the nonce {nonce}"
            );
        }
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a nonce per response");
}

// ---------------------------------------------------------------------------
// 4. Invalid UTF-8 in a text frame closes with 1007
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_text_frame_with_invalid_utf8_closes_with_1007() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let s = Server::start().await;
    let mut c = s.guest("uma").await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    c.ws().send(Message::Frame(frame)).await.unwrap();
    let closed = c.expect_close().await;
    assert_eq!(closed, Closed::Code(1007), "{closed:?}");
    // The server goes on for everyone else.
    let mut d = s.guest_in("vic", "general").await;
    assert_eq!(d.send_msg("general", "fine", "v-1").await["type"], "ack");
}

// ---------------------------------------------------------------------------
// 5. Server-function errors: a fitting 4xx, a message for people
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn server_function_errors_are_4xx_with_readable_text() {
    let s = Server::start().await;
    let http = s.http();
    let call = |ep: &'static str, form: Vec<(&'static str, &'static str)>, cookie: String| {
        let http = http.clone();
        let url = s.url(&format!("/_sfn/{ep}"));
        async move {
            let res = http
                .post(url)
                .header("accept", "application/json")
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(urlencoded(&form))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let readable = |body: &str| {
        for internal in [
            "Args|",
            "missing field",
            "Deserialization",
            "Could not find",
            "sqlx",
            "error returned",
        ] {
            assert!(!body.contains(internal), "internal text in {body:?}");
        }
    };

    // A field missing: bad arguments.
    let (status, body) = call(
        "register",
        vec![("name", "x"), ("password", "y")],
        String::new(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    readable(&body);
    assert!(body.contains("reload the page"), "{body}");

    // A forged token: refused.
    let (status, body) = call(
        "register",
        vec![("name", "x"), ("password", "password1"), ("csrf", "forged")],
        "causerie_guest=g1".into(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    readable(&body);
    assert!(body.contains("expired"), "{body}");

    // Not signed in.
    let (status, body) = call("list_tokens", vec![], String::new()).await;
    assert_eq!(status, 401, "{body}");
    readable(&body);
    assert!(body.contains("sign in first"), "{body}");

    // A wrong password.
    let (_, body) = call("whoami", vec![], "causerie_guest=g2".into()).await;
    let me: Value = serde_json::from_str(&body).unwrap();
    let csrf = me["csrf"].as_str().unwrap().to_string();
    let res = http
        .post(s.url("/_sfn/login"))
        .header("accept", "application/json")
        .header("cookie", "causerie_guest=g2")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(&[
            ("name", "nobody"),
            ("password", "password1"),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(status, 401, "{body}");
    readable(&body);
    assert!(body.contains("wrong name or password"), "{body}");
    let _ = json!(null);
}
