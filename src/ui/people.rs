//! Who is online in the room in view; picking someone opens a direct
//! conversation with them. A private room shows its members instead.

use super::avatar::{hue, initial};
use super::chat_state::Access;
use super::i18n::K;
use super::layout::Layout;
use super::members::MembersPanel;
use super::rooms::room_href;
use super::rooms::{dm_peer, is_private};
use super::state::Chat;
use crate::protocol::{NotifyLevel, dm_room};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// The aside with the online list.
#[component]
pub fn People() -> impl IntoView {
    let layout = expect_context::<Layout>();
    let chat = expect_context::<Chat>();
    // A private room one is in (not one refused, or one taken out of).
    let private = move || {
        let room = chat.here();
        is_private(&room.name())
            && room.removed_by.get().is_none()
            && room.problem.get().is_none()
            && room.access.get() != Access::Refused
    };
    view! {
        <aside id="people" class="people" aria-labelledby="people-title">
            <div class="people-head">
                <h2 class="section-title" id="people-title">
                    {move || layout.t(if private() { K::MembersLabel } else { K::Online })}
                </h2>
                <button
                    class="icon-btn close-btn"
                    aria-label=layout.tr(K::Close)
                    on:click=move |_| layout.people_open.set(false)
                >
                    "×"
                </button>
            </div>
            <Show when=move || chat.signed_in.get()>
                <NotifyChoice/>
            </Show>
            <Show when=move || chat.name.with(Option::is_some)>
                <super::alerts::NotifySettings/>
            </Show>
            <Show when=private fallback=PeopleList>
                <MembersPanel/>
            </Show>
        </aside>
    }
}

/// The account's notification level for the room in view.
#[component]
fn NotifyChoice() -> impl IntoView {
    let layout = expect_context::<Layout>();
    let chat = expect_context::<Chat>();
    let value = move || match chat.level(&chat.current.get()) {
        NotifyLevel::All => "all",
        NotifyLevel::Mentions => "mentions",
        NotifyLevel::None => "none",
    };
    let choose = move |ev: leptos::ev::Event| {
        let level = match event_target_value(&ev).as_str() {
            "all" => NotifyLevel::All,
            "none" => NotifyLevel::None,
            _ => NotifyLevel::Mentions,
        };
        chat.set_level(&chat.current.get_untracked(), level);
    };
    view! {
        <label class="notify-level">
            <span>{layout.tr(K::NotifyLabel)}</span>
            <select id="notify-level" prop:value=value on:change=choose>
                // `selected` too: the page rendered on the server shows the level.
                <option value="all" selected=move || value() == "all">
                    {layout.tr(K::NotifyAll)}
                </option>
                <option value="mentions" selected=move || value() == "mentions">
                    {layout.tr(K::NotifyMentions)}
                </option>
                <option value="none" selected=move || value() == "none">
                    {layout.tr(K::NotifyNone)}
                </option>
            </select>
        </label>
    }
}

#[component]
fn PeopleList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let people = move || chat.here().online.get();
    view! {
        <ul class="people-list">
            <For each=people key=|n| n.clone() let:name>
                <Person name/>
            </For>
        </ul>
    }
}

#[component]
fn Person(name: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let navigate = use_navigate();
    // Plain strings, not stored values: the row's closures may run once
    // more while the row is being removed.
    let style = format!("--hue:{}", hue(&name));
    let avatar = initial(&name);
    let who = name.clone();
    let is_me = move || chat.name.get().as_deref() == Some(who.as_str());
    // A DM button for everyone but me, when I have a name, outside their DM with me.
    let who = name.clone();
    let can_dm = move || {
        let me = chat.name.get();
        me.is_some()
            && me.as_deref() != Some(who.as_str())
            && dm_peer(&chat.current.get(), me.as_deref()).as_deref() != Some(who.as_str())
    };
    let who = name.clone();
    let open_dm = move |_| {
        let Some(me) = chat.name.get_untracked() else {
            return;
        };
        let room = dm_room(&me, &who);
        layout.people_open.set(false);
        navigate(&room_href(&room), Default::default());
    };
    let who = name.clone();
    let label = move || layout.lang.get().f(K::MessageTo, &[("name", &who)]);
    let static_view = {
        let name = name.clone();
        let avatar = avatar.clone();
        move || {
            let is_me = is_me.clone();
            view! {
                <span class="person-static">
                    <span class="avatar small" aria-hidden="true">{avatar.clone()}</span>
                    <span class="person-name">{name.clone()}</span>
                    <Show when=is_me>
                        <span class="you">"(" {layout.tr(K::You)} ")"</span>
                    </Show>
                </span>
            }
        }
    };
    view! {
        <li class="person" style=style>
            <Show when=can_dm fallback=static_view>
                <button class="person-btn" aria-label=label.clone() title=label.clone() on:click=open_dm.clone()>
                    <span class="avatar small" aria-hidden="true">{avatar.clone()}</span>
                    <span class="person-name">{name.clone()}</span>
                    <svg class="icon dm-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
                        <path d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16A2.5 2.5 0 0 1 4 13.5z" fill="none" stroke="currentColor" stroke-width="1.8"/>
                    </svg>
                </button>
            </Show>
            <span class="dot" aria-hidden="true"></span>
        </li>
    }
}
