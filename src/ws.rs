//! One WebSocket connection's life: upgrade checks, the `hello` handshake,
//! and a loop that turns client frames into hub calls and writes the
//! connection's queued frames. Business rules live in the hub.

use crate::auth::{Auth, AuthError, Holder};
use crate::hub::{Actor, Frame, HubError, Outbox, OutboxReader, Queued, encode};
use crate::protocol::{ClientFrame, ErrorCode, HISTORY_PAGE, ServerFrame, UserInfo};
use crate::state::AppState;
use crate::store::{Appended, NewMessage};
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Close codes this server uses (see docs/PROTOCOL-NOTES.md).
pub mod close {
    /// The server is going away (shutdown); reconnect elsewhere or later.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame over the hard size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The first frame was not a valid `hello`, or the credentials were refused.
    pub const UNAUTHORIZED: u16 = 4001;
    /// Silent past the idle timeout.
    pub const IDLE: u16 = 4002;
    /// The connection could not keep up with its frames; resume later.
    pub const TOO_SLOW: u16 = 4008;
}

/// Sends a client may have waiting for the store at once; past it the
/// connection stops reading until one is answered.
const MAX_IN_FLIGHT: usize = 64;
/// Bytes read from the socket at a time; also the buffer an idle connection
/// keeps. Client frames are small; a bigger one grows the buffer.
const READ_BUFFER: usize = 256;
/// Frames are gathered up to this many bytes before a write.
const WRITE_BUFFER: usize = 4 * 1024;
/// How long a closing connection waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a client cut as too slow has to read its way to the close.
const SLOW_CLOSE_WAIT: Duration = Duration::from_secs(30);
/// Refused `hello`s before the connection is closed.
const MAX_HELLOS: u32 = 5;
/// How long shutdown waits for a connection's sends to be stored.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// The guest cookie set by the page, naming who holds a guest name.
pub const GUEST_COOKIE: &str = "causerie_guest";

