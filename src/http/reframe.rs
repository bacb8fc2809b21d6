//! Cuts a client's large WebSocket frames into small fragments on their way
//! in, below the WebSocket library.
//!
//! tungstenite reads a frame whole into its read buffer, which grows to the
//! frame's size and never shrinks: one frame just under the hard limit left
//! every connection that sent it holding about 1 MiB for good. Cut into
//! fragments of at most [`CHUNK`] bytes (RFC 6455 §5.4 lets an intermediary
//! fragment a message), a message is gathered in a buffer of its own that
//! goes with the message, and the read buffer stays small. The message is
//! unchanged: the fragments carry the same bytes, still masked (each with
//! the mask key turned to where it starts), and tungstenite's limits on
//! message size apply as before. Control frames (at most 125 bytes) pass
//! untouched; so does a frame over `hard`, which tungstenite refuses at its
//! header.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most payload one fragment carries.
pub const CHUNK: usize = 4 * 1024;
/// Bytes read from the socket at a time when a header is due.
const READ_AHEAD: usize = 256;
/// A frame header: 2 bytes, up to 8 of length, 4 of mask key.
const MAX_HEADER: usize = 14;

/// What is left of a large frame being cut: its payload bytes, its
/// header's first byte, its mask key, and how far into its payload the
/// next fragment starts.
#[derive(Debug, Clone, Copy)]
struct Cut {
    left: u64,
    first: u8,
    mask: Option<[u8; 4]>,
    at: u64,
}

/// Where the reader is in the client's byte stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// The next bytes start a frame header.
    Header,
    /// Passing `left` bytes through as they are; then cutting on, if a
    /// large frame is being cut.
    Pass { left: u64, then: Option<Cut> },
    /// The next fragment's header is due.
    Cutting(Cut),
}

/// A reader (and writer) of a server's WebSocket stream that cuts the
/// client's data frames larger than [`CHUNK`] into fragments.
pub struct Reframed<S> {
    inner: S,
    state: State,
    /// Frames over this size are left whole, for the library to refuse.
    hard: u64,
    /// Bytes read from `inner` and not handed out yet (only while a header
    /// is parsed, and the few bytes read with it).
    ahead: Vec<u8>,
    /// Bytes made here to hand out first: a fragment's header.
    out: [u8; MAX_HEADER],
    out_len: u8,
    out_pos: u8,
}

impl<S> Reframed<S> {
    /// Wraps the stream of an upgraded connection, from its first byte.
    pub fn new(inner: S, hard: usize) -> Self {
        Reframed {
            inner,
            state: State::Header,
            hard: hard as u64,
            ahead: Vec::new(),
            out: [0; MAX_HEADER],
            out_len: 0,
            out_pos: 0,
        }
    }
}

/// A parsed header: first byte, masked or not, payload length, mask key,
/// and how many bytes the header took.
struct Header {
    first: u8,
    len: u64,
    mask: Option<[u8; 4]>,
    size: usize,
}

fn parse(b: &[u8]) -> Option<Header> {
    if b.len() < 2 {
        return None;
    }
    let masked = b[1] & 0x80 != 0;
    let (len, mut at) = match b[1] & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let key: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    Some(Header {
        first: b[0],
        len,
        mask,
        size: at,
    })
}

