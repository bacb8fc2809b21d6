//! The sidebar: rooms with their online and unread counts (private ones
//! with a lock), a form to join or create a room, the buttons that open a
//! private room or a group conversation, direct messages, and the language
//! switch.

use super::i18n::{self, K, Lang};
use super::layout::Layout;
use super::new_room::Dialogs;
use super::rooms::{DEFAULT_ROOM, dm_peer, is_dm, is_private, is_public, room_href, room_label};
use super::state::Chat;
use crate::protocol::MAX_ROOM_CHARS;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// What a person typed as a room name, made into one if it can be:
/// `Café Talk` → `café-talk` → refused; `Rust Talk` → `rust-talk`.
pub fn normalize_room(input: &str) -> Option<String> {
    let name: String = input
        .trim()
        .trim_start_matches('#')
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    (is_public(&name) && name.len() <= MAX_ROOM_CHARS).then_some(name)
}

#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let public = move || {
        chat.sidebar
            .get()
            .into_iter()
            .filter(|r| is_public(r))
            .chain(chat.sidebar.get().into_iter().filter(|r| is_private(r)))
            .collect::<Vec<_>>()
    };
    let dms = move || {
        let me = chat.name.get();
        chat.sidebar
            .get()
            .into_iter()
            .filter(|r| dm_peer(r, me.as_deref()).is_some())
            .collect::<Vec<_>>()
    };
    view! {
        <nav
            id="sidebar"
            class="sidebar"
            aria-label=layout.tr(K::Rooms)
        >
            <div class="sidebar-head">
                <a class="brand" href="/">
                    <svg class="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
                        <path d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16A2.5 2.5 0 0 1 4 13.5z" fill="currentColor"/>
                    </svg>
                    "Causerie"
                </a>
                <button
                    class="icon-btn close-btn"
                    aria-label=layout.tr(K::Close)
                    on:click=move |_| layout.menu_open.set(false)
                >
                    "×"
                </button>
            </div>
            <div class="sidebar-scroll">
                <h2 class="section-title" id="rooms-title">{layout.tr(K::Rooms)}</h2>
                <ul class="room-list" aria-labelledby="rooms-title">
                    <For each=public key=|r| r.clone() let:room>
                        <RoomItem room/>
                    </For>
                </ul>
                <JoinRoom/>
                <NewRoomButtons/>
                <h2 class="section-title" id="dms-title">{layout.tr(K::DirectMessages)}</h2>
                <Show
                    when=move || !dms().is_empty()
                    fallback=move || view! { <p class="sidebar-note">{layout.tr(K::NoDirectMessages)}</p> }
                >
                    <ul class="room-list dm-list" aria-labelledby="dms-title">
                        <For each=dms key=|r| r.clone() let:room>
                            <RoomItem room/>
                        </For>
                    </ul>
                </Show>
            </div>
            <div class="sidebar-foot">
                <Show when=move || chat.name.get().is_some()>
                    <p class="me">
                        <span class="avatar small" aria-hidden="true" style=move || format!("--hue:{}", super::avatar::hue(&chat.name.get().unwrap_or_default()))>
                            {move || super::avatar::initial(&chat.name.get().unwrap_or_default())}
                        </span>
                        <span>{move || layout.lang.get().f(K::YouAre, &[("name", &chat.name.get().unwrap_or_default())])}</span>
                    </p>
                </Show>
                <LanguageSwitch/>
            </div>
        </nav>
    }
}

