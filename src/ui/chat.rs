//! The chat page: the sidebar of rooms, a room's conversation, who is online,
//! and the composer. One page for `/` and every `/r/{room}`; moving between
//! rooms changes signals, not the document, and keeps the socket.

use super::alerts::NotifyOffer;
use super::chat_state::{Access, Badge, Status, badge};
use super::composer::Composer;
use super::i18n::K;
use super::layout::Layout;
use super::members::TopicLine;
use super::messages::MessageList;
use super::new_room::{Dialogs, NewRoomDialogs, PeopleNames};
use super::nickname::NicknameForm;
use super::people::People;
use super::rooms::{DEFAULT_ROOM, is_dm, is_private, room_label};
use super::search::{JumpToMessage, Search, SearchBox, SearchPanel};
use super::sidebar::Sidebar;
use super::snapshot;
use super::state::Chat;
use super::uploads::{DropOverlay, Uploads};
use crate::protocol::Ended;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// `/` and `/r/{room}`.
#[component]
pub fn ChatPage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let search = expect_context::<Search>();
    provide_context(Dialogs::new());
    let uploads = expect_context::<Uploads>();
    let params = use_params_map();
    let room = Memo::new(move |_| {
        params
            .read()
            .get("room")
            .unwrap_or_else(|| DEFAULT_ROOM.to_string())
    });
    chat.set_current(&room.get_untracked());
    Effect::new(move |_| {
        let r = room.get();
        chat.set_current(&r);
        layout.close_drawers();
    });
    // Before the view: every part of the page renders from the same state,
    // on the server and while hydrating.
    if let Some(snap) = snapshot::initial(&room.get_untracked()) {
        chat.load(&snap);
    }
    #[cfg(feature = "hydrate")]
    fetch_snapshots(chat, room);
    #[cfg(feature = "hydrate")]
    super::alerts::deliver(
        chat,
        layout,
        expect_context::<super::alerts::Alerts>(),
        leptos_router::hooks::use_navigate(),
    );

    let title = move || {
        let me = chat.name.get();
        let label = room_label(&room.get(), me.as_deref());
        let unread = if chat.visible.get() {
            0
        } else {
            chat.total_unread()
        };
        if unread > 0 {
            format!("({unread}) {label} · Causerie")
        } else {
            format!("{label} · Causerie")
        }
    };
    // On the server, a plain string: leptos_meta reads the title after the
    // render, outside the request's reactive arena, where reading a signal
    // panics (or finds another request's arena). In the browser it follows
    // the room and the unread count.
    #[cfg(feature = "ssr")]
    let title = TextProp::from(untrack(title));
    let label = move || room_label(&room.get(), chat.name.get().as_deref());
    let close_drawers = move |_| layout.close_drawers();
    let skip_target = move || {
        if chat.name.get().is_some() {
            "#message"
        } else {
            "#nickname"
        }
    };

    view! {
        <Title text=title/>
        <div
            class="app"
            data-hydrated=move || layout.hydrated.get().then_some("true")
            class:menu-open=move || layout.menu_open.get()
            class:people-open=move || layout.people_open.get()
            class:search-open=move || search.open.get()
            class:search-collapsed=move || search.collapsed.get()
        >
            <a class="skip-link" href=skip_target>
                {layout.tr(K::SkipToComposer)}
            </a>
            <Sidebar/>
            <div class="backdrop" aria-hidden="true" on:click=close_drawers></div>
            <main class="main">
                <header class="topbar">
                    <button
                        class="icon-btn menu-btn"
                        aria-label=layout.tr(K::OpenMenu)
                        aria-controls="sidebar"
                        aria-expanded=move || layout.menu_open.get().to_string()
                        on:click=move |_| {
                            layout.people_open.set(false);
                            layout.menu_open.update(|o| *o = !*o);
                        }
                    >
                        <MenuIcon/>
                    </button>
                    <div class="room-heading">
                        <h1 class="room-title">{label}</h1>
                        <div class="room-sub">
                            <OnlineCount/>
                            <TopicLine/>
                        </div>
                    </div>
                    <SearchBox/>
                    <StatusBadge/>
                    <a
                        class="account-link"
                        href=move || if chat.signed_in.get() { "/account" } else { "/login" }
                    >
                        {move || if chat.signed_in.get() { layout.t(K::Account) } else { layout.t(K::SignIn) }}
                    </a>
                    <button
                        class="icon-btn people-btn"
                        aria-label=layout.tr(K::ShowPeople)
                        aria-controls="people"
                        aria-expanded=move || layout.people_open.get().to_string()
                        on:click=move |_| {
                            layout.menu_open.set(false);
                            layout.people_open.update(|o| *o = !*o);
                        }
                    >
                        <PeopleIcon/>
                        <span class="people-btn-count" aria-hidden="true">
                            {move || {
                                let room = chat.here();
                                room.online_count.get().unwrap_or_else(|| room.online.with(Vec::len))
                            }}
                        </span>
                    </button>
                </header>
                <div class="conversation" on:dragenter=move |ev| uploads.drag_enter(&ev)>
                    <NotifyOffer/>
                    <MessageList/>
                    <Notice/>
                    <super::conversation::RefusedNotice/>
                    <TypingLine/>
                    <Footer/>
                    <JumpToMessage/>
                    <DropOverlay/>
                </div>
            </main>
            <People/>
            <SearchPanel/>
            <NewRoomDialogs/>
            <PeopleNames/>
            <p class="visually-hidden" aria-live="polite" aria-atomic="true">
                {move || layout.announce.get()}
            </p>
        </div>
    }
}

