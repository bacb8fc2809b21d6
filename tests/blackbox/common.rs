//! Black-box helpers: spawn the real `causerie` binary on a random port with
//! a fresh SQLite file (or a fresh PostgreSQL database), talk to it over
//! WebSockets and HTTP.
//!
//! Every test starts its own [`Server`]; the child process is killed when the
//! `Server` is dropped.
//!
//! Tests written inside [`both_backends!`] run twice: `NAME::sqlite`, and
//! `NAME::postgres` against the server named by `CAUSERIE_TEST_POSTGRES`
//! (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), each server with a
//! database of its own; without that variable the PostgreSQL runs return at
//! once with a note.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bot configured by [`ServerOpts::with_bot`].
pub const BOT_NAME: &str = "testbot";
pub const BOT_TOKEN: &str = "s3cret-token";
pub const BOT_TOKENS: &str = "testbot:s3cret-token";
/// Operator tokens for named accounts (`<name>-token`), for tests that need
/// non-guest users (direct messages need an account).
pub const ACCOUNT_TOKENS: &str =
    "testbot:s3cret-token,alice:alice-token,bob:bob-token,carol:carol-token";

/// How long a test waits for any one frame, HTTP answer or log line.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to print its address.
const STARTUP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------

/// Runs an SQL statement on a server's database, SQLite or PostgreSQL:
/// for tests that age rows, as if time had passed.
pub async fn exec_sql(s: &Server, sql: &str) {
    if let Some(pg) = &s.pg {
        pg_admin_exec(&pg.url, sql).expect("SQL on PostgreSQL");
    } else {
        use sqlx::Connection;
        let url = format!("sqlite://{}", s.db_path().display());
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open sqlite");
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .expect("SQL on SQLite");
        let _ = c.close().await;
    }
}

/// Settings for one server process.
#[derive(Clone)]
pub struct ServerOpts {
    /// Extra environment variables (override the defaults below).
    pub env: Vec<(String, String)>,
    /// Reuse this directory (and its `chat.db`) instead of a fresh one.
    pub dir: Option<Arc<tempfile::TempDir>>,
    /// The store; by default the one of the running [`both_backends!`] test.
    pub backend: Backend,
    /// Share this PostgreSQL database (several nodes of one cluster).
    pub pg: Option<Arc<PgDb>>,
    /// Start the process with this open-file limit (soft and hard).
    pub nofile: Option<u64>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            env: Vec::new(),
            dir: None,
            backend: current_backend(),
            pg: None,
            nofile: None,
        }
    }
}

impl ServerOpts {
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs against this PostgreSQL database (implies the PostgreSQL backend).
    pub fn pg(mut self, db: Arc<PgDb>) -> Self {
        self.backend = Backend::Postgres;
        self.pg = Some(db);
        self
    }
    /// Fans out through this Redis (`REDIS_URL`).
    pub fn redis(self, url: &str) -> Self {
        self.env("REDIS_URL", url)
    }
    pub fn env(mut self, k: &str, v: impl ToString) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    /// Configures the `testbot:s3cret-token` bot.
    pub fn with_bot(self) -> Self {
        self.env("CAUSERIE_BOT_TOKENS", BOT_TOKENS)
    }
    /// Configures the bot and the accounts alice, bob and carol.
    pub fn with_accounts(self) -> Self {
        self.env("CAUSERIE_BOT_TOKENS", ACCOUNT_TOKENS)
    }
    /// Lifts the per-user rate limit far out of the way of bulk tests.
    pub fn no_rate_limit(self) -> Self {
        self.env("CAUSERIE_RATE_PER_SEC", 100000)
            .env("CAUSERIE_RATE_BURST", 100000)
            .env("CAUSERIE_IP_RATE_PER_SEC", 100000)
            .env("CAUSERIE_IP_RATE_BURST", 100000)
            .env("CAUSERIE_ROOMS_PER_MIN", 100000)
    }
    /// Starts the process under `ulimit -n n` (soft and hard limit).
    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }
    pub fn dir(mut self, dir: Arc<tempfile::TempDir>) -> Self {
        self.dir = Some(dir);
        self
    }
}

/// A running `causerie` process.
pub struct Server {
    pub addr: SocketAddr,
    pub dir: Arc<tempfile::TempDir>,
    /// What the server was given as `DATABASE_URL`.
    pub database_url: String,
    /// Its PostgreSQL database, when it has one.
    pub pg: Option<Arc<PgDb>>,
    pub child: Child,
    /// Every line the server printed so far (stdout and stderr, ANSI stripped).
    pub logs: Arc<Mutex<Vec<String>>>,
    /// The process's working directory (a temp dir of its own).
    cwd: tempfile::TempDir,
}