/// One room or DM: a link with its counts, and a button to leave it.
#[component]
fn RoomItem(room: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let navigate = use_navigate();
    // Plain strings, not stored values: the row's closures may run once
    // more while the row is being removed.
    let href = room_href(&room);
    let r = chat.room(&room);
    let name = room.clone();
    let is_current = move || chat.current.with(|c| *c == name);
    let unread = {
        let is_current = is_current.clone();
        std::sync::Arc::new(move || {
            if is_current() && chat.visible.get() {
                0
            } else {
                r.unread(chat.name.get().as_deref())
            }
        })
    };
    let (u1, u2, u3) = (unread.clone(), unread.clone(), unread.clone());
    let mentions = {
        let is_current = is_current.clone();
        move || {
            if is_current() && chat.visible.get() {
                0
            } else {
                r.unread_mentions(chat.name.get().as_deref())
            }
        }
    };
    let name = room.clone();
    let label = move || {
        let me = chat.name.get();
        dm_peer(&name, me.as_deref()).unwrap_or_else(|| name.clone())
    };
    let icon = room_icon(&room, layout);
    // A private room is left from its members panel: taking it off the
    // list alone would not take the person out of it.
    let unlistable = !is_private(&room);
    let name = room.clone();
    let leave = move |_| {
        chat.remove_from_sidebar(&name);
        if chat.current.get_untracked() == name {
            let next = chat
                .sidebar
                .get_untracked()
                .first()
                .cloned()
                .unwrap_or_else(|| DEFAULT_ROOM.to_string());
            navigate(&room_href(&next), Default::default());
        }
        chat.sync_joins();
    };
    let name = room.clone();
    let leave_label = move || {
        let me = chat.name.get();
        let shown = room_label(&name, me.as_deref());
        layout.lang.get().f(K::LeaveRoom, &[("room", &shown)])
    };
    let current_class = is_current.clone();
    let leave_title = leave_label.clone();
    view! {
        <li
            class="room-item"
            class:current=current_class
            class=("has-unread", move || unread() > 0)
            data-room=room.clone()
        >
            <a
                href=href
                aria-current=move || is_current().then_some("page")
                on:click=move |_| layout.menu_open.set(false)
            >
                {icon}
                <span class="room-name">{label}</span>
                <Show when=move || r.online_count.get().is_some_and(|n| n > 0)>
                    <span class="room-online" aria-hidden="true">
                        {move || r.online_count.get().unwrap_or(0)}
                    </span>
                    <span class="visually-hidden">
                        {move || {
                            let n = r.online_count.get().unwrap_or(0).to_string();
                            format!(", {}", layout.lang.get().f(K::NOnline, &[("n", &n)]))
                        }}
                    </span>
                </Show>
                <Show when=move || { u1() > 0 }>
                    <span class="badge" aria-hidden="true">
                        {
                            let u2 = u2.clone();
                            move || {
                                let n = u2();
                                if n > 99 { "99+".to_string() } else { n.to_string() }
                            }
                        }
                    </span>
                    <span class="visually-hidden">
                        {
                            let u3 = u3.clone();
                            move || {
                                format!(", {}", layout.lang.get().plural(u3(), K::UnreadOne, K::UnreadMany))
                            }
                        }
                    </span>
                </Show>
                <MentionBadge count=Signal::derive(mentions)/>
            </a>
            <Show when=move || unlistable>
                <button class="leave" title=leave_title.clone() aria-label=leave_label.clone() on:click=leave.clone()>
                    <span aria-hidden="true">"×"</span>
                </button>
            </Show>
        </li>
    }
}

/// Unread mentions of the person, apart from the unread count: `@2`.
#[component]
fn MentionBadge(#[prop(into)] count: Signal<usize>) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let count = move || count.get();
    view! {
        <Show when=move || { count() > 0 }>
            <span class="badge mention-badge" aria-hidden="true" data-testid="mention-badge">
                {move || format!("@{}", count().min(99))}
            </span>
            <span class="visually-hidden">
                {move || format!(", {}", layout.lang.get().plural(count(), K::MentionsOne, K::MentionsMany))}
            </span>
        </Show>
    }
}

/// `#` for a public room, a lock for a private one (its accessible name
/// says "private"), `@` for a two-person conversation, two heads for a group.
fn room_icon(room: &str, layout: Layout) -> AnyView {
    if is_private(room) {
        return view! {
            <span class="room-icon">
                <svg class="icon lock" viewBox="0 0 24 24" width="14" height="14" role="img" aria-label=layout.tr(K::PrivateMark)>
                    <rect x="5" y="10.5" width="14" height="10" rx="2" fill="currentColor"/>
                    <path d="M8 10.5V8a4 4 0 0 1 8 0v2.5" fill="none" stroke="currentColor" stroke-width="2.2"/>
                </svg>
            </span>
        }
        .into_any();
    }
    let group = matches!(crate::protocol::parse_room(room), Ok(crate::protocol::RoomKind::Direct(n)) if n.len() > 2);
    let glyph = if group {
        "@@"
    } else if is_dm(room) {
        "@"
    } else {
        "#"
    };
    view! { <span class="room-icon" class:group=group aria-hidden="true">{glyph}</span> }.into_any()
}

