//! Desktop notifications in the page: the offer to turn them on (the
//! browser is asked only on a click, never on load), the sound setting, and
//! the chat's notifying messages (see [`super::chat_state::ChatState::notifies`])
//! turned into notifications. The browser calls are `crate::notifications`.

use super::i18n::K;
use super::layout::Layout;
use super::prefs;
use super::state::Chat;
use leptos::prelude::*;

/// The key of the sound setting (`on` or `off`).
pub const SOUND_KEY: &str = "causerie.notify.sound";
/// The key that keeps the offer dismissed.
pub const OFFER_KEY: &str = "causerie.notify.offer";

/// Where the browser stands on notifications from this site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Not known yet (rendered on the server, not hydrated yet).
    Unknown,
    /// Not asked yet: the page may offer to turn them on.
    Ask,
    Granted,
    Denied,
    /// No Notification API in this browser.
    Unsupported,
}

impl Permission {
    /// The browser's answer (`None`: no Notification API).
    #[cfg(feature = "hydrate")]
    fn of(p: Option<web_sys::NotificationPermission>) -> Self {
        use web_sys::NotificationPermission as P;
        match p {
            None => Permission::Unsupported,
            Some(P::Granted) => Permission::Granted,
            Some(P::Denied) => Permission::Denied,
            Some(_) => Permission::Ask,
        }
    }
}

/// The page's notification settings; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Alerts {
    pub permission: RwSignal<Permission>,
    /// A tone with each notification (off unless chosen).
    pub sound: RwSignal<bool>,
    /// The person said "not now" to the offer.
    pub dismissed: RwSignal<bool>,
}

impl Alerts {
    /// Settings not read yet: nothing offered until the page runs in the browser.
    pub fn new() -> Self {
        Alerts {
            permission: RwSignal::new(Permission::Unknown),
            sound: RwSignal::new(false),
            dismissed: RwSignal::new(false),
        }
    }

    /// Reads the browser's permission and this browser's settings.
    pub fn load(&self) {
        #[cfg(feature = "hydrate")]
        self.permission
            .set(Permission::of(crate::notifications::permission()));
        self.sound
            .set(prefs::get(SOUND_KEY).as_deref() == Some("on"));
        self.dismissed
            .set(prefs::get(OFFER_KEY).as_deref() == Some("dismissed"));
    }

    /// Asks the browser for the permission: only ever from a click.
    pub fn turn_on(&self) {
        #[cfg(feature = "hydrate")]
        {
            let permission = self.permission;
            leptos::task::spawn_local(async move {
                permission.set(Permission::of(crate::notifications::ask().await));
            });
        }
    }

    /// Hides the offer for good in this browser.
    pub fn dismiss(&self) {
        self.dismissed.set(true);
        prefs::set(OFFER_KEY, "dismissed");
    }

    /// Turns the tone on or off, and remembers it.
    pub fn set_sound(&self, on: bool) {
        self.sound.set(on);
        prefs::set(SOUND_KEY, if on { "on" } else { "off" });
    }
}

impl Default for Alerts {
    fn default() -> Self {
        Self::new()
    }
}

/// The offer above the conversation: "Get notified of new messages — Turn on".
#[component]
pub fn NotifyOffer() -> impl IntoView {
    let alerts = expect_context::<Alerts>();
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let shown = move || {
        alerts.permission.get() == Permission::Ask
            && !alerts.dismissed.get()
            && chat.name.with(Option::is_some)
    };
    view! {
        <Show when=shown>
            <div class="notify-offer" role="region" aria-label=layout.tr(K::NotificationsTitle)>
                <p>{layout.tr(K::NotifyOffer)}</p>
                <button class="turn-on" on:click=move |_| alerts.turn_on()>
                    {layout.tr(K::TurnOn)}
                </button>
                <button class="link not-now" on:click=move |_| alerts.dismiss()>
                    {layout.tr(K::NotNow)}
                </button>
            </div>
        </Show>
    }
}

/// The notification settings in the room's panel: turn them on (after a
/// "not now"), why they cannot be, and the sound.
#[component]
pub fn NotifySettings() -> impl IntoView {
    let alerts = expect_context::<Alerts>();
    let layout = expect_context::<Layout>();
    let state = move || match alerts.permission.get() {
        Permission::Ask => view! {
            <button class="turn-on" on:click=move |_| alerts.turn_on()>
                {layout.tr(K::TurnOnNotifications)}
            </button>
        }
        .into_any(),
        Permission::Denied => {
            view! { <p class="hint">{layout.tr(K::NotificationsBlocked)}</p> }.into_any()
        }
        _ => ().into_any(),
    };
    let toggle = move |ev: leptos::ev::Event| alerts.set_sound(event_target_checked(&ev));
    view! {
        <div class="notify-settings">
            {state}
            <label class="notify-sound">
                <input type="checkbox" id="notify-sound" prop:checked=move || alerts.sound.get() on:change=toggle/>
                <span>{layout.tr(K::NotifySound)}</span>
            </label>
        </div>
    }
}

/// In the browser: shows each message the chat found worth a notification,
/// with the tone if chosen; a click opens its room through `navigate`.
#[cfg(feature = "hydrate")]
pub fn deliver<N>(chat: Chat, layout: Layout, alerts: Alerts, navigate: N)
where
    N: Fn(&str, leptos_router::NavigateOptions) + Clone + 'static,
{
    use super::markdown::plain_text;
    use super::rooms::{room_href, room_label};
    /// Enough of the text to know what it is about.
    const BODY_CHARS: usize = 160;
    Effect::new(move |_| {
        if chat.to_notify.with(Vec::is_empty) {
            return;
        }
        // Untracked: taking them must not run this again.
        let list = chat
            .to_notify
            .try_update_untracked(std::mem::take)
            .unwrap_or_default();
        let me = chat.name.get_untracked();
        let lang = layout.lang.get_untracked();
        for m in &list {
            let room = room_label(&m.room, me.as_deref());
            let title = lang.f(
                K::NotificationTitle,
                &[("author", &m.author), ("room", &room)],
            );
            let text = super::file_info::body_or_files(&m.body, &m.attachments);
            let mut body: String = plain_text(&text).chars().take(BODY_CHARS).collect();
            if body.chars().count() == BODY_CHARS {
                body.push('…');
            }
            let href = room_href(&m.room);
            let navigate = navigate.clone();
            crate::notifications::show(&title, &body, &m.room, move || {
                navigate(&href, Default::default())
            });
        }
        if !list.is_empty() && alerts.sound.get_untracked() {
            crate::notifications::chime();
        }
    });
}
