//! One WebSocket connection's life: upgrade checks, the `hello` handshake,
//! and a loop that turns client frames into hub calls and writes the
//! connection's queued frames. Business rules live in the hub.

use crate::auth::{Auth, AuthError, Holder, credentials};
use crate::hub::{Actor, Frame, HubError, Outbox, OutboxReader, Queued, encode};
use crate::protocol::{ClientFrame, ErrorCode, HISTORY_PAGE, ServerFrame, UserInfo};
use crate::reframe::Reframed;
use crate::state::AppState;
use crate::store::{Appended, NewMessage};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::{Future, poll_fn};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

/// Close codes this server uses (see docs/PROTOCOL-NOTES.md).
pub mod close {
    /// The server is going away (shutdown); reconnect elsewhere or later.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame that is not valid UTF-8 (RFC 6455, 8.1).
    pub const INVALID_DATA: u16 = 1007;
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
/// A connection's typing notices in one room are relayed at most this often;
/// the repeats say nothing new (the page sends one every 3 s).
const TYPING_EVERY: Duration = Duration::from_secs(1);
/// Typing notices one connection may have relayed per second over all its
/// rooms, and at once: a person types in one room at a time.
const TYPING_PER_SEC: u32 = 2;
const TYPING_BURST: u32 = 4;
/// Rooms one connection may be in at once (see `limits` for the join rate).
pub const MAX_ROOMS: usize = 100;
/// Refused `hello`s before the connection is closed.
const MAX_HELLOS: u32 = 5;
/// How long shutdown waits for a connection's sends to be stored.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// The guest cookie set by the page, naming who holds a guest name.
pub const GUEST_COOKIE: &str = "causerie_guest";

/// Makes sure a room exists before `actor` joins or posts to it, a new
/// one within the allowance for new rooms of the actor and its address.
pub async fn open_room(
    app: &AppState,
    actor: &Actor,
    room: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<(), HubError> {
    let max = i64::from(app.config.max_rooms);
    app.hub
        .open_room(actor, room, max, || async move {
            app.limits.check_new_room(&actor.name, ip).map_err(|_| {
                app.metrics.rate_limited.inc();
                HubError::RoomRate
            })?;
            // A direct room only with people who exist: messages written to
            // a name no one holds would go to whoever takes it next.
            if let Ok(crate::protocol::RoomKind::Direct(a, b)) = crate::protocol::parse_room(room) {
                for other in [a, b].into_iter().filter(|n| *n != actor.name) {
                    if !app.auth.is_someone(other).await.map_err(|e| match e {
                        AuthError::Store(e) => HubError::Store(e),
                        _ => HubError::NoOne(other.to_string()),
                    })? {
                        return Err(HubError::NoOne(other.to_string()));
                    }
                }
            }
            Ok(())
        })
        .await
}

/// A short key for a room name, for per-room bookkeeping of a connection.
fn room_hash(room: &str) -> u64 {
    let mut hash = std::hash::DefaultHasher::new();
    room.hash(&mut hash);
    hash.finish()
}

/// The socket of an upgraded connection, its large client frames cut
/// into fragments (see [`crate::reframe`]).
type WebSocket = WebSocketStream<Reframed<TokioIo<Upgraded>>>;

/// Why an upgrade request was refused, before any WebSocket check of ours.
fn not_a_websocket(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

/// `GET /ws`: checks the handshake and the Origin, then upgrades.
pub async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: tower_sessions::Session,
    mut req: Request,
) -> Response {
    let headers = req.headers();
    if req.method() != Method::GET {
        return not_a_websocket(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade is a GET",
        );
    }
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return not_a_websocket(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade");
    }
    if !has(header::SEC_WEBSOCKET_VERSION, "13") {
        return not_a_websocket(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return not_a_websocket(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
    };
    let accept = derive_accept_key(key.as_bytes());
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
    let holder = cookie(headers, GUEST_COOKIE).map(|c| Holder::Cookie(c.to_string()));
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return not_a_websocket(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded",
        );
    };
    let slot = match app.limits.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(e) => {
            tracing::warn!(%peer, "refused WebSocket: {e}");
            return crate::api::Failure::new(ErrorCode::RateLimited, e.to_string()).into_response();
        }
    };
    // A session that cannot be read is no session: the client may still
    // say hello with a name or a token.
    let account = crate::account::session_user(&app.auth, &session)
        .await
        .ok()
        .flatten()
        .zip(session.id().map(|id| id.to_string()));
    // Boxed: the upgrade's task keeps what it captured for the
    // connection's whole life, so let that be one pointer.
    let client = Box::new(Client {
        app,
        peer,
        holder,
        account,
        _slot: slot,
    });
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "the upgrade did not complete");
                return;
            }
        };
        let hard = client.app.config.hard_frame_bytes;
        let config = WebSocketConfig::default()
            // Small buffers: an idle connection should cost a few KiB, not
            // 128; client frames are cut to fragments of a few KiB anyway.
            .read_buffer_size(READ_BUFFER)
            // Frames gather here until the flush after a burst; the buffer
            // keeps its largest size for the connection's life, so keep it
            // modest.
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(Some(hard))
            .max_frame_size(Some(hard));
        let io = Reframed::new(TokioIo::new(upgraded), hard);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let tracker = client.app.tracker.clone();
        let conn = Box::new(Conn {
            socket,
            client: *client,
        });
        // A task of its own rather than this upgrade task, which keeps the
        // upgrade's state for as long as it runs.
        tracker.spawn(run(conn));
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The value of one cookie of a request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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

