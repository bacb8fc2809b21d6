//! What the page shows around the chat: its language, the phone layout's
//! drawers, the screen readers' live region, and whether it runs in the
//! browser yet. Apart from the chat state: none of it is what the server
//! says, and none of it goes over the socket.

use super::i18n::{K, Lang};
use super::rooms::room_label;
use crate::protocol::Message;
use leptos::prelude::*;

/// The page's layout state; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Layout {
    pub lang: RwSignal<Lang>,
    /// Set once the page runs in the browser.
    pub hydrated: RwSignal<bool>,
    /// Set once this browser's remembered rooms are read.
    pub prefs_loaded: RwSignal<bool>,
    /// The phone layout's drawers.
    pub menu_open: RwSignal<bool>,
    pub people_open: RwSignal<bool>,
    /// Text for the screen readers' live region (messages out of sight).
    pub announce: RwSignal<String>,
    /// The server has no account yet: the page asks for the first one.
    pub first_account: RwSignal<bool>,
}

impl Layout {
    /// The page's layout, in a language.
    pub fn new(lang: Lang) -> Self {
        Layout {
            lang: RwSignal::new(lang),
            hydrated: RwSignal::new(false),
            prefs_loaded: RwSignal::new(false),
            menu_open: RwSignal::new(false),
            people_open: RwSignal::new(false),
            announce: RwSignal::new(String::new()),
            first_account: RwSignal::new(false),
        }
    }

    /// A string in the page's language (reactive).
    pub fn t(&self, key: K) -> &'static str {
        self.lang.get().t(key)
    }

    /// A string in the page's language as a reactive view or attribute.
    /// Every key gives the same closure type, so the WASM carries one copy
    /// of the code that renders it, not one per string.
    pub fn tr(self, key: K) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
        move || self.lang.get().t(key)
    }

    /// Closes both drawers.
    pub fn close_drawers(&self) {
        self.menu_open.set(false);
        self.people_open.set(false);
    }

    /// Tells screen readers of a message the person does not see.
    pub fn announce_message(&self, m: &Message, me: Option<&str>) {
        let lang = self.lang.get_untracked();
        let body: String = super::file_info::body_or_files(&m.body, &m.attachments)
            .chars()
            .take(140)
            .collect();
        self.announce.set(lang.f(
            K::NewMessageIn,
            &[
                ("author", &m.author),
                ("room", &room_label(&m.room, me)),
                ("body", &body),
            ],
        ));
    }
}
