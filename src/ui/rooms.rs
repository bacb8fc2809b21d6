//! Room names as the page shows them: the default room, which names are
//! direct-message rooms, and their labels. Plain functions of names, used by
//! the chat state, the components and the server's page preload alike.

use crate::protocol::{RoomKind, parse_room};

/// The room of `/`, and of a browser that remembers none.
pub use crate::protocol::DEFAULT_ROOM;

/// The direct-message peer of `me` in `room`, when `room` is one of `me`'s DMs.
pub fn dm_peer(room: &str, me: Option<&str>) -> Option<String> {
    let me = me?;
    match parse_room(room) {
        Ok(RoomKind::Direct(a, b)) if a == me => Some(b.to_string()),
        Ok(RoomKind::Direct(a, b)) if b == me => Some(a.to_string()),
        _ => None,
    }
}

/// Whether a name is a direct-message room.
pub fn is_dm(room: &str) -> bool {
    matches!(parse_room(room), Ok(RoomKind::Direct(..)))
}

/// Whether a name is a valid public room.
pub fn is_public(room: &str) -> bool {
    matches!(parse_room(room), Ok(RoomKind::Public))
}

/// How a room is named on screen: `#general`, `@bob` (a DM seen by one of its
/// members), `alice ↔ bob` (a DM seen by anyone else).
pub fn room_label(room: &str, me: Option<&str>) -> String {
    if let Some(peer) = dm_peer(room, me) {
        return format!("@{peer}");
    }
    match parse_room(room) {
        Ok(RoomKind::Direct(a, b)) => format!("{a} ↔ {b}"),
        _ => format!("#{room}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(room_label("general", None), "#general");
        assert_eq!(room_label("dm:alice:bob", Some("alice")), "@bob");
        assert_eq!(room_label("dm:alice:bob", Some("carol")), "alice ↔ bob");
        assert_eq!(dm_peer("dm:alice:bob", Some("bob")), Some("alice".into()));
        assert_eq!(dm_peer("dm:alice:bob", Some("carol")), None);
        assert!(is_dm("dm:alice:bob") && !is_dm("general"));
        assert!(is_public("general") && !is_public("dm:alice:bob") && !is_public("Bad"));
    }
}
