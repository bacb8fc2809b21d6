//! What a push says: short (push services take about 4 KB), and for a
//! private or direct room nothing a lock screen should show unless the
//! person allowed it on that device.

use crate::protocol::{Message, RoomKind};
use serde::Serialize;

/// Characters of the message shown.
const PREVIEW: usize = 140;

/// The JSON the service worker (`public/sw.js`) shows.
#[derive(Serialize)]
struct Payload<'a> {
    title: String,
    body: String,
    room: &'a str,
    id: i64,
    /// Opens the room at this message.
    url: String,
}

/// The encoded payload of `msg` for a device.
pub fn of(msg: &Message, kind: &RoomKind<'_>, previews: bool) -> Vec<u8> {
    let closed = !matches!(kind, RoomKind::Public);
    let (title, body) = if closed && !previews {
        let title = match kind {
            RoomKind::Direct(_) => "New direct message".to_string(),
            _ => format!("New message in {}", msg.room),
        };
        (title, String::new())
    } else {
        let title = match kind {
            RoomKind::Direct(_) => msg.author.clone(),
            _ => format!("{} in {}", msg.author, msg.room),
        };
        // A file sent without a caption is told by its name.
        let text = crate::ui::file_info::body_or_files(&msg.body, &msg.attachments);
        (title, start_of(&crate::ui::markdown::plain_text(&text)))
    };
    let payload = Payload {
        title,
        body,
        room: &msg.room,
        id: msg.id,
        url: format!(
            "{}?around={}",
            crate::ui::rooms::room_href(&msg.room),
            msg.id
        ),
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

fn start_of(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(PREVIEW) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn msg(room: &str, body: &str) -> Message {
        Message {
            room: room.into(),
            id: 7,
            author: "alice".into(),
            body: body.into(),
            ts: "2026-12-02T10:00:00.000Z".into(),
            ..Default::default()
        }
    }

    fn json(b: Vec<u8>) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn a_private_room_shows_only_its_name_unless_previews_are_allowed() {
        let m = msg("~design", "the **launch** date is secret");
        let hidden = json(of(&m, &RoomKind::Private, false));
        assert_eq!(hidden["title"], "New message in ~design");
        assert_eq!(hidden["body"], "");
        assert_eq!(hidden["url"], "/r/~design?around=7");
        let shown = json(of(&m, &RoomKind::Private, true));
        assert_eq!(shown["title"], "alice in ~design");
        assert_eq!(shown["body"], "the launch date is secret");
        let dm = json(of(
            &msg("dm:alice:bob", "hi"),
            &RoomKind::Direct(vec!["alice", "bob"]),
            false,
        ));
        assert_eq!(dm["title"], "New direct message");
    }

    #[test]
    fn a_long_message_is_cut_to_its_start() {
        let long = "word ".repeat(200);
        let p = json(of(&msg("general", &long), &RoomKind::Public, false));
        let body = p["body"].as_str().unwrap();
        assert!(
            body.ends_with('…') && body.chars().count() <= PREVIEW + 1,
            "{body}"
        );
        assert!(of(&msg("general", &"é".repeat(4000)), &RoomKind::Public, false).len() < 1024);
    }
}