/// In the browser: a room navigated to, not yet shown, while the socket is
/// not there to join it, is shown from a snapshot. (A connected socket joins
/// the room in view, and its `joined` brings the same and more; this is for a
/// page with no nickname yet, or one whose connection is down.)
#[cfg(feature = "hydrate")]
fn fetch_snapshots(chat: Chat, room: Memo<String>) {
    use super::chat_state::Status;
    use super::rooms::is_public;
    use super::snapshot::room_snapshot;
    Effect::new(move |_| {
        let name = room.get();
        let r = chat.room(&name);
        if !is_public(&name)
            || r.loaded.get_untracked()
            || r.problem.get_untracked().is_some()
            || r.access.get_untracked() == Access::Joined
            || chat.status.get_untracked() == Status::Connected
        {
            return;
        }
        leptos::task::spawn_local(async move {
            match room_snapshot(name.clone()).await {
                Ok(snap) => chat.load(&snap),
                Err(_) => chat.snapshot_failed(&name),
            }
        });
    });
}

/// "3 online", under the room's name.
#[component]
fn OnlineCount() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let text = move || {
        let room = chat.here();
        let n = room
            .online_count
            .get()
            .unwrap_or_else(|| room.online.with(Vec::len));
        layout.lang.get().f(K::NOnline, &[("n", &n.to_string())])
    };
    let shown = move || {
        let room = chat.here();
        room.loaded.get() || room.online_count.get().is_some()
    };
    view! {
        <Show when=shown>
            <span class="online-count">{text}</span>
        </Show>
    }
}

/// The composer, or the nickname form, or nothing where one cannot write.
#[component]
fn Footer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let can_write = move || {
        if matches!(chat.status.get(), Status::Ended(_)) {
            return false;
        }
        let room = chat.here();
        let access = room.access.get();
        room.problem.get().is_none()
            && access != Access::Refused
            && room.removed_by.get().is_none()
            && (!(is_dm(&room.name()) || is_private(&room.name())) || access == Access::Joined)
    };
    view! {
        <Show when=move || chat.name.get().is_some() fallback=NicknameForm>
            <Show when=can_write>
                <Composer/>
            </Show>
        </Show>
    }
}

/// Connected, connecting, reconnecting.
#[component]
fn StatusBadge() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let shown = move || badge(chat.status.get(), chat.name.with(Option::is_some));
    let label = move || {
        layout.t(match shown() {
            Badge::JoinOrSignIn => K::StatusJoinOrSignIn,
            Badge::Offline => K::StatusOffline,
            Badge::Connecting => K::StatusConnecting,
            Badge::Connected => K::StatusConnected,
            Badge::Reconnecting => K::StatusReconnecting,
            Badge::Ended(Ended::Banned) => K::StatusBanned,
            Badge::Ended(Ended::Blocked) => K::StatusBlocked,
            Badge::Ended(_) => K::StatusSignedOut,
        })
    };
    let class = move || match shown() {
        Badge::Connected => "status status-ok",
        Badge::JoinOrSignIn => "status status-invite",
        Badge::Offline | Badge::Ended(_) => "status status-off",
        _ => "status status-wait",
    };
    view! {
        <span class=class role="status" data-testid="status">
            {label}
        </span>
    }
}

/// The last problem, until the next one or a reconnect; or why the
/// server ended the session, for good.
#[component]
fn Notice() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let ended = move || match chat.status.get() {
        Status::Ended(why) => Some(layout.t(match why {
            Ended::Banned => K::EndedBanned,
            Ended::Blocked => K::EndedBlocked,
            _ => K::EndedSignedOut,
        })),
        _ => None,
    };
    view! {
        <Show when=move || ended().is_some()>
            <p class="notice ended" role="alert" data-testid="ended">{ended}</p>
        </Show>
        <Show when=move || chat.notice.get().is_some()>
            <p class="notice" role="alert">
                <span>{move || chat.notice.get().map(|c| layout.lang.get().error(c))}</span>
                <button class="link" on:click=move |_| chat.dismiss_notice()>
                    {layout.tr(K::Dismiss)}
                </button>
            </p>
        </Show>
    }
}

/// "alice is typing…", fading after a few seconds.
#[component]
fn TypingLine() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let names = move || -> Vec<String> {
        chat.here()
            .typing
            .with(|t| t.iter().map(|(u, _)| u.clone()).collect())
    };
    let text = move || {
        let lang = layout.lang.get();
        let names = names();
        match names.as_slice() {
            [] => String::new(),
            [a] => lang.f(K::TypingOne, &[("a", a)]),
            [a, b] => lang.f(K::TypingTwo, &[("a", a), ("b", b)]),
            _ => lang.t(K::TypingMany).to_string(),
        }
    };
    view! {
        <p class="typing" class:shown=move || !names().is_empty() aria-live="polite">
            <span class="typing-dots" aria-hidden="true">
                <i></i>
                <i></i>
                <i></i>
            </span>
            <span class="typing-text">{text}</span>
        </p>
    }
}

#[component]
fn MenuIcon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
            <path d="M4 6h16M4 12h16M4 18h16" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>
        </svg>
    }
}

#[component]
fn PeopleIcon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <circle cx="9" cy="8" r="3.5" fill="none" stroke="currentColor" stroke-width="2"/>
            <path d="M2.5 20c.6-3.6 3.3-5.5 6.5-5.5s5.9 1.9 6.5 5.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>
            <path d="M16 4.8a3.4 3.4 0 0 1 0 6.4M18.5 14.8c1.6.8 2.7 2.6 3 5.2" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>
        </svg>
    }
}
