//! Names as identities (security review, issue 12), against the real binary
//! on both stores: a registration never takes over a browser's guest name
//! or its direct messages, clients without the guest cookie respect the
//! browsers' names, look-alike and invisible names are refused, and one
//! browser or address cannot squat many names.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// What a `hello` came to: the `welcome`, or the `error` frame.
async fn hello_as(s: &Server, cookie: Option<&str>, name: &str) -> (Client, Result<Value, Value>) {
    let header = cookie.map(|c| format!("causerie_guest={c}"));
    let mut c = match &header {
        Some(h) => s.ws_connect_with(&[("Cookie", h.as_str())]).await,
        None => s.ws_connect(None).await,
    }
    .expect("websocket");
    c.send_json(json!({"type":"hello","name":name})).await;
    let v = c
        .recv_where("welcome or error", |v| {
            typ(v) == "welcome" || typ(v) == "error"
        })
        .await;
    let out = if typ(&v) == "welcome" { Ok(v) } else { Err(v) };
    (c, out)
}

/// A guest that must be welcomed under `name`.
async fn guest_ok(s: &Server, cookie: Option<&str>, name: &str) -> Client {
    let (c, r) = hello_as(s, cookie, name).await;
    let w = r.unwrap_or_else(|e| panic!("hello {name:?} (cookie {cookie:?}) refused: {e}"));
    assert_eq!(w["user"]["name"], name, "{w}");
    c
}

/// A `hello` that must be refused with `code`; returns the message.
async fn guest_refused(s: &Server, cookie: Option<&str>, name: &str, code: &str) -> String {
    let (c, r) = hello_as(s, cookie, name).await;
    let e = match r {
        Ok(w) => panic!("hello {name:?} (cookie {cookie:?}) must be refused, got {w}"),
        Err(e) => e,
    };
    assert_eq!(e["code"], code, "hello {name:?}: {e}");
    c.close().await;
    e["message"].as_str().unwrap_or_default().to_string()
}

