//! `causerie-load`: a load generator that speaks `PROTOCOL.md` over real
//! WebSockets to a running Causerie server and prints one JSON line of
//! results per run. See `docs/PERFORMANCE.md` for the commands and figures.
//!
//! Modes:
//! - `fanout`: N clients in one room, S of them sending R msg/s in total;
//!   every receiver measures the latency from the timestamp in the body.
//!   With `--react-share F`, that share of the senders' turns toggles a
//!   reaction on their last message instead: `changed` deliveries and
//!   their latency are reported apart.
//! - `saturate`: `fanout` steps of growing rate; the highest delivery rate
//!   whose p99 stays under a bound.
//! - `idle`: N connections that say `hello`, join a room and stay idle; the
//!   server's RSS before and after.
//! - `storage`: concurrent senders, each keeping K sends in flight; stored
//!   (acknowledged) messages per second.
//!
//! It only ever connects to loopback addresses (127.0.0.0/8), and every loop
//! is bounded in count and time.

use causerie::protocol::{self, ClientFrame, ErrorCode, ServerFrame};
use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Ws = WebSocketStream<TcpStream>;

/// How long one connection may take for connect + hello + join.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the end of a run waits for late deliveries and acks.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a run waits for the client tasks to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest run accepted, in seconds (every loop is bounded in time).
const MAX_DURATION_SECS: f64 = 3600.0;
/// Most connections one run may open.
const MAX_CONNECTIONS: usize = 200_000;
/// File descriptors a process keeps for itself besides its sockets.
const FD_RESERVE: u64 = 64;

#[derive(Parser)]
#[command(
    name = "causerie-load",
    version,
    about = "Load generator for a Causerie server (loopback only); prints one JSON line per run"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// N clients in one room; S of them send R msg/s in total; latency and loss.
    Fanout(FanoutArgs),
    /// Fanout steps of growing rate: the highest delivery rate with p99 under a bound.
    Saturate(SaturateArgs),
    /// N idle connections (hello + join); the server's RSS per connection.
    Idle(IdleArgs),
    /// Concurrent senders as fast as acks allow: stored messages per second.
    Storage(StorageArgs),
    /// One process's share of `idle --procs P` (internal).
    #[command(hide = true)]
    IdleWorker(IdleWorkerArgs),
}

#[derive(Args, Clone)]
struct Conn {
    /// The server's WebSocket URL, e.g. ws://127.0.0.1:3000/ws (loopback only).
    #[arg(long)]
    url: String,
    /// The server's process id: its CPU time (and RSS) are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Spread client sockets over this many loopback source addresses
    /// (--source-base, +1, ...); 0 lets the kernel choose (127.0.0.1).
    #[arg(long, default_value_t = 0)]
    sources: u32,
    /// The first source address when --sources > 0.
    #[arg(long, default_value = "127.0.0.2")]
    source_base: Ipv4Addr,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Guest names are <prefix>-<i>; default: load-<random tag>.
    #[arg(long)]
    prefix: Option<String>,
}

#[derive(Args, Clone)]
struct FanoutArgs {
    #[command(flatten)]
    conn: Conn,
    /// Clients in the room.
    #[arg(long, default_value_t = 500)]
    clients: usize,
    /// How many of the clients send.
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Measured seconds of sending (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of sending at the same rate before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// The room; default: a fresh one per run (bench-<tag>).
    #[arg(long)]
    room: Option<String>,
    /// Share (0 to 1) of the senders' turns that react instead of sending.
    #[arg(long, default_value_t = 0.0)]
    react_share: f64,
}

#[derive(Args, Clone)]
struct SaturateArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long, default_value_t = 500)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// The first step's rate, msg/s.
    #[arg(long, default_value_t = 50.0)]
    start_rate: f64,
    /// Each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.5)]
    factor: f64,
    /// Most steps (growing steps plus refinement steps).
    #[arg(long, default_value_t = 14)]
    max_steps: usize,
    /// Bisection steps between the last passing and the first failing rate.
    #[arg(long, default_value_t = 2)]
    refine: usize,
    /// A step passes when its p99 latency is under this many ms (and nothing is lost).
    #[arg(long, default_value_t = 100.0)]
    p99_ms: f64,
    /// Measured seconds per step.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

#[derive(Args, Clone)]
struct IdleArgs {
    #[command(flatten)]
    conn: Conn,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Spread the connections over this many rooms (idle-0, idle-1, ...).
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Load generator processes to spread the connections over (each has its
    /// own open-file limit).
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// Seconds to wait after the last join before reading the RSS.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Seconds to keep the connections open after measuring.
    #[arg(long, default_value_t = 0.0)]
    hold: f64,
    /// Messages to store in each room before the connections open, so that
    /// every `joined` carries history as in a room people use (at most 50).
    #[arg(long, default_value_t = 0)]
    history: usize,
    /// Bytes of each seeded message's body.
    #[arg(long, default_value_t = 120)]
    history_body: usize,
}

#[derive(Args, Clone)]
struct IdleWorkerArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    connections: usize,
    #[arg(long)]
    rooms: usize,
    /// Index of this worker's first connection.
    #[arg(long)]
    first: usize,
    /// Room name prefix shared by all workers.
    #[arg(long)]
    room_prefix: String,
}

#[derive(Args, Clone)]
struct StorageArgs {
    #[command(flatten)]
    conn: Conn,
    /// Concurrent senders (one connection each).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Sends each client keeps in flight (the server reads at most 64 ahead).
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Put every sender in one room (each message then reaches every
    /// sender); by default each sender has a room of its own.
    #[arg(long)]
    shared_room: bool,
}

// ---------------------------------------------------------------------------
// Small helpers: time, /proc, limits
// ---------------------------------------------------------------------------

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A short tag, different per run, for names, rooms and nonces.
fn run_tag() -> String {
    let mut n = (unix_ns() / 1000) ^ ((std::process::id() as u64) << 20);
    let mut s = String::new();
    for _ in 0..6 {
        let d = (n % 36) as u32;
        s.push(char::from_digit(d, 36).unwrap_or('x'));
        n /= 36;
    }
    s
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User + system CPU seconds of a process (`self` or a pid), from /proc.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    cpu_split(pid).map(|(user, system)| user + system)
}

/// (user, system) CPU seconds of a process, from /proc. On loopback the
/// system part includes the receiving client's TCP work, so the user part
/// is the server's own cost more closely.
fn cpu_split(pid: Option<u32>) -> Option<(f64, f64)> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): state is the 3rd
    // field of the line, utime the 14th and stime the 15th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime / clock_ticks(), stime / clock_ticks()))
}

/// CPU seconds the whole machine spent busy (all cores), from /proc/stat:
/// to tell whether something else ran during a measurement.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?;
    Some(busy / clock_ticks())
}

/// The CPU used in a window, in cores: the server, this process, everything
/// else on the machine (builds, other tests: a noisy measurement).
struct CpuWindow {
    start: Instant,
    server: Option<f64>,
    server_user: Option<f64>,
    me: Option<f64>,
    machine: Option<f64>,
}

