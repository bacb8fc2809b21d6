//! What this browser remembers in `localStorage`: the nickname, the rooms of
//! the sidebar, and the last message read in each room. On the server every
//! read finds nothing and every write does nothing.

use std::collections::BTreeMap;

/// The key of the nickname.
pub const NAME_KEY: &str = "causerie.name";
/// The key of the sidebar's rooms (a JSON array).
pub const ROOMS_KEY: &str = "causerie.rooms";
/// The key of the last read id per room (a JSON object).
pub const READ_KEY: &str = "causerie.read";

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
