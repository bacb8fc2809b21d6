//! What the server renders before any WebSocket: a room's newest messages
//! and who is online.

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

/// Reads a room's snapshot from the hub.
#[server(prefix = "/_sfn")]
pub async fn room_snapshot(room: String) -> Result<Snapshot, ServerFnError> {
    use crate::protocol::{HISTORY_PAGE, RoomKind, parse_room};
    use crate::state::AppState;
    let app = use_context::<AppState>()
        .ok_or_else(|| ServerFnError::new("the page has no server state"))?;
    let mut snap = Snapshot {
        room: room.clone(),
        ..Default::default()
    };
    match parse_room(&room) {
        Err(_) => snap.problem = Some(SnapProblem::BadRoom),
        // A DM's history is for its members' sockets, never for a page anyone can load.
        Ok(RoomKind::Direct(..)) => {}
        Ok(RoomKind::Public) => {
            match app.hub.store().page_before(&room, None, HISTORY_PAGE).await {
                Ok(page) => {
                    snap.messages = page.messages;
                    snap.more = page.more;
                    snap.online = app.hub.online(&room);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "snapshot unavailable");
                    snap.problem = Some(SnapProblem::Unavailable);
                }
            }
        }
    }
    Ok(snap)
}