/// Removes ANSI escape sequences (colored tracing output).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            if it.peek() == Some(&'[') {
                it.next();
                // CSI: parameters then one final byte in @..~
                for d in it.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn drain<R: Read + Send + 'static>(r: R, logs: Arc<Mutex<Vec<String>>>, tag: &'static str) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = strip_ansi(line.trim_end_matches(['\n', '\r']));
                    if std::env::var_os("CAUSERIE_TEST_ECHO").is_some() {
                        eprintln!("[server {tag}] {line}");
                    }
                    logs.lock().unwrap().push(line);
                }
            }
        }
    });
}

fn parse_listening(line: &str) -> Option<SocketAddr> {
    let i = line.find("listening on http://")?;
    let rest = &line[i + "listening on http://".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']')))
        .unwrap_or(rest.len());
    rest[..end].trim_end_matches('.').parse().ok()
}

impl Server {
    /// A server with default settings.
    pub async fn start() -> Server {
        Self::start_with(ServerOpts::new()).await
    }

    pub async fn start_with(opts: ServerOpts) -> Server {
        tokio::task::spawn_blocking(move || Self::start_blocking(opts))
            .await
            .expect("spawn server")
    }

    fn start_blocking(opts: ServerOpts) -> Server {
        let dir = opts
            .dir
            .clone()
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("tempdir")));
        let cwd = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("chat.db");
        let pg = match (&opts.pg, opts.backend) {
            (Some(pg), _) => Some(pg.clone()),
            (None, Backend::Postgres) => Some(pg_for_dir(&dir)),
            (None, Backend::Sqlite) => None,
        };
        let database_url = match &pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}", db.display()),
        };
        let bin = env!("CARGO_BIN_EXE_causerie");
        let mut cmd = match opts.nofile {
            // The shell lowers its own limits, then becomes the server.
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\""))
                    .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.current_dir(cwd.path())
            .env_remove("REDIS_URL")
            .env_remove("CAUSERIE_ORIGINS")
            .env_remove("CAUSERIE_GUESTS")
            .env_remove("CAUSERIE_BOT_TOKENS")
            .env("DATABASE_URL", &database_url)
            .env("CAUSERIE_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // Tests register several accounts; a test of the modes sets its own.
            .env("CAUSERIE_REGISTRATION", "open")
            // The build's files (cargo leptos build), served under /pkg.
            .env(
                "LEPTOS_SITE_ROOT",
                concat!(env!("CARGO_MANIFEST_DIR"), "/target/site"),
            )
            .env("LEPTOS_OUTPUT_NAME", "causerie")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn causerie binary");
        let logs = Arc::new(Mutex::new(Vec::new()));
        drain(child.stdout.take().unwrap(), logs.clone(), "out");
        drain(child.stderr.take().unwrap(), logs.clone(), "err");

        let deadline = Instant::now() + STARTUP;
        loop {
            let found = logs.lock().unwrap().iter().find_map(|l| parse_listening(l));
            if let Some(addr) = found {
                return Server {
                    addr,
                    dir,
                    database_url,
                    pg,
                    child,
                    logs,
                    cwd,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "server exited with {status} before listening; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "server did not print `listening on http://...` within {STARTUP:?}; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A WebSocket whose socket receive buffer is `rcvbuf` bytes, so that a
    /// client that stops reading is soon seen as one by the server.
    pub async fn client_with_rcvbuf(&self, rcvbuf: u32) -> Client {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
        let tcp = sock.connect(self.addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(self.ws_url(), MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket handshake");
        Client::new(ws)
    }

    /// The server's resident memory now, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }

    /// The server's own origin.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("chat.db")
    }

    pub fn http(&self) -> reqwest::Client {
        http_client().timeout(TIMEOUT).build().unwrap()
    }

    /// Opens a WebSocket, with the given `Origin` header or none.
    pub async fn ws_connect(&self, origin: Option<&str>) -> Result<Client, tungstenite::Error> {
        match origin {
            Some(o) => self.ws_connect_with(&[("Origin", o)]).await,
            None => self.ws_connect_with(&[]).await,
        }
    }

    /// Opens a WebSocket with extra request headers.
    pub async fn ws_connect_with(
        &self,
        headers: &[(&'static str, &str)],
    ) -> Result<Client, tungstenite::Error> {
        let mut req = self.ws_url().into_client_request()?;
        for (k, v) in headers {
            req.headers_mut()
                .insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let (ws, _resp) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(req))
            .await
            .expect("websocket connect timed out")?;
        Ok(Client::new(ws))
    }

    /// A connected WebSocket without `Origin`, before `hello`.
    pub async fn client(&self) -> Client {
        self.ws_connect(None).await.expect("websocket connect")
    }

    /// A connected guest (after `welcome`).
    pub async fn guest(&self, name: &str) -> Client {
        let mut c = self.client().await;
        c.hello(name).await;
        c
    }

    /// A connected guest that joined `room`.
    pub async fn guest_in(&self, name: &str, room: &str) -> Client {
        let mut c = self.guest(name).await;
        c.join(room).await;
        c
    }

    /// A connection authenticated with the test bot's token.
    pub async fn bot(&self) -> Client {
        let mut c = self.client().await;
        c.send_json(json!({"type":"hello","token":BOT_TOKEN})).await;
        let w = c.expect_type("welcome").await;
        assert_eq!(w["user"]["name"], BOT_NAME, "bot welcome: {w}");
        c
    }

    /// A connection authenticated as account `name` (see `with_accounts`).
    pub async fn account(&self, name: &str) -> Client {
        let mut c = self.client().await;
        c.send_json(json!({"type":"hello","token":format!("{name}-token")}))
            .await;
        let w = c.expect_type("welcome").await;
        assert_eq!(w["user"]["name"], name, "account welcome: {w}");
        assert_eq!(w["user"]["guest"], false, "account welcome: {w}");
        c
    }

    /// Snapshot of the log lines.
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `pred`.
    pub async fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(l) = self.logs.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "no log line {what} within {TIMEOUT:?}; logs:\n{}",
                    self.log_lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (`kill -9`): no shutdown, no drain; waits until the process
    /// is gone. The data directory stays for a restart.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        let st = self.child.wait().expect("wait for the killed server");
        assert!(!st.success(), "a killed server cannot exit 0: {st}");
    }

    /// Sends SIGTERM to the process.
    pub fn sigterm(&self) {
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() > deadline {
                panic!(
                    "server did not exit within {within:?}; logs:\n{}",
                    self.log_lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then asserts that the process exits 0 within `within`.
    pub async fn sigterm_and_expect_clean_exit(&mut self, within: Duration) {
        self.sigterm();
        let st = self.wait_exit(within).await;
        assert!(
            st.success(),
            "server exit status {st}; logs:\n{}",
            self.log_lines().join("\n")
        );
    }

    /// SIGTERM, then waits for a clean exit; returns the data directory so a
    /// new server can reopen the same database.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.sigterm_and_expect_clean_exit(Duration::from_secs(15))
            .await;
        self.dir.clone()
    }

    /// Waits until `/healthz` is 200 (the store and, with Redis, the
    /// backplane up and subscribed).
    pub async fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (st, body) = self.get_json("/healthz").await;
            if st == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not healthy within {within:?}: {st} {body}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET returning (status, JSON body or Null).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http().get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET path` with a session cookie: (status, JSON body or null).
    pub async fn get_json_with_cookie(&self, path: &str, cookie: &str) -> (u16, Value) {
        let r = self
            .http()
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The messages of a room over HTTP (`GET /api/rooms/{room}/messages`).
    pub async fn api_messages(&self, room: &str, query: &str) -> Value {
        let (st, v) = self
            .get_json(&format!("/api/rooms/{room}/messages{query}"))
            .await;
        assert_eq!(st, 200, "GET messages of {room}{query}: {v}");
        v
    }

    /// POST a message as the bot; (status, body).
    pub async fn api_post(&self, room: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self
            .http()
            .post(self.url(&format!("/api/rooms/{room}/messages")))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("POST");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Nobody can restart on this directory any more: let its database go.
        if self.pg.is_some() && Arc::strong_count(&self.dir) == 1 {
            lock_pg_dirs().remove(self.dir.path());
        }
    }
}

// ---------------------------------------------------------------------------
// Backends: SQLite, or PostgreSQL from CAUSERIE_TEST_POSTGRES
// ---------------------------------------------------------------------------

/// Which store a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// The backend of the running [`both_backends!`] test (SQLite elsewhere).
pub fn current_backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// The PostgreSQL server for tests, from `CAUSERIE_TEST_POSTGRES`.
pub fn postgres_url() -> Option<String> {
    std::env::var("CAUSERIE_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The Redis server for tests, from `CAUSERIE_TEST_REDIS`.
pub fn redis_url() -> Option<String> {
    std::env::var("CAUSERIE_TEST_REDIS")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Runs a test body with the servers it starts on `backend`; a PostgreSQL
/// run without `CAUSERIE_TEST_POSTGRES` returns at once with a note.
pub async fn run_on<F: std::future::Future<Output = ()>>(backend: Backend, name: &str, body: F) {
    if backend == Backend::Postgres && postgres_url().is_none() {
        eprintln!("{name}: skipped on PostgreSQL (set CAUSERIE_TEST_POSTGRES=postgres://...)");
        return;
    }
    BACKEND.scope(backend, body).await
}

/// Declares each test twice, as `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident() $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    $crate::common::run_on(
                        $crate::common::Backend::Sqlite,
                        stringify!($name),
                        async $body,
                    )
                    .await
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    $crate::common::run_on(
                        $crate::common::Backend::Postgres,
                        stringify!($name),
                        async $body,
                    )
                    .await
                }
            }
        )*
    };
}

/// A PostgreSQL database of its own (`causerie_t_<unix time>_<random>`),
/// dropped when the last handle goes (best effort; leftovers older than two
/// hours are dropped by the next test run).
pub struct PgDb {
    pub name: String,
    /// `postgres://.../<name>`, for `DATABASE_URL`.
    pub url: String,
    /// The server's maintenance database, to create and drop from.
    admin: String,
}

/// The URL of database `name` on the server of `admin`.
fn url_with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    // postgres://user@host:port[/db]: the path starts at the first '/' after "//".
    let after_scheme = base.find("//").map(|i| i + 2).unwrap_or(0);
    let root = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

fn block_on_fresh_runtime<T: Send + 'static, F: std::future::Future<Output = T>>(
    make: impl FnOnce() -> F + Send + 'static,
) -> T {
    // Its own thread and runtime: callable from sync code, async tests and Drop.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(make())
    })
    .join()
    .expect("database helper thread")
}