impl CpuWindow {
    fn start(pid: Option<u32>) -> Self {
        CpuWindow {
            start: Instant::now(),
            server: pid.and_then(|p| cpu_seconds(Some(p))),
            server_user: pid.and_then(|p| cpu_split(Some(p))).map(|(u, _)| u),
            me: cpu_seconds(None),
            machine: machine_busy_seconds(),
        }
    }

    /// (server CPU seconds, JSON summary) since `start`.
    fn finish(&self, pid: Option<u32>) -> (Option<f64>, Value) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let d = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let server = d(self.server, pid.and_then(|p| cpu_seconds(Some(p))));
        let server_user = d(
            self.server_user,
            pid.and_then(|p| cpu_split(Some(p))).map(|(u, _)| u),
        );
        let me = d(self.me, cpu_seconds(None));
        let machine = d(self.machine, machine_busy_seconds());
        let other = match (machine, server, me) {
            (Some(m), s, Some(me)) => Some(m - s.unwrap_or(0.0) - me),
            _ => None,
        };
        let cores = |x: Option<f64>| x.map(|x| round3(x / secs));
        let v = json!({
            "window_s": round3(secs),
            "server_cpu_s": server.map(round3),
            "server_user_cpu_s": server_user.map(round3),
            "server_cores": cores(server),
            "loadgen_cpu_s": me.map(round3),
            "loadgen_cores": cores(me),
            "machine_busy_cores": cores(machine),
            "other_busy_cores": cores(other),
        });
        (server, v)
    }
}

/// A field of /proc/PID/status in bytes (VmRSS, RssAnon, ...).
fn status_bytes(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Raises the soft open-file limit to the hard one; returns the new soft limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 on every target")]
    let soft = lim.rlim_cur as u64;
    soft
}

fn ms(us: u32) -> f64 {
    us as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Percentiles (in ms) of latencies in microseconds; sorts the samples.
fn percentiles(samples: &mut [u32]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        ms(samples[i])
    };
    let mean = samples.iter().map(|&v| v as f64).sum::<f64>() / samples.len() as f64 / 1000.0;
    json!({
        "samples": samples.len(),
        "mean": round3(mean),
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": ms(samples[samples.len() - 1]),
    })
}

fn merge_counts(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

/// Where to connect: a loopback address and the URL for the upgrade request.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    url: String,
    /// Loopback source addresses to bind to, round-robin; empty: the kernel's choice.
    sources: Vec<Ipv4Addr>,
}

impl Target {
    fn new(conn: &Conn) -> Result<Self, String> {
        let rest = conn
            .url
            .strip_prefix("ws://")
            .ok_or("--url must start with ws:// (plain WebSocket on loopback)")?;
        let hostport = rest.split('/').next().unwrap_or("");
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| "bad port in --url")?),
            None => (hostport, 80),
        };
        let ip: Ipv4Addr = if host.eq_ignore_ascii_case("localhost") {
            Ipv4Addr::LOCALHOST
        } else {
            host.parse()
                .map_err(|_| format!("--url host {host:?} is not an IPv4 address"))?
        };
        if !ip.is_loopback() {
            return Err(format!(
                "refusing to connect to {ip}: only loopback (127.0.0.0/8) targets are allowed"
            ));
        }
        let base = u32::from(conn.source_base);
        let sources: Vec<Ipv4Addr> = (0..conn.sources)
            .map(|i| Ipv4Addr::from(base.wrapping_add(i)))
            .collect();
        if let Some(bad) = sources.iter().find(|s| !s.is_loopback()) {
            return Err(format!("source address {bad} is not in 127.0.0.0/8"));
        }
        Ok(Target {
            addr: SocketAddr::new(ip.into(), port),
            url: conn.url.clone(),
            sources,
        })
    }

    /// Opens WebSocket number `i` (its source address is chosen by `i`).
    async fn connect(&self, i: usize) -> Result<Ws, String> {
        let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        if !self.sources.is_empty() {
            let src = self.sources[i % self.sources.len()];
            sock.bind(SocketAddr::new(src.into(), 0))
                .map_err(|e| format!("bind {src}: {e}"))?;
        }
        let stream = sock
            .connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        // Small buffers: thousands of clients live in this process.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(self.url.as_str(), stream, Some(config))
                .await
                .map_err(|e| format!("upgrade: {e}"))?;
        Ok(ws)
    }
}

fn frame(f: &ClientFrame) -> WsMessage {
    WsMessage::text(serde_json::to_string(f).unwrap_or_default())
}

/// Reads frames until one that `want` accepts (skipping others); an
/// `error` frame fails. Used while setting up, so every frame is decoded
/// whole.
async fn expect(ws: &mut Ws, want: impl Fn(&ServerFrame) -> bool) -> Result<(), String> {
    loop {
        let m = ws
            .next()
            .await
            .ok_or("closed")?
            .map_err(|e| e.to_string())?;
        let text = match m {
            WsMessage::Text(t) => t,
            WsMessage::Close(c) => {
                return Err(format!(
                    "closed {}",
                    c.map(|c| u16::from(c.code)).unwrap_or(0)
                ));
            }
            _ => continue,
        };
        match serde_json::from_str::<ServerFrame>(text.as_str()) {
            Ok(ServerFrame::Error { code, .. }) => {
                return Err(serde_json::to_string(&code).unwrap_or_default());
            }
            Ok(f) if want(&f) => return Ok(()),
            _ => {}
        }
    }
}

/// Connect, `hello` as a guest, `join` a room.
async fn open_session(target: &Target, i: usize, name: &str, room: &str) -> Result<Ws, String> {
    let mut ws = target.connect(i).await?;
    let hello = ClientFrame::Hello {
        name: Some(name.to_string()),
        token: None,
        resume: BTreeMap::new(),
    };
    ws.send(frame(&hello)).await.map_err(|e| e.to_string())?;
    expect(&mut ws, |f| matches!(f, ServerFrame::Welcome { .. })).await?;
    let join = ClientFrame::Join {
        room: room.to_string(),
    };
    ws.send(frame(&join)).await.map_err(|e| e.to_string())?;
    expect(&mut ws, |f| matches!(f, ServerFrame::Joined { .. })).await?;
    Ok(ws)
}

/// Closes politely, waiting briefly for the server's close.
async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

// ---------------------------------------------------------------------------
// Reading the frames that matter (message, ack, error)
// ---------------------------------------------------------------------------

/// The frame types a run counts, spelled as [`ServerFrame`] spells them
/// (`read_frames_as_the_protocol_writes_them` checks it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Message,
    Ack,
    Error,
    Changed,
    #[serde(other)]
    Other,
}

/// The fields of a server frame that a run reads, borrowed from the text;
/// every other field is skipped. A whole [`ServerFrame`] would build every
/// string of every delivery, which the generator, sharing the machine with
/// the server, cannot afford at 10^5 deliveries per second
/// (`decode_cost` measures both).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type")]
    kind: Kind,
    id: Option<u64>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    nonce: Option<Cow<'a, str>>,
    code: Option<ErrorCode>,
    /// A `changed` frame's message, of which only the id is read.
    message: Option<Inner>,
}

