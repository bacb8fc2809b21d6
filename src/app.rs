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
    // The search keeps its results across rooms (and from `/` to `/r/…`).
    provide_context(crate::ui::search::Search::new());
    #[cfg(feature = "hydrate")]
    browser::run(chat, layout, sender);
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

    pub fn run(chat: Chat, layout: Layout, sender: Sender) {
        // Once, after hydration: what this browser remembers.
        Effect::new(move |_| {
            layout.hydrated.set(true);
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
                    }) => chat.set_name(Some(name), true),
                    _ => {
                        if let Some(name) = remembered() {
                            chat.set_name(Some(name), false);
                        }
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

        // Remember the sidebar.
        Effect::new(move |_| {
            let rooms = chat.sidebar.get();
            if layout.prefs_loaded.get() {
                prefs::save_rooms(&rooms);
            }
        });

        // What is in view, in a visible tab, is read.
        Effect::new(move |_| {
            let room = chat.here();
            room.lines.track();
            if chat.visible.get() && room.loaded.get() {
                chat.mark_read(room);
            }
        });

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
