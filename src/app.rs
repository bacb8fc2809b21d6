//! The HTML shell, the router, and what the page does once it runs in the
//! browser (remembered settings, the socket, tab visibility).

use crate::ui::account_pages::{AccountPage, InvitePage, LoginPage, RegisterPage};
use crate::ui::admin_page::AdminPage;
use crate::ui::chat::ChatPage;
use crate::ui::i18n::{K, Lang};
use crate::ui::layout::Layout;
use crate::ui::sender::Sender;
use crate::ui::state::Chat;
use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The page's language: on the server from the request (cookie, then
/// `Accept-Language`), in the browser from the `<html lang>` the server wrote.
fn page_lang() -> Lang {
    #[cfg(feature = "ssr")]
    return crate::ui::i18n::request_lang();
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    return crate::ui::i18n::document_lang();
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    Lang::default()
}

/// The document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::http::headers::set_page_policy();
    let lang = page_lang();
    view! {
        <!DOCTYPE html>
        <html lang=lang.code()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <meta name="theme-color" media="(prefers-color-scheme: light)" content="#ffffff"/>
                <meta name="theme-color" media="(prefers-color-scheme: dark)" content="#13161e"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="manifest" href="/manifest.webmanifest"/>
                <link rel="apple-touch-icon" href="/icons/icon-192.png"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The application: one chat page for every room, and one [`Chat`],
/// [`Layout`] and [`Sender`] for the page's whole life, given to the
/// components through context.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let layout = Layout::new(page_lang());
    let sender = Sender::default();
    let chat = Chat::new(layout, sender);
    provide_context(layout);
    provide_context(sender);
    provide_context(chat);
    let alerts = crate::ui::alerts::Alerts::new();
    provide_context(alerts);
    // The search keeps its results across rooms (and from `/` to `/r/…`).
    provide_context(crate::ui::search::Search::new());
    // So do the message box's files on their way.
    provide_context(crate::ui::uploads::Uploads::new(layout.lang));
    #[cfg(feature = "hydrate")]
    browser::run(chat, layout, sender, alerts);
    let not_found = move || view! { <p class="not-found">{move || layout.t(K::NotFoundPage)}</p> };
    view! {
        <Stylesheet id="leptos" href="/pkg/causerie.css"/>
        <Router>
            <Routes fallback=not_found>
                // Async: the whole conversation is in the HTML, readable without JavaScript.
                <Route path=path!("/") view=ChatPage ssr=SsrMode::Async/>
                <Route path=path!("/r/:room") view=ChatPage ssr=SsrMode::Async/>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async/>
                <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async/>
                <Route path=path!("/invite/:code") view=InvitePage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// What runs only in the browser, after hydration.
#[cfg(feature = "hydrate")]
mod browser {
    use crate::ui::alerts::{Alerts, Permission};
    use crate::ui::chat_state::Status;
    use crate::ui::i18n;
    use crate::ui::layout::Layout;
    use crate::ui::nickname::remembered;
    use crate::ui::prefs;
    use crate::ui::sender::Sender;
    use crate::ui::state::Chat;
    use leptos::prelude::*;
    use std::time::Duration;

    fn hidden() -> bool {
        document().hidden()
    }

    pub fn run(chat: Chat, layout: Layout, sender: Sender, alerts: Alerts) {
        // Once, after hydration: what this browser remembers.
        Effect::new(move |_| {
            layout.hydrated.set(true);
            alerts.load();
            chat.set_visible(!hidden());
            if i18n::chosen_lang().is_none()
                && let Some(lang) = i18n::browser_lang()
                && lang != layout.lang.get_untracked()
            {
                layout.lang.set(lang);
            }
            // A signed-in account wins over a remembered guest name.
            leptos::task::spawn_local(async move {
                let me = crate::account::whoami().await;
                if let Ok(me) = &me {
                    layout.first_account.set(me.first_account);
                }
                match me {
                    Ok(crate::account::Me {
                        name: Some(name), ..
                    }) => {
                        prefs::set(prefs::ACCOUNT_KEY, &name);
                        chat.set_name(Some(name), true);
                    }
                    // Offline (a page from the service worker's copy): the
                    // account last signed in here; its session cookie says
                    // on connecting whether it still is.
                    Err(_) => match prefs::get(prefs::ACCOUNT_KEY) {
                        Some(name) => chat.set_name(Some(name), true),
                        None => chat.set_name(remembered(), false),
                    },
                    // A guest, or a visitor with no name yet: reads are this browser's.
                    Ok(_) => {
                        prefs::remove(prefs::ACCOUNT_KEY);
                        chat.set_name(remembered(), false);
                    }
                }
            });
            if let Some(rooms) = prefs::rooms() {
                chat.restore_sidebar(rooms);
            }
            chat.restore_marks(prefs::read_marks());
            layout.prefs_loaded.set(true);
        });

        // Connect once there is a nickname.
        Effect::new(move |_| {
            if chat.name.with(Option::is_some) && chat.status.get_untracked() == Status::Offline {
                crate::client::start(chat, sender);
            }
        });

        // Join and leave as the sidebar and the room in view change.
        Effect::new(move |_| {
            chat.sidebar.track();
            chat.current.track();
            chat.status.track();
            chat.sync_joins();
        });

        // Keep what is not sent yet for a later page; show what an earlier
        // one left (once per name, before keeping anything for it).
        let outbox_of = StoredValue::new(None::<String>);
        Effect::new(move |_| {
            let Some(me) = chat.name.get() else {
                return;
            };
            if outbox_of.with_value(|o| o.as_deref() != Some(me.as_str())) {
                outbox_of.set_value(Some(me.clone()));
                chat.restore_outbox(prefs::outbox(&me));
            }
            chat.outbox.with(|o| prefs::save_outbox(&me, o));
        });

        // Remember the sidebar.
        Effect::new(move |_| {
            let rooms = chat.sidebar.get();
            if layout.prefs_loaded.get() {
                prefs::save_rooms(&rooms);
            }
        });

        // What is read is what the message list shows in a visible tab
        // (`ui::messages`), not what merely arrived.

        // Notifications allowed, for an account: this device gets Web Push
        // too, for when no page is open (once per page; the browser keeps
        // one subscription, the server one row per endpoint).
        let subscribed = StoredValue::new(false);
        Effect::new(move |_| {
            let wanted = chat.signed_in.get() && alerts.permission.get() == Permission::Granted;
            if !wanted || subscribed.get_value() {
                return;
            }
            subscribed.set_value(true);
            leptos::task::spawn_local(async move {
                if let Err(e) = crate::notifications::subscribe_push().await {
                    web_sys::console::warn_1(&format!("no Web Push on this device: {e}").into());
                }
            });
        });

        // The installed app's icon counts what is unread.
        Effect::new(move |_| crate::notifications::set_app_badge(chat.total_unread()));

        // The document's language follows the page's.
        Effect::new(move |_| {
            let lang = layout.lang.get();
            if let Some(el) = document().document_element() {
                let _ = el.set_attribute("lang", lang.code());
            }
        });

        let _ = window_event_listener_untyped("visibilitychange", move |_| {
            chat.set_visible(!hidden());
        });
        let _ = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" {
                layout.close_drawers();
            }
        });
        // Typing notices fade.
        let _ = set_interval_with_handle(
            move || chat.expire_typing(js_sys::Date::now()),
            Duration::from_millis(500),
        );
    }
}