/// The part of a `changed` frame's message a run reads.
#[derive(Deserialize)]
struct Inner {
    id: u64,
}

/// What a received frame means to a run.
#[derive(Debug, PartialEq)]
enum Seen {
    /// One of our messages: its id, and the send time (ns) and message
    /// index written in its body (`t=<ns> s=<sender> k=<index>`).
    Message { id: u64, sent_ns: u64, idx: u64 },
    /// The ack of our message of this index (nonce `<tag>-<index>`).
    Ack(u64),
    /// A change (here: a reaction) to the message of this id.
    Changed(u64),
    /// An error, by its code as PROTOCOL.md spells it.
    Error(String),
    /// Anything else, or a frame of someone else's.
    Other,
}

/// The integer right after `key` in `s`.
fn num_after(s: &str, key: &str) -> Option<u64> {
    let at = s.find(key)? + key.len();
    let digits = s[at..].bytes().take_while(u8::is_ascii_digit).count();
    s[at..at + digits].parse().ok()
}

/// The id an `ack` frame gives the message.
fn ack_id(t: &str) -> Option<u64> {
    num_after(t, "\"id\":")
}

/// The message index of a nonce `<tag>-<index>`.
fn nonce_index(nonce: &str) -> Option<u64> {
    nonce.rsplit('-').next()?.parse().ok()
}

/// Reads one text frame.
fn read_frame(t: &str) -> Seen {
    let Ok(h) = serde_json::from_str::<Head>(t) else {
        return Seen::Other;
    };
    match h.kind {
        Kind::Message => {
            let mine = h.id.zip(h.body).and_then(|(id, body)| {
                Some(Seen::Message {
                    id,
                    sent_ns: num_after(&body, "t=")?,
                    idx: num_after(&body, " k=")?,
                })
            });
            mine.unwrap_or(Seen::Other)
        }
        Kind::Ack => h
            .nonce
            .and_then(|n| nonce_index(&n))
            .map_or(Seen::Other, Seen::Ack),
        Kind::Error => {
            let code = h.code.map(|c| serde_json::to_value(c).ok());
            match code.flatten().and_then(|v| v.as_str().map(str::to_string)) {
                Some(c) => Seen::Error(c),
                None => Seen::Error("unknown".into()),
            }
        }
        Kind::Changed => h.message.map_or(Seen::Other, |m| Seen::Changed(m.id)),
        Kind::Other => Seen::Other,
    }
}

// ---------------------------------------------------------------------------
// Fanout
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Connected and joined; waiting for the others.
    Wait,
    /// Send from `start`; measure sends from `t0_ns` to `end_ns`.
    Go {
        start: Instant,
        period: Duration,
        send_until: Instant,
        t0_ns: u64,
        end_ns: u64,
    },
    Stop,
}

/// What every client of a fanout run shares.
struct Board {
    /// Deliveries per message index, over all receivers.
    counts: Vec<AtomicU32>,
    acked: Vec<AtomicBool>,
    /// Sent inside the measured window.
    measured: Vec<AtomicBool>,
    /// Messages each sender may send at most.
    per_sender: usize,
    /// When each message id (modulo the length) was last reacted to (ns),
    /// and whether inside the measured window.
    react_ns: Vec<std::sync::atomic::AtomicU64>,
    senders: usize,
    ready: AtomicUsize,
    failed: AtomicUsize,
}

#[derive(Default)]
struct ClientReport {
    joined: bool,
    setup_error: Option<String>,
    /// Latencies (µs) of measured messages received.
    latencies: Vec<u32>,
    /// Send → ack (µs) of this client's measured messages.
    ack_latencies: Vec<u32>,
    /// React → `changed` (µs) of measured reactions received.
    react_latencies: Vec<u32>,
    /// `changed` frames received, and reactions sent.
    changed: u64,
    reacts: u64,
    errors: BTreeMap<String, u64>,
    closed: Option<String>,
    out_of_order: u64,
    sent: u64,
    frames: u64,
}

struct FanoutCfg {
    target: Target,
    clients: usize,
    senders: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    room: String,
    prefix: String,
    tag: String,
    concurrency: usize,
    server_pid: Option<u32>,
    /// Share of the senders' turns that react instead of sending.
    react_share: f64,
}

/// Whether turn `k` of a sender reacts, spreading `share` evenly.
fn reacts_at(k: usize, share: f64) -> bool {
    share > 0.0 && ((k + 1) as f64 * share).floor() > (k as f64 * share).floor()
}