/// Opens the dialogs for a new private room or group conversation; for
/// signed-in accounts (a guest's name is not theirs to keep).
#[component]
fn NewRoomButtons() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let dialogs = expect_context::<Dialogs>();
    view! {
        <Show when=move || chat.signed_in.get()>
            <div class="new-room-buttons">
                <button
                    class="new-room"
                    aria-haspopup="dialog"
                    aria-controls="new-private-room"
                    on:click=move |_| dialogs.private_room.set(true)
                >
                    <span aria-hidden="true">"+ "</span>
                    {layout.tr(K::NewPrivateRoom)}
                </button>
                <button
                    class="new-room"
                    aria-haspopup="dialog"
                    aria-controls="new-conversation"
                    on:click=move |_| dialogs.conversation.set(true)
                >
                    <span aria-hidden="true">"+ "</span>
                    {layout.tr(K::NewConversation)}
                </button>
            </div>
        </Show>
    }
}

/// Join or create a room by name.
#[component]
fn JoinRoom() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let navigate = use_navigate();
    let value = RwSignal::new(String::new());
    let invalid = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match normalize_room(&value.get_untracked()) {
            Some(name) => {
                invalid.set(false);
                value.set(String::new());
                chat.add_to_sidebar(&name);
                layout.menu_open.set(false);
                navigate(&room_href(&name), Default::default());
            }
            None => invalid.set(true),
        }
    };
    let suggestions = move || {
        let listed = chat.sidebar.get();
        chat.known
            .get()
            .into_iter()
            .filter(|r| !listed.contains(r))
            .take(50)
            .collect::<Vec<_>>()
    };
    view! {
        <form class="join-room" on:submit=submit>
            <label for="join-room-input" class="join-label">{layout.tr(K::JoinRoomLabel)}</label>
            <div class="row">
                <span class="join-hash" aria-hidden="true">"#"</span>
                <input
                    id="join-room-input"
                    list="known-rooms"
                    autocomplete="off"
                    autocapitalize="none"
                    spellcheck="false"
                    maxlength="64"
                    placeholder=layout.tr(K::JoinRoomPlaceholder)
                    aria-invalid=move || invalid.get().to_string()
                    aria-describedby="join-room-error"
                    prop:value=move || value.get()
                    on:input=move |ev| {
                        value.set(event_target_value(&ev));
                        invalid.set(false);
                    }
                />
                <button type="submit">{layout.tr(K::JoinRoomButton)}</button>
            </div>
            <datalist id="known-rooms">
                <For each=suggestions key=|r| r.clone() let:r>
                    <option value=r></option>
                </For>
            </datalist>
            <p id="join-room-error" class="hint error" role="alert">
                {move || invalid.get().then(|| layout.t(K::RoomNameInvalid))}
            </p>
        </form>
    }
}

/// English / Français; the choice is kept in a cookie for the server's render.
#[component]
fn LanguageSwitch() -> impl IntoView {
    let layout = expect_context::<Layout>();
    let on_change = move |ev: leptos::ev::Event| {
        let code = event_target_value(&ev);
        if let Some(lang) = Lang::from_tag(&code) {
            i18n::choose(lang);
            layout.lang.set(lang);
        }
    };
    view! {
        <label class="lang">
            <span class="lang-label">{layout.tr(K::Language)}</span>
            <select on:change=on_change prop:value=move || layout.lang.get().code()>
                {Lang::ALL
                    .into_iter()
                    .map(|l| {
                        view! {
                            <option value=l.code() lang=l.code() selected=move || layout.lang.get() == l>
                                {l.endonym()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_room;

    #[test]
    fn room_names_from_people() {
        assert_eq!(normalize_room("Rust Talk"), Some("rust-talk".into()));
        assert_eq!(normalize_room(" #random "), Some("random".into()));
        assert_eq!(normalize_room("café"), None);
        assert_eq!(normalize_room(""), None);
        assert_eq!(normalize_room("dm:alice:bob"), None);
        assert_eq!(normalize_room(&"x".repeat(65)), None);
    }
}