/// `GET /ws`: checks the Origin, then upgrades.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: tower_sessions::Session,
    headers: HeaderMap,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let ok = origin.to_str().is_ok_and(|o| app.origin_allowed(o, host));
        if !ok {
            tracing::warn!(%peer, origin = ?origin, "refused WebSocket from a foreign origin");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    let slot = match app.limits.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(e) => {
            tracing::warn!(%peer, "refused WebSocket: {e}");
            return crate::api::Failure::new(ErrorCode::RateLimited, e.to_string()).into_response();
        }
    };
    let holder = cookie(&headers, GUEST_COOKIE).map(|c| Holder::Cookie(c.to_string()));
    // A session that cannot be read is no session: the client may still
    // say hello with a name or a token.
    let account = session
        .get::<String>(crate::account::SESSION_USER)
        .await
        .ok()
        .flatten();
    let hard = app.config.hard_frame_bytes;
    ws
        // Small buffers: an idle connection should cost a few KiB, not 128.
        // Frames are mostly a few hundred bytes; bigger ones grow the buffer.
        .read_buffer_size(READ_BUFFER)
        // Frames gather here until the flush after a burst; the buffer keeps
        // its largest size for the connection's life, so keep it modest.
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| {
            let tracker = app.tracker.clone();
            // `run` itself, not a block around it: a block would keep its own
            // copy of everything it moved into `run` for the connection's life.
            tracker.track_future(run(socket, app, peer, holder, account, slot))
        })
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How a connection ended, for the log.
#[derive(Debug)]
enum End {
    ClientClosed,
    Closed(u16, &'static str),
    #[allow(dead_code, reason = "read through Debug in the disconnect log")]
    Error(String),
}

async fn run(
    mut socket: WebSocket,
    app: AppState,
    peer: SocketAddr,
    holder: Option<Holder>,
    account: Option<String>,
    // Held for the connection's life: it counts against the address's cap.
    _slot: crate::limits::ConnectionSlot,
) {
    let conn_id = crate::hub::outbox::next_id();
    app.metrics.connections.inc();
    app.metrics.connections_total.inc();
    tracing::info!(conn = conn_id, %peer, "connected");
    // Boxed: the handshake's state is not kept for the connection's life.
    let shook = Box::pin(handshake(&mut socket, &app, conn_id, peer, holder, account)).await;
    let end = match shook {
        Ok(session) => session.run(&mut socket, &app).await,
        Err(end) => end,
    };
    if let End::Closed(code, reason) = &end {
        let close = WsMessage::Close(Some(CloseFrame {
            code: *code,
            reason: Utf8Bytes::from_static(reason),
        }));
        // Wait for the client's close: dropping a socket with unread frames
        // would reset the connection before the close is read. A client that
        // reads nothing at all gets no longer than CLOSE_WAIT.
        // A client cut for being slow has a full pipe before the close: give
        // it longer to read its way to the 4008. Its rooms are already left.
        let wait = if *code == close::TOO_SLOW {
            SLOW_CLOSE_WAIT
        } else {
            CLOSE_WAIT
        };
        // Boxed, like every path an idle connection is not on.
        let _ = Box::pin(tokio::time::timeout(wait, async {
            if socket.send(close).await.is_ok() {
                while let Some(Ok(m)) = socket.recv().await {
                    if matches!(m, WsMessage::Close(_)) {
                        break;
                    }
                }
            }
        }))
        .await;
    }
    app.metrics.connections.dec();
    tracing::info!(conn = conn_id, %peer, end = ?end, "disconnected");
}

/// A client frame read off the socket, or why it could not be read.
enum Incoming {
    Frame(ClientFrame),
    /// Answer with an error and carry on.
    Bad(ErrorCode, String, Option<String>),
    /// A `hello` with wrong or missing fields.
    BadHello(String),
    /// Keep-alive traffic; nothing to answer.
    Nothing,
    End(End),
}

fn read(msg: Option<Result<WsMessage, axum::Error>>, max: usize) -> Incoming {
    match msg {
        None => Incoming::End(End::ClientClosed),
        Some(Err(e)) => {
            let too_big = e
                .into_inner()
                .downcast::<tungstenite::Error>()
                .map(|e| matches!(*e, tungstenite::Error::Capacity(_)));
            match too_big {
                Ok(true) => Incoming::End(End::Closed(close::TOO_BIG, "frame too large")),
                Ok(false) => Incoming::End(End::Error("protocol error".into())),
                Err(e) => Incoming::End(End::Error(e.to_string())),
            }
        }
        Some(Ok(WsMessage::Text(text))) => {
            if text.len() > max {
                return Incoming::Bad(
                    ErrorCode::TooLarge,
                    format!("frame of {} bytes is over the limit of {max}", text.len()),
                    None,
                );
            }
            decode(text.as_str())
        }
        Some(Ok(WsMessage::Binary(_))) => Incoming::Bad(
            ErrorCode::BadRequest,
            "binary frames are not understood; send JSON text frames".into(),
            None,
        ),
        Some(Ok(WsMessage::Close(_))) => Incoming::End(End::ClientClosed),
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Incoming::Nothing,
    }
}

/// Parses a text frame; a bad one is described, with its nonce when it has one.
fn decode(text: &str) -> Incoming {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(f) => Incoming::Frame(f),
        Err(e) => {
            let value = serde_json::from_str::<serde_json::Value>(text).ok();
            let nonce = value
                .as_ref()
                .and_then(|v| v.get("nonce"))
                .and_then(|n| n.as_str())
                .map(str::to_string);
            let why = match value {
                None => format!("not JSON: {e}"),
                Some(v) if !v.is_object() => "a frame is a JSON object".to_string(),
                Some(v) => match v.get("type").map(|t| t.as_str()) {
                    None => "missing field `type`".to_string(),
                    Some(None) => "`type` must be a string".to_string(),
                    Some(Some("hello")) => return Incoming::BadHello(e.to_string()),
                    Some(Some(_)) => e.to_string(),
                },
            };
            Incoming::Bad(ErrorCode::BadRequest, why, nonce)
        }
    }
}

async fn send_now(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), End> {
    socket
        .send(WsMessage::Text(encode(frame)))
        .await
        .map_err(|e| End::Error(e.to_string()))
}