async fn fanout_client(
    i: usize,
    cfg: Arc<FanoutCfg>,
    board: Arc<Board>,
    permits: Arc<Semaphore>,
    mut phase_rx: watch::Receiver<Phase>,
) -> ClientReport {
    let mut rep = ClientReport::default();
    let name = format!("{}-{i}", cfg.prefix);
    // The timeout starts once this client's turn to connect has come.
    let _permit = permits.acquire().await;
    let setup = open_session(&cfg.target, i, &name, &cfg.room);
    let setup = tokio::time::timeout(SETUP_TIMEOUT, setup).await;
    drop(_permit);
    let mut ws = match setup {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            rep.setup_error = Some(e);
            board.failed.fetch_add(1, Ordering::AcqRel);
            return rep;
        }
        Err(_) => {
            rep.setup_error = Some("setup timed out".into());
            board.failed.fetch_add(1, Ordering::AcqRel);
            return rep;
        }
    };
    rep.joined = true;
    board.ready.fetch_add(1, Ordering::AcqRel);

    let sender = (i < board.senders).then_some(i);
    let base = i * board.per_sender;
    let mut send_ns: Vec<u64> = Vec::new();
    let mut k = 0usize;
    let mut sending = false;
    let mut window = (u64::MAX, 0u64);
    let mut schedule = (Instant::now(), Duration::ZERO, Instant::now());
    let mut last_id = 0u64;
    // This sender's last acknowledged message, and whether its reaction is on.
    let mut mine: Option<u64> = None;
    let mut reacted = false;
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);

    loop {
        tokio::select! {
            biased;
            changed = phase_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let p = *phase_rx.borrow_and_update();
                match p {
                    Phase::Go { start, period, send_until, t0_ns, end_ns } => {
                        window = (t0_ns, end_ns);
                        if let Some(s) = sender {
                            // Senders are spread evenly over one period.
                            let offset = period.mul_f64(s as f64 / board.senders as f64);
                            schedule = (start + offset, period, send_until);
                            send_ns = Vec::with_capacity(board.per_sender);
                            sending = true;
                            sleep.as_mut().reset(schedule.0.into());
                        }
                    }
                    Phase::Stop => break,
                    Phase::Wait => {}
                }
            }
            m = ws.next() => {
                match m {
                    Some(Ok(WsMessage::Text(t))) => {
                        rep.frames += 1;
                        let t = t.as_str();
                        match read_frame(t) {
                        Seen::Message { id, sent_ns: ts, idx } => {
                            let now = unix_ns();
                            if id <= last_id {
                                rep.out_of_order += 1;
                            }
                            last_id = id;
                            if let Some(c) = board.counts.get(idx as usize) {
                                c.fetch_add(1, Ordering::Relaxed);
                                if ts >= window.0 && ts < window.1 {
                                    rep.latencies.push((now.saturating_sub(ts) / 1000) as u32);
                                }
                            }
                        }
                        Seen::Changed(id) => {
                            rep.changed += 1;
                            let slot = board.react_ns.get(id as usize % board.react_ns.len().max(1));
                            if let Some(sent) = slot.map(|s| s.load(Ordering::Acquire))
                                && sent >= window.0 && sent < window.1
                            {
                                rep.react_latencies.push((unix_ns().saturating_sub(sent) / 1000) as u32);
                            }
                        }
                        Seen::Ack(idx) => {
                            if let Some(id) = ack_id(t) {
                                mine = Some(id);
                            }
                            let idx = idx as usize;
                            if let Some(a) = board.acked.get(idx) {
                                a.store(true, Ordering::Release);
                                let mine = idx.checked_sub(base).and_then(|k| send_ns.get(k));
                                if let Some(&sent) = mine
                                    && board.measured[idx].load(Ordering::Relaxed)
                                {
                                    let us = unix_ns().saturating_sub(sent) / 1000;
                                    rep.ack_latencies.push(us as u32);
                                }
                            }
                        }
                        Seen::Error(code) => {
                            *rep.errors.entry(code).or_default() += 1;
                        }
                        Seen::Other => {}
                        }
                    }
                    Some(Ok(WsMessage::Close(c))) => {
                        rep.closed = Some(c.map(|c| u16::from(c.code).to_string()).unwrap_or_else(|| "no code".into()));
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        rep.closed = Some(format!("error: {e}"));
                        break;
                    }
                    None => {
                        rep.closed = Some("eof".into());
                        break;
                    }
                }
            }
            () = &mut sleep, if sending => {
                let (first, period, until) = schedule;
                let now = Instant::now();
                // Every send that is due (the timer has a 1 ms grain).
                while k < board.per_sender {
                    let due = first + period.mul_f64(k as f64);
                    if due > now || due >= until {
                        break;
                    }
                    let idx = base + k;
                    let ns = unix_ns();
                    let s = sender.unwrap_or(0);
                    if let Some(id) = mine.filter(|_| reacts_at(k, cfg.react_share)) {
                        reacted = !reacted;
                        let react = ClientFrame::React {
                            room: cfg.room.clone(),
                            id: id as i64,
                            emoji: "👍".into(),
                            on: reacted,
                        };
                        if let Some(slot) = board.react_ns.get(id as usize % board.react_ns.len().max(1)) {
                            slot.store(ns, Ordering::Release);
                        }
                        k += 1;
                        rep.reacts += 1;
                        if let Err(e) = ws.send(frame(&react)).await {
                            rep.closed = Some(format!("send error: {e}"));
                            sending = false;
                            break;
                        }
                        continue;
                    }
                    let send = ClientFrame::Send {
                        room: cfg.room.clone(),
                        body: format!("t={ns} s={s} k={idx}"),
                        nonce: Some(format!("{}-{idx}", cfg.tag)),
                        reply_to: None,
                        attachments: Vec::new(),
                    };
                    if ns >= window.0 && ns < window.1 {
                        board.measured[idx].store(true, Ordering::Release);
                    }
                    send_ns.push(ns);
                    k += 1;
                    rep.sent += 1;
                    if let Err(e) = ws.send(frame(&send)).await {
                        rep.closed = Some(format!("send error: {e}"));
                        sending = false;
                        break;
                    }
                }
                let next = first + period.mul_f64(k as f64);
                if k >= board.per_sender || next >= until {
                    sending = false;
                } else {
                    sleep.as_mut().reset(next.into());
                }
            }
        }
    }
    if rep.closed.is_none() {
        close(ws).await;
    }
    rep
}

