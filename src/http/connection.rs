//! One WebSocket connection's life after the upgrade: the `hello`
//! handshake, then a loop that decodes client frames for the hub's
//! [`Client`] and writes the frames its outbox queues. What a frame may do
//! is the hub's business; this module knows sockets and close codes.

use super::reframe::Reframed;
use super::state::AppState;
use crate::limits::ConnectionSlot;

use crate::auth::{Auth, AuthError, Holder, credentials};
use crate::hub::{Client, Frame, OutboxReader, Queued, encode};
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, UserInfo};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

/// The socket of an upgraded connection, its large client frames cut
/// into fragments (see [`super::reframe`]).
type WebSocket = WebSocketStream<Reframed<TokioIo<Upgraded>>>;

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
/// Refused `hello`s before the connection is closed.
const MAX_HELLOS: u32 = 5;
/// How long shutdown waits for a connection's sends to be stored.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// How a connection ended, for the log.
#[derive(Debug)]
enum End {
    ClientClosed,
    Closed(u16, &'static str),
    #[allow(dead_code, reason = "read through Debug in the disconnect log")]
    Error(String),
}

/// Who connected, as the handshake found them.
pub struct Peer {
    pub app: AppState,
    pub peer: SocketAddr,
    /// Who holds the guest cookie; taken by the `hello`.
    pub holder: Option<Holder>,
    /// The signed-in account and its session's id, if any; taken by the
    /// `hello`.
    pub account: Option<(String, String)>,
    /// Held for the connection's life: it counts against the address's cap.
    pub _slot: ConnectionSlot,
}

/// Makes a WebSocket of an upgraded connection and serves it in a task of
/// its own (rather than the upgrade's, which keeps the upgrade's state for
/// as long as it runs).
pub async fn start(upgraded: Upgraded, peer: Peer) {
    let hard = peer.app.config.hard_frame_bytes;
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
    let tracker = peer.app.tracker.clone();
    tracker.spawn(run(Box::new(Conn { socket, peer })));
}

/// What a connection holds for its whole life. Boxed, and passed to `run`
/// as one pointer: passed by value, the arguments took room in the
/// connection's future twice (as passed and as locals), and the `WebSocket`
/// alone is 368 bytes.
struct Conn {
    socket: WebSocket,
    peer: Peer,
}

/// A connection's life. What it keeps across its waits is borrowed from
/// `conn` for each wait, not held in locals of its own.
async fn run(mut conn: Box<Conn>) {
    let conn_id = crate::hub::outbox::next_id();
    let Peer { app, peer, .. } = &conn.peer;
    app.metrics.connections.inc();
    app.metrics.connections_total.inc();
    tracing::info!(conn = conn_id, %peer, "connected");
    let Conn {
        socket,
        peer: client,
    } = &mut *conn;
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
        Ok(connection) => connection.run(&mut conn.socket, &conn.peer.app).await,
        Err(end) => end,
    };
    let Conn {
        socket,
        peer: client,
    } = &mut *conn;
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
) -> Result<Box<Connection>, End> {
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
        let (actor, mut keys) = match claimed {
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
        keys.push(credentials::person(&actor.name));
        let connection = Box::new(Connection::new(app, conn_id, actor, resume, peer.ip()));
        app.outboxes.bind(conn_id, keys);
        let actor = connection.client.actor();
        let rooms = match app.hub.rooms_of(actor).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(conn = conn_id, error = %e, "room list unavailable");
                Vec::new()
            }
        };
        let welcome = ServerFrame::Welcome {
            user: UserInfo {
                name: actor.name.clone(),
                guest: actor.is_guest(),
                bot: actor.identity == crate::hub::Identity::Bot,
                // Unknown (the store away): the page offers no admin's controls.
                admin: app.hub.is_admin(actor).await.unwrap_or(false),
            },
            rooms: rooms.iter().map(|r| r.room.clone()).collect(),
        };
        send_now(socket, &welcome).await?;
        // Version 1.1: the rooms again, with their kinds and topics.
        send_now(socket, &ServerFrame::Rooms { rooms }).await?;
        touch_seen(app, actor);
        tracing::info!(conn = conn_id, user = %actor.name, identity = ?actor.identity, "hello");
        return Ok(connection);
    }
}

/// Records when an account was last seen, at hello and at the end of a
/// connection (not per message), without holding the connection up.
fn touch_seen(app: &AppState, actor: &crate::hub::Actor) {
    if actor.identity == crate::hub::Identity::Account {
        let store = app.hub.store().clone();
        let name = actor.name.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_seen(&name).await {
                tracing::debug!(error = %e, "could not record when an account was seen");
            }
        });
    }
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

/// A connection after `hello`: the hub's client, and the queue it writes.
struct Connection {
    client: Client,
    rx: OutboxReader,
}

impl Connection {
    fn new(
        app: &AppState,
        conn_id: u64,
        actor: crate::hub::Actor,
        resume: std::collections::BTreeMap<String, crate::protocol::Resume>,
        ip: std::net::IpAddr,
    ) -> Self {
        let (outbox, rx) = app
            .outboxes
            .open(conn_id, &actor.name, app.config.send_queue);
        Connection {
            client: Client::new(actor, Some(ip), outbox, resume),
            rx,
        }
    }

    async fn run(mut self: Box<Self>, socket: &mut WebSocket, app: &AppState) -> End {
        let end = self.serve(socket, app).await;
        touch_seen(app, self.client.actor());
        self.client.leave_all(&app.hub);
        if self.client.actor().is_guest() {
            app.auth.release_guest(&self.client.actor().name);
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
        self.client.poll_answers(cx);
        if let Poll::Ready(queued) = self.rx.poll_recv(cx) {
            return Poll::Ready(Event::Queued(queued));
        }
        if self.client.in_flight() < MAX_IN_FLIGHT
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
                    self.client.handle(&app.hub, f).await;
                    None
                })),
                Incoming::Bad(code, why, nonce) => {
                    app.metrics.rejected_frames.inc();
                    self.client.reply(ServerFrame::error(code, why, nonce));
                    Step::Next
                }
                Incoming::BadHello(why) => {
                    app.metrics.rejected_frames.inc();
                    self.client
                        .reply(ServerFrame::error(ErrorCode::BadRequest, why, None));
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

    /// On shutdown: stop reading, let accepted sends reach the store and
    /// their acks reach the client, then say goodbye.
    async fn drain(&mut self, socket: &mut WebSocket) -> End {
        let _ = tokio::time::timeout(DRAIN_WAIT, self.client.answer_all()).await;
        if let Some(Queued::Frames(frames)) = self.rx.try_recv() {
            let _ = write_all(socket, frames).await;
        }
        End::Closed(close::GOING_AWAY, "server shutting down")
    }
}