/// Runs one statement on the admin database.
pub fn pg_admin_exec(admin: &str, sql: &str) -> Result<(), String> {
    let admin = admin.to_string();
    let sql = sql.to_string();
    block_on_fresh_runtime(move || async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(&sql)
            .execute(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        let _ = c.close().await;
        Ok(())
    })
}

fn sweep_old_databases(admin: &str) {
    let admin = admin.to_string();
    let names: Vec<String> = block_on_fresh_runtime({
        let admin = admin.clone();
        move || async move {
            use sqlx::Connection;
            let Ok(mut c) = sqlx::PgConnection::connect(&admin).await else {
                return Vec::new();
            };
            let names = sqlx::query_scalar::<_, String>(
                r"SELECT datname FROM pg_database WHERE datname LIKE 'causerie\_t\_%'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap_or_default();
            let _ = c.close().await;
            names
        }
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for n in names {
        let born = n
            .strip_prefix("causerie_t_")
            .and_then(|r| r.split('_').next())
            .and_then(|t| t.parse::<u64>().ok());
        if born.is_some_and(|b| b + 2 * 3600 < now) {
            let _ = pg_admin_exec(&admin, &format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"));
        }
    }
}

impl PgDb {
    /// Creates a fresh database on `CAUSERIE_TEST_POSTGRES`.
    pub fn create() -> Arc<PgDb> {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        let admin = postgres_url().expect("CAUSERIE_TEST_POSTGRES is not set");
        SWEEP.call_once(|| sweep_old_databases(&admin));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!("causerie_t_{now}_{:08x}", rand_u32());
        pg_admin_exec(&admin, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        Arc::new(PgDb {
            url: url_with_database(&admin, &name),
            name,
            admin,
        })
    }

    /// Runs one statement on the server's maintenance database (to break
    /// and mend this database).
    pub fn admin_exec(&self, sql: &str) -> Result<(), String> {
        pg_admin_exec(&self.admin, sql)
    }

    /// The database goes away for its servers: new connections are refused
    /// and the open ones are terminated, as when PostgreSQL is down.
    pub fn cut_off(&self) {
        self.admin_exec(&format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
            self.name
        ))
        .expect("cut the database off");
    }

    /// Undoes [`PgDb::cut_off`].
    pub fn let_back(&self) {
        self.admin_exec(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.name
        ))
        .expect("let the database back");
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = self.admin_exec(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

fn lock_pg_dirs() -> std::sync::MutexGuard<'static, std::collections::HashMap<PathBuf, Arc<PgDb>>> {
    static DIRS: std::sync::OnceLock<Mutex<std::collections::HashMap<PathBuf, Arc<PgDb>>>> =
        std::sync::OnceLock::new();
    DIRS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The database of a data directory: servers restarted on the same
/// directory find the same database, as they would find `chat.db`.
fn pg_for_dir(dir: &Arc<tempfile::TempDir>) -> Arc<PgDb> {
    let mut dirs = lock_pg_dirs();
    dirs.entry(dir.path().to_path_buf())
        .or_insert_with(PgDb::create)
        .clone()
}

/// Opens a fresh data directory usable with [`ServerOpts::dir`].
pub fn fresh_dir() -> Arc<tempfile::TempDir> {
    Arc::new(tempfile::tempdir().expect("tempdir"))
}

// ---------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------

/// How a connection ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// A close frame without a code.
    NoCode,
    /// The stream ended without a close frame.
    Eof,
    /// A transport error (e.g. connection reset).
    Error(String),
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One WebSocket connection with a buffer of frames received but not yet
/// consumed by the test.
pub struct Client {
    ws: Ws,
    pending: VecDeque<Value>,
    /// Set once the connection is seen closed.
    pub closed: Option<Closed>,
    nonce_seq: u64,
    pub local_addr: SocketAddr,
}

fn close_of(f: Option<CloseFrame>) -> Closed {
    match f {
        Some(f) if f.code == CloseCode::Status => Closed::NoCode,
        Some(f) => Closed::Code(u16::from(f.code)),
        None => Closed::NoCode,
    }
}

pub fn typ(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

/// Frames a test usually does not care about when waiting for an answer.
pub fn is_noise(v: &Value) -> bool {
    // `rooms` follows every `welcome` (version 1.1).
    matches!(typ(v), "presence" | "typing" | "rooms")
}

impl Client {
    fn new(ws: Ws) -> Client {
        let local_addr = match ws.get_ref() {
            MaybeTlsStream::Plain(s) => s.local_addr().unwrap(),
            _ => unreachable!(),
        };
        Client {
            ws,
            pending: VecDeque::new(),
            closed: None,
            nonce_seq: 0,
            local_addr,
        }
    }

    /// A nonce not used before by this client object.
    pub fn nonce(&mut self) -> String {
        self.nonce_seq += 1;
        format!("n-{}-{}", self.local_addr.port(), self.nonce_seq)
    }

    pub async fn send_raw(&mut self, m: WsMessage) {
        tokio::time::timeout(TIMEOUT, self.ws.send(m))
            .await
            .expect("websocket send timed out")
            .expect("websocket send failed");
    }

    /// Like `send_raw` but returns the error instead of panicking.
    pub async fn try_send_raw(&mut self, m: WsMessage) -> Result<(), tungstenite::Error> {
        tokio::time::timeout(TIMEOUT, self.ws.send(m))
            .await
            .expect("websocket send timed out")
    }

    pub async fn send_text(&mut self, s: impl Into<String>) {
        self.send_raw(WsMessage::text(s.into())).await
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(v.to_string()).await
    }

    /// Reads the next text frame from the socket (pings/pongs skipped).
    /// `Ok(None)` on timeout; `Err` when closed.
    async fn read_frame(&mut self, within: Duration) -> Result<Option<Value>, Closed> {
        if let Some(c) = &self.closed {
            return Err(c.clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(n) => n,
            };
            let closed = match next {
                Some(Ok(WsMessage::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("server sent non-JSON text frame {t:?}: {e}"));
                    return Ok(Some(v));
                }
                Some(Ok(WsMessage::Binary(b))) => {
                    panic!("server sent a binary frame ({} bytes)", b.len())
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                    continue;
                }
                Some(Ok(WsMessage::Close(f))) => close_of(f),
                Some(Err(tungstenite::Error::ConnectionClosed)) | None => Closed::Eof,
                Some(Err(e)) => Closed::Error(e.to_string()),
            };
            self.closed = Some(closed.clone());
            return Err(closed);
        }
    }

    /// The next frame (buffered first), panicking on timeout or close.
    pub async fn recv_json(&mut self) -> Value {
        if let Some(v) = self.pending.pop_front() {
            return v;
        }
        match self.read_frame(TIMEOUT).await {
            Ok(Some(v)) => v,
            Ok(None) => panic!("no frame within {TIMEOUT:?}"),
            Err(c) => panic!("connection closed ({c:?}) while waiting for a frame"),
        }
    }

    /// The next frame within `d`, or None.
    pub async fn try_recv_json(&mut self, d: Duration) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        match self.read_frame(d).await {
            Ok(v) => v,
            Err(c) => panic!("connection closed ({c:?}) while waiting for a frame"),
        }
    }

    /// The next frame (buffered first) within `d`: `Ok(None)` on timeout,
    /// `Err` once the connection is closed. Never panics.
    pub async fn recv_or_closed(&mut self, d: Duration) -> Result<Option<Value>, Closed> {
        if let Some(v) = self.pending.pop_front() {
            return Ok(Some(v));
        }
        self.read_frame(d).await
    }

    /// The next frame, or how the connection ended; panics on timeout.
    pub async fn try_recv_json_or_close(&mut self, d: Duration) -> Result<Value, Closed> {
        if let Some(v) = self.pending.pop_front() {
            return Ok(v);
        }
        match self.read_frame(d).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => panic!("no frame and no close within {d:?}"),
            Err(c) => Err(c),
        }
    }

    /// The first frame (buffered or new) satisfying `pred`; the frames
    /// passed over stay buffered, in order.
    pub async fn recv_where(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left).await {
                Ok(Some(v)) if pred(&v) => return v,
                Ok(Some(v)) => self.pending.push_back(v),
                Ok(None) => panic!(
                    "no frame {what} within {TIMEOUT:?}; got meanwhile: {:?}",
                    self.pending
                ),
                Err(c) => panic!(
                    "connection closed ({c:?}) while waiting for {what}; got meanwhile: {:?}",
                    self.pending
                ),
            }
        }
    }

    /// Like [`Client::recv_where`], with a deadline of the caller's.
    pub async fn recv_where_within(
        &mut self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left).await {
                Ok(Some(v)) if pred(&v) => return v,
                Ok(Some(v)) => self.pending.push_back(v),
                Ok(None) => panic!(
                    "no frame {what} within {within:?}; got meanwhile: {:?}",
                    self.pending
                ),
                Err(c) => panic!(
                    "connection closed ({c:?}) while waiting for {what}; got meanwhile: {:?}",
                    self.pending
                ),
            }
        }
    }

    /// The next frame that is not presence/typing must be of type `t`.
    pub async fn expect_type(&mut self, t: &str) -> Value {
        loop {
            let v = self.recv_json().await;
            if is_noise(&v) && t != typ(&v) {
                continue;
            }
            assert_eq!(typ(&v), t, "expected a `{t}` frame, got {v}");
            return v;
        }
    }

    /// The next non-noise frame must be `error` with this code; returns it.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.expect_type("error").await;
        assert_eq!(v["code"], code, "error code: {v}");
        assert!(
            v["message"].is_string(),
            "error without a message string: {v}"
        );
        v
    }

    /// Asserts that no frame satisfying `pred` arrives within `d` (buffered
    /// frames are checked too and kept).
    pub async fn expect_none_where(
        &mut self,
        d: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) {
        if let Some(v) = self.pending.iter().find(|v| pred(v)) {
            panic!("unexpected frame {what}: {v}");
        }
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.read_frame(left).await {
                Ok(Some(v)) if pred(&v) => panic!("unexpected frame {what}: {v}"),
                Ok(Some(v)) => self.pending.push_back(v),
                Ok(None) => return,
                Err(c) => panic!("connection closed ({c:?}) while checking for no {what}"),
            }
        }
    }

    /// Drops buffered frames.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    pub fn pending(&self) -> &VecDeque<Value> {
        &self.pending
    }

    /// Waits for the connection to end (text frames are discarded).
    pub async fn expect_close(&mut self) -> Closed {
        self.expect_close_within(TIMEOUT).await
    }

    pub async fn expect_close_within(&mut self, d: Duration) -> Closed {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left).await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("connection still open after {d:?}"),
                Err(c) => return c,
            }
        }
    }

    /// Sends `hello` as a guest and expects `welcome`.
    pub async fn hello(&mut self, name: &str) -> Value {
        self.send_json(json!({"type":"hello","name":name})).await;
        let w = self.expect_type("welcome").await;
        assert_eq!(w["user"]["name"], name, "welcome: {w}");
        w
    }

    /// Sends `join` and returns the `joined` frame (other frames stay buffered).
    pub async fn join(&mut self, room: &str) -> Value {
        self.send_json(json!({"type":"join","room":room})).await;
        let j = self
            .recv_where(&format!("joined {room} (or error)"), |v| {
                (typ(v) == "joined" && v["room"] == room) || typ(v) == "error"
            })
            .await;
        assert_eq!(typ(&j), "joined", "join {room}: {j}");
        j
    }

    /// Sends a message without waiting.
    pub async fn send_msg_nowait(&mut self, room: &str, body: &str, nonce: &str) {
        self.send_json(json!({"type":"send","room":room,"body":body,"nonce":nonce}))
            .await
    }

    /// Sends a message and returns its `ack` (panics on an error for it).
    pub async fn send_msg(&mut self, room: &str, body: &str, nonce: &str) -> Value {
        self.send_msg_nowait(room, body, nonce).await;
        self.wait_ack(nonce).await
    }

    /// The `ack` (or a panic on the `error`) for `nonce`.
    pub async fn wait_ack(&mut self, nonce: &str) -> Value {
        let v = self
            .recv_where(&format!("ack for {nonce}"), |v| {
                matches!(typ(v), "ack" | "error") && v["nonce"] == nonce
            })
            .await;
        assert_eq!(typ(&v), "ack", "send {nonce}: {v}");
        v
    }

    /// Sends and returns the ack or error frame for the nonce.
    pub async fn send_msg_result(&mut self, room: &str, body: &str, nonce: &str) -> Value {
        self.send_msg_nowait(room, body, nonce).await;
        self.recv_where(&format!("ack/error for {nonce}"), |v| {
            matches!(typ(v), "ack" | "error") && v["nonce"] == nonce
        })
        .await
    }

    /// The next `n` `message` frames of `room`, in arrival order.
    pub async fn messages(&mut self, room: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let v = self
                .recv_where(&format!("message #{} of {n} in {room}", i + 1), |v| {
                    typ(v) == "message" && v["room"] == room
                })
                .await;
            out.push(v);
        }
        out
    }

    /// `message` frames of `room` up to and including the one with id `last`.
    pub async fn messages_until(&mut self, room: &str, last: i64) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self
                .recv_where(&format!("message {room} up to id {last}"), |v| {
                    typ(v) == "message" && v["room"] == room
                })
                .await;
            let id = v["id"].as_i64().expect("message id");
            out.push(v);
            if id >= last {
                return out;
            }
        }
    }

    /// Sends `history` and returns the answer.
    pub async fn history(&mut self, room: &str, before: Option<i64>, limit: Option<u32>) -> Value {
        let mut f = json!({"type":"history","room":room});
        if let Some(b) = before {
            f["before"] = json!(b);
        }
        if let Some(l) = limit {
            f["limit"] = json!(l);
        }
        self.send_json(f).await;
        let h = self
            .recv_where(&format!("history of {room}"), |v| {
                (typ(v) == "history" && v["room"] == room) || typ(v) == "error"
            })
            .await;
        assert_eq!(typ(&h), "history", "history {room}: {h}");
        h
    }

    /// Starts a clean close handshake and waits for its end.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, self.ws.next()).await {}
    }

    /// The stream itself, for tests that split it into a reader and a
    /// writer, with the frames already buffered.
    pub fn into_inner(self) -> (Ws, VecDeque<Value>) {
        (self.ws, self.pending)
    }

    /// Drops the TCP connection without a close handshake.
    pub fn drop_abruptly(self) {
        drop(self)
    }

    /// Direct access to the stream.
    pub fn ws(&mut self) -> &mut Ws {
        &mut self.ws
    }
}

