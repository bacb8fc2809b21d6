//! Who may do what, as a table: every identity × every room kind × every
//! path a room is reached by, each cell with the exact answer expected, on
//! SQLite and PostgreSQL. A cell names the exact code or status, so that a
//! refusal for the wrong reason (a 404 from a wrong route, an
//! `unauthorized` for a path that should have said `not_found`) fails.
//!
//! The cast: `admin` (the first account, in no private or direct room),
//! `owner` (made `~team`), `mem` (in every room), `outsider` (an account in
//! none), `banned` (in `~team` and the group, then banned), the operator
//! bot `robot`, `mem`'s API token, a revoked token of `outsider`, a guest
//! and a visitor with no credentials at all.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";
const PUBLIC: &str = "general";
const PRIVATE: &str = "~team";
const DM: &str = "dm:mem:owner";
const GROUP: &str = "dm:banned:mem:owner";
const ROOMS: [&str; 4] = [PUBLIC, PRIVATE, DM, GROUP];

/// The paths, in the order of a row.
const PATHS: [&str; 13] = [
    "join",
    "history",
    "send",
    "typing",
    "resume",
    "GET messages",
    "POST messages",
    "GET /api/rooms",
    "rooms frame",
    "page",
    "search room",
    "search all",
    "file",
];

/// Hello refused: the identity has no WebSocket at all.
const U: &str = "hello:unauthorized";

