//! Who a new message should reach by push, from the room's kind, its
//! members, the levels people chose and the names it mentions. Whether
//! they are connected, and their devices, are asked afterwards.

use crate::names::name_key;
use crate::protocol::{NotifyLevel, RoomKind};

/// What a room's message is, for deciding who hears of it.
pub struct Heard<'a> {
    pub kind: &'a RoomKind<'a>,
    pub author: &'a str,
    pub mentions: &'a [String],
    /// A private room's members (empty for other kinds).
    pub members: &'a [String],
    /// The levels accounts chose in the room.
    pub chosen: &'a [(String, NotifyLevel)],
}

/// The level an account has in a room of `kind`, chosen or by default:
/// every message of a direct room, mentions elsewhere.
pub fn level(kind: &RoomKind<'_>, chosen: Option<NotifyLevel>) -> NotifyLevel {
    chosen.unwrap_or(match kind {
        RoomKind::Direct(_) => NotifyLevel::All,
        _ => NotifyLevel::Mentions,
    })
}

/// The accounts to tell, each once, the author never.
pub fn recipients(heard: &Heard<'_>) -> Vec<String> {
    let mentioned: Vec<String> = heard.mentions.iter().map(|m| name_key(m)).collect();
    let chosen_of = |name: &str| {
        let key = name_key(name);
        heard
            .chosen
            .iter()
            .find(|(a, _)| name_key(a) == key)
            .map(|(_, l)| *l)
    };
    // Who may hear at all: a closed room's people; in a public room, those
    // who asked for everything and those it mentions.
    let candidates: Vec<String> = match heard.kind {
        RoomKind::Direct(names) => names.iter().map(|n| n.to_string()).collect(),
        RoomKind::Private => heard.members.to_vec(),
        RoomKind::Public => heard
            .chosen
            .iter()
            .filter(|(_, l)| *l == NotifyLevel::All)
            .map(|(a, _)| a.clone())
            .chain(heard.mentions.iter().cloned())
            .collect(),
    };
    let author = name_key(heard.author);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for name in candidates {
        let key = name_key(&name);
        if key == author || seen.contains(&key) {
            continue;
        }
        let wanted = match level(heard.kind, chosen_of(&name)) {
            NotifyLevel::All => true,
            NotifyLevel::Mentions => mentioned.contains(&key),
            NotifyLevel::None => false,
        };
        if wanted {
            out.push(name);
        }
        seen.push(key);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_direct_room_tells_the_others_unless_they_said_none() {
        let kind = RoomKind::Direct(vec!["alice", "bob", "carol"]);
        let chosen = vec![("carol".to_string(), NotifyLevel::None)];
        let heard = Heard {
            kind: &kind,
            author: "Alice",
            mentions: &[],
            members: &[],
            chosen: &chosen,
        };
        assert_eq!(recipients(&heard), names(&["bob"]));
    }

    #[test]
    fn a_public_room_tells_the_mentioned_and_those_who_want_all() {
        let kind = RoomKind::Public;
        let chosen = vec![
            ("dan".to_string(), NotifyLevel::All),
            ("erin".to_string(), NotifyLevel::None),
            ("frank".to_string(), NotifyLevel::Mentions),
        ];
        let mentions = names(&["Bob", "erin", "alice", "bob"]);
        let heard = Heard {
            kind: &kind,
            author: "alice",
            mentions: &mentions,
            members: &[],
            chosen: &chosen,
        };
        assert_eq!(recipients(&heard), names(&["dan", "Bob"]));
    }

    #[test]
    fn a_private_room_tells_only_its_members() {
        let kind = RoomKind::Private;
        let members = names(&["alice", "bob", "carol"]);
        let chosen = vec![("carol".to_string(), NotifyLevel::All)];
        let mentions = names(&["bob", "mallory"]);
        let heard = Heard {
            kind: &kind,
            author: "alice",
            mentions: &mentions,
            members: &members,
            chosen: &chosen,
        };
        assert_eq!(recipients(&heard), names(&["bob", "carol"]));
    }
}