// ---------------------------------------------------------------------------
// Assertions on shapes
// ---------------------------------------------------------------------------

/// `2026-11-21T10:15:30.123Z`: RFC 3339, UTC, milliseconds.
pub fn assert_ts(ts: &Value) {
    let s = ts
        .as_str()
        .unwrap_or_else(|| panic!("ts is not a string: {ts}"));
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    let ok = b.len() == 24
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
            .iter()
            .all(|&i| digit(i))
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    assert!(ok, "ts {s:?} is not like 2026-11-21T10:15:30.123Z");
}

/// A stored message object (history item / HTTP): exactly
/// room, id, author, body, ts and optionally nonce; no `type`.
pub fn assert_message_object(m: &Value) {
    let o = m
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {m}"));
    for k in o.keys() {
        assert!(
            matches!(
                k.as_str(),
                "room" | "id" | "author" | "body" | "ts" | "nonce"
            ),
            "unexpected key {k:?} in message object {m}"
        );
    }
    assert!(m["room"].is_string(), "room: {m}");
    assert!(m["id"].is_i64(), "id: {m}");
    assert!(m["author"].is_string(), "author: {m}");
    assert!(m["body"].is_string(), "body: {m}");
    assert_ts(&m["ts"]);
}

/// A `message` frame: the message object plus `"type":"message"`.
pub fn assert_message_frame(m: &Value) {
    assert_eq!(m["type"], "message", "{m}");
    let mut o = m.as_object().unwrap().clone();
    o.remove("type");
    assert_message_object(&Value::Object(o));
}