/// A browser: the session cookie the server sets, and maybe a guest cookie.
struct Browser<'a> {
    server: &'a Server,
    session: Option<String>,
    guest: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a Server, guest: Option<&str>) -> Self {
        Browser {
            server,
            session: None,
            guest: guest.map(|g| format!("causerie_guest={g}")),
        }
    }

    fn cookie_header(&self) -> String {
        [self.session.clone(), self.guest.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn call(&mut self, endpoint: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let res = self
            .server
            .http()
            .post(self.server.url(&format!("/_sfn/{endpoint}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("cookie", self.cookie_header())
            .body(body)
            .send()
            .await
            .expect("server function call");
        // Both cookies kept, as a browser keeps them: a visitor's form
        // token is bound to its guest cookie.
        for v in res.headers().get_all("set-cookie") {
            if let Some(pair) = v.to_str().unwrap_or("").split(';').next() {
                if pair.starts_with("causerie_session=") {
                    self.session = Some(pair.to_string());
                } else if pair.starts_with("causerie_guest=") {
                    self.guest = Some(pair.to_string());
                }
            }
        }
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    /// Registers `name`; (status, body).
    async fn register(&mut self, name: &str) -> (u16, String) {
        let (status, body) = self.call("whoami", &[]).await;
        assert_eq!(status, 200, "whoami: {body}");
        let me: Value = serde_json::from_str(&body).expect("whoami JSON");
        let csrf = me["csrf"].as_str().expect("csrf").to_string();
        self.call(
            "register",
            &[("name", name), ("password", "password1"), ("csrf", &csrf)],
        )
        .await
    }

    async fn whoami(&mut self) -> Value {
        let (_, body) = self.call("whoami", &[]).await;
        serde_json::from_str(&body).expect("whoami JSON")
    }

    /// A WebSocket with this browser's cookies, after a `hello` without a
    /// name (the session's account).
    async fn signed_in_ws(&self) -> Client {
        let h = self.cookie_header();
        let mut c = self
            .server
            .ws_connect_with(&[("Cookie", h.as_str())])
            .await
            .expect("websocket");
        c.send_json(json!({"type":"hello"})).await;
        c.expect_type("welcome").await;
        c
    }
}

fn refused_taken(status: u16, body: &str) -> bool {
    status >= 400 && body.contains("taken")
}

/// Makes every guest-name reservation older than 30 days, as if the
/// browsers had not come back for a month.
async fn age_guest_names(s: &Server) {
    // 31 days in milliseconds (a BIGINT literal, also in PostgreSQL).
    exec_sql(
        s,
        "UPDATE guest_names SET last_seen_ms = last_seen_ms - 2678400000",
    )
    .await;
}

/// alice (an operator bot) writes to guest `who` in their DM room.
async fn dm_from_alice(s: &Server, who: &mut Client, who_name: &str, body: &str) -> String {
    let room = format!("dm:alice:{who_name}");
    who.join(&room).await;
    let mut alice = s.account("alice").await;
    alice.join(&room).await;
    alice.send_msg(&room, body, "dm-1").await;
    who.messages(&room, 1).await;
    alice.close().await;
    room
}

both_backends! {
    async fn registration_cannot_take_a_browsers_guest_name_or_its_dms() {
        let s = Server::start_with(ServerOpts::new().with_accounts()).await;
        let mut gina = guest_ok(&s, Some("browser-gina"), "gina").await;
        let room = dm_from_alice(&s, &mut gina, "gina", "for gina only").await;
        gina.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Offline now; another browser (or none) cannot register the name.
        let mut thief = Browser::new(&s, Some("browser-thief"));
        let (status, body) = thief.register("gina").await;
        assert!(refused_taken(status, &body), "{status} {body}");
        let mut bare = Browser::new(&s, None);
        let (status, body) = bare.register("GINA").await;
        assert!(refused_taken(status, &body), "{status} {body}");
        assert_eq!(bare.whoami().await["name"], Value::Null);

        // The guest still has her name and her conversation.
        let mut gina = guest_ok(&s, Some("browser-gina"), "gina").await;
        gina.join(&room).await;
        gina.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Her own browser may turn the guest name into an account: she
        // keeps the conversation, and the guest reservation is gone.
        let mut own = Browser::new(&s, Some("browser-gina"));
        let (status, body) = own.register("gina").await;
        assert!(status < 400, "the holder registers: {status} {body}");
        assert_eq!(own.whoami().await["name"], "gina");
        let mut ws = own.signed_in_ws().await;
        let j = ws.join(&room).await;
        assert_eq!(j["history"][0]["body"], "for gina only", "{j}");
        let m = guest_refused(&s, Some("browser-gina"), "gina", "bad_name").await;
        assert!(m.contains("taken"), "{m}");
    }

    async fn a_name_with_direct_messages_is_never_released() {
        let s = Server::start_with(ServerOpts::new().with_accounts()).await;
        let mut hana = guest_ok(&s, Some("browser-hana"), "hana").await;
        dm_from_alice(&s, &mut hana, "hana", "for hana only").await;
        hana.close().await;
        // A name without conversations, by another browser.
        guest_ok(&s, Some("browser-ivan"), "ivan").await.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        age_guest_names(&s).await;

        // 31 days later: the name with DMs stays with its browser, against
        // guests with or without a cookie and against registration.
        guest_refused(&s, Some("browser-other"), "hana", "bad_name").await;
        guest_refused(&s, None, "hana", "bad_name").await;
        let mut thief = Browser::new(&s, None);
        let (status, body) = thief.register("hana").await;
        assert!(refused_taken(status, &body), "{status} {body}");
        guest_ok(&s, Some("browser-hana"), "hana").await.close().await;

        // The name without conversations is free again.
        guest_ok(&s, Some("browser-other"), "ivan").await.close().await;
    }

    async fn clients_without_the_cookie_cannot_take_a_browsers_name() {
        let s = Server::start().await;
        guest_ok(&s, Some("browser-jules"), "jules").await.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let m = guest_refused(&s, None, "jules", "bad_name").await;
        assert!(m.contains("taken"), "{m}");
        guest_refused(&s, None, "JULES", "bad_name").await;
        // Names no browser holds are still open to them.
        guest_ok(&s, None, "passing").await.close().await;
        guest_ok(&s, Some("browser-jules"), "jules").await.close().await;
    }

    async fn look_alike_and_invisible_names_are_refused() {
        let s = Server::start_with(
            ServerOpts::new().env("CAUSERIE_BOT_TOKENS", "rôbot:robot-token"),
        )
        .await;
        let _dave = guest_ok(&s, Some("browser-dave"), "dave").await;
        // Cyrillic а (U+0430), fullwidth letters, an invisible Hangul filler.
        for name in ["dаve", "ｄａｖｅ", "dave\u{3164}", "\u{3164}", "d\u{200b}ave"] {
            guest_refused(&s, Some("browser-mallory"), name, "bad_name").await;
            guest_refused(&s, None, name, "bad_name").await;
        }
        let m = guest_refused(&s, None, "ｄａｖｅ", "bad_name").await;
        assert!(m.contains("dave"), "the message shows the plain form: {m}");
        // Bots' names compare without case beyond ASCII.
        guest_refused(&s, None, "RÔBOT", "bad_name").await;
        // A whole-script look-alike of a name held: Cyrillic "аре" and "ape".
        let _ape = guest_ok(&s, Some("browser-ape"), "ape").await;
        guest_refused(&s, Some("browser-mallory"), "аре", "bad_name").await;
        // Registration applies the same rules.
        let mut b = Browser::new(&s, None);
        for name in ["dаve", "ｄａｖｅ", "dave\u{3164}", "Rôbot"] {
            let (status, body) = b.register(name).await;
            assert!(status >= 400, "{name:?}: {status} {body}");
        }
        assert_eq!(b.whoami().await["name"], Value::Null);
        // Ordinary names from other scripts are fine.
        guest_ok(&s, Some("browser-e"), "élodie").await.close().await;
        guest_ok(&s, Some("browser-z"), "Zoë").await.close().await;
        guest_refused(&s, Some("browser-y"), "ZOË", "bad_name").await;
    }

    async fn one_browser_holds_a_few_names() {
        let s = Server::start_with(ServerOpts::new().env("CAUSERIE_GUEST_NAMES_PER_IP_PER_HOUR", 1000)).await;
        for name in ["kim1", "kim2", "kim3"] {
            guest_ok(&s, Some("browser-kim"), name).await.close().await;
        }
        let m = guest_refused(&s, Some("browser-kim"), "kim4", "bad_name").await;
        assert!(m.contains("3"), "the message says the limit: {m}");
        // Names it holds stay free to use.
        guest_ok(&s, Some("browser-kim"), "kim2").await.close().await;
        guest_ok(&s, Some("browser-kim"), "KIM1").await.close().await;

        // Many claims at once from one browser: still at most three.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let addr = s.addr;
            tasks.push(tokio::spawn(async move {
                let req = {
                    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                    let mut r = format!("ws://{addr}/ws").into_client_request().unwrap();
                    r.headers_mut()
                        .insert("Cookie", "causerie_guest=browser-squat".parse().unwrap());
                    r
                };
                let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
                use futures_util::{SinkExt, StreamExt};
                let hello = json!({"type":"hello","name":format!("squat{i}")}).to_string();
                ws.send(tokio_tungstenite::tungstenite::Message::Text(hello.into()))
                    .await
                    .unwrap();
                while let Some(Ok(m)) = ws.next().await {
                    if let Ok(t) = m.to_text()
                        && let Ok(v) = serde_json::from_str::<Value>(t)
                    {
                        match typ(&v) {
                            "welcome" => return true,
                            "error" => return false,
                            _ => {}
                        }
                    }
                }
                false
            }));
        }
        let mut won = 0;
        for t in tasks {
            if t.await.unwrap() {
                won += 1;
            }
        }
        assert_eq!(won, 3, "one browser got {won} names at once");
    }

    async fn new_guest_names_per_address_are_limited() {
        let s = Server::start_with(ServerOpts::new().env("CAUSERIE_GUEST_NAMES_PER_IP_PER_HOUR", 4)).await;
        for i in 0..4 {
            guest_ok(&s, Some(&format!("browser-{i}")), &format!("lee{i}")).await.close().await;
        }
        let (_c, r) = hello_as(&s, Some("browser-9"), "lee9").await;
        let e = r.expect_err("a fifth new name from one address within the hour");
        assert!(
            e["code"] == "rate_limited" || e["code"] == "bad_name",
            "{e}"
        );
        assert!(e["message"].as_str().unwrap_or_default().contains("hour"), "{e}");
        // A name the browser holds is not a new one.
        guest_ok(&s, Some("browser-1"), "lee1").await.close().await;
    }
}

#[test]
fn the_name_limits_are_in_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_causerie"))
        .arg("--help")
        .output()
        .expect("run causerie --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "CAUSERIE_GUEST_NAMES_PER_BROWSER",
        "CAUSERIE_GUEST_NAMES_PER_IP_PER_HOUR",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

both_backends! {
    async fn direct_rooms_are_only_with_someone() {
        // Written to a name no one holds, messages would go to whoever
        // takes the name next: such a room is not made.
        let s = Server::start_with(ServerOpts::new().with_accounts()).await;
        let mut ann = guest_ok(&s, Some("cookie-ann"), "ann").await;
        ann.send_json(json!({"type":"join","room":"dm:ann:ghost"})).await;
        let e = ann.recv_where("the refusal", |v| typ(v) == "error").await;
        assert_eq!(e["code"], "not_found", "{e}");
        assert!(e["message"].as_str().unwrap().contains("ghost"), "{e}");
        // A bot or account, and a guest a browser holds, are someone.
        ann.join("dm:alice:ann").await;
        let _dora = guest_ok(&s, Some("cookie-dora"), "dora").await;
        ann.join("dm:ann:dora").await;
        // The name taken later finds no room of ann's.
        let (_ghost, welcome) = hello_as(&s, Some("cookie-ghost"), "ghost").await;
        let welcome = welcome.expect("ghost is free");
        let rooms = welcome["rooms"].as_array().expect("rooms");
        assert!(
            rooms.iter().all(|r| r != "dm:ann:ghost"),
            "no room was made: {welcome}"
        );
        // Dora's welcome, by contrast, lists the room ann opened with her.
        let (_dora2, welcome) = hello_as(&s, Some("cookie-dora"), "dora").await;
        let welcome = welcome.expect("dora's own browser");
        assert!(
            welcome["rooms"].as_array().expect("rooms").iter().any(|r| r == "dm:ann:dora"),
            "{welcome}"
        );
    }
}
