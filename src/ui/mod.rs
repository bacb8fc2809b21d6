//! Components, rendered on the server and hydrated in the browser.

pub mod account_pages;
pub mod chat;
pub mod composer;
pub mod i18n;
pub mod messages;
pub mod nickname;
pub mod people;
pub mod prefs;
pub mod sidebar;
pub mod snapshot;
pub mod state;
pub mod text;
pub mod time;

use crate::protocol::ClientFrame;

/// Sends a frame over the page's socket. Event handlers run only in the
/// browser, so on the server this does nothing.
pub fn send(frame: ClientFrame) {
    #[cfg(feature = "hydrate")]
    crate::client::send(frame);
    #[cfg(not(feature = "hydrate"))]
    let _ = frame;
}

/// Milliseconds since the epoch in the browser; 0 on the server.
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}
