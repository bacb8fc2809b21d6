//! The chat page's snapshot read before the page renders: a room's newest
//! messages and who is online, so that the render never waits on the store.

use super::pages::Pages;
use super::state::AppState;
use crate::protocol::{DEFAULT_ROOM, HISTORY_PAGE, RoomKind, SnapProblem, Snapshot, parse_room};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

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
        Ok(RoomKind::Private) => snap.problem = Some(SnapProblem::NotFound),
        Ok(RoomKind::Public) => match app.hub.store().page_before(room, None, HISTORY_PAGE).await {
            Ok(page) => {
                snap.messages = page.messages;
                snap.more = page.more;
                snap.online = app.hub.online(room);
            }
            Err(e) => {
                tracing::warn!(error = %e, "snapshot unavailable");
                snap.problem = Some(SnapProblem::Unavailable);
            }
        },
    }
    snap
}

/// Middleware: reads the snapshot of a chat page before it is rendered.
pub async fn snapshot_first(
    State((app, pages)): State<(AppState, Arc<Pages>)>,
    mut req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::GET
        && let Some(room) = pages.room_of(req.uri().path(), DEFAULT_ROOM)
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