pub fn ids(ms: &[Value]) -> Vec<i64> {
    ms.iter()
        .map(|m| m["id"].as_i64().unwrap_or_else(|| panic!("no id in {m}")))
        .collect()
}

pub fn arr(v: &Value) -> Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .clone()
}

/// Ids of acks, sorted (a pipelining sender's acks may come in any order).
pub fn sorted_ids(ms: &[Value]) -> Vec<i64> {
    let mut v = ids(ms);
    v.sort();
    v
}

pub fn assert_strictly_increasing(ids: &[i64], what: &str) {
    for w in ids.windows(2) {
        assert!(w[0] < w[1], "{what}: ids not strictly increasing: {ids:?}");
    }
}

/// Sorted names of a JSON array of strings.
pub fn sorted_names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = arr(v)
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("not a string: {x}"))
                .to_string()
        })
        .collect();
    n.sort();
    n
}

/// Reads a presence frame about `user` (single or coalesced form) and returns
/// its online count. Other frames stay buffered.
pub async fn wait_presence(c: &mut Client, room: &str, user: &str, state: &str) -> i64 {
    let v = c
        .recv_where(&format!("presence {user} {state} in {room}"), |v| {
            typ(v) == "presence"
                && v["room"] == room
                && ((v["user"] == user && v["state"] == state)
                    || v[state]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == user)))
        })
        .await;
    v["online"]
        .as_i64()
        .unwrap_or_else(|| panic!("presence without online count: {v}"))
}