/// What a connection holds for its whole life. Boxed, and passed to `run`
/// as one pointer: passed by value, the arguments took room in the
/// connection's future twice (as passed and as locals), and the `WebSocket`
/// alone is 368 bytes.
struct Conn {
    socket: WebSocket,
    client: Client,
}

/// Who connected.
struct Client {
    app: AppState,
    peer: SocketAddr,
    /// Who holds the guest cookie; taken by the handshake.
    holder: Option<Holder>,
    /// The signed-in account and its session's id, if any; taken by the
    /// handshake.
    account: Option<(String, String)>,
    /// Held for the connection's life: it counts against the address's cap.
    _slot: crate::limits::ConnectionSlot,
}

/// A connection's life. What it keeps across its waits is borrowed from
/// `conn` for each wait, not held in locals of its own.
async fn run(mut conn: Box<Conn>) {
    let conn_id = crate::hub::outbox::next_id();
    let Client { app, peer, .. } = &conn.client;
    app.metrics.connections.inc();
    app.metrics.connections_total.inc();
    tracing::info!(conn = conn_id, %peer, "connected");
    let Conn { socket, client } = &mut *conn;
    // Boxed: the handshake's state is not kept for the connection's life.
    let shook = Box::pin(handshake(
        socket,
        &client.app,
        conn_id,
        client.peer,
        client.holder.take(),
        client.account.take(),
    ))
    .await;
    let end = match shook {
        Ok(session) => session.run(&mut conn.socket, &conn.client.app).await,
        Err(end) => end,
    };
    let Conn { socket, client } = &mut *conn;
    if let End::Closed(code, reason) = &end {
        let close = WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(*code),
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
                while let Some(Ok(m)) = socket.next().await {
                    if matches!(m, WsMessage::Close(_)) {
                        break;
                    }
                }
            }
        }))
        .await;
    }
    client.app.metrics.connections.dec();
    tracing::info!(conn = conn_id, peer = %client.peer, end = ?end, "disconnected");
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