/// Connects, warms up, measures, drains; returns the result as JSON.
async fn run_fanout(cfg: FanoutCfg) -> Value {
    let cfg = Arc::new(cfg);
    let senders = cfg.senders.clamp(1, cfg.clients.max(1));
    let per_sender_rate = cfg.rate / senders as f64;
    let per_sender = ((cfg.warmup + cfg.duration) * per_sender_rate).ceil() as usize + 2;
    let total = senders * per_sender;
    let board = Arc::new(Board {
        counts: (0..total).map(|_| AtomicU32::new(0)).collect(),
        acked: (0..total).map(|_| AtomicBool::new(false)).collect(),
        measured: (0..total).map(|_| AtomicBool::new(false)).collect(),
        per_sender,
        react_ns: (0..total.max(1))
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
        senders,
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let setup_start = Instant::now();
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|i| {
            tokio::spawn(fanout_client(
                i,
                cfg.clone(),
                board.clone(),
                permits.clone(),
                phase_rx.clone(),
            ))
        })
        .collect();
    drop(phase_rx);

    // Joins: bounded by the per-connection setup timeout.
    let setup_deadline =
        Instant::now() + SETUP_TIMEOUT + Duration::from_secs(cfg.clients as u64 / 50);
    while board.ready.load(Ordering::Acquire) + board.failed.load(Ordering::Acquire) < cfg.clients
        && Instant::now() < setup_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joined = board.ready.load(Ordering::Acquire);
    let setup_secs = setup_start.elapsed().as_secs_f64();
    // Let presence settle (coalesced updates go out once a second).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let start = Instant::now() + Duration::from_millis(50);
    let start_ns = unix_ns() + 50_000_000;
    let t0 = start + Duration::from_secs_f64(cfg.warmup);
    let t0_ns = start_ns + (cfg.warmup * 1e9) as u64;
    let end = t0 + Duration::from_secs_f64(cfg.duration);
    let end_ns = t0_ns + (cfg.duration * 1e9) as u64;
    let _ = phase_tx.send(Phase::Go {
        start,
        period: Duration::from_secs_f64(1.0 / per_sender_rate),
        send_until: end,
        t0_ns,
        end_ns,
    });
    tokio::time::sleep_until(t0.into()).await;
    let cpu = CpuWindow::start(cfg.server_pid);
    tokio::time::sleep_until(end.into()).await;

    // Drain: until every acked, measured message reached every member.
    let members = joined as u64;
    let tally = |board: &Board| {
        let (mut sent, mut acked, mut expected, mut received, mut dup, mut unacked_rx) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for i in 0..board.counts.len() {
            if !board.measured[i].load(Ordering::Acquire) {
                continue;
            }
            sent += 1;
            let c = board.counts[i].load(Ordering::Relaxed) as u64;
            if board.acked[i].load(Ordering::Acquire) {
                acked += 1;
                expected += members;
                received += c.min(members);
            } else {
                unacked_rx += c;
            }
            dup += c.saturating_sub(members);
        }
        (sent, acked, expected, received, dup, unacked_rx)
    };
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let (sent, acked, expected, received, _, _) = tally(&board);
        if (acked == sent && received == expected) || Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (server_cpu, cpu) = cpu.finish(cfg.server_pid);
    let (sent, acked, expected, received, dup, unacked_rx) = tally(&board);
    let _ = phase_tx.send(Phase::Stop);

    let mut latencies = Vec::new();
    let mut ack_latencies = Vec::new();
    let mut react_latencies = Vec::new();
    let (mut changed, mut reacts) = (0u64, 0u64);
    let mut errors = BTreeMap::new();
    let mut closed: BTreeMap<String, u64> = BTreeMap::new();
    let mut setup_errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut out_of_order, mut frames) = (0u64, 0u64);
    let collect = async {
        for t in tasks {
            if let Ok(r) = t.await {
                latencies.extend(r.latencies);
                ack_latencies.extend(r.ack_latencies);
                react_latencies.extend(r.react_latencies);
                changed += r.changed;
                reacts += r.reacts;
                merge_counts(&mut errors, r.errors);
                if let Some(c) = r.closed {
                    *closed.entry(c).or_default() += 1;
                }
                if let Some(e) = r.setup_error {
                    *setup_errors.entry(e).or_default() += 1;
                }
                out_of_order += r.out_of_order;
                frames += r.frames;
            }
        }
    };
    if tokio::time::timeout(STOP_TIMEOUT, collect).await.is_err() {
        eprintln!("causerie-load: some clients did not stop in time");
    }
    json!({
        "mode": "fanout",
        "clients": cfg.clients,
        "joined": joined,
        "setup_s": round3(setup_secs),
        "setup_errors": setup_errors,
        "senders": senders,
        "rate": cfg.rate,
        "duration_s": cfg.duration,
        "room": cfg.room,
        "sent": sent,
        "send_rate": round3(sent as f64 / cfg.duration),
        "acked": acked,
        "expected_deliveries": expected,
        "received_deliveries": received,
        "loss": expected - received,
        "duplicates": dup,
        "received_unacked": unacked_rx,
        "out_of_order": out_of_order,
        "deliveries_per_s": round3(received as f64 / cfg.duration),
        "latency_ms": percentiles(&mut latencies),
        "ack_latency_ms": percentiles(&mut ack_latencies),
        "react_share": cfg.react_share,
        "reacts_sent": reacts,
        "changed_received": changed,
        "changed_per_s": round3(changed as f64 / (cfg.warmup + cfg.duration).max(0.001)),
        "react_latency_ms": percentiles(&mut react_latencies),
        "acks": acked,
        "errors": errors,
        "closed": closed,
        "frames_received": frames,
        "server_cpu_us_per_delivery": server_cpu.map(|c| round3(c * 1e6 / received.max(1) as f64)),
        "server_user_us_per_delivery": cpu["server_user_cpu_s"]
            .as_f64()
            .map(|c| round3(c * 1e6 / received.max(1) as f64)),
        "cpu": cpu,
    })
}

fn fanout_cfg(
    conn: &Conn,
    clients: usize,
    senders: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    room: Option<String>,
) -> Result<FanoutCfg, String> {
    let tag = run_tag();
    let room = room.unwrap_or_else(|| format!("bench-{tag}"));
    protocol::parse_room(&room).map_err(|e| e.to_string())?;
    let prefix = conn.prefix.clone().unwrap_or_else(|| format!("load-{tag}"));
    protocol::validate_name(&format!("{prefix}-{clients}")).map_err(|e| e.to_string())?;
    if !(rate > 0.0 && rate <= 1e6) {
        return Err("--rate must be in (0, 1e6]".into());
    }
    check_duration(duration)?;
    check_duration(warmup)?;
    if clients == 0 || clients > MAX_CONNECTIONS {
        return Err(format!("--clients must be 1..={MAX_CONNECTIONS}"));
    }
    check_fds(clients)?;
    Ok(FanoutCfg {
        target: Target::new(conn)?,
        clients,
        senders,
        rate,
        duration,
        warmup,
        room,
        prefix,
        tag,
        concurrency: conn.connect_concurrency,
        server_pid: conn.server_pid,
        react_share: 0.0,
    })
}

fn check_duration(d: f64) -> Result<(), String> {
    if (0.0..=MAX_DURATION_SECS).contains(&d) {
        Ok(())
    } else {
        Err(format!("durations must be 0..={MAX_DURATION_SECS} s"))
    }
}

fn check_fds(connections: usize) -> Result<(), String> {
    let limit = raise_nofile();
    if connections as u64 + FD_RESERVE > limit {
        return Err(format!(
            "{connections} connections need more than this process's {limit} open files: \
             use idle --procs P (or run several processes)"
        ));
    }
    Ok(())
}

async fn saturate(a: SaturateArgs) -> Result<Value, String> {
    let mut steps = Vec::new();
    let mut best: Option<Value> = None;
    let mut pass_rate: Option<f64> = None;
    let mut fail_rate: Option<f64> = None;
    let mut rate = a.start_rate;
    let mut refined = 0;
    for _ in 0..a.max_steps.min(40) {
        let cfg = fanout_cfg(
            &a.conn, a.clients, a.senders, rate, a.duration, a.warmup, None,
        )?;
        let r = run_fanout(cfg).await;
        let p99 = r["latency_ms"]["p99"].as_f64().unwrap_or(f64::INFINITY);
        let ok = r["loss"].as_u64() == Some(0)
            && r["joined"].as_u64() == Some(a.clients as u64)
            && r["closed"].as_object().is_none_or(|c| c.is_empty())
            && r["send_rate"].as_f64().unwrap_or(0.0) >= 0.95 * rate
            && p99 < a.p99_ms;
        let step = json!({
            "rate": rate,
            "pass": ok,
            "deliveries_per_s": r["deliveries_per_s"],
            "send_rate": r["send_rate"],
            "loss": r["loss"],
            "p50_ms": r["latency_ms"]["p50"],
            "p99_ms": r["latency_ms"]["p99"],
            "max_ms": r["latency_ms"]["max"],
            "server_cpu_us_per_delivery": r["server_cpu_us_per_delivery"],
            "server_cores": r["cpu"]["server_cores"],
            "other_busy_cores": r["cpu"]["other_busy_cores"],
            "errors": r["errors"],
            "closed": r["closed"],
        });
        eprintln!("saturate step: {step}");
        steps.push(step.clone());
        if ok {
            if best
                .as_ref()
                .is_none_or(|b| b["deliveries_per_s"].as_f64() < step["deliveries_per_s"].as_f64())
            {
                best = Some(step);
            }
            pass_rate = Some(rate);
        } else {
            fail_rate = Some(fail_rate.map_or(rate, |f: f64| f.min(rate)));
        }
        // Grow until the first failure, then bisect `refine` times.
        rate = match (pass_rate, fail_rate) {
            (_, None) => rate * a.factor,
            (None, Some(_)) => break,
            (Some(p), Some(f)) => {
                if refined >= a.refine {
                    break;
                }
                refined += 1;
                ((p + f) / 2.0).round()
            }
        };
        // Let the server close the previous step's connections.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(json!({
        "mode": "saturate",
        "clients": a.clients,
        "senders": a.senders,
        "p99_bound_ms": a.p99_ms,
        "best": best,
        "first_failing_rate": fail_rate,
        "steps": steps,
    }))
}

