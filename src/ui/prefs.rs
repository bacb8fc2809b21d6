//! What this browser remembers in `localStorage`: the nickname, the rooms of
//! the sidebar, the last message read in each room, the messages not sent
//! yet, and the last account signed in. On the server every read finds
//! nothing and every write does nothing.

use super::chat_state::Outgoing;
use std::collections::BTreeMap;

/// The key of the nickname.
pub const NAME_KEY: &str = "causerie.name";
/// The key of the sidebar's rooms (a JSON array).
pub const ROOMS_KEY: &str = "causerie.rooms";
/// The key of the last read id per room (a JSON object).
pub const READ_KEY: &str = "causerie.read";
/// The prefix of the key of a person's unsent messages (a JSON object of
/// rooms), followed by their name.
pub const OUTBOX_KEY: &str = "causerie.outbox.";
/// The key of the account last signed in, for a page loaded offline.
pub const ACCOUNT_KEY: &str = "causerie.account";

#[cfg(feature = "hydrate")]
fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// A stored string.
pub fn get(key: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    return storage()?.get_item(key).ok()?;
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = key;
        None
    }
}

/// Stores a string; a full or refused storage is not worth an error.
pub fn set(key: &str, value: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (key, value);
}

/// Forgets a stored string.
pub fn remove(key: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(s) = storage() {
        let _ = s.remove_item(key);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = key;
}

/// The sidebar's rooms, if this browser kept any.
pub fn rooms() -> Option<Vec<String>> {
    serde_json::from_str(&get(ROOMS_KEY)?).ok()
}

/// Keeps the sidebar's rooms.
pub fn save_rooms(rooms: &[String]) {
    if let Ok(s) = serde_json::to_string(rooms) {
        set(ROOMS_KEY, &s);
    }
}

/// The last read id per room.
pub fn read_marks() -> BTreeMap<String, i64> {
    get(READ_KEY)
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// Keeps the last read id per room.
pub fn save_read_marks(marks: &BTreeMap<String, i64>) {
    if let Ok(s) = serde_json::to_string(marks) {
        set(READ_KEY, &s);
    }
}

/// What `me` left unsent in this browser, per room.
pub fn outbox(me: &str) -> BTreeMap<String, Vec<Outgoing>> {
    get(&format!("{OUTBOX_KEY}{me}"))
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// Keeps what `me` has not sent yet; nothing left, the key goes.
pub fn save_outbox(me: &str, outbox: &BTreeMap<String, Vec<Outgoing>>) {
    let key = format!("{OUTBOX_KEY}{me}");
    if outbox.is_empty() {
        remove(&key);
    } else if let Ok(s) = serde_json::to_string(outbox) {
        set(&key, &s);
    }
}
