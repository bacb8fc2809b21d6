//! Serving HTTP/1.1 connections ourselves rather than through
//! `axum::serve`, which has no timeouts: every connection is admitted at
//! accept under a per-address cap and a total bound drawn from the file
//! limit, its request heads and bodies are timed out, and shutdown is
//! graceful.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// File descriptors kept back from connections: the database pools, the
/// listener, the log, files being served, Redis.
pub const RESERVED_FILES: u64 = 64;

/// How the server treats its HTTP connections.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// A request head must arrive within this long of the connection being
    /// ready for one (just opened, or its previous answer sent).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this long of its head.
    pub body_timeout: Duration,
    /// The same for an upload (`POST /api/files`).
    pub upload_timeout: Duration,
    /// Open connections one address may hold (WebSockets included), when
    /// the operator set it.
    pub per_ip: Option<usize>,
}

/// The process's open-file limit, raised to its hard limit.
#[derive(Debug, Clone, Copy)]
pub struct FileLimit {
    pub before: u64,
    pub now: u64,
}

/// Raises the open-file soft limit to the hard limit: every connection is
/// a descriptor, and a default of 1024 would be spent by a few silent
/// clients.
pub fn raise_file_limit() -> FileLimit {
    use rlimit::Resource;
    let before = Resource::NOFILE.get().map(|(soft, _)| soft).unwrap_or(1024);
    let now = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(before);
    FileLimit { before, now }
}

/// Connections the server admits in all: the file limit less what the
/// store and the rest of the process need.
pub fn connection_budget(files: u64) -> usize {
    let budget = files.saturating_sub(RESERVED_FILES).max(16);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// Open connections one address may hold when the operator says nothing.
pub const DEFAULT_PER_IP: usize = 1100;

/// Admits connections at accept: at most `per_ip` per address and `total`
/// in all. Unless the operator chose the cap, one address may take at most
/// half of the total, so that others (the load balancer's `/healthz`) still
/// get in; a chosen cap is kept up to the total, as behind a reverse proxy
/// every client has the proxy's address.
pub struct Gate {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    per_ip: usize,
    total: usize,
}

/// An admitted connection; it stops counting when dropped.
pub struct Admitted {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Gate {
    /// A gate for `total` connections, and `per_ip` (see [`Gate`]) from
    /// any one address.
    pub fn new(per_ip: Option<usize>, total: usize) -> Arc<Self> {
        let per_ip = match per_ip {
            Some(n) => n.min(total),
            None => DEFAULT_PER_IP.min((total / 2).max(1)),
        };
        Arc::new(Gate {
            open: Mutex::new((0, HashMap::new())),
            per_ip,
            total,
        })
    }

    /// The cap per address actually applied.
    pub fn per_ip(&self) -> usize {
        self.per_ip
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.0 >= self.total {
            return None;
        }
        let n = open.1.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return None;
        }
        *n += 1;
        open.0 += 1;
        Some(Admitted {
            gate: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// A socket that holds its admission: an upgraded WebSocket takes the
/// socket along, so it keeps counting for as long as it is open.
struct Counted {
    tcp: TcpStream,
    _slot: Admitted,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The request body ran past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body took too long to arrive")]
pub struct BodyTimeout;

/// A request body that must be whole by a deadline. Unlike tower-http's
/// `TimeoutBody`, whose clock restarts with every frame, a body trickled a
/// byte at a time cannot stretch this one.
pub struct DeadlineBody {
    body: Incoming,
    deadline: Instant,
    /// Made on the first wait only: most bodies are empty or already here.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(body: Incoming, within: Duration) -> Self {
        DeadlineBody {
            body,
            deadline: Instant::now() + within,
            sleep: None,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.body)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.body)
    }
}

/// Accepts and serves connections until `shutdown`, then stops accepting
/// and waits for the open HTTP exchanges to finish (upgraded WebSockets
/// run on in their own tasks; the caller bounds the wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    // Refusals are logged at most once a second: a flood must not flood the log.
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, most likely: waiting lets some close
                // instead of spinning on the error.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = gate.admit(peer.ip()) else {
            if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_refusal_log = Some(Instant::now());
                tracing::warn!(%peer, "refused a connection: too many open from its address or in all");
            }
            // Dropped unread: closed before any byte is read.
            drop(tcp);
            continue;
        };
        // No Nagle: a small frame (an ack) must not wait for the previous
        // one's ACK; bursts are coalesced by the connection's writer instead.
        let _ = tcp.set_nodelay(true);
        let io = Counted { tcp, _slot: slot };
        connections.spawn(serve_one(
            io,
            peer,
            router.clone(),
            settings,
            shutdown.clone(),
        ));
    }
    // Closes the listening socket: new connections are refused from here.
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_one(
    io: Counted,
    peer: SocketAddr,
    router: Router,
    settings: HttpSettings,
    shutdown: CancellationToken,
) {
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        // An upload may take minutes on a slow line; other bodies are small.
        let within = if req.uri().path() == crate::protocol::UPLOAD_PATH {
            settings.upload_timeout
        } else {
            settings.body_timeout
        };
        let req = req.map(|b| Body::new(DeadlineBody::new(b, within)));
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}