/// The expected answers of one identity in one room, path by path:
/// WebSocket cells are `ok` or an error code (or [`U`]); HTTP cells a
/// status; the two listings `listed` / `unlisted` (or a status, or [`U`]);
/// `search room` the status of a search in that room alone, `search all`
/// whether a search everywhere `found` its message or it stayed `absent`;
/// `file` the status of `GET /files/{id}/{name}` for a file posted there.
type Row = (&'static str, &'static str, [&'static str; 13]);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // identity     room     join         history      send          typing        resume       GET    POST   /api/rooms  rooms frame page search  all      file
    ("visitor",  PUBLIC,  [U,           U,           U,            U,            U,           "200", "401", "listed",   U,          "200", "200",   "found",  "200"]),
    ("visitor",  PRIVATE, [U,           U,           U,            U,            U,           "404", "401", "unlisted", U,          "404", "404",   "absent", "404"]),
    ("visitor",  DM,      [U,           U,           U,            U,            U,           "401", "401", "unlisted", U,          "403", "401",   "absent", "404"]),
    ("visitor",  GROUP,   [U,           U,           U,            U,            U,           "401", "401", "unlisted", U,          "403", "401",   "absent", "404"]),
    ("guest",    PUBLIC,  ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "401", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("guest",    PRIVATE, ["not_found", "not_found", "not_joined", "not_joined", "not_found", "404", "401", "unlisted", "unlisted", "404", "404",   "absent", "404"]),
    ("guest",    DM,      ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "401", "401", "unlisted", "unlisted", "403", "401",   "absent", "404"]),
    ("guest",    GROUP,   ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "401", "401", "unlisted", "unlisted", "403", "401",   "absent", "404"]),
    ("outsider", PUBLIC,  ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("outsider", PRIVATE, ["not_found", "not_found", "not_joined", "not_joined", "not_found", "404", "404", "unlisted", "unlisted", "404", "404",   "absent", "404"]),
    ("outsider", DM,      ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "403", "403", "unlisted", "unlisted", "403", "403",   "absent", "404"]),
    ("outsider", GROUP,   ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "403", "403", "unlisted", "unlisted", "403", "403",   "absent", "404"]),
    ("mem",      PUBLIC,  ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("mem",      PRIVATE, ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("mem",      DM,      ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("mem",      GROUP,   ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("owner",    PUBLIC,  ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("owner",    PRIVATE, ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("owner",    DM,      ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("owner",    GROUP,   ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("admin",    PUBLIC,  ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("admin",    PRIVATE, ["not_found", "not_found", "not_joined", "not_joined", "not_found", "404", "404", "unlisted", "unlisted", "404", "404",   "absent", "404"]),
    ("admin",    DM,      ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "403", "403", "unlisted", "unlisted", "403", "403",   "absent", "404"]),
    ("admin",    GROUP,   ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "403", "403", "unlisted", "unlisted", "403", "403",   "absent", "404"]),
    // A banned account's cookie no longer signs in (the page is a visitor's)
    // and its token is refused.
    ("banned",   PUBLIC,  [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "200", "401",   "401",   "401"]),
    ("banned",   PRIVATE, [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "404", "401",   "401",   "401"]),
    ("banned",   DM,      [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "403", "401",   "401",   "401"]),
    ("banned",   GROUP,   [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "403", "401",   "401",   "401"]),
    // Tokens carry no cookie: their page is a visitor's.
    ("robot",    PUBLIC,  ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("robot",    PRIVATE, ["not_found", "not_found", "not_joined", "not_joined", "not_found", "404", "404", "unlisted", "unlisted", "404", "404",   "absent", "404"]),
    ("robot",    DM,      ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "403", "403", "unlisted", "unlisted", "403", "403",   "absent", "404"]),
    ("robot",    GROUP,   ["forbidden", "forbidden", "not_joined", "not_joined", "forbidden", "403", "403", "unlisted", "unlisted", "403", "403",   "absent", "404"]),
    ("token",    PUBLIC,  ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "200", "200",   "found",  "200"]),
    ("token",    PRIVATE, ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "404", "200",   "found",  "200"]),
    ("token",    DM,      ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "403", "200",   "found",  "200"]),
    ("token",    GROUP,   ["ok",        "ok",        "ok",         "ok",         "ok",        "200", "201", "listed",   "listed",   "403", "200",   "found",  "200"]),
    ("revoked",  PUBLIC,  [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "200", "401",   "401",   "401"]),
    ("revoked",  PRIVATE, [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "404", "401",   "401",   "401"]),
    ("revoked",  DM,      [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "403", "401",   "401",   "401"]),
    ("revoked",  GROUP,   [U,           U,           U,            U,            U,           "401", "401", "401",      U,          "403", "401",   "401",   "401"]),
];

/// How an identity reaches the server.
struct Identity {
    /// The `hello` frame, and the cookie the upgrade carries.
    hello: Value,
    cookie: Option<String>,
    /// The Bearer token of its HTTP requests: all of them, or (with
    /// `read_with_cookie`) its posts.
    bearer: Option<String>,
    /// Whether it reads over HTTP with its session cookie.
    read_with_cookie: bool,
    /// The name it speaks as over the WebSocket.
    name: &'static str,
}

/// Everyone in the table, with the rooms set up as the table assumes.
struct Cast {
    ids: Vec<(&'static str, Identity)>,
    /// Room → the id of a file posted there (different bytes in each).
    files: std::collections::HashMap<&'static str, String>,
}

async fn cast(s: &Server) -> Cast {
    // Five accounts, each registered by a browser that stays signed in.
    let mut sessions = Vec::new();
    for name in ["admin", "owner", "mem", "outsider", "banned"] {
        let mut v = Visitor::new(s);
        register(&mut v, name, PASSWORD).await;
        sessions.push((name, v));
    }
    let mut token_of = std::collections::HashMap::new();
    let mut revoked = String::new();
    for (name, v) in sessions.iter_mut() {
        let csrf = v.csrf().await;
        let (status, body) = v
            .call("create_token", &[("label", "matrix"), ("csrf", &csrf)])
            .await;
        assert_eq!(status, 200, "create_token for {name}: {body}");
        let made: Value = serde_json::from_str(&body).expect("token JSON");
        token_of.insert(*name, made["token"].as_str().expect("token").to_string());
        if *name == "outsider" {
            // A second token, revoked at once.
            let (_, body) = v
                .call("create_token", &[("label", "gone"), ("csrf", &csrf)])
                .await;
            let gone: Value = serde_json::from_str(&body).expect("token JSON");
            revoked = gone["token"].as_str().expect("token").to_string();
            let id = gone["row"]["id"].to_string();
            let (status, body) = v
                .call("revoke_token", &[("id", &id), ("csrf", &csrf)])
                .await;
            assert!(status < 300, "revoke: {status} {body}");
        }
    }
    let cookie = |name: &str| {
        sessions
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.cookies())
            .expect("a session")
    };

    // The rooms: each with one message from its owner.
    let mut owner = session_hello(s, &cookie("owner")).await;
    owner
        .send_json(
            json!({"type":"create","room":PRIVATE,"members":["mem","banned"],"topic":"plans"}),
        )
        .await;
    owner
        .recv_where("joined ~team", |v| {
            v["type"] == "joined" && v["room"] == PRIVATE
        })
        .await;
    for room in [PUBLIC, DM, GROUP] {
        owner.join(room).await;
    }
    let mut files = std::collections::HashMap::new();
    for room in ROOMS {
        let n = owner.nonce();
        let ack = owner.send_msg(room, "first", &n).await;
        assert_eq!(ack["type"], "ack", "{room}: {ack}");
        let res = s
            .http()
            .post(s.url("/api/files?name=notes.txt"))
            .bearer_auth(&token_of["owner"])
            .body(format!("the notes of {room}"))
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status().as_u16(), 201, "upload for {room}");
        let file: Value = res.json().await.expect("file JSON");
        let id = file["id"].as_str().expect("file id").to_string();
        owner
            .send_json(json!({"type":"send","room":room,"body":"","attachments":[id],"nonce":format!("file-{room}")}))
            .await;
        owner
            .recv_where("ack of the file", |v| {
                v["type"] == "ack" && v["room"] == room
            })
            .await;
        files.insert(room, id);
    }
    drop(owner);
    cli(s, &["user", "ban", "banned"], None).expect_ok();

    let mut ids = Vec::new();
    let session_id = |name: &'static str| Identity {
        hello: json!({"type":"hello"}),
        cookie: Some(cookie(name)),
        bearer: Some(token_of[name].clone()),
        // A banned account's cookie reads as a visitor's: its token is asked.
        read_with_cookie: name != "banned",
        name,
    };
    ids.push((
        "visitor",
        Identity {
            hello: json!({"type":"hello"}),
            cookie: None,
            bearer: None,
            read_with_cookie: false,
            name: "",
        },
    ));
    ids.push((
        "guest",
        Identity {
            hello: json!({"type":"hello","name":"gina"}),
            cookie: None,
            bearer: None,
            read_with_cookie: false,
            name: "gina",
        },
    ));
    for name in ["outsider", "mem", "owner", "admin", "banned"] {
        ids.push((name, session_id(name)));
    }
    let by_token = |token: &str, name: &'static str| Identity {
        hello: json!({"type":"hello","token":token}),
        cookie: None,
        bearer: Some(token.to_string()),
        read_with_cookie: false,
        name,
    };
    ids.push(("robot", by_token("robot-token", "robot")));
    ids.push(("token", by_token(&token_of["mem"], "mem")));
    ids.push(("revoked", by_token(&revoked, "outsider")));
    Cast { ids, files }
}