/// Waits for a valid `hello` and answers `welcome`.
async fn handshake(
    socket: &mut WebSocket,
    app: &AppState,
    conn_id: u64,
    peer: SocketAddr,
    holder: Option<Holder>,
    account: Option<String>,
) -> Result<Box<Session>, End> {
    let deadline = tokio::time::sleep(app.config.idle_timeout());
    tokio::pin!(deadline);
    let mut refused = 0;
    loop {
        let msg = tokio::select! {
            m = socket.recv() => m,
            _ = &mut deadline => return Err(End::Closed(close::IDLE, "no hello")),
            _ = app.shutdown.cancelled() => return Err(End::Closed(close::GOING_AWAY, "server shutting down")),
        };
        let (name, token, resume) = match read(msg, app.config.max_frame_bytes) {
            Incoming::Frame(ClientFrame::Hello {
                name,
                token,
                resume,
            }) => (name, token, resume),
            Incoming::Nothing => continue,
            Incoming::End(end) => return Err(end),
            Incoming::BadHello(why) => {
                // A hello with wrong fields: say what is wrong and let it retry.
                send_now(
                    socket,
                    &ServerFrame::error(ErrorCode::BadRequest, why, None),
                )
                .await?;
                continue;
            }
            _ => {
                let _ = send_now(
                    socket,
                    &ServerFrame::error(
                        ErrorCode::Unauthorized,
                        "the first frame must be hello",
                        None,
                    ),
                )
                .await;
                return Err(End::Closed(close::UNAUTHORIZED, "hello first"));
            }
        };
        let claimed = match (token, name) {
            (Some(token), _) => match app.auth.token(&token).await {
                Ok(Some(actor)) => Ok(actor),
                Ok(None) => Err(AuthError::Unauthorized("that token is not valid".into())),
                Err(e) => Err(e),
            },
            (None, Some(name)) => {
                let holder = holder.clone().unwrap_or(Holder::Connection(conn_id));
                app.auth.claim_guest(&name, &holder).await
            }
            (None, None) => match &account {
                Some(name) => Ok(Auth::account(name.clone())),
                None => Err(AuthError::Unauthorized(
                    "not signed in: send a name (guest) or a token".into(),
                )),
            },
        };
        let actor = match claimed {
            Ok(a) => a,
            Err(e @ AuthError::BadName(_)) => {
                send_now(socket, &ServerFrame::error(e.code(), e.to_string(), None)).await?;
                continue;
            }
            Err(e) => {
                // Refused credentials may be followed by others, a few times.
                refused += 1;
                send_now(socket, &ServerFrame::error(e.code(), e.to_string(), None)).await?;
                if refused >= MAX_HELLOS {
                    return Err(End::Closed(close::UNAUTHORIZED, "too many refused hellos"));
                }
                continue;
            }
        };
        // Boxed: it is moved from here into the connection loop, and a
        // connection's future keeps room for every place it was held.
        let session = Box::new(Session::new(app, conn_id, actor, resume, peer.ip()));
        let rooms = match app.hub.rooms_for(&session.actor).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(conn = conn_id, error = %e, "room list unavailable");
                Vec::new()
            }
        };
        let welcome = ServerFrame::Welcome {
            user: UserInfo {
                name: session.actor.name.clone(),
                guest: session.actor.is_guest(),
                bot: session.actor.identity == crate::hub::Identity::Bot,
            },
            rooms,
        };
        send_now(socket, &welcome).await?;
        tracing::info!(conn = conn_id, user = %session.actor.name, identity = ?session.actor.identity, "hello");
        return Ok(session);
    }
}

type InFlight = JoinHandle<(Option<String>, Result<Appended, HubError>)>;
type SendDone = Result<(Option<String>, Result<Appended, HubError>), tokio::task::JoinError>;

/// The next send the store has answered, if any is waiting. When the last is
/// answered the set is dropped: an idle connection keeps no allocation for it.
async fn next_done(in_flight: &mut Option<FuturesUnordered<InFlight>>) -> Option<SendDone> {
    let set = in_flight.as_mut()?;
    let done = set.next().await;
    if set.is_empty() {
        *in_flight = None;
    }
    done
}

/// Writes a burst of queued frames, then flushes once: one system call for
/// the burst (more only past the write buffer) instead of one per frame.
async fn write_all(socket: &mut WebSocket, frames: VecDeque<Frame>) -> Result<(), axum::Error> {
    for frame in frames {
        socket.feed(WsMessage::Text(frame)).await?;
    }
    socket.flush().await
}