// ---------------------------------------------------------------------------
// Idle
// ---------------------------------------------------------------------------

struct IdleSet {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Option<String>>>,
    ready: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    errors: BTreeMap<String, u64>,
}

/// Opens `n` idle sessions numbered from `first`; returns once all are up or failed.
async fn open_idle(
    target: &Target,
    n: usize,
    first: usize,
    rooms: usize,
    room_prefix: &str,
    prefix: &str,
    concurrency: usize,
) -> IdleSet {
    let (stop, stop_rx) = watch::channel(false);
    let ready = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let errors = Arc::new(std::sync::Mutex::new(BTreeMap::<String, u64>::new()));
    let tasks = (first..first + n)
        .map(|i| {
            let target = target.clone();
            let name = format!("{prefix}-{i}");
            let room = format!("{room_prefix}-{}", i % rooms.max(1));
            let (ready, failed, permits, errors) =
                (ready.clone(), failed.clone(), permits.clone(), errors.clone());
            let mut stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                let permit = permits.acquire().await;
                let setup = open_session(&target, i, &name, &room);
                let setup = tokio::time::timeout(SETUP_TIMEOUT, setup).await;
                drop(permit);
                let mut ws = match setup {
                    Ok(Ok(ws)) => ws,
                    Ok(Err(e)) => {
                        *errors.lock().unwrap_or_else(|e| e.into_inner()).entry(e).or_default() += 1;
                        failed.fetch_add(1, Ordering::AcqRel);
                        return None;
                    }
                    Err(_) => {
                        *errors
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry("setup timed out".into())
                            .or_default() += 1;
                        failed.fetch_add(1, Ordering::AcqRel);
                        return None;
                    }
                };
                ready.fetch_add(1, Ordering::AcqRel);
                // Idle: only read (presence, pings) until told to stop.
                let end = loop {
                    tokio::select! {
                        r = stop_rx.changed() => if r.is_err() || *stop_rx.borrow() { break None },
                        m = ws.next() => match m {
                            Some(Ok(WsMessage::Close(c))) => break Some(format!("closed {}", c.map(|c| u16::from(c.code)).unwrap_or(0))),
                            Some(Ok(_)) => {}
                            Some(Err(e)) => break Some(format!("error: {e}")),
                            None => break Some("eof".into()),
                        }
                    }
                };
                if end.is_none() {
                    close(ws).await;
                }
                end
            })
        })
        .collect::<Vec<_>>();
    let deadline = Instant::now() + SETUP_TIMEOUT + Duration::from_secs(n as u64 / 50);
    while ready.load(Ordering::Acquire) + failed.load(Ordering::Acquire) < n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let errors = errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    IdleSet {
        stop,
        tasks,
        ready,
        failed,
        errors,
    }
}

async fn close_idle(set: IdleSet) -> BTreeMap<String, u64> {
    let _ = set.stop.send(true);
    let mut ended = BTreeMap::new();
    let _ = tokio::time::timeout(STOP_TIMEOUT, async {
        for t in set.tasks {
            if let Ok(Some(e)) = t.await {
                *ended.entry(e).or_default() += 1;
            }
        }
    })
    .await;
    ended
}

async fn idle(a: IdleArgs) -> Result<Value, String> {
    let target = Target::new(&a.conn)?;
    if a.connections == 0 || a.connections > MAX_CONNECTIONS {
        return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
    }
    let procs = a.procs.clamp(1, 64);
    let per_proc = a.connections.div_ceil(procs);
    check_fds(per_proc)?;
    check_duration(a.settle)?;
    check_duration(a.hold)?;
    let tag = run_tag();
    let prefix = a
        .conn
        .prefix
        .clone()
        .unwrap_or_else(|| format!("idle-{tag}"));
    let room_prefix = format!("idle-{tag}");
    if a.history > 0 {
        seed_history(&target, &room_prefix, &a).await?;
    }
    let pid = a.conn.server_pid;
    let rss = |f: &str| pid.and_then(|p| status_bytes(Some(p), f));
    let (rss0, anon0) = (rss("VmRSS"), rss("RssAnon"));
    let started = Instant::now();

    let mut ready = 0usize;
    let mut failed = 0usize;
    let mut errors = BTreeMap::new();
    let mut ended = BTreeMap::new();
    let mut local: Option<IdleSet> = None;
    let mut children = Vec::new();
    if procs == 1 {
        let set = open_idle(
            &target,
            a.connections,
            0,
            a.rooms,
            &room_prefix,
            &prefix,
            a.conn.connect_concurrency,
        )
        .await;
        ready = set.ready.load(Ordering::Acquire);
        failed = set.failed.load(Ordering::Acquire);
        errors = set.errors.clone();
        local = Some(set);
    } else {
        // Each worker process has its own open-file limit; they print one
        // JSON line when connected and stop when their stdin closes.
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let sources_per = (a.conn.sources as usize / procs).max(1);
        for p in 0..procs {
            let first = p * per_proc;
            let n = per_proc.min(a.connections.saturating_sub(first));
            if n == 0 {
                break;
            }
            let mut cmd = Command::new(&exe);
            cmd.arg("idle-worker")
                .args(["--url", &a.conn.url])
                .args(["--connections", &n.to_string()])
                .args(["--rooms", &a.rooms.to_string()])
                .args(["--first", &first.to_string()])
                .args(["--room-prefix", &room_prefix])
                .args(["--prefix", &prefix])
                .args([
                    "--connect-concurrency",
                    &(a.conn.connect_concurrency / procs).max(1).to_string(),
                ]);
            if a.conn.sources > 0 {
                let base = u32::from(a.conn.source_base) + (p * sources_per) as u32;
                cmd.args(["--sources", &sources_per.to_string()])
                    .args(["--source-base", &Ipv4Addr::from(base).to_string()]);
            }
            let child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawning a worker: {e}"))?;
            children.push(child);
        }
        let mut lines = Vec::new();
        for child in &mut children {
            let out = child.stdout.take();
            lines.push(tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                if let Some(out) = out {
                    let _ = std::io::BufReader::new(out).read_line(&mut line);
                }
                line
            }));
        }
        for l in lines {
            let line = l.await.unwrap_or_default();
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            ready += v["ready"].as_u64().unwrap_or(0) as usize;
            failed += v["failed"].as_u64().unwrap_or(0) as usize;
            if let Some(e) = v["errors"].as_object() {
                for (k, n) in e {
                    *errors.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    let (rss1, anon1) = (rss("VmRSS"), rss("RssAnon"));
    let loadgen_rss = status_bytes(None, "VmRSS");
    tokio::time::sleep(Duration::from_secs_f64(a.hold)).await;

    if let Some(set) = local {
        ended = close_idle(set).await;
    }
    for mut child in children {
        drop(child.stdin.take());
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    }
    let per = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if ready > 0 => Some(round3((b as f64 - a as f64) / ready as f64)),
        _ => None,
    };
    Ok(json!({
        "mode": "idle",
        "connections": a.connections,
        "ready": ready,
        "failed": failed,
        "errors": errors,
        "ended_early": ended,
        "rooms": a.rooms,
        "history": a.history,
        "history_body": a.history_body,
        "procs": procs,
        "sources": a.conn.sources,
        "connect_s": round3(connect_secs),
        "server_rss_before": rss0,
        "server_rss_after": rss1,
        "server_rss_anon_before": anon0,
        "server_rss_anon_after": anon1,
        "bytes_per_connection": per(rss0, rss1),
        "anon_bytes_per_connection": per(anon0, anon1),
        "loadgen_rss": loadgen_rss,
    }))
}

/// Stores `--history` messages in every room the idle connections will join,
/// each send waiting for its ack.
async fn seed_history(target: &Target, room_prefix: &str, a: &IdleArgs) -> Result<(), String> {
    let body: String = "x".repeat(a.history_body.clamp(1, 4000));
    for r in 0..a.rooms.max(1) {
        let room = format!("{room_prefix}-{r}");
        let mut ws = open_session(target, r, &format!("seed-{}", run_tag()), &room).await?;
        for _ in 0..a.history {
            let send = ClientFrame::Send {
                room: room.clone(),
                body: body.clone(),
                nonce: None,
                reply_to: None,
                attachments: Vec::new(),
            };
            ws.send(frame(&send)).await.map_err(|e| e.to_string())?;
            expect(&mut ws, |f| matches!(f, ServerFrame::Ack { .. })).await?;
        }
        close(ws).await;
    }
    Ok(())
}

async fn idle_worker(a: IdleWorkerArgs) -> Result<(), String> {
    let target = Target::new(&a.conn)?;
    check_fds(a.connections)?;
    let prefix = a
        .conn
        .prefix
        .clone()
        .unwrap_or_else(|| format!("idle-{}", run_tag()));
    let set = open_idle(
        &target,
        a.connections,
        a.first,
        a.rooms,
        &a.room_prefix,
        &prefix,
        a.conn.connect_concurrency,
    )
    .await;
    let line = json!({
        "ready": set.ready.load(Ordering::Acquire),
        "failed": set.failed.load(Ordering::Acquire),
        "errors": set.errors,
    });
    println!("{line}");
    let _ = std::io::stdout().flush();
    // Hold until the parent closes our stdin (bounded: at most an hour).
    let wait = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().lock().read_line(&mut s);
    });
    let _ = tokio::time::timeout(Duration::from_secs_f64(MAX_DURATION_SECS), wait).await;
    close_idle(set).await;
    Ok(())
}