/// A socket that said `hello` with a session cookie.
async fn session_hello(s: &Server, cookie: &str) -> Client {
    let mut ws = s
        .ws_connect_with(&[("Cookie", cookie)])
        .await
        .expect("websocket");
    ws.send_json(json!({"type":"hello"})).await;
    ws.expect_type("welcome").await;
    ws
}

/// A socket for an identity after its `hello`: `Err` with the refusal's
/// code when the hello is refused. `resume` goes in the hello. A guest
/// takes a fresh name each time (the last socket's may still hold its own).
async fn connect(
    s: &Server,
    who: &Identity,
    resume: Option<Value>,
) -> Result<(Client, String), String> {
    static GUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut ws = match &who.cookie {
        Some(c) => s.ws_connect_with(&[("Cookie", c.as_str())]).await,
        None => s.ws_connect(None).await,
    }
    .expect("websocket");
    let mut hello = who.hello.clone();
    if let Some(r) = resume {
        hello["resume"] = r;
    }
    let mut name = who.name.to_string();
    if hello.get("name").is_some() {
        let n = GUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        name = format!("{}{n}", who.name);
        hello["name"] = json!(name);
    }
    ws.send_json(hello).await;
    let first = ws.recv_json().await;
    match first["type"].as_str() {
        Some("welcome") => Ok((ws, name)),
        Some("error") => Err(format!("hello:{}", first["code"].as_str().unwrap_or("?"))),
        _ => panic!("hello answered {first}"),
    }
}

