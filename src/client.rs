//! The browser's one WebSocket: connect, `hello` with `resume` (the last id
//! seen in each room), join the sidebar's rooms and the one in view, apply
//! frames to the page's signals, resend what was not acknowledged (per room,
//! after its `joined`), and reconnect with jittered exponential backoff.
//!
//! Navigating between rooms keeps this socket: the page only joins and
//! leaves rooms on it (see [`crate::ui::chat_state::ChatState::sync_joins`]).
//! What to send and how frames change the page is the chat state's
//! (`ui::chat_state`); this module only moves frames.

use crate::protocol::{ClientFrame, Ended, ServerFrame};
use crate::ui::chat_state::Status;
use crate::ui::sender::Sender;
use crate::ui::state::Chat;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::channel::mpsc::{UnboundedReceiver, unbounded};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::Message as WsMessage;
use gloo_net::websocket::WebSocketError;
use gloo_net::websocket::futures::WebSocket;
use leptos::prelude::*;
use std::time::Duration;

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn ws_url() -> Option<String> {
    let loc = web_sys::window()?.location();
    let scheme = if loc.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/ws", loc.host().ok()?))
}

/// Whether the browser believes it has a network.
fn online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// The browser's `online` (true) and `offline` (false) events.
fn network_changes() -> UnboundedReceiver<bool> {
    let (tx, rx) = unbounded();
    for (event, up) in [("online", true), ("offline", false)] {
        let tx = tx.clone();
        // For the page's life, as the loop that reads them.
        let _ = window_event_listener_untyped(event, move |_| {
            let _ = tx.unbounded_send(up);
        });
    }
    rx
}

/// Starts the connection loop, unless one runs; it runs until the page
/// closes or the nickname is refused. Frames the page sends go through
/// `sender` while a connection is up. Offline, it waits for the network
/// rather than try: what is typed meanwhile waits in the outbox.
pub fn start(chat: Chat, sender: Sender) {
    if !sender.claim() {
        return;
    }
    let mut network = network_changes();
    leptos::task::spawn_local(async move {
        let mut backoff = new_backoff();
        loop {
            while !online() {
                if network.next().await.is_none() {
                    sender.release();
                    return;
                }
            }
            chat.connecting();
            let (tx, rx) = unbounded();
            sender.attach(move |f| {
                let _ = tx.unbounded_send(f);
            });
            let (welcomed, ended) = connect_once(chat, rx, &mut network).await;
            sender.detach();
            if let Some(why) = ended {
                // Banned, blocked, signed out: coming back would be refused.
                chat.on_ended(why);
                sender.release();
                return;
            }
            chat.on_disconnect();
            if chat.status.get_untracked() == Status::Offline {
                // The nickname was refused: wait for the person to pick another.
                sender.release();
                return;
            }
            if welcomed {
                backoff = new_backoff();
            }
            let wait = backoff.next().unwrap_or(Duration::from_secs(10));
            gloo_timers::future::sleep(wait).await;
        }
    });
}

fn new_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(300))
        .with_max_delay(Duration::from_secs(15))
        .with_jitter_seed((js_sys::Math::random() * u64::MAX as f64) as u64)
        .without_max_times()
        .build()
}

/// One connection's life; returns whether it got as far as `welcome`, and
/// how the server ended the session, when it closed it for good.
async fn connect_once(
    chat: Chat,
    mut rx: UnboundedReceiver<ClientFrame>,
    network: &mut UnboundedReceiver<bool>,
) -> (bool, Option<Ended>) {
    let Some(url) = ws_url() else {
        return (false, None);
    };
    let Ok(ws) = WebSocket::open(&url) else {
        return (false, None);
    };
    let (mut sink, stream) = ws.split();
    let mut stream = stream.fuse();
    if write(&mut sink, &chat.hello()).await.is_err() {
        return (false, None);
    }
    let mut welcomed = false;
    loop {
        futures::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Bytes(_))) => continue,
                    Some(Err(WebSocketError::ConnectionClose(e))) => {
                        return (welcomed, Ended::from_reason(&e.reason));
                    }
                    _ => return (welcomed, None),
                };
                let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else { continue };
                welcomed |= matches!(frame, ServerFrame::Welcome { .. });
                // Joins, leaves and resends that this causes go through the
                // sender, so through `rx`, in order.
                chat.apply(frame, now_ms());
                if chat.name_error.get_untracked().is_some() {
                    return (welcomed, None);
                }
            }
            up = network.next() => {
                // The browser went offline: a socket may linger unanswered
                // for a long while; drop it and wait for the network.
                if up == Some(false) {
                    return (welcomed, None);
                }
            }
            out = rx.next() => {
                let Some(frame) = out else { return (welcomed, None) };
                if !welcomed {
                    // Joins and pending sends go again after welcome.
                    continue;
                }
                if write(&mut sink, &frame).await.is_err() {
                    return (welcomed, None);
                }
            }
        }
    }
}

async fn write<S>(sink: &mut S, frame: &ClientFrame) -> Result<(), ()>
where
    S: futures::Sink<WsMessage> + Unpin,
{
    let text = serde_json::to_string(frame).map_err(|_| ())?;
    sink.send(WsMessage::Text(text)).await.map_err(|_| ())
}
