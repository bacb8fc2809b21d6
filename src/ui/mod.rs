//! Components, rendered on the server and hydrated in the browser.

pub mod account_pages;
pub mod admin_page;
pub mod alerts;
pub mod attachments;
pub mod avatar;
pub mod chat;
pub mod chat_state;
pub mod composer;
pub mod conversation;
pub mod file_info;
pub mod highlight;
pub mod i18n;
pub mod layout;
pub mod markdown;
pub mod members;
pub mod mentions;
pub mod messages;
pub mod new_room;
pub mod nickname;
pub mod people;
pub mod prefs;
pub mod rooms;
pub mod search;
pub mod sender;
pub mod sidebar;
pub mod snapshot;
pub mod state;
pub mod text;
pub mod time;
pub mod uploads;

/// Milliseconds since the epoch in the browser; 0 on the server.
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}