fn read(msg: Option<Result<WsMessage, tungstenite::Error>>, max: usize) -> Incoming {
    match msg {
        None => Incoming::End(End::ClientClosed),
        Some(Err(e)) => {
            // The errors a client can cause get the close code that says
            // why; any other drops the connection.
            match e {
                tungstenite::Error::Capacity(_) => {
                    Incoming::End(End::Closed(close::TOO_BIG, "frame too large"))
                }
                tungstenite::Error::Utf8(_) => Incoming::End(End::Closed(
                    close::INVALID_DATA,
                    "text frame is not valid UTF-8",
                )),
                tungstenite::Error::Protocol(_) => {
                    Incoming::End(End::Error("protocol error".into()))
                }
                e => Incoming::End(End::Error(e.to_string())),
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
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
            Incoming::Nothing
        }
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
    account: Option<(String, String)>,
) -> Result<Box<Session>, End> {
    let deadline = tokio::time::sleep(app.config.idle_timeout());
    tokio::pin!(deadline);
    let mut refused = 0;
    loop {
        let msg = tokio::select! {
            m = socket.next() => m,
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
        // With the actor, what its identity rests on: the connection is
        // closed when that ends (a sign-out, a revoked token).
        let claimed = match (token, name) {
            (Some(token), _) => match app.auth.token(&token).await {
                Ok(Some(actor)) => {
                    let keys = credentials::for_token(&token, &actor);
                    Ok((actor, keys))
                }
                Ok(None) => Err(AuthError::Unauthorized("that token is not valid".into())),
                Err(e) => Err(e),
            },
            (None, Some(name)) => {
                let holder = holder.clone().unwrap_or(Holder::Connection(conn_id));
                app.auth
                    .claim_guest(&name, &holder, || {
                        app.limits.check_new_guest_name(peer.ip())
                    })
                    .await
                    .map(|actor| (actor, Vec::new()))
            }
            (None, None) => match &account {
                Some((name, session_id)) => Ok((
                    Auth::account(name.clone()),
                    credentials::for_session(session_id, name),
                )),
                None => Err(AuthError::Unauthorized(
                    "not signed in: send a name (guest) or a token".into(),
                )),
            },
        };
        let (actor, keys) = match claimed {
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
        app.outboxes.bind(conn_id, keys);
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
async fn write_all(
    socket: &mut WebSocket,
    frames: VecDeque<Frame>,
) -> Result<(), tungstenite::Error> {
    for frame in frames {
        socket.feed(WsMessage::Text(frame)).await?;
    }
    socket.flush().await
}

/// What wakes a connection after `hello`.
enum Event {
    /// Frames to write, the queue's cut, shutdown or a ping.
    Queued(Queued),
    /// A frame from the client, or its end.
    Read(Option<Result<WsMessage, tungstenite::Error>>),
}

/// What an event leaves the connection to do.
enum Step<'a> {
    /// Nothing: wait for the next event.
    Next,
    /// Close the connection.
    End(End),
    /// Wait for this, then close if it says so.
    Wait(Pin<Box<dyn Future<Output = Option<End>> + Send + 'a>>),
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
    /// Per room (a hash of its name), when its last typing notice was
    /// relayed; at most one entry per room joined.
    typed: Vec<(u64, Instant)>,
    /// The connection's typing allowance over all rooms; made on the first
    /// notice, since most connections never type.
    typing_allowance: Option<Box<governor::DefaultDirectRateLimiter>>,
}

impl Session {
    fn new(
        app: &AppState,
        conn_id: u64,
        actor: Actor,
        resume: BTreeMap<String, i64>,
        ip: std::net::IpAddr,
    ) -> Self {
        let (outbox, rx) = app
            .outboxes
            .open(conn_id, &actor.name, app.config.send_queue);
        Session {
            actor,
            ip,
            outbox,
            rx,
            joined: HashSet::new(),
            resume,
            in_flight: None,
            typed: Vec::new(),
            typing_allowance: None,
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
        let mut last_seen = Instant::now();
        loop {
            // Every source polled in place, not a `select!` over futures made
            // afresh each turn: an idle connection keeps no future but this
            // loop's, and a wake-up takes no lock but its own queue's.
            let event = poll_fn(|cx| self.poll_event(cx, socket)).await;
            if matches!(event, Event::Read(_)) {
                last_seen = Instant::now();
            }
            // Only the work an event waits on is a future, boxed: across the
            // wait this loop keeps one pointer, not the largest event's state.
            let work = match self.on_event(event, socket, app, idle, last_seen) {
                Step::Next => continue,
                Step::End(end) => return end,
                Step::Wait(work) => work,
            };
            if let Some(end) = work.await {
                return end;
            }
        }
    }

    /// The next thing to do: the frames queued for the client (or the
    /// queue's cut, shutdown, a ping), else the client's next frame, unless
    /// too many of its sends wait. Answers from the store are queued on the
    /// way, as they come.
    fn poll_event(&mut self, cx: &mut Context<'_>, socket: &mut WebSocket) -> Poll<Event> {
        while let Some(set) = &mut self.in_flight
            && let Poll::Ready(Some(done)) = set.poll_next_unpin(cx)
        {
            if set.is_empty() {
                self.in_flight = None;
            }
            self.answer_send(done);
        }
        if let Poll::Ready(queued) = self.rx.poll_recv(cx) {
            return Poll::Ready(Event::Queued(queued));
        }
        if self.in_flight_len() < MAX_IN_FLIGHT
            && let Poll::Ready(msg) = socket.poll_next_unpin(cx)
        {
            return Poll::Ready(Event::Read(msg));
        }
        Poll::Pending
    }

    /// Does what an event asks at once, or says what to wait for.
    fn on_event<'a>(
        &'a mut self,
        event: Event,
        socket: &'a mut WebSocket,
        app: &'a AppState,
        idle: Duration,
        last_seen: Instant,
    ) -> Step<'a> {
        let too_slow = || {
            app.metrics.slow_consumers.inc();
            End::Closed(close::TOO_SLOW, "too slow: resume later")
        };
        match event {
            Event::Queued(Queued::Frames(frames)) => {
                Step::Wait(Box::pin(self.write(socket, frames, idle, too_slow)))
            }
            Event::Queued(Queued::Cut) => Step::End(too_slow()),
            Event::Queued(Queued::Ended(why)) => {
                Step::End(End::Closed(why.close_code(), why.reason()))
            }
            Event::Queued(Queued::GoingAway) => {
                Step::Wait(Box::pin(async move { Some(self.drain(socket).await) }))
            }
            Event::Queued(Queued::Ping) => {
                if last_seen.elapsed() >= idle {
                    return Step::End(End::Closed(close::IDLE, "idle timeout"));
                }
                let ping = socket.send(WsMessage::Ping(Default::default()));
                Step::Wait(Box::pin(async move {
                    match tokio::time::timeout(idle, ping).await {
                        Ok(Ok(())) => None,
                        _ => Some(End::Error("ping failed".into())),
                    }
                }))
            }
            Event::Read(msg) => match read(msg, app.config.max_frame_bytes) {
                Incoming::Frame(f) => Step::Wait(Box::pin(async move {
                    self.handle(f, app).await;
                    None
                })),
                Incoming::Bad(code, why, nonce) => {
                    app.metrics.rejected_frames.inc();
                    self.reply(ServerFrame::error(code, why, nonce));
                    Step::Next
                }
                Incoming::BadHello(why) => {
                    app.metrics.rejected_frames.inc();
                    self.reply(ServerFrame::error(ErrorCode::BadRequest, why, None));
                    Step::Next
                }
                Incoming::Nothing => Step::Next,
                Incoming::End(end) => Step::End(end),
            },
        }
    }

    /// Writes a burst of frames. A client that stops reading blocks the
    /// write: the cut and the idle timeout must still let it go.
    async fn write(
        &self,
        socket: &mut WebSocket,
        frames: VecDeque<Frame>,
        idle: Duration,
        too_slow: impl FnOnce() -> End,
    ) -> Option<End> {
        let rx = &self.rx;
        tokio::select! {
            written = tokio::time::timeout(idle, write_all(socket, frames)) => match written {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(End::Error(e.to_string())),
                Err(_) => Some(End::Error("write timed out".into())),
            },
            () = poll_fn(|cx| rx.poll_cut(cx)) => Some(too_slow()),
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
        if matches!(
            frame,
            ClientFrame::Join { .. } | ClientFrame::History { .. }
        ) && let Err(e) = app.limits.check_request(&self.actor.name)
        {
            app.metrics.rate_limited.inc();
            return self.reply(ServerFrame::error(
                ErrorCode::RateLimited,
                e.to_string(),
                None,
            ));
        }
        match frame {
            ClientFrame::Hello { .. } => self.reply(ServerFrame::error(
                ErrorCode::BadRequest,
                "hello was already said on this connection",
                None,
            )),
            ClientFrame::Join { room } => {
                if !self.joined.contains(&room) && self.joined.len() >= MAX_ROOMS {
                    return self.reply(ServerFrame::error(
                        ErrorCode::Forbidden,
                        format!(
                            "a connection may be in at most {MAX_ROOMS} rooms; leave one first"
                        ),
                        None,
                    ));
                }
                if self.joined.contains(&room) {
                    // Joining twice answers like the first time, without a second presence.
                    app.hub.leave(self.outbox.id, &room);
                    self.joined.remove(&room);
                }
                if let Err(e) = open_room(app, &self.actor, &room, Some(self.ip)).await {
                    return self.reply(ServerFrame::error(e.code(), e.to_string(), None));
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
                let typed_in = room_hash(&room);
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
                    Ok(done) => {
                        // The message ends the others' "is typing": the next
                        // notice is news again.
                        self.typed.retain(|(r, _)| *r != typed_in);
                        self.in_flight
                            .get_or_insert_with(FuturesUnordered::new)
                            .push(tokio::spawn(async move { (nonce, done.await) }));
                    }
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
                    // Clients repeat the notice while someone types; relaying
                    // more than one a second would multiply a flood by the room.
                    if self.typing_is_news(&room) {
                        app.hub.typing(&self.actor, &room);
                    }
                } else {
                    self.not_joined(&room, None);
                }
            }
        }
    }

    /// Whether a typing notice in `room` should be relayed: the room has
    /// not heard one from this connection in the last [`TYPING_EVERY`], and
    /// the connection is within its allowance over all rooms. If so, it is
    /// taken as said.
    fn typing_is_news(&mut self, room: &str) -> bool {
        let room = room_hash(room);
        let now = Instant::now();
        self.typed
            .retain(|(_, at)| now.duration_since(*at) < TYPING_EVERY);
        if self.typed.iter().any(|(r, _)| *r == room) {
            return false;
        }
        let allowance = self.typing_allowance.get_or_insert_with(|| {
            let quota = governor::Quota::per_second(
                std::num::NonZeroU32::new(TYPING_PER_SEC).unwrap_or(std::num::NonZeroU32::MIN),
            )
            .allow_burst(
                std::num::NonZeroU32::new(TYPING_BURST).unwrap_or(std::num::NonZeroU32::MIN),
            );
            Box::new(governor::RateLimiter::direct(quota))
        });
        if allowance.check().is_err() {
            return false;
        }
        self.typed.push((room, now));
        true
    }

    fn not_joined(&self, room: &str, nonce: Option<String>) {
        self.reply(ServerFrame::error(
            ErrorCode::NotJoined,
            format!("join {room:?} first"),
            nonce,
        ));
    }
}