/// Writes a fragment's header into `out`; returns its length.
fn fragment_header(
    out: &mut [u8; MAX_HEADER],
    first: u8,
    len: usize,
    mask: Option<[u8; 4]>,
) -> usize {
    out[0] = first;
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let mut n = if len < 126 {
        out[1] = masked | len as u8;
        2
    } else {
        out[1] = masked | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    };
    if let Some(key) = mask {
        out[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    n
}

impl<S: AsyncRead + Unpin> Reframed<S> {
    /// Reads from the socket into `ahead` (at most `READ_AHEAD` more).
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let start = self.ahead.len();
        self.ahead.resize(start + READ_AHEAD, 0);
        let mut buf = ReadBuf::new(&mut self.ahead[start..]);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut buf);
        let n = buf.filled().len();
        self.ahead.truncate(start + n);
        ready!(polled)?;
        Poll::Ready(Ok(n))
    }

    /// Hands out up to `max` payload bytes: from `ahead` first, else
    /// straight from the socket.
    fn pass(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        max: u64,
    ) -> Poll<io::Result<usize>> {
        let max = max.min(buf.remaining() as u64) as usize;
        if !self.ahead.is_empty() {
            let n = max.min(self.ahead.len());
            buf.put_slice(&self.ahead[..n]);
            self.ahead.drain(..n);
            if self.ahead.capacity() > READ_AHEAD + MAX_HEADER {
                self.ahead.shrink_to(READ_AHEAD);
            }
            return Poll::Ready(Ok(n));
        }
        let mut limited = buf.take(max);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        // SAFETY: `limited` wrote `n` initialised bytes into `buf`'s unfilled part.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Reframed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out_len {
                let from = usize::from(this.out_pos);
                let n = (usize::from(this.out_len) - from).min(buf.remaining());
                buf.put_slice(&this.out[from..from + n]);
                this.out_pos += n as u8;
                return Poll::Ready(Ok(()));
            }
            match this.state {
                State::Header => {
                    let Some(h) = parse(&this.ahead) else {
                        if ready!(this.fill(cx))? == 0 {
                            // The client closed: what is left, then the end.
                            let n = this.ahead.len().min(buf.remaining());
                            buf.put_slice(&this.ahead[..n]);
                            this.ahead.drain(..n);
                            return Poll::Ready(Ok(()));
                        }
                        continue;
                    };
                    let data = h.first & 0x0f < 0x8;
                    if !data || h.len <= CHUNK as u64 || h.len > this.hard {
                        // Left as it is, header included.
                        this.state = State::Pass {
                            left: h.size as u64 + h.len,
                            then: None,
                        };
                        continue;
                    }
                    this.ahead.drain(..h.size);
                    this.state = State::Cutting(Cut {
                        left: h.len,
                        first: h.first,
                        mask: h.mask,
                        at: 0,
                    });
                }
                State::Pass { left: 0, then } => {
                    this.state = then.map_or(State::Header, State::Cutting);
                }
                State::Pass { left, then } => {
                    let n = ready!(this.pass(cx, buf, left))?;
                    this.state = State::Pass {
                        left: left - n as u64,
                        then,
                    };
                    return Poll::Ready(Ok(()));
                }
                State::Cutting(cut) if cut.left == 0 => this.state = State::Header,
                State::Cutting(cut) => {
                    let len = cut.left.min(CHUNK as u64);
                    let last = len == cut.left;
                    // The first fragment keeps the opcode and RSV bits; the
                    // others are continuations. Only the last may carry FIN,
                    // and only if the frame did.
                    let byte = match (cut.at == 0, last) {
                        (true, true) => cut.first,
                        (true, false) => cut.first & 0x7f,
                        (false, true) => cut.first & 0x80,
                        (false, false) => 0,
                    };
                    // Masking is by position in the payload: each fragment's
                    // key is the frame's, turned to where the fragment starts.
                    let key = cut.mask.map(|k| {
                        let o = (cut.at % 4) as usize;
                        [k[o], k[(o + 1) % 4], k[(o + 2) % 4], k[(o + 3) % 4]]
                    });
                    this.out_len = fragment_header(&mut this.out, byte, len as usize, key) as u8;
                    this.out_pos = 0;
                    this.state = State::Pass {
                        left: len,
                        then: Some(Cut {
                            left: cut.left - len,
                            at: cut.at + len,
                            ..cut
                        }),
                    };
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Reframed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
    use tokio_tungstenite::tungstenite::{Error, Message};

    const HARD: usize = 1 << 20;

    async fn pair(
        hard: usize,
    ) -> (
        WebSocketStream<tokio::io::DuplexStream>,
        WebSocketStream<Reframed<tokio::io::DuplexStream>>,
    ) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let config = WebSocketConfig::default()
            .read_buffer_size(256)
            .max_message_size(Some(hard))
            .max_frame_size(Some(hard));
        let server =
            WebSocketStream::from_raw_socket(Reframed::new(b, hard), Role::Server, Some(config))
                .await;
        (client, server)
    }

    #[tokio::test]
    async fn messages_come_through_whole_whatever_their_size() {
        let (mut client, mut server) = pair(HARD).await;
        let big: String = (0..300_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let accents = "é€😀".repeat(5000);
        let sent = vec![
            Message::text("small"),
            Message::text(big.clone()),
            Message::Ping(vec![1, 2, 3].into()),
            Message::binary(vec![7u8; 20_000]),
            Message::text(accents.clone()),
            Message::text("x".repeat(CHUNK)),
            Message::text("y".repeat(CHUNK + 1)),
        ];
        let writer = tokio::spawn(async move {
            for m in sent {
                client.send(m).await.expect("send");
            }
            client
        });
        let mut got = Vec::new();
        while got.len() < 7 {
            got.push(server.next().await.expect("a message").expect("valid"));
        }
        let _client = writer.await.expect("writer");
        assert_eq!(got[0], Message::text("small"));
        assert_eq!(got[1], Message::text(big));
        assert!(matches!(&got[2], Message::Ping(p) if p[..] == [1, 2, 3]));
        assert_eq!(got[3], Message::binary(vec![7u8; 20_000]));
        assert_eq!(got[4], Message::text(accents));
        assert_eq!(got[5], Message::text("x".repeat(CHUNK)));
        assert_eq!(got[6], Message::text("y".repeat(CHUNK + 1)));
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_still_refused() {
        let (mut client, mut server) = pair(64 * 1024).await;
        let writer = tokio::spawn(async move {
            let _ = client.send(Message::text("z".repeat(100_000))).await;
            client
        });
        let got = server.next().await.expect("an answer");
        assert!(matches!(got, Err(Error::Capacity(_))), "{got:?}");
        drop(writer);
    }
}
