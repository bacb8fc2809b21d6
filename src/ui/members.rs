//! A room's own settings as its members see them: the topic under the
//! title (and its editor), the members of a private room with Add, Remove
//! and Leave, and the notice of a room one was taken out of.

use super::avatar::{hue, initial};
use super::i18n::K;
use super::layout::Layout;
use super::new_room::{parse_names, refusal_key};
use super::rooms::room_href;
use super::rooms::{DEFAULT_ROOM, room_label};
use super::state::Chat;
use crate::protocol::{ErrorCode, clean_topic};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// Why the room's owner-or-member action was refused, for a person.
fn action_text(layout: Layout, code: ErrorCode) -> String {
    let lang = layout.lang.get();
    let key = match code {
        // A name that cannot be a member, not a taken room name.
        ErrorCode::BadName => Some(K::CannotAdd),
        c => refusal_key(c),
    };
    match key {
        Some(k) => lang.t(k).to_string(),
        None => lang.error(code).to_string(),
    }
}

/// The topic under the room's title, and its editor for signed-in
/// accounts (the server lets the owner or an admin change it).
#[component]
pub fn TopicLine() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let local = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();
    // Another room, or the topic came back: the editor closes.
    Effect::new(move |_| {
        chat.current.track();
        chat.here().topic.track();
        editing.set(false);
    });
    Effect::new(move |_| {
        if editing.get()
            && let Some(i) = input.get()
        {
            let _ = i.focus();
        }
    });
    let can_edit = move || {
        let room = chat.here();
        // Direct rooms: any of their members may set one; others, the
        // owner or an admin.
        let name = room.name();
        chat.signed_in.get()
            && (super::rooms::is_dm(&name) || chat.manages(&name))
            && room.removed_by.get().is_none()
            && room.problem.get().is_none()
            && room.access.get() != super::chat_state::Access::Refused
    };
    let start = move |_| {
        draft.set(
            chat.here_untracked()
                .topic
                .get_untracked()
                .unwrap_or_default(),
        );
        local.set(false);
        editing.set(true);
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = draft.get_untracked();
        match clean_topic(&text) {
            Ok(t) => {
                local.set(false);
                chat.set_topic(&chat.current.get_untracked(), t);
            }
            Err(_) => local.set(true),
        }
    };
    let error = move || {
        if local.get() {
            return Some(layout.t(K::TopicInvalid).to_string());
        }
        chat.here()
            .action_error
            .get()
            .map(|c| action_text(layout, c))
    };
    let edit_label = move || {
        layout.t(if chat.here().topic.get().is_some() {
            K::EditTopic
        } else {
            K::AddTopic
        })
    };
    // Not of a room one cannot see.
    let topic = move || {
        let room = chat.here();
        let open = room.removed_by.get().is_none() && room.problem.get().is_none();
        room.topic.get().filter(|_| open)
    };
    let shown = move || {
        view! {
            <Show when=move || topic().is_some()>
                <p class="room-topic" data-testid="topic">{topic}</p>
            </Show>
            <Show when=can_edit>
                <button
                    class="topic-edit"
                    title=edit_label
                    aria-label=edit_label
                    on:click=start
                >
                    <svg class="icon" viewBox="0 0 24 24" width="14" height="14" aria-hidden="true">
                        <path d="M4 20h4L19 9l-4-4L4 16zM14 6l4 4" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/>
                    </svg>
                </button>
            </Show>
        }
    };
    view! {
        <div class="topic-line">
            <Show when=move || editing.get() fallback=shown>
                <form
                    class="topic-form"
                    on:submit=save
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Escape" {
                            ev.prevent_default();
                            editing.set(false);
                        }
                    }
                >
                    <label for="topic-input" class="visually-hidden">{layout.tr(K::TopicLabel)}</label>
                    <input
                        id="topic-input"
                        node_ref=input
                        maxlength="200"
                        autocomplete="off"
                        aria-describedby="topic-error"
                        prop:value=move || draft.get()
                        on:input=move |ev| {
                            draft.set(event_target_value(&ev));
                            local.set(false);
                        }
                    />
                    <button type="submit" class="small primary">{layout.tr(K::Save)}</button>
                    <button type="button" class="small secondary" on:click=move |_| editing.set(false)>
                        {layout.tr(K::Cancel)}
                    </button>
                    <span id="topic-error" class="topic-error" role="alert">{error}</span>
                </form>
            </Show>
        </div>
    }
}

