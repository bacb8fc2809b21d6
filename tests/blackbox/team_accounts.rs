//! A team's accounts over real HTTP, WebSockets and processes: the first
//! account is admin, registration per `CAUSERIE_REGISTRATION` (invite
//! links used up, expired, revoked), bans (open sockets closed with 4003,
//! tokens, sessions and sign-in stopped; unban restores), blocked guest
//! names, the `causerie` subcommands against a running server, and a
//! backup under load restored into a new server.

use crate::common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What these tests ask of a visitor besides [`Visitor`]'s own calls.
impl<'a> Visitor<'a> {
    /// Calls a server function that changes something (with the CSRF token).
    async fn act(&mut self, endpoint: &str, form: &[(&str, &str)]) -> (u16, String) {
        let csrf = self.csrf().await;
        let mut form = form.to_vec();
        form.push(("csrf", &csrf));
        self.call(endpoint, &form).await
    }

    async fn register(&mut self, name: &str, invite: Option<&str>) -> (u16, String) {
        let mut form = vec![("name", name), ("password", "password-1")];
        if let Some(code) = invite {
            form.push(("invite", code));
        }
        self.act("register", &form).await
    }

    async fn login(&mut self, name: &str) -> (u16, String) {
        self.act("login", &[("name", name), ("password", "password-1")])
            .await
    }

    /// A WebSocket with this visitor's cookies, after `hello` and `welcome`.
    async fn socket(&self) -> Client {
        let cookie = self.cookies();
        let mut ws = self
            .server
            .ws_connect_with(&[("Cookie", cookie.as_str())])
            .await
            .expect("websocket");
        ws.send_json(json!({"type":"hello"})).await;
        ws.expect_type("welcome").await;
        ws
    }

    async fn members(&mut self) -> Vec<Value> {
        let (status, body) = self.call("list_members", &[]).await;
        assert_eq!(status, 200, "list_members: {body}");
        serde_json::from_str::<Value>(&body)
            .map(|v| arr(&v))
            .expect("members JSON")
    }
}

/// A registered and signed-in visitor (panics if registration fails).
async fn member<'a>(s: &'a Server, name: &str) -> Visitor<'a> {
    let mut v = Visitor::new(s);
    let (status, body) = v.register(name, None).await;
    assert!(status < 400, "register {name}: {status} {body}");
    assert_eq!(v.whoami().await["name"], name);
    v
}

fn role_of(members: &[Value], name: &str) -> String {
    members
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {members:?}"))["role"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Runs `causerie ARGS` against the server's database; (exit code,
/// stdout, stderr).
async fn causerie(s: &Server, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    let url = s.database_url.clone();
    let origin = s.origin();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_causerie"))
            .args(&args)
            .env_remove("REDIS_URL")
            .env_remove("CAUSERIE_BOT_TOKENS")
            .env("DATABASE_URL", url)
            .env("CAUSERIE_PUBLIC_URL", origin)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn causerie");
        if let Some(input) = stdin {
            let _ = child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes());
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().expect("causerie output");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    })
    .await
    .expect("causerie process")
}

/// The invite code at the end of a link.
fn code_of(link: &str) -> String {
    link.rsplit('/').next().unwrap_or("").to_string()
}

