//! Accounts over real HTTP and WebSocket: register, sign in with the session
//! cookie, CSRF checks, API tokens created, used and revoked, and guests
//! kept off registered names.

use crate::common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn register_sign_in_chat_and_sign_out() {
    let s = Server::start().await;
    let mut v = Visitor::new(&s);
    let csrf = v.csrf().await;
    let (status, body) = v
        .call(
            "register",
            &[
                ("name", "alice"),
                ("password", "correct horse"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert!(status < 400, "register: {status} {body}");
    assert_eq!(v.whoami().await["name"], "alice");

    // The session cookie is enough on the WebSocket: hello without a name.
    let mut ws = v.ws().await;
    ws.send_json(json!({"type":"hello"})).await;
    let w = ws.expect_type("welcome").await;
    // The first account on the server is its admin, and its welcome says so.
    assert_eq!(
        w["user"],
        json!({"name":"alice","guest":false,"admin":true})
    );
    ws.join("general").await;
    let ack = ws.send_msg("general", "signed in", "a-1").await;
    assert_eq!(ack["type"], "ack");
    let page = s.api_messages("general", "").await;
    assert_eq!(page["messages"][0]["author"], "alice");

    // Signing out ends the session: the same cookie is no longer anyone.
    let csrf = v.csrf().await;
    let (status, body) = v.call("logout", &[("csrf", &csrf)]).await;
    assert!(status < 400, "logout: {status} {body}");
    let mut ws = v.ws().await;
    ws.send_json(json!({"type":"hello"})).await;
    ws.expect_error("unauthorized").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_checks_the_password_and_rotates_the_session() {
    let s = Server::start().await;
    let mut a = Visitor::new(&s);
    let csrf = a.csrf().await;
    a.call(
        "register",
        &[
            ("name", "bob"),
            ("password", "s3cret-pass"),
            ("csrf", &csrf),
        ],
    )
    .await;

    let mut b = Visitor::new(&s);
    let csrf = b.csrf().await;
    let before = b.cookie.clone();
    let (status, body) = b
        .call(
            "login",
            &[("name", "bob"), ("password", "wrong-pass"), ("csrf", &csrf)],
        )
        .await;
    assert!(status >= 400, "a wrong password must fail: {status} {body}");
    assert!(body.contains("wrong name or password"), "{body}");
    assert_eq!(b.whoami().await["name"], Value::Null);

    let (status, body) = b
        .call(
            "login",
            &[
                ("name", "BOB"),
                ("password", "s3cret-pass"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert!(status < 400, "login: {status} {body}");
    assert_eq!(b.whoami().await["name"], "bob");
    assert_ne!(b.cookie, before, "the session id changes at sign-in");
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_need_the_csrf_token_and_our_origin() {
    let s = Server::start().await;
    let mut v = Visitor::new(&s);
    v.csrf().await;
    let (status, body) = v
        .call(
            "register",
            &[
                ("name", "mallory"),
                ("password", "password1"),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert!(status >= 400, "{status} {body}");
    assert!(body.contains("expired"), "{body}");
    assert_eq!(v.whoami().await["name"], Value::Null);

    let csrf = v.csrf().await;
    let res = s
        .http()
        .post(s.url("/_sfn/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "http://evil.example")
        .header("cookie", v.cookies())
        .body(serde_urlencoded(&[
            ("name", "mallory"),
            ("password", "password1"),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(v.whoami().await["name"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_cannot_take_registered_names_and_names_are_kept() {
    let s = Server::start().await;
    let mut v = Visitor::new(&s);
    let csrf = v.csrf().await;
    v.call(
        "register",
        &[
            ("name", "carol"),
            ("password", "password1"),
            ("csrf", &csrf),
        ],
    )
    .await;
    let mut g = s.client().await;
    g.send_json(json!({"type":"hello","name":"Carol"})).await;
    g.expect_error("bad_name").await;

    // A browser's guest name stays with that browser after it leaves.
    let mut first = s
        .ws_connect_with(&[("Cookie", "causerie_guest=browser-one")])
        .await
        .unwrap();
    first.hello("dave").await;
    first.close().await;
    let mut other = s
        .ws_connect_with(&[("Cookie", "causerie_guest=browser-two")])
        .await
        .unwrap();
    other.send_json(json!({"type":"hello","name":"dave"})).await;
    other.expect_error("bad_name").await;
    let mut again = s
        .ws_connect_with(&[("Cookie", "causerie_guest=browser-one")])
        .await
        .unwrap();
    let w = again.hello("dave").await;
    assert_eq!(w["user"]["guest"], true);

    // And registration cannot take a name a guest holds online.
    let mut r = Visitor::new(&s);
    let csrf = r.csrf().await;
    let (status, body) = r
        .call(
            "register",
            &[("name", "dave"), ("password", "password1"), ("csrf", &csrf)],
        )
        .await;
    assert!(status >= 400 && body.contains("taken"), "{status} {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_are_created_used_and_revoked() {
    let s = Server::start().await;
    let mut v = Visitor::new(&s);
    let csrf = v.csrf().await;
    v.call(
        "register",
        &[("name", "erin"), ("password", "password1"), ("csrf", &csrf)],
    )
    .await;
    let csrf = v.csrf().await;
    let (status, body) = v
        .call("create_token", &[("label", "deploy bot"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, 200, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("cz_") && token.len() > 40, "{token}");

    // The token posts over HTTP and says hello on the WebSocket.
    let (status, msg) = s
        .api_post("general", Some(&token), &json!({"body":"from a script"}))
        .await;
    assert_eq!(status, 201, "{msg}");
    assert_eq!(msg["author"], "erin");
    let mut ws = s.client().await;
    ws.send_json(json!({"type":"hello","token":token})).await;
    let w = ws.expect_type("welcome").await;
    assert_eq!(w["user"]["name"], "erin");

    // Only its hash is stored.
    let db = std::fs::read(s.db_path()).unwrap_or_default();
    let wal = std::fs::read(format!("{}-wal", s.db_path().display())).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token itself must not be stored"
        );
    }

    let (_, body) = v.call("list_tokens", &[]).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let (status, body) = v
        .call("revoke_token", &[("id", &id), ("csrf", &csrf)])
        .await;
    assert!(status < 400, "{body}");

    let (status, err) = s
        .api_post("general", Some(&token), &json!({"body":"after revoking"}))
        .await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["error"]["code"], "unauthorized");
    let mut ws = s.client().await;
    ws.send_json(json!({"type":"hello","token":token})).await;
    ws.expect_error("unauthorized").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_per_address_are_capped() {
    let s = Server::start_with(ServerOpts::new().env("CAUSERIE_CONNECTIONS_PER_IP", 3)).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(s.client().await);
    }
    let refused = s.ws_connect(None).await;
    assert!(
        refused.is_err(),
        "a fourth connection from one address is refused"
    );
    drop(open.pop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        s.ws_connect(None).await.is_ok(),
        "a slot frees when one closes"
    );
}

/// A socket opened with the visitor's session, in `general`.
async fn session_socket(v: &Visitor<'_>) -> Client {
    let mut ws = v.ws().await;
    ws.send_json(json!({"type":"hello"})).await;
    ws.expect_type("welcome").await;
    ws.join("general").await;
    ws
}

async fn still_open(ws: &mut Client, what: &str) {
    let n = ws.nonce();
    let v = ws.send_msg_result("general", what, &n).await;
    assert_eq!(v["type"], "ack", "{what}: {v}");
}

both_backends! {
async fn signing_out_closes_that_sessions_open_sockets() {
    let s = Server::start().await;
    let mut laptop = Visitor::new(&s);
    register(&mut laptop, "alice", "correct horse").await;
    let phone = sign_in(&s, "alice", "correct horse").await;
    let mut on_laptop = session_socket(&laptop).await;
    let mut on_phone = session_socket(&phone).await;
    let csrf = laptop.csrf().await;
    let (status, body) = laptop.call("logout", &[("csrf", &csrf)]).await;
    assert!(status < 400, "logout: {status} {body}");
    assert_eq!(on_laptop.expect_close().await, Closed::Code(4001));
    // The other session is not signed out.
    still_open(&mut on_phone, "the phone is still signed in").await;
}
}

both_backends! {
async fn revoking_a_token_closes_its_open_sockets() {
    let s = Server::start().await;
    let mut v = Visitor::new(&s);
    register(&mut v, "erin", "password1").await;
    let mut tokens = Vec::new();
    for label in ["deploy", "backup"] {
        let csrf = v.csrf().await;
        let (status, body) = v
            .call("create_token", &[("label", label), ("csrf", &csrf)])
            .await;
        assert_eq!(status, 200, "{body}");
        let created: Value = serde_json::from_str(&body).unwrap();
        tokens.push((
            created["token"].as_str().unwrap().to_string(),
            created["row"]["id"].as_i64().unwrap().to_string(),
        ));
    }
    let mut sockets = Vec::new();
    for (token, _) in &tokens {
        let mut ws = s.client().await;
        ws.send_json(json!({"type":"hello","token":token})).await;
        ws.expect_type("welcome").await;
        ws.join("general").await;
        sockets.push(ws);
    }
    let csrf = v.csrf().await;
    let (status, body) = v
        .call("revoke_token", &[("id", &tokens[0].1), ("csrf", &csrf)])
        .await;
    assert!(status < 400, "{body}");
    assert_eq!(sockets[0].expect_close().await, Closed::Code(4001));
    still_open(&mut sockets[1], "the other token still works").await;
    let (status, _) = s
        .api_post("general", Some(&tokens[0].0), &json!({"body":"after"}))
        .await;
    assert_eq!(status, 401);
}
}

both_backends! {
async fn a_password_change_ends_the_other_sessions() {
    let s = Server::start().await;
    let mut laptop = Visitor::new(&s);
    register(&mut laptop, "dana", "first-password").await;
    let mut stolen = sign_in(&s, "dana", "first-password").await;
    let mut on_laptop = session_socket(&laptop).await;
    let mut on_stolen = session_socket(&stolen).await;

    // The current password is needed.
    let csrf = laptop.csrf().await;
    let (status, body) = laptop
        .call(
            "change_password",
            &[
                ("current", "wrong-guess"),
                ("password", "second-password"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("current password"), "{body}");

    let (status, body) = laptop
        .call(
            "change_password",
            &[
                ("current", "first-password"),
                ("password", "second-password"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert!(status < 400, "change_password: {status} {body}");
    // The other session's socket closes, and the session no longer counts.
    assert_eq!(on_stolen.expect_close().await, Closed::Code(4001));
    assert_eq!(stolen.whoami().await["name"], Value::Null);
    let mut again = stolen.ws().await;
    again.send_json(json!({"type":"hello"})).await;
    again.expect_error("unauthorized").await;
    // This session goes on, socket and forms alike.
    still_open(&mut on_laptop, "the laptop goes on").await;
    assert_eq!(laptop.whoami().await["name"], "dana");
    let csrf = laptop.csrf().await;
    let (status, body) = laptop
        .call("create_token", &[("label", "after"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, 200, "{body}");
    // The new password signs in (sign-in attempts per address are
    // limited to five at once: this is the fifth).
    sign_in(&s, "dana", "second-password").await;
}
}

/// Sign-out and revocation reach every node: a session's socket on node B
/// closes when it signs out on node A (PostgreSQL and Redis).
#[tokio::test(flavor = "multi_thread")]
async fn signing_out_closes_sockets_on_every_node() {
    let (Some(_), Some(redis)) = (postgres_url(), redis_url()) else {
        eprintln!("skipped: set CAUSERIE_TEST_POSTGRES and CAUSERIE_TEST_REDIS");
        return;
    };
    let db = PgDb::create();
    let a = Server::start_with(ServerOpts::new().pg(db.clone()).redis(&redis)).await;
    let b = Server::start_with(ServerOpts::new().pg(db.clone()).redis(&redis)).await;
    let mut on_a = Visitor::new(&a);
    register(&mut on_a, "nomad", "correct horse").await;
    // The same cookies, on the other node.
    let mut on_b = Visitor::new(&b);
    on_b.cookie = on_a.cookie.clone();
    on_b.guest = on_a.guest.clone();
    let mut socket_b = session_socket(&on_b).await;
    a.wait_healthy(TIMEOUT).await;
    b.wait_healthy(TIMEOUT).await;
    let csrf = on_a.csrf().await;
    let (status, body) = on_a.call("logout", &[("csrf", &csrf)]).await;
    assert!(status < 400, "logout: {status} {body}");
    assert_eq!(socket_b.expect_close().await, Closed::Code(4001));
}
