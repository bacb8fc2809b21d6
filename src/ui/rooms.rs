//! Room names as the page shows them: the default room, which names are
//! direct-message rooms, and their labels. Plain functions of names, used by
//! the chat state, the components and the server's page preload alike.

use crate::protocol::{RoomKind, parse_room};

/// The room of `/`, and of a browser that remembers none.
pub use crate::protocol::DEFAULT_ROOM;

/// The others in `room` as `me` sees them, when `room` is one of `me`'s
/// direct rooms: `bob` in a two-person DM, `bob, carol` in a group.
pub fn dm_peer(room: &str, me: Option<&str>) -> Option<String> {
    let me = me?;
    match parse_room(room) {
        Ok(RoomKind::Direct(names)) if names.contains(&me) => Some(
            names
                .into_iter()
                .filter(|n| *n != me)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// Whether a name is a private room (`~name`).
pub fn is_private(room: &str) -> bool {
    matches!(parse_room(room), Ok(RoomKind::Private))
}

/// A room's address.
pub fn room_href(room: &str) -> String {
    format!("/r/{room}")
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
    match parse_room(room) {
        Ok(RoomKind::Direct(names)) => match dm_peer(room, me) {
            Some(peer) if names.len() == 2 => format!("@{peer}"),
            Some(peers) => peers,
            None => names.join(" ↔ "),
        },
        Ok(RoomKind::Private) => room.to_string(),
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
        assert_eq!(
            room_label("dm:alice:bob:carol", Some("bob")),
            "alice, carol"
        );
        assert_eq!(room_label("~design", Some("bob")), "~design");
        assert!(is_private("~design") && !is_private("design"));
        assert!(is_public("general") && !is_public("dm:alice:bob") && !is_public("Bad"));
    }
}