/// Members of the private room in view: who is online, Remove for each
/// other member, a box to add someone, and Leave.
#[component]
pub fn MembersPanel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let navigate = use_navigate();
    let adding = RwSignal::new(String::new());
    let local = RwSignal::new(None::<String>);
    let everyone = move || {
        let room = chat.here();
        let mut all = room.members.get();
        all.extend(room.online.get());
        all.sort();
        all.dedup();
        all
    };
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let lang = layout.lang.get_untracked();
        match parse_names(&adding.get_untracked(), None) {
            Ok(names) if !names.is_empty() => {
                local.set(None);
                adding.set(String::new());
                let room = chat.current.get_untracked();
                for n in names {
                    chat.invite(&room, &n);
                }
            }
            Ok(_) => {}
            Err(bad) => local.set(Some(lang.f(K::BadMemberName, &[("name", &bad)]))),
        }
    };
    let leave = move |_| {
        let Some(me) = chat.name.get_untracked() else {
            return;
        };
        let room = chat.current.get_untracked();
        chat.remove_member(&room, &me);
        chat.remove_from_sidebar(&room);
        layout.people_open.set(false);
        let next = chat
            .sidebar
            .get_untracked()
            .first()
            .cloned()
            .unwrap_or_else(|| DEFAULT_ROOM.to_string());
        navigate(&room_href(&next), Default::default());
    };
    let error = move || {
        local.get().or_else(|| {
            chat.here()
                .action_error
                .get()
                .map(|c| action_text(layout, c))
        })
    };
    view! {
        <ul class="people-list members-list" aria-labelledby="people-title">
            <For each=everyone key=|n| n.clone() let:name>
                <Member name/>
            </For>
        </ul>
        <Show when=move || chat.signed_in.get()>
            <form class="add-member" on:submit=add>
                <label for="add-member-input">{layout.tr(K::AddSomeone)}</label>
                <div class="row">
                    <input
                        id="add-member-input"
                        list="people-names"
                        autocomplete="off"
                        autocapitalize="none"
                        spellcheck="false"
                        placeholder=layout.tr(K::NamesPlaceholder)
                        aria-describedby="members-error"
                        prop:value=move || adding.get()
                        on:input=move |ev| {
                            adding.set(event_target_value(&ev));
                            local.set(None);
                        }
                    />
                    <button type="submit">{layout.tr(K::Add)}</button>
                </div>
            </form>
        </Show>
        <p id="members-error" class="hint error members-error" role="alert">{error}</p>
        <button class="leave-room" on:click=leave>{layout.tr(K::LeaveThisRoom)}</button>
    }
}

/// One member: online or not, and Remove for anyone but oneself.
#[component]
fn Member(name: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let style = format!("--hue:{}", hue(&name));
    let avatar = initial(&name);
    let who = name.clone();
    let online = move || chat.here().online.with(|o| o.contains(&who));
    let who = name.clone();
    let is_me = move || chat.name.get().as_deref() == Some(who.as_str());
    let who = name.clone();
    // The owner or an admin removes others; anyone leaves (its own button).
    let can_remove = move || {
        chat.name.get().as_deref() != Some(who.as_str()) && chat.manages(&chat.current.get())
    };
    let who = name.clone();
    let label = move || layout.lang.get().f(K::RemoveName, &[("name", &who)]);
    let who = name.clone();
    let remove = move |_| chat.remove_member(&chat.current.get_untracked(), &who);
    let is_me2 = is_me.clone();
    view! {
        <li class="person member" class:offline=move || !online() style=style>
            <span class="person-static">
                <span class="avatar small" aria-hidden="true">{avatar}</span>
                <span class="person-name">{name.clone()}</span>
                <Show when=is_me2.clone()>
                    <span class="you">"(" {layout.tr(K::You)} ")"</span>
                </Show>
            </span>
            <Show when=can_remove.clone()>
                <button class="remove-member" title=label.clone() aria-label=label.clone() on:click=remove.clone()>
                    <span aria-hidden="true">"×"</span>
                </button>
            </Show>
            <Show when=online.clone()>
                <span class="dot" aria-hidden="true"></span>
            </Show>
        </li>
    }
}

/// "You were removed from ~x by y", where the room's messages were.
pub fn removed_notice(layout: Layout, chat: Chat, room: &str, by: &str) -> impl IntoView {
    let shown = room_label(room, chat.name.get().as_deref());
    let lang = layout.lang.get();
    let text = if chat.name.get().as_deref() == Some(by) {
        lang.f(K::YouLeft, &[("room", &shown)])
    } else {
        lang.f(K::RemovedBy, &[("room", &shown), ("by", by)])
    };
    view! {
        <div class="problem removed" role="alert" data-testid="removed">
            <p class="problem-title">{text}</p>
            <p>{lang.t(K::RemovedNote)}</p>
        </div>
    }
}
