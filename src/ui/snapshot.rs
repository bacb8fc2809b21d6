//! What the server renders before any WebSocket: a room's newest messages
//! and who is online.
//!
//! The server reads a page's snapshot before rendering it (see
//! `http::preload`), so the chat page renders synchronously: no `Suspense`, no
//! `Resource` to resolve in the middle of a render. The page hands it to the
//! browser as a [`SharedValue`], which hydration reads back instead of
//! asking again. Later navigations ask [`room_snapshot`] from the browser.
//!
//! Why not a `Resource` under `Suspense`: on the server the closures that
//! awaited it were run a second time when it resolved, from another task,
//! and that run disposed the first one's reactive state while the first was
//! still being rendered on another thread: a rare panic that left the page's
//! response unfinished (docs/TESTING.md, "a page load that never completes").

use leptos::prelude::*;

pub use crate::protocol::{SnapProblem, Snapshot};

/// Reads a room's snapshot from the hub, for the browser's navigations.
#[server(prefix = "/_sfn")]
pub async fn room_snapshot(room: String) -> Result<Snapshot, ServerFnError> {
    let app = use_context::<crate::http::state::AppState>()
        .ok_or_else(|| ServerFnError::new("the page has no server state"))?;
    let parts = use_context::<axum::http::request::Parts>();
    let session = parts
        .as_ref()
        .and_then(|p| p.extensions.get::<tower_sessions::Session>());
    let viewer = crate::http::preload::viewer(&app, session).await;
    Ok(crate::http::preload::read(&app, viewer.as_ref(), &room).await)
}

/// The snapshot this page was rendered with, when it is of `room`.
///
/// On the server: what `http::preload` read for the request. In the browser,
/// while hydrating: the same value, from the HTML. In the browser at any
/// other time: `None` (the page then asks [`room_snapshot`]).
///
/// Call it once per page, at the same place on both sides: hydration reads
/// shared values back in the order they were made.
pub fn initial(room: &str) -> Option<Snapshot> {
    #[cfg(feature = "ssr")]
    let read = crate::http::preload::of_request;
    #[cfg(not(feature = "ssr"))]
    let read = || None;
    SharedValue::new(read)
        .into_inner()
        .filter(|s: &Snapshot| s.room == room)
}