/// What a WebSocket request came to: `ok`, or the error's code.
async fn ws_cell(
    s: &Server,
    who: &Identity,
    room: &str,
    path: &str,
    observer: &mut Client,
) -> String {
    let resume = (path == "resume").then(|| {
        let mut from = serde_json::Map::new();
        from.insert(room.to_string(), json!(0));
        Value::Object(from)
    });
    let (mut ws, name) = match connect(s, who, resume).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    if matches!(path, "send" | "typing") {
        // As a client does: join first (refused where it may not), then ask.
        ws.send_json(json!({"type":"join","room":room})).await;
        ws.recv_where("joined or error", |v| {
            (v["type"] == "joined" || v["type"] == "error") && v["room"] == room
        })
        .await;
    }
    let answer = match path {
        "join" | "resume" => {
            ws.send_json(json!({"type":"join","room":room})).await;
            ws.recv_where("joined or error", |v| {
                (v["type"] == "joined" || v["type"] == "error") && v["room"] == room
            })
            .await
        }
        "history" => {
            ws.send_json(json!({"type":"history","room":room})).await;
            ws.recv_where("history or error", |v| {
                (v["type"] == "history" || v["type"] == "error") && v["room"] == room
            })
            .await
        }
        "send" => {
            let n = ws.nonce();
            ws.send_msg_result(room, "from the matrix", &n).await
        }
        "typing" => {
            ws.send_json(json!({"type":"typing","room":room})).await;
            first_where(&mut ws, Duration::from_millis(300), |v| {
                v["type"] == "error"
            })
            .await
            .unwrap_or_else(|| json!({"type":"quiet"}))
        }
        _ => unreachable!("{path}"),
    };
    match answer["type"].as_str() {
        Some("error") => {
            assert_eq!(answer["room"], room, "a refusal names its room: {answer}");
            answer["code"].as_str().unwrap_or("?").to_string()
        }
        Some("joined") => {
            let history = arr(&answer["history"]);
            assert!(
                history.iter().any(|m| m["body"] == "first"),
                "{path} of {room} shows its history: {answer}"
            );
            "ok".into()
        }
        Some("history") => {
            assert!(
                arr(&answer["messages"])
                    .iter()
                    .any(|m| m["body"] == "first")
            );
            "ok".into()
        }
        Some("ack") => "ok".into(),
        Some("quiet") => {
            // Quiet is not enough: the room must have heard it (or not).
            let heard = first_where(observer, Duration::from_secs(2), |v| {
                v["type"] == "typing" && v["room"] == room && v["user"] == name.as_str()
            })
            .await
            .is_some();
            if heard { "ok".into() } else { "unheard".into() }
        }
        _ => panic!("{path} {room}: {answer}"),
    }
}

/// The first frame that `pred` picks within `within`, skipping others.
async fn first_where(
    ws: &mut Client,
    within: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        match ws.try_recv_json(left).await {
            Some(v) if pred(&v) => return Some(v),
            Some(_) => {}
            None => return None,
        }
    }
}

/// An HTTP request's answer, as the table writes it.
async fn http_cell(s: &Server, who: &Identity, room: &str, path: &str, file: &str) -> String {
    let http = s.http();
    let read = |r: reqwest::RequestBuilder| match (&who.cookie, &who.bearer) {
        (Some(c), _) if who.read_with_cookie => r.header("cookie", c),
        (_, Some(t)) => r.bearer_auth(t),
        _ => r,
    };
    let room_path = format!("/api/rooms/{}/messages", url_encode(room));
    match path {
        "GET messages" => {
            let res = read(http.get(s.url(&room_path)))
                .send()
                .await
                .expect("GET messages");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            check_http_body(status, &body, room);
            status.to_string()
        }
        "POST messages" => {
            let req = match &who.bearer {
                Some(t) => http.post(s.url(&room_path)).bearer_auth(t),
                None => http.post(s.url(&room_path)),
            };
            let res = req
                .json(&json!({"body":"posted by the matrix"}))
                .send()
                .await
                .expect("POST messages");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            check_http_body(status, &body, room);
            status.to_string()
        }
        "GET /api/rooms" => {
            let req = read(http.get(s.url("/api/rooms")));
            let res = req.send().await.expect("GET /api/rooms");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if status != 200 {
                return status.to_string();
            }
            let listed = rooms_rows(&body).iter().any(|r| r["name"] == room);
            if listed { "listed" } else { "unlisted" }.into()
        }
        "page" => {
            let mut req = http.get(s.url(&format!("/r/{}", url_encode(room))));
            if let Some(c) = &who.cookie {
                req = req.header("cookie", c);
            }
            let res = req.send().await.expect("page");
            let status = res.status().as_u16();
            let html = res.text().await.unwrap_or_default();
            // The page of a room one may not read carries none of its messages.
            if status != 200 || room.starts_with("dm:") {
                assert!(
                    !html.contains("first</"),
                    "{room} leaked to {}: {html}",
                    who.name
                );
            }
            status.to_string()
        }
        "search room" | "search all" => {
            let query = match path {
                "search room" => format!("/api/search?q=first&room={}", url_encode(room)),
                _ => "/api/search?q=first&limit=50".to_string(),
            };
            let res = read(http.get(s.url(&query))).send().await.expect("search");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            check_http_body(status, &body, room);
            let found = if status == 200 {
                arr(&body["messages"])
            } else {
                Vec::new()
            };
            // Whatever the query, nothing from a room the caller may not read.
            if status == 200 && path == "search room" {
                assert!(found.iter().all(|m| m["room"] == room), "{body}");
            }
            if path == "search room" || status != 200 {
                return status.to_string();
            }
            let here = found
                .iter()
                .any(|m| m["room"] == room && m["body"] == "first");
            if here { "found" } else { "absent" }.into()
        }
        "file" => {
            let res = read(http.get(s.url(&format!("/files/{file}/notes.txt"))))
                .send()
                .await
                .expect("GET file");
            let status = res.status().as_u16();
            if status == 200 {
                let text = res.text().await.unwrap_or_default();
                assert_eq!(text, format!("the notes of {room}"));
            } else {
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let code = if status == 404 {
                    "not_found"
                } else {
                    "unauthorized"
                };
                assert_eq!(body["error"]["code"], code, "{room}: {body}");
                // The same answer as a file that does not exist.
                if status == 404 {
                    assert_eq!(body["error"]["message"], "no such file", "{body}");
                }
            }
            status.to_string()
        }
        _ => unreachable!("{path}"),
    }
}