/// Retries a guest `hello` while the name is still held by a connection the
/// server has not yet finished closing.
pub async fn reconnect_guest(server: &Server, name: &str, resume: Option<Value>) -> Client {
    for _ in 0..50 {
        let mut c = server.client().await;
        let mut h = json!({"type":"hello","name":name});
        if let Some(r) = &resume {
            h["resume"] = r.clone();
        }
        c.send_json(h).await;
        let v = c
            .recv_where("welcome or error", |v| {
                matches!(typ(v), "welcome" | "error")
            })
            .await;
        if typ(&v) == "welcome" {
            return c;
        }
        assert_eq!(v["code"], "bad_name", "reconnect hello: {v}");
        c.close().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("name {name} still taken 2.5 s after its connection closed");
}

/// The rows of `GET /api/rooms`: accepts a bare array or `{"rooms":[...]}`.
pub fn rooms_rows(v: &Value) -> Vec<Value> {
    if let Some(a) = v.as_array() {
        a.clone()
    } else if let Some(a) = v["rooms"].as_array() {
        a.clone()
    } else {
        panic!("GET /api/rooms: not a list of rooms: {v}")
    }
}

pub fn online_of(rows: &[Value], room: &str) -> Option<i64> {
    rows.iter().find(|r| r["name"] == room).map(|r| {
        r["online"]
            .as_i64()
            .unwrap_or_else(|| panic!("online: {r}"))
    })
}

/// Percent-encodes a form field (`application/x-www-form-urlencoded`).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Browser sessions
// ---------------------------------------------------------------------------

/// A browser-like visitor: keeps the session and guest cookies between
/// requests (a visitor's form token is bound to the guest cookie), and
/// comes from an address of its own (127.0.x.y), so that the per-address
/// limit on sign-in attempts counts each visitor apart.
pub struct Visitor<'a> {
    pub server: &'a Server,
    http: reqwest::Client,
    /// `causerie_session=...`, once the server has set it.
    pub cookie: Option<String>,
    /// `causerie_guest=...`, once the server has set it.
    pub guest: Option<String>,
}

