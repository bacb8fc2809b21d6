//! What the server renders before any WebSocket: a room's newest messages
//! and who is online.
//!
//! The server reads a page's snapshot before rendering it (see
//! [`preload`]), so the chat page renders synchronously: no `Suspense`, no
//! `Resource` to resolve in the middle of a render. The page hands it to the
//! browser as a [`SharedValue`], which hydration reads back instead of
//! asking again. Later navigations ask [`room_snapshot`] from the browser.
//!
//! Why not a `Resource` under `Suspense`: on the server the closures that
//! awaited it were run a second time when it resolved, from another task,
//! and that run disposed the first one's reactive state while the first was
//! still being rendered on another thread: a rare panic that left the page's
//! response unfinished (docs/TESTING.md, "a page load that never completes").

use crate::protocol::Message;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Why a room cannot be shown from the server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SnapProblem {
    /// Not a valid room name.
    BadRoom,
    /// The store could not be read.
    Unavailable,
}

/// A room as the page first shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub room: String,
    pub messages: Vec<Message>,
    pub more: bool,
    pub online: Vec<String>,
    /// Set when the room cannot be shown (bad name, store down).
    pub problem: Option<SnapProblem>,
}

/// Reads a room's snapshot from the hub, for the browser's navigations.
#[server(prefix = "/_sfn")]
pub async fn room_snapshot(room: String) -> Result<Snapshot, ServerFnError> {
    let app = use_context::<crate::state::AppState>()
        .ok_or_else(|| ServerFnError::new("the page has no server state"))?;
    Ok(preload::read(&app, &room).await)
}

/// The snapshot this page was rendered with, when it is of `room`.
///
/// On the server: what [`preload`] read for the request. In the browser,
/// while hydrating: the same value, from the HTML. In the browser at any
/// other time: `None` (the page then asks [`room_snapshot`]).
///
/// Call it once per page, at the same place on both sides: hydration reads
/// shared values back in the order they were made.
pub fn initial(room: &str) -> Option<Snapshot> {
    #[cfg(feature = "ssr")]
    let read = preload::of_request;
    #[cfg(not(feature = "ssr"))]
    let read = || None;
    SharedValue::new(read)
        .into_inner()
        .filter(|s: &Snapshot| s.room == room)
}

/// The server's side: reading snapshots, and reading one before a page.
#[cfg(feature = "ssr")]
pub mod preload {
    use super::{SnapProblem, Snapshot};
    use crate::protocol::{HISTORY_PAGE, RoomKind, parse_room};
    use crate::state::AppState;
    use axum::extract::{Request, State};
    use axum::http::Method;
    use axum::middleware::Next;
    use axum::response::Response;
    use percent_encoding::percent_decode_str;

    /// The snapshot read for a page request, in the request's extensions.
    #[derive(Clone)]
    struct Preloaded(Snapshot);

    /// Reads a room's newest page of history and who is online. A store
    /// that cannot be read gives a snapshot that says so, not an error: the
    /// page still renders, and the socket fills it in once it can.
    pub async fn read(app: &AppState, room: &str) -> Snapshot {
        let mut snap = Snapshot {
            room: room.to_string(),
            ..Default::default()
        };
        match parse_room(room) {
            Err(_) => snap.problem = Some(SnapProblem::BadRoom),
            // A DM's history is for its members' sockets, never for a page anyone can load.
            Ok(RoomKind::Direct(..)) => {}
            Ok(RoomKind::Public) => {
                match app.hub.store().page_before(room, None, HISTORY_PAGE).await {
                    Ok(page) => {
                        snap.messages = page.messages;
                        snap.more = page.more;
                        snap.online = app.hub.online(room);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "snapshot unavailable");
                        snap.problem = Some(SnapProblem::Unavailable);
                    }
                }
            }
        }
        snap
    }

    /// The room a chat page's path shows: `/` and `/r/{room}`, as the
    /// router reads them (percent-decoded). `None` for any other path.
    pub fn room_of_path(path: &str) -> Option<String> {
        if path == "/" {
            return Some(crate::ui::rooms::DEFAULT_ROOM.to_string());
        }
        let raw = path.strip_prefix("/r/")?.trim_end_matches('/');
        if raw.is_empty() || raw.contains('/') {
            return None;
        }
        Some(percent_decode_str(raw).decode_utf8_lossy().into_owned())
    }

    /// Middleware: reads the snapshot of a chat page before it is rendered.
    pub async fn snapshot_first(
        State(app): State<AppState>,
        mut req: Request,
        next: Next,
    ) -> Response {
        if req.method() == Method::GET
            && let Some(room) = room_of_path(req.uri().path())
        {
            let snap = read(&app, &room).await;
            req.extensions_mut().insert(Preloaded(snap));
        }
        next.run(req).await
    }

    /// The snapshot [`snapshot_first`] read for the request being rendered.
    pub fn of_request() -> Option<Snapshot> {
        let parts = leptos::prelude::use_context::<axum::http::request::Parts>()?;
        parts.extensions.get::<Preloaded>().map(|p| p.0.clone())
    }

    #[cfg(test)]
    mod tests {
        use super::room_of_path;

        #[test]
        fn chat_page_paths_name_their_room() {
            assert_eq!(room_of_path("/").as_deref(), Some("general"));
            assert_eq!(room_of_path("/r/rust").as_deref(), Some("rust"));
            assert_eq!(room_of_path("/r/rust/").as_deref(), Some("rust"));
            assert_eq!(
                room_of_path("/r/dm%3Aalice%3Abob").as_deref(),
                Some("dm:alice:bob")
            );
            assert_eq!(room_of_path("/r/"), None);
            assert_eq!(room_of_path("/r/a/b"), None);
            assert_eq!(room_of_path("/login"), None);
            assert_eq!(room_of_path("/rooms"), None);
        }
    }
}