both_backends! {
    async fn the_first_account_is_admin_and_the_next_are_members() {
        let s = Server::start().await;
        // An empty server says so before anyone registers.
        let mut visitor = Visitor::new(&s);
        let (status, body) = visitor.call("registration_info", &[]).await;
        assert_eq!(status, 200, "{body}");
        let info: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(info["first"], true, "{info}");

        let mut alice = member(&s, "alice").await;
        assert_eq!(alice.whoami().await["admin"], true);
        let mut bob = member(&s, "bob").await;
        assert_eq!(bob.whoami().await["admin"], false);
        let (_, body) = visitor.call("registration_info", &[]).await;
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["first"], false);

        let members = alice.members().await;
        assert_eq!(role_of(&members, "alice"), "admin");
        assert_eq!(role_of(&members, "bob"), "member");
        // Members do not see the list, nor change roles.
        let (status, body) = bob.call("list_members", &[]).await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = bob.act("set_admin", &[("name", "bob"), ("admin", "true")]).await;
        assert_eq!(status, 403, "{body}");

        // Last seen: set when an account connects.
        assert!(members.iter().all(|m| m["last_seen"].is_null()), "{members:?}");
        let ws = bob.socket().await;
        let mut seen = false;
        for _ in 0..50 {
            if !alice.members().await.iter().any(|m| m["name"] == "bob" && m["last_seen"].is_null()) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "bob's last_seen was never set");
        ws.close().await;

        // An admin makes another; the last admin cannot step down.
        let (status, body) = alice.act("set_admin", &[("name", "alice"), ("admin", "false")]).await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("without an admin"), "{body}");
        let (status, body) = alice.act("set_admin", &[("name", "bob"), ("admin", "true")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(bob.whoami().await["admin"], true);
        let (status, body) = alice.act("set_admin", &[("name", "alice"), ("admin", "false")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(role_of(&bob.members().await, "alice"), "member");
        let (status, body) = alice.call("list_members", &[]).await;
        assert_eq!(status, 403, "{body}");
    }

    async fn racing_first_registrations_make_exactly_one_admin() {
        let s = Server::start().await;
        let mut visitors: Vec<Visitor<'_>> = (0..6).map(|_| Visitor::new(&s)).collect();
        let mut csrfs = Vec::new();
        for v in &mut visitors {
            csrfs.push(v.csrf().await);
        }
        let calls = visitors.iter_mut().zip(&csrfs).enumerate().map(|(i, (v, csrf))| async move {
            let name = format!("racer{i}");
            let (status, body) = v
                .call("register", &[("name", &name), ("password", "password-1"), ("csrf", csrf)])
                .await;
            assert!(status < 400, "register {name}: {status} {body}");
            v.whoami().await["admin"] == true
        });
        let admins = futures_util::future::join_all(calls).await;
        assert_eq!(admins.iter().filter(|a| **a).count(), 1, "{admins:?}");
    }

    async fn registration_follows_the_mode_and_invite_links() {
        let s = Server::start_with(ServerOpts::new().env("CAUSERIE_REGISTRATION", "invite")).await;
        // The first account registers freely, whatever the mode.
        let mut alice = member(&s, "alice").await;
        assert_eq!(alice.whoami().await["admin"], true);

        let mut bob = Visitor::new(&s);
        let (status, body) = bob.register("bob", None).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("by invitation"), "{body}");
        let (status, body) = bob.register("bob", Some("not-a-code")).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("not valid"), "{body}");

        // A link for one registration: bob uses it, carol finds it used up.
        let (status, body) = alice.act("make_invite", &[("uses", "1"), ("hours", "24")]).await;
        assert_eq!(status, 200, "{body}");
        let made: Value = serde_json::from_str(&body).unwrap();
        let link = made["link"].as_str().unwrap().to_string();
        assert!(link.starts_with(&s.origin()) && link.contains("/invite/"), "{link}");
        let code = code_of(&link);
        let (_, body) = alice.call("list_invites", &[]).await;
        assert!(body.contains(&code), "a live invite is listed: {body}");
        let page = s.http().get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("You are invited"), "the invite page offers registration");
        let (status, body) = bob.register("bob", Some(&code)).await;
        assert!(status < 400, "{status} {body}");
        assert_eq!(bob.whoami().await["name"], "bob");
        assert_eq!(bob.whoami().await["admin"], false);
        let mut carol = Visitor::new(&s);
        let (status, body) = carol.register("carol", Some(&code)).await;
        assert_eq!(status, 410, "{body}");
        assert!(body.contains("used up"), "{body}");
        let (_, body) = alice.call("list_invites", &[]).await;
        assert!(!body.contains(&code), "a used-up invite is not listed: {body}");
        let html = s.http().get(&link).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("used up"), "a used-up link says so");

        // A revoked link.
        let (_, body) = alice.act("make_invite", &[("uses", "5"), ("hours", "24")]).await;
        let code = code_of(serde_json::from_str::<Value>(&body).unwrap()["link"].as_str().unwrap());
        let (status, body) = bob.act("revoke_invite", &[("code", &code)]).await;
        assert_eq!(status, 403, "a member cannot revoke: {body}");
        let (status, body) = alice.act("revoke_invite", &[("code", &code)]).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = carol.register("carol", Some(&code)).await;
        assert_eq!(status, 410, "{body}");
        assert!(body.contains("revoked"), "{body}");

        // An expired link (from the command line: a second to live).
        let (rc, link, err) = causerie(&s, &["invite", "--uses", "3", "--expires", "1s"], None).await;
        assert_eq!(rc, 0, "{err}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (status, body) = carol.register("carol", Some(&code_of(&link))).await;
        assert_eq!(status, 410, "{body}");
        assert!(body.contains("expired"), "{body}");
        let html = s.http().get(&link).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("expired"), "an expired link says so");
        // Nothing was made by the refusals.
        let names: Vec<Value> = alice.members().await.iter().map(|m| m["name"].clone()).collect();
        assert_eq!(names, vec![json!("alice"), json!("bob")]);
    }

    async fn closed_registration_leaves_the_command_line() {
        let s = Server::start_with(ServerOpts::new().env("CAUSERIE_REGISTRATION", "closed")).await;
        let mut alice = member(&s, "alice").await;
        assert_eq!(alice.whoami().await["admin"], true);
        let (_, link, _) = causerie(&s, &["invite"], None).await;
        let mut bob = Visitor::new(&s);
        for invite in [None, Some(code_of(&link))] {
            let (status, body) = bob.register("bob", invite.as_deref()).await;
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("closed"), "{body}");
        }
        let (rc, out, err) = causerie(&s, &["user", "add", "bob"], Some("password-1\n")).await;
        assert_eq!(rc, 0, "{out} {err}");
        let (status, body) = bob.login("bob").await;
        assert!(status < 400, "{status} {body}");
        assert_eq!(bob.whoami().await["name"], "bob");
    }

    async fn a_ban_closes_sockets_and_stops_tokens_sessions_and_sign_in() {
        let s = Server::start().await;
        let mut alice = member(&s, "alice").await;
        let mut bob = member(&s, "bob").await;
        let (status, body) = bob.act("create_token", &[("label", "script")]).await;
        assert_eq!(status, 200, "{body}");
        let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let mut by_cookie = bob.socket().await;
        let mut by_token = s.client().await;
        by_token.send_json(json!({"type":"hello","token":token})).await;
        by_token.expect_type("welcome").await;

        let (status, body) = bob.act("ban_account", &[("name", "alice")]).await;
        assert_eq!(status, 403, "a member cannot ban: {body}");
        let (status, body) = alice.act("ban_account", &[("name", "BOB")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(by_cookie.expect_close().await, Closed::Code(4003));
        assert_eq!(by_token.expect_close().await, Closed::Code(4003));

        // Its token, its session and its password no longer let it in.
        let (status, err) = s.api_post("general", Some(&token), &json!({"body":"banned"})).await;
        assert_eq!(status, 401, "{err}");
        let mut ws = s.client().await;
        ws.send_json(json!({"type":"hello","token":token})).await;
        ws.expect_error("unauthorized").await;
        assert_eq!(bob.whoami().await["name"], Value::Null);
        let mut ws = s
            .ws_connect_with(&[("Cookie", bob.cookies().as_str())])
            .await
            .unwrap();
        ws.send_json(json!({"type":"hello"})).await;
        ws.expect_error("unauthorized").await;
        let mut again = Visitor::new(&s);
        let (status, body) = again.login("bob").await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("this account is banned"), "{body}");
        // A wrong password says nothing of the ban.
        let (status, body) = again.act("login", &[("name", "bob"), ("password", "wrong-pass")]).await;
        assert_eq!(status, 401, "{body}");
        assert!(!body.contains("banned"), "{body}");
        // The name stays taken, by an account.
        let mut guest = s.client().await;
        guest.send_json(json!({"type":"hello","name":"bob"})).await;
        guest.expect_error("bad_name").await;
        let members = alice.members().await;
        assert!(members.iter().any(|m| m["name"] == "bob" && m["banned"] == true), "{members:?}");
        // The last admin cannot be banned.
        let (status, body) = alice.act("ban_account", &[("name", "alice")]).await;
        assert_eq!(status, 409, "{body}");

        // Unbanned: the password and the token work again.
        let (status, body) = alice.act("unban_account", &[("name", "bob")]).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = again.login("bob").await;
        assert!(status < 400, "{status} {body}");
        assert_eq!(again.whoami().await["name"], "bob");
        let (status, msg) = s.api_post("general", Some(&token), &json!({"body":"back"})).await;
        assert_eq!(status, 201, "{msg}");
    }

    async fn an_admin_ends_a_guest_and_blocks_the_name_for_a_day() {
        let s = Server::start().await;
        let mut alice = member(&s, "alice").await;
        let mut mallory = s.guest_in("mallory", "general").await;
        let mut other = s.guest_in("other", "general").await;
        let (status, body) = alice.act("block_guest", &[("name", "alice")]).await;
        assert_eq!(status, 409, "an account is banned, not blocked: {body}");
        let (status, body) = alice.act("block_guest", &[("name", "Mallory")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(mallory.expect_close().await, Closed::Code(4003));
        let mut again = s.client().await;
        again.send_json(json!({"type":"hello","name":"mallory"})).await;
        let e = again.expect_error("bad_name").await;
        assert!(e["message"].as_str().unwrap_or("").contains("blocked"), "{e}");
        // Others stay.
        let ack = other.send_msg("general", "still here", "o-1").await;
        assert_eq!(ack["type"], "ack");
        s.guest("mallory2").await;
    }

    async fn the_command_line_works_against_a_running_server() {
        let s = Server::start_with(ServerOpts::new().env("CAUSERIE_REGISTRATION", "invite")).await;
        // user add, with the password on standard input.
        let (rc, out, err) = causerie(&s, &["user", "add", "root", "--admin"], Some("root-password\n")).await;
        assert_eq!(rc, 0, "{out} {err}");
        let mut root = Visitor::new(&s);
        let (status, body) = root.act("login", &[("name", "root"), ("password", "root-password")]).await;
        assert!(status < 400, "{status} {body}");
        assert_eq!(root.whoami().await["admin"], true);
        let (rc, out, err) = causerie(&s, &["user", "add", "bob"], Some("password-1")).await;
        assert_eq!(rc, 0, "{out} {err}");
        assert_eq!(role_of(&root.members().await, "bob"), "member");

        // Clear refusals, non-zero exits.
        let (rc, _, err) = causerie(&s, &["user", "add", "BOB"], Some("password-1\n")).await;
        assert_eq!(rc, 1, "{err}");
        assert!(err.contains("taken"), "{err}");
        let (rc, _, err) = causerie(&s, &["user", "add", "short"], Some("abc\n")).await;
        assert_eq!(rc, 1, "{err}");
        assert!(err.contains("password"), "{err}");
        let (rc, _, err) = causerie(&s, &["user", "ban", "nobody"], None).await;
        assert_eq!(rc, 1, "{err}");
        assert!(err.contains("no account"), "{err}");
        let (rc, _, err) = causerie(&s, &["token", "add", "nobody"], None).await;
        assert_eq!(rc, 1, "{err}");
        assert!(err.contains("no account"), "{err}");
        let (rc, _, err) = causerie(&s, &["invite", "--expires", "soon"], None).await;
        assert_eq!(rc, 2, "{err}");
        let (rc, _, err) = causerie(&s, &["invite", "--uses", "0"], None).await;
        assert_eq!(rc, 1, "{err}");
        let (rc, _, err) = causerie(&s, &["user", "ban", "root"], None).await;
        assert_eq!(rc, 1, "the last admin: {err}");
        assert!(!err.contains("panicked"), "{err}");

        // token add prints a token that works.
        let (rc, token, err) = causerie(&s, &["token", "add", "bob", "--label", "ci"], None).await;
        assert_eq!(rc, 0, "{err}");
        let (status, msg) = s.api_post("general", Some(&token), &json!({"body":"from the cli token"})).await;
        assert_eq!(status, 201, "{msg}");
        assert_eq!(msg["author"], "bob");

        // A ban from the command line closes bob's open socket on the running server.
        let mut ws = s.client().await;
        ws.send_json(json!({"type":"hello","token":token})).await;
        ws.expect_type("welcome").await;
        let (rc, out, err) = causerie(&s, &["user", "ban", "bob"], None).await;
        assert_eq!(rc, 0, "{out} {err}");
        assert_eq!(ws.expect_close_within(Duration::from_secs(6)).await, Closed::Code(4003));
        let (status, _) = s.api_post("general", Some(&token), &json!({"body":"banned"})).await;
        assert_eq!(status, 401);
        let (rc, _, err) = causerie(&s, &["user", "unban", "bob"], None).await;
        assert_eq!(rc, 0, "{err}");
        let (status, _) = s.api_post("general", Some(&token), &json!({"body":"unbanned"})).await;
        assert_eq!(status, 201);

        // invite prints a link that registers someone.
        let (rc, link, err) = causerie(&s, &["invite", "--uses", "2", "--expires", "1h"], None).await;
        assert_eq!(rc, 0, "{err}");
        assert!(link.starts_with(&format!("{}/invite/", s.origin())), "{link}");
        let mut carol = Visitor::new(&s);
        let (status, body) = carol.register("carol", Some(&code_of(&link))).await;
        assert!(status < 400, "{status} {body}");
        assert_eq!(carol.whoami().await["name"], "carol");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_under_load_restores_every_acknowledged_message() {
    let s = Server::start_with(ServerOpts::new().no_rate_limit()).await;
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writer = s.guest_in("writer", "general").await;
    let task = {
        let acked = acked.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                // Ten in flight at a time.
                let nonces: Vec<String> = (0..10).map(|i| format!("w-{}", n + i)).collect();
                n += 10;
                for nonce in &nonces {
                    writer.send_msg_nowait("general", nonce, nonce).await;
                }
                for nonce in &nonces {
                    let ack = writer.wait_ack(nonce).await;
                    acked
                        .lock()
                        .unwrap()
                        .push(ack["id"].as_i64().expect("ack id"));
                }
            }
        })
    };
    while acked.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before: Vec<i64> = acked.lock().unwrap().clone();
    let copy = fresh_dir();
    let path = copy.path().join("chat.db");
    let (rc, out, err) = causerie(&s, &["backup", path.to_str().unwrap()], None).await;
    assert_eq!(rc, 0, "{out} {err}");
    let during = acked.lock().unwrap().len();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    task.await.unwrap();
    let total = acked.lock().unwrap().len();
    assert!(
        during > before.len(),
        "the writer kept writing during the backup"
    );
    // A second backup to the same path is refused.
    let (rc, _, err) = causerie(&s, &["backup", path.to_str().unwrap()], None).await;
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("exists"), "{err}");

    // The restore: a new server on the copy.
    let restored = Server::start_with(ServerOpts::new().dir(copy)).await;
    let mut ids = Vec::new();
    let mut before_id: Option<i64> = None;
    loop {
        let q = match before_id {
            Some(b) => format!("?limit=200&before={b}"),
            None => "?limit=200".into(),
        };
        let page = restored.api_messages("general", &q).await;
        let batch = ids_of(&page["messages"]);
        if batch.is_empty() {
            break;
        }
        before_id = batch.first().copied();
        ids.extend(batch);
        if page["more"] != true {
            break;
        }
    }
    ids.sort_unstable();
    let n = ids.len() as i64;
    assert_eq!(
        ids,
        (1..=n).collect::<Vec<_>>(),
        "ids are dense from 1: a prefix"
    );
    for id in &before {
        assert!(
            ids.contains(id),
            "message {id} was acknowledged before the backup"
        );
    }
    assert!(n as usize <= total, "nothing the server did not store");
}

fn ids_of(v: &Value) -> Vec<i64> {
    arr(v).iter().filter_map(|m| m["id"].as_i64()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_on_postgresql_says_to_use_pg_dump() {
    if postgres_url().is_none() {
        eprintln!("backup_on_postgresql_says_to_use_pg_dump: skipped (set CAUSERIE_TEST_POSTGRES)");
        return;
    }
    let s = Server::start_with(ServerOpts::new().pg(PgDb::create())).await;
    let dir = fresh_dir();
    let path = dir.path().join("copy.db");
    let (rc, _, err) = causerie(&s, &["backup", path.to_str().unwrap()], None).await;
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!path.exists());
}