/// Every API error is the protocol's JSON, with the code its status goes with.
fn check_http_body(status: u16, body: &Value, room: &str) {
    let code = match status {
        200 | 201 => {
            assert!(
                body["messages"].is_array() || body["id"].is_i64(),
                "{room}: {body}"
            );
            return;
        }
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        other => panic!("unexpected status {other} for {room}: {body}"),
    };
    assert_eq!(body["error"]["code"], code, "{room}: {body}");
    if status == 404 {
        // Exactly as a room that does not exist.
        assert_eq!(
            body["error"]["message"],
            format!("no room {room:?}"),
            "{room}: {body}"
        );
    }
}

/// Whether the `rooms` frame after `hello` lists the room.
async fn rooms_frame_cell(s: &Server, who: &Identity, room: &str) -> String {
    let (mut ws, _) = match connect(s, who, None).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let rooms = ws.expect_type("rooms").await;
    let listed = arr(&rooms["rooms"]).iter().any(|r| r["room"] == room);
    if listed { "listed" } else { "unlisted" }.into()
}

both_backends! {
    async fn the_authorization_matrix_holds_cell_by_cell() {
        let s = Server::start_with(
            ServerOpts::new()
                .no_rate_limit()
                // The watchers read only when a typing cell asks them to.
                .env("CAUSERIE_SEND_QUEUE", 100000)
                .env("CAUSERIE_REGISTRATION", "open")
                .env("CAUSERIE_BOT_TOKENS", "robot:robot-token"),
        )
        .await;
        let cast = cast(&s).await;
        // Who watches for typing: in every room, and never the one typing.
        let owner_cookie = cast.ids.iter().find(|(n, _)| *n == "owner").and_then(|(_, i)| i.cookie.clone()).expect("owner");
        let mem_cookie = cast.ids.iter().find(|(n, _)| *n == "mem").and_then(|(_, i)| i.cookie.clone()).expect("mem");
        let mut watchers = Vec::new();
        for cookie in [&owner_cookie, &mem_cookie] {
            let mut w = session_hello(&s, cookie).await;
            for room in ROOMS {
                w.join(room).await;
            }
            watchers.push(w);
        }
        let mut wrong = Vec::new();
        let mut cells = 0;
        for (name, room, expected) in TABLE {
            let who = &cast.ids.iter().find(|(n, _)| n == name).expect("identity").1;
            let observer = if who.name == "owner" { &mut watchers[1] } else { &mut watchers[0] };
            for (path, want) in PATHS.iter().zip(expected) {
                let got = match *path {
                    "join" | "history" | "send" | "typing" | "resume" => {
                        ws_cell(&s, who, room, path, observer).await
                    }
                    "rooms frame" => rooms_frame_cell(&s, who, room).await,
                    _ => http_cell(&s, who, room, path, &cast.files[room]).await,
                };
                cells += 1;
                if got != *want {
                    wrong.push(format!("{name} × {room} × {path}: expected {want}, got {got}"));
                }
            }
        }
        assert_eq!(cells, TABLE.len() * PATHS.len());
        assert!(wrong.is_empty(), "{} of {cells} cells differ:\n{}", wrong.len(), wrong.join("\n"));
    }
}