// ---------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------

async fn storage(a: StorageArgs) -> Result<Value, String> {
    let target = Target::new(&a.conn)?;
    if a.clients == 0 || a.clients > MAX_CONNECTIONS {
        return Err(format!("--clients must be 1..={MAX_CONNECTIONS}"));
    }
    check_fds(a.clients)?;
    check_duration(a.duration)?;
    check_duration(a.warmup)?;
    let in_flight = a.in_flight.clamp(1, 64);
    let tag = run_tag();
    let prefix = a
        .conn
        .prefix
        .clone()
        .unwrap_or_else(|| format!("store-{tag}"));
    let permits = Arc::new(Semaphore::new(a.conn.connect_concurrency.max(1)));
    let ready = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = watch::channel::<Option<(Instant, Instant)>>(None);
    let tasks: Vec<_> = (0..a.clients)
        .map(|i| {
            let target = target.clone();
            let name = format!("{prefix}-{i}");
            let room = if a.shared_room {
                format!("store-{tag}")
            } else {
                format!("store-{tag}-{i}")
            };
            let tag = tag.clone();
            let (permits, ready, failed) = (permits.clone(), ready.clone(), failed.clone());
            let mut go_rx = go_rx.clone();
            tokio::spawn(async move {
                let mut acks = 0u64;
                let mut lat: Vec<u32> = Vec::new();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                let permit = permits.acquire().await;
                let setup = open_session(&target, i, &name, &room);
                let setup = tokio::time::timeout(SETUP_TIMEOUT, setup).await;
                drop(permit);
                let mut ws = match setup {
                    Ok(Ok(ws)) => ws,
                    _ => {
                        failed.fetch_add(1, Ordering::AcqRel);
                        return (acks, lat, errors);
                    }
                };
                ready.fetch_add(1, Ordering::AcqRel);
                let Ok(go) = go_rx.wait_for(|g| g.is_some()).await.map(|g| *g) else {
                    return (acks, lat, errors);
                };
                let Some((t0, end)) = go else {
                    return (acks, lat, errors);
                };
                let mut sent_at: HashMap<u64, Instant> = HashMap::new();
                let mut k = 0u64;
                let mut outstanding = 0usize;
                let hard_end = end + DRAIN_TIMEOUT;
                loop {
                    while outstanding < in_flight && Instant::now() < end {
                        let send = ClientFrame::Send {
                            room: room.clone(),
                            body: format!("store {i} {k}"),
                            nonce: Some(format!("{tag}-{k}")),
                            reply_to: None,
                            attachments: Vec::new(),
                        };
                        sent_at.insert(k, Instant::now());
                        k += 1;
                        outstanding += 1;
                        if ws.send(frame(&send)).await.is_err() {
                            *errors.entry("send failed".into()).or_default() += 1;
                            return (acks, lat, errors);
                        }
                    }
                    if outstanding == 0 || Instant::now() >= hard_end {
                        break;
                    }
                    let m = tokio::time::timeout_at(hard_end.into(), ws.next()).await;
                    let Ok(Some(Ok(m))) = m else { break };
                    let WsMessage::Text(t) = m else { continue };
                    let t = t.as_str();
                    match read_frame(t) {
                        Seen::Ack(idx) => {
                            outstanding = outstanding.saturating_sub(1);
                            let now = Instant::now();
                            if let Some(at) = sent_at.remove(&idx)
                                && at >= t0
                                && now <= end
                            {
                                acks += 1;
                                lat.push(now.duration_since(at).as_micros() as u32);
                            }
                        }
                        Seen::Error(code) => {
                            outstanding = outstanding.saturating_sub(1);
                            *errors.entry(code).or_default() += 1;
                        }
                        Seen::Message { .. } | Seen::Changed(_) | Seen::Other => {}
                    }
                }
                close(ws).await;
                (acks, lat, errors)
            })
        })
        .collect();
    drop(go_rx);
    let deadline = Instant::now() + SETUP_TIMEOUT + Duration::from_secs(a.clients as u64 / 50);
    while ready.load(Ordering::Acquire) + failed.load(Ordering::Acquire) < a.clients
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let t0 = start + Duration::from_secs_f64(a.warmup);
    let end = t0 + Duration::from_secs_f64(a.duration);
    let _ = go_tx.send(Some((t0, end)));
    tokio::time::sleep_until(t0.into()).await;
    let pid = a.conn.server_pid;
    let window = CpuWindow::start(pid);
    tokio::time::sleep_until(end.into()).await;
    let (cpu, cpu_summary) = window.finish(pid);
    let mut acks = 0u64;
    let mut lat = Vec::new();
    let mut errors = BTreeMap::new();
    let _ = tokio::time::timeout(STOP_TIMEOUT, async {
        for t in tasks {
            if let Ok((n, l, e)) = t.await {
                acks += n;
                lat.extend(l);
                merge_counts(&mut errors, e);
            }
        }
    })
    .await;
    Ok(json!({
        "mode": "storage",
        "clients": a.clients,
        "ready": ready.load(Ordering::Acquire),
        "in_flight": in_flight,
        "shared_room": a.shared_room,
        "duration_s": a.duration,
        "acked": acks,
        "stored_per_s": round3(acks as f64 / a.duration),
        "ack_latency_ms": percentiles(&mut lat),
        "errors": errors,
        "server_cpu_us_per_message": cpu.map(|c| round3(c * 1e6 / acks.max(1) as f64)),
        "cpu": cpu_summary,
    }))
}

// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_nofile();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("causerie-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.mode {
            Mode::Fanout(a) => {
                let mut cfg = fanout_cfg(
                    &a.conn,
                    a.clients,
                    a.senders,
                    a.rate,
                    a.duration,
                    a.warmup,
                    a.room.clone(),
                )?;
                if !(0.0..=0.9).contains(&a.react_share) {
                    return Err("--react-share must be in [0, 0.9]".into());
                }
                cfg.react_share = a.react_share;
                Ok(Some(run_fanout(cfg).await))
            }
            Mode::Saturate(a) => saturate(a).await.map(Some),
            Mode::Idle(a) => idle(a).await.map(Some),
            Mode::Storage(a) => storage(a).await.map(Some),
            Mode::IdleWorker(a) => idle_worker(a).await.map(|()| None),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(Some(v)) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("causerie-load: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_frames_it_counts() {
        let m = r#"{"type":"message","room":"bench-x","id":42,"author":"load-x-1","body":"t=1700000000000000000 s=3 k=17","ts":"2026-11-21T10:15:30.123Z","nonce":"abc-17"}"#;
        let want = Seen::Message {
            id: 42,
            sent_ns: 1_700_000_000_000_000_000,
            idx: 17,
        };
        assert_eq!(read_frame(m), want);
        let a = r#"{"type":"ack","nonce":"abc-17","room":"bench-x","id":42,"ts":"2026-11-21T10:15:30.123Z"}"#;
        assert_eq!(read_frame(a), Seen::Ack(17));
        let e = r#"{"type":"error","code":"rate_limited","message":"slow down","nonce":"abc-9"}"#;
        assert_eq!(read_frame(e), Seen::Error("rate_limited".into()));
        // Someone else's message, presence, and what is not a frame.
        let other = r#"{"type":"message","room":"r","id":1,"author":"a","body":"hi","ts":"2026-11-21T10:15:30.123Z"}"#;
        assert_eq!(read_frame(other), Seen::Other);
        let p = r#"{"type":"presence","room":"r","user":"a","state":"joined","online":1}"#;
        assert_eq!(read_frame(p), Seen::Other);
        assert_eq!(read_frame("not json"), Seen::Other);
    }

    /// The frames as the server's own types write them (so a renamed type
    /// or field fails here, not silently in a run).
    #[test]
    fn read_frames_as_the_protocol_writes_them() {
        let msg = protocol::Message {
            room: "bench-x".into(),
            id: 7,
            author: "load-x-1".into(),
            body: "t=123 s=0 k=5".into(),
            ts: "2026-11-21T10:15:30.123Z".into(),
            nonce: Some("tag-5".into()),
        };
        let text = |f: &ServerFrame| serde_json::to_string(f).expect("encode");
        assert_eq!(
            read_frame(&text(&ServerFrame::Message(msg))),
            Seen::Message {
                id: 7,
                sent_ns: 123,
                idx: 5
            }
        );
        let ack = ServerFrame::Ack {
            nonce: Some("tag-5".into()),
            room: "bench-x".into(),
            id: 7,
            ts: "2026-11-21T10:15:30.123Z".into(),
        };
        assert_eq!(read_frame(&text(&ack)), Seen::Ack(5));
        let err = ServerFrame::error(ErrorCode::Unavailable, "later", Some("tag-6".into()));
        assert_eq!(read_frame(&text(&err)), Seen::Error("unavailable".into()));
    }

    /// What decoding one delivery costs, read just for the counted fields
    /// and as a whole [`ServerFrame`]:
    /// `cargo test --release -p causerie-load decode_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: run with --ignored --nocapture"]
    fn decode_cost() {
        let m = r#"{"type":"message","room":"bench-x","id":42,"author":"load-x-1","body":"t=1700000000000000000 s=3 k=17","ts":"2026-11-21T10:15:30.123Z","nonce":"abc-17"}"#;
        let n = 1_000_000u32;
        let t = Instant::now();
        for _ in 0..n {
            assert!(matches!(
                read_frame(std::hint::black_box(m)),
                Seen::Message { .. }
            ));
        }
        let head = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            let f = serde_json::from_str::<ServerFrame>(std::hint::black_box(m));
            assert!(matches!(f, Ok(ServerFrame::Message(_))));
        }
        let whole = t.elapsed() / n;
        println!("per message frame: counted fields {head:?}, whole ServerFrame {whole:?}");
    }

    #[test]
    fn refuses_targets_off_loopback() {
        let conn = |url: &str| Conn {
            url: url.into(),
            server_pid: None,
            sources: 0,
            source_base: Ipv4Addr::new(127, 0, 0, 2),
            connect_concurrency: 1,
            prefix: None,
        };
        assert!(Target::new(&conn("ws://127.0.0.1:3000/ws")).is_ok());
        assert!(Target::new(&conn("ws://localhost:3000/ws")).is_ok());
        assert!(Target::new(&conn("ws://10.0.0.1:3000/ws")).is_err());
        assert!(Target::new(&conn("wss://127.0.0.1/ws")).is_err());
        let mut c = conn("ws://127.0.0.1:1/ws");
        c.sources = 3;
        c.source_base = Ipv4Addr::new(126, 255, 255, 255);
        assert!(Target::new(&c).is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u32> = (1..=1000).map(|x| x * 1000).collect();
        let p = percentiles(&mut v);
        assert_eq!(p["p50"], 500.0);
        assert_eq!(p["p99"], 990.0);
        assert_eq!(p["max"], 1000.0);
    }
}