/// A connection after `hello`.
struct Session {
    actor: Actor,
    ip: std::net::IpAddr,
    outbox: Outbox,
    rx: OutboxReader,
    joined: HashSet<String>,
    resume: BTreeMap<String, i64>,
    /// Sends waiting for the store; made on the first send, since most
    /// connections only read.
    in_flight: Option<FuturesUnordered<InFlight>>,
}

impl Session {
    fn new(
        app: &AppState,
        conn_id: u64,
        actor: Actor,
        resume: BTreeMap<String, i64>,
        ip: std::net::IpAddr,
    ) -> Self {
        let (outbox, rx) = Outbox::new(conn_id, &actor.name, app.config.send_queue);
        Session {
            actor,
            ip,
            outbox,
            rx,
            joined: HashSet::new(),
            resume,
            in_flight: None,
        }
    }

    async fn run(mut self: Box<Self>, socket: &mut WebSocket, app: &AppState) -> End {
        let end = self.serve(socket, app).await;
        for room in self.joined.drain() {
            app.hub.leave(self.outbox.id, &room);
        }
        if self.actor.is_guest() {
            app.auth.release_guest(&self.actor.name);
        }
        end
    }

    async fn serve(&mut self, socket: &mut WebSocket, app: &AppState) -> End {
        let idle = app.config.idle_timeout();
        let mut ping = tokio::time::interval(idle / 2);
        ping.reset();
        let mut last_seen = Instant::now();
        // Made once: re-registering these waiters on every frame costs more
        // than the frame.
        let shutdown = app.shutdown.clone();
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => return Box::pin(self.drain(socket)).await,
                queued = self.rx.recv() => {
                    let Queued::Frames(frames) = queued else {
                        app.metrics.slow_consumers.inc();
                        return End::Closed(close::TOO_SLOW, "too slow: resume later");
                    };
                    // A client that stops reading blocks this write: the cut and
                    // the idle timeout must still let it go. Boxed, so that an
                    // idle connection does not keep room for a write's state.
                    let write = Box::pin(tokio::time::timeout(idle, write_all(socket, frames)));
                    tokio::select! {
                        written = write => match written {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => return End::Error(e.to_string()),
                            Err(_) => return End::Error("write timed out".into()),
                        },
                        _ = self.rx.cut() => {
                            app.metrics.slow_consumers.inc();
                            return End::Closed(close::TOO_SLOW, "too slow: resume later");
                        }
                    }
                }
                Some(done) = next_done(&mut self.in_flight), if self.in_flight_len() > 0 => {
                    self.answer_send(done);
                }
                msg = socket.recv(), if self.in_flight_len() < MAX_IN_FLIGHT => {
                    last_seen = Instant::now();
                    match read(msg, app.config.max_frame_bytes) {
                        // Boxed: an idle connection then holds only the
                        // state of this loop, not that of the longest request.
                        Incoming::Frame(f) => Box::pin(self.handle(f, app)).await,
                        Incoming::Bad(code, why, nonce) => {
                            app.metrics.rejected_frames.inc();
                            self.reply(ServerFrame::error(code, why, nonce));
                        }
                        Incoming::BadHello(why) => {
                            app.metrics.rejected_frames.inc();
                            self.reply(ServerFrame::error(ErrorCode::BadRequest, why, None));
                        }
                        Incoming::Nothing => {}
                        Incoming::End(end) => return end,
                    }
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() >= idle {
                        return End::Closed(close::IDLE, "idle timeout");
                    }
                    if socket.send(WsMessage::Ping(Default::default())).await.is_err() {
                        return End::Error("ping failed".into());
                    }
                }
            }
        }
    }

    fn in_flight_len(&self) -> usize {
        self.in_flight.as_ref().map_or(0, FuturesUnordered::len)
    }

    /// On shutdown: stop reading, let accepted sends reach the store and
    /// their acks reach the client, then say goodbye.
    async fn drain(&mut self, socket: &mut WebSocket) -> End {
        let wait = async {
            while let Some(done) = next_done(&mut self.in_flight).await {
                self.answer_send(done);
            }
        };
        let _ = tokio::time::timeout(DRAIN_WAIT, wait).await;
        if let Some(Queued::Frames(frames)) = self.rx.try_recv() {
            let _ = write_all(socket, frames).await;
        }
        End::Closed(close::GOING_AWAY, "server shutting down")
    }

    /// Queues a frame for this connection alone.
    fn reply(&self, frame: ServerFrame) {
        self.outbox.push(&encode(&frame));
    }

    fn answer_send(&self, done: SendDone) {
        match done {
            Ok((nonce, Ok(a))) => self.reply(ServerFrame::Ack {
                nonce,
                room: a.message.room,
                id: a.message.id,
                ts: a.message.ts,
            }),
            Ok((nonce, Err(e))) => self.reply(ServerFrame::error(e.code(), e.to_string(), nonce)),
            Err(e) => {
                tracing::error!(error = %e, "send task failed");
                self.reply(ServerFrame::error(
                    ErrorCode::Unavailable,
                    "the message could not be stored",
                    None,
                ));
            }
        }
    }

    async fn handle(&mut self, frame: ClientFrame, app: &AppState) {
        match frame {
            ClientFrame::Hello { .. } => self.reply(ServerFrame::error(
                ErrorCode::BadRequest,
                "hello was already said on this connection",
                None,
            )),
            ClientFrame::Join { room } => {
                if self.joined.contains(&room) {
                    // Joining twice answers like the first time, without a second presence.
                    app.hub.leave(self.outbox.id, &room);
                    self.joined.remove(&room);
                }
                let resume = self.resume.remove(&room);
                match app.hub.join(&self.outbox, &self.actor, &room, resume).await {
                    Ok(_) => {
                        self.joined.insert(room);
                    }
                    Err(e) => self.reply(ServerFrame::error(e.code(), e.to_string(), None)),
                }
            }
            ClientFrame::Leave { room } => {
                if self.joined.remove(&room) {
                    app.hub.leave(self.outbox.id, &room);
                } else {
                    self.not_joined(&room, None);
                }
            }
            ClientFrame::Send { room, body, nonce } => {
                if !self.joined.contains(&room) {
                    return self.not_joined(&room, nonce);
                }
                let checked = crate::protocol::validate_nonce(nonce.as_deref())
                    .and_then(|()| crate::protocol::clean_body(&body).map(str::to_string));
                let body = match checked {
                    Ok(b) => b,
                    Err(e) => {
                        let e = HubError::from(e);
                        return self.reply(ServerFrame::error(e.code(), e.to_string(), nonce));
                    }
                };
                if app
                    .limits
                    .check_send(&self.actor.name, Some(self.ip))
                    .is_err()
                {
                    app.metrics.rate_limited.inc();
                    return self.reply(ServerFrame::error(
                        ErrorCode::RateLimited,
                        "slow down: too many messages; this one was not sent",
                        nonce,
                    ));
                }
                let msg = NewMessage {
                    room,
                    author: self.actor.name.clone(),
                    body,
                    nonce: nonce.clone(),
                };
                // Queued here, in the order the client sent them; finished in a
                // task of its own, so a client that disconnects mid-send cancels
                // neither the store's work nor the fan-out.
                match app.hub.submit(&self.actor, msg).await {
                    Ok(done) => self
                        .in_flight
                        .get_or_insert_with(FuturesUnordered::new)
                        .push(tokio::spawn(async move { (nonce, done.await) })),
                    Err(e) => self.reply(ServerFrame::error(e.code(), e.to_string(), nonce)),
                }
            }
            ClientFrame::History {
                room,
                before,
                limit,
            } => {
                let limit = limit.map(|l| l as usize).unwrap_or(HISTORY_PAGE);
                match app.hub.history(&self.actor, &room, before, limit).await {
                    Ok(page) => self.reply(ServerFrame::History {
                        room,
                        messages: page.messages,
                        more: page.more,
                    }),
                    Err(e) => self.reply(ServerFrame::error(e.code(), e.to_string(), None)),
                }
            }
            ClientFrame::Typing { room } => {
                if self.joined.contains(&room) {
                    app.hub.typing(&self.actor, &room);
                } else {
                    self.not_joined(&room, None);
                }
            }
        }
    }

    fn not_joined(&self, room: &str, nonce: Option<String>) {
        self.reply(ServerFrame::error(
            ErrorCode::NotJoined,
            format!("join {room:?} first"),
            nonce,
        ));
    }
}
