//! The chat page's snapshot read before the page renders: a room's newest
//! messages and who is online, so that the render never waits on the store.

use super::pages::Pages;
use super::state::AppState;
use crate::auth::Auth;
use crate::hub::{Actor, HubError};
use crate::protocol::{DEFAULT_ROOM, HISTORY_PAGE, RoomKind, SnapProblem, Snapshot, parse_room};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tower_sessions::Session;

/// The snapshot read for a page request, in the request's extensions.
#[derive(Clone)]
struct Preloaded(Snapshot);

/// Reads a room's newest page of history and who is online, as `viewer`
/// (the signed-in account, if any) may see it. A store that cannot be read
/// gives a snapshot that says so, not an error: the page still renders, and
/// the socket fills it in once it can.
pub async fn read(app: &AppState, viewer: Option<&Actor>, room: &str) -> Snapshot {
    let mut snap = Snapshot {
        room: room.to_string(),
        ..Default::default()
    };
    let kind = match parse_room(room) {
        Ok(kind) => kind,
        Err(_) => {
            snap.problem = Some(SnapProblem::BadRoom);
            return snap;
        }
    };
    let allowed = match (viewer, &kind) {
        (None, _) if !app.config.guests => Err(SnapProblem::SignIn),
        (None, RoomKind::Private) => Err(SnapProblem::NotFound),
        // A direct room's history is for its members' sockets: the page of
        // one, whoever asks, renders without it.
        (_, RoomKind::Direct(_)) => match viewer {
            Some(v) if app.hub.check_access(v, room).await.is_ok() => return snap,
            _ => Err(SnapProblem::Forbidden),
        },
        (Some(v), _) => match app.hub.check_access(v, room).await {
            Ok(()) => Ok(()),
            Err(HubError::Store(e)) => {
                tracing::warn!(error = %e, "snapshot unavailable");
                Err(SnapProblem::Unavailable)
            }
            Err(_) => Err(SnapProblem::NotFound),
        },
        (None, RoomKind::Public) => Ok(()),
    };
    if let Err(problem) = allowed {
        snap.problem = Some(problem);
        return snap;
    }
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
    snap
}

/// The account a request's session is signed in as, as an actor.
pub async fn viewer(app: &AppState, session: Option<&Session>) -> Option<Actor> {
    let session = session?;
    match super::session::session_user(&app.auth, session).await {
        Ok(name) => name.map(Auth::account),
        Err(e) => {
            tracing::warn!(error = %e, "session unreadable");
            None
        }
    }
}

/// Middleware: reads the snapshot of a chat page before it is rendered,
/// and answers with the status its problem calls for: a private room one
/// is not in is a 404, exactly like a room that does not exist.
pub async fn snapshot_first(
    State((app, pages)): State<(AppState, Arc<Pages>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let mut problem = None;
    if req.method() == Method::GET
        && let Some(room) = pages.room_of(req.uri().path(), DEFAULT_ROOM)
    {
        let viewer = viewer(&app, req.extensions().get::<Session>()).await;
        let snap = read(&app, viewer.as_ref(), &room).await;
        problem = snap.problem;
        req.extensions_mut().insert(Preloaded(snap));
    }
    let mut response = next.run(req).await;
    let status = match problem {
        Some(SnapProblem::NotFound) => Some(StatusCode::NOT_FOUND),
        Some(SnapProblem::Forbidden) => Some(StatusCode::FORBIDDEN),
        Some(SnapProblem::SignIn) => Some(StatusCode::UNAUTHORIZED),
        _ => None,
    };
    if let Some(status) = status
        && response.status().is_success()
    {
        *response.status_mut() = status;
    }
    response
}

/// The snapshot [`snapshot_first`] read for the request being rendered.
pub fn of_request() -> Option<Snapshot> {
    let parts = leptos::prelude::use_context::<axum::http::request::Parts>()?;
    parts.extensions.get::<Preloaded>().map(|p| p.0.clone())
}