impl<'a> Visitor<'a> {
    pub fn new(server: &'a Server) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ip = std::net::Ipv4Addr::new(127, 0, (2 + n / 250) as u8, (2 + n % 250) as u8);
        let http = http_client()
            .local_address(std::net::IpAddr::V4(ip))
            .timeout(TIMEOUT)
            .build()
            .expect("HTTP client");
        Visitor {
            server,
            http,
            cookie: None,
            guest: None,
        }
    }

    pub fn keep_cookie(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap_or("");
            if let Some(pair) = v.split(';').next() {
                if pair.starts_with("causerie_session=") {
                    self.cookie = Some(pair.to_string());
                } else if pair.starts_with("causerie_guest=") {
                    self.guest = Some(pair.to_string());
                }
            }
        }
    }

    /// Calls a server function with a form body; (status, body text).
    pub async fn call(&mut self, endpoint: &str, form: &[(&str, &str)]) -> (u16, String) {
        let mut req = self
            .http
            .post(self.server.url(&format!("/_sfn/{endpoint}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(serde_urlencoded(form));
        let cookies = self.cookies();
        if !cookies.is_empty() {
            req = req.header("cookie", cookies);
        }
        let res = req.send().await.expect("server function call");
        self.keep_cookie(&res);
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    pub fn cookies(&self) -> String {
        [&self.guest, &self.cookie]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn csrf(&mut self) -> String {
        let (status, body) = self.call("whoami", &[]).await;
        assert_eq!(status, 200, "whoami: {body}");
        let me: Value = serde_json::from_str(&body).expect("whoami JSON");
        me["csrf"].as_str().expect("csrf").to_string()
    }

    pub async fn whoami(&mut self) -> Value {
        let (_, body) = self.call("whoami", &[]).await;
        serde_json::from_str(&body).expect("whoami JSON")
    }

    pub async fn ws(&self) -> Client {
        let cookie = self.cookies();
        self.server
            .ws_connect_with(&[("Cookie", cookie.as_str())])
            .await
            .expect("websocket")
    }
}

pub fn serde_urlencoded(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An HTTP client builder. The server's build of reqwest has TLS without a
/// provider of its own (the server installs ring); the tests' does too.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Registers `name` and signs the visitor in.
pub async fn register(v: &mut Visitor<'_>, name: &str, password: &str) {
    let csrf = v.csrf().await;
    let (status, body) = v
        .call(
            "register",
            &[("name", name), ("password", password), ("csrf", &csrf)],
        )
        .await;
    assert!(status < 400, "register {name}: {status} {body}");
}

/// Signs a fresh visitor in as `name`.
pub async fn sign_in<'a>(s: &'a Server, name: &str, password: &str) -> Visitor<'a> {
    let mut v = Visitor::new(s);
    let csrf = v.csrf().await;
    let (status, body) = v
        .call(
            "login",
            &[("name", name), ("password", password), ("csrf", &csrf)],
        )
        .await;
    assert!(status < 400, "login {name}: {status} {body}");
    v
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

/// What a `causerie` subcommand printed, and how it ended.
#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Asserts that the command succeeded.
    pub fn expect_ok(self) -> Self {
        assert_eq!(self.code, Some(0), "the command failed: {self:?}");
        self
    }
}

/// Runs `causerie ARGS` against a server's database (the settings a
/// server reads), with `stdin` as its standard input.
pub fn cli(s: &Server, args: &[&str], stdin: Option<&str>) -> CliOutput {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_causerie"))
        .args(args)
        .current_dir(s.dir.path())
        .env("DATABASE_URL", &s.database_url)
        .env("NO_COLOR", "1")
        .env_remove("REDIS_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run causerie");
    if let Some(mut input) = child.stdin.take()
        && let Some(text) = stdin
    {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("causerie output");
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
