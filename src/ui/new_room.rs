//! The two dialogs that open a new room for a signed-in account: a private
//! room (`~name`, a topic, its first members) and a group conversation
//! (`dm:` with 2 to 7 others). Native `<dialog>`s: modal, Escape closes
//! them, focus starts in their first field and comes back where it was.

use super::i18n::K;
use super::layout::Layout;
use super::rooms::room_href;
use super::state::Chat;
use crate::protocol::{ErrorCode, MAX_ROOM_CHARS, clean_topic, group_room, parse_room};
use crate::protocol::{RoomKind, validate_name};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// Most people a group conversation adds to oneself (a `dm:` room names 8).
pub const MAX_GROUP_OTHERS: usize = 7;

/// Which dialog is open; given to the page as context.
#[derive(Clone, Copy)]
pub struct Dialogs {
    pub private_room: RwSignal<bool>,
    pub conversation: RwSignal<bool>,
}

impl Dialogs {
    /// Both closed.
    pub fn new() -> Self {
        Dialogs {
            private_room: RwSignal::new(false),
            conversation: RwSignal::new(false),
        }
    }
}

impl Default for Dialogs {
    fn default() -> Self {
        Self::new()
    }
}

/// What a person typed as a private room's name, made into one if it can
/// be: `Design Team` → `~design-team`; `~ops` → `~ops`; `café` → refused.
pub fn private_room_name(input: &str) -> Option<String> {
    let name: String = input
        .trim()
        .trim_start_matches('~')
        .trim_start_matches('#')
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    let room = format!("~{name}");
    (name.len() <= MAX_ROOM_CHARS && matches!(parse_room(&room), Ok(RoomKind::Private)))
        .then_some(room)
}

/// Names typed in one box, separated by commas or spaces (an `@` before a
/// name is allowed), without repeats and without `me`; the first invalid
/// one is the error.
pub fn parse_names(input: &str, me: Option<&str>) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for raw in input.split(|c: char| c == ',' || c.is_whitespace()) {
        let n = raw.trim().trim_start_matches('@');
        if n.is_empty() {
            continue;
        }
        if validate_name(n).is_err() {
            return Err(n.to_string());
        }
        if Some(n) != me && !names.iter().any(|m| m == n) {
            names.push(n.to_string());
        }
    }
    Ok(names)
}

/// Why the server refused what a dialog or a room's panel asked.
pub fn refusal_key(code: ErrorCode) -> Option<K> {
    Some(match code {
        ErrorCode::BadName => K::RoomTaken,
        ErrorCode::NotFound => K::NoSuchAccount,
        ErrorCode::Forbidden => K::NotAllowed,
        ErrorCode::BadRequest => K::CannotAdd,
        ErrorCode::Unavailable => K::NotConnected,
        _ => return None,
    })
}

/// A modal dialog shown while `open` is set.
#[component]
fn Modal(open: RwSignal<bool>, id: &'static str, title: K, children: Children) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let el = NodeRef::<leptos::html::Dialog>::new();
    Effect::new(move |_| {
        let want = open.get();
        if let Some(d) = el.get() {
            if want && !d.open() {
                let _ = d.show_modal();
            } else if !want && d.open() {
                d.close();
            }
        }
    });
    let title_id = format!("{id}-title");
    let labelled_by = title_id.clone();
    view! {
        <dialog
            id=id
            class="modal"
            node_ref=el
            aria-labelledby=labelled_by
            on:close=move |_| open.set(false)
        >
            <h2 class="modal-title" id=title_id>{layout.tr(title)}</h2>
            {children()}
        </dialog>
    }
}

/// The dialogs, once per page; the sidebar's buttons open them.
#[component]
pub fn NewRoomDialogs() -> impl IntoView {
    view! {
        <NewPrivateRoom/>
        <NewConversation/>
    }
}

/// Name, topic and members; `create`, then the room opens.
#[component]
fn NewPrivateRoom() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let dialogs = expect_context::<Dialogs>();
    let navigate = use_navigate();
    let open = dialogs.private_room;
    let name = RwSignal::new(String::new());
    let topic = RwSignal::new(String::new());
    let members = RwSignal::new(String::new());
    // A problem found before sending: (key, the name it is about).
    let local = RwSignal::new(None::<(K, String)>);
    let error = move || {
        let lang = layout.lang.get();
        if let Some((k, n)) = local.get() {
            return Some(lang.f(k, &[("name", &n)]));
        }
        let code = chat.creating.get().and_then(|c| c.error)?;
        Some(match refusal_key(code) {
            Some(k) => lang.t(k).to_string(),
            None => lang.error(code).to_string(),
        })
    };
    let busy = move || {
        chat.creating
            .get()
            .is_some_and(|c| c.error.is_none() && !c.done)
    };
    // Answered: open the new room.
    Effect::new(move |_| {
        if let Some(c) = chat.creating.get()
            && c.done
            && open.get_untracked()
        {
            open.set(false);
            chat.end_create();
            name.set(String::new());
            topic.set(String::new());
            members.set(String::new());
            chat.add_to_sidebar(&c.room);
            layout.menu_open.set(false);
            navigate(&room_href(&c.room), Default::default());
        }
    });
    Effect::new(move |_| {
        if !open.get() {
            local.set(None);
            untrack(|| chat.end_create());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(room) = private_room_name(&name.get_untracked()) else {
            local.set(Some((K::RoomNameInvalid, String::new())));
            return;
        };
        let t = topic.get_untracked();
        let Ok(t) = clean_topic(&t) else {
            local.set(Some((K::TopicInvalid, String::new())));
            return;
        };
        let me = chat.name.get_untracked();
        let people = match parse_names(&members.get_untracked(), me.as_deref()) {
            Ok(p) => p,
            Err(bad) => {
                local.set(Some((K::BadMemberName, bad)));
                return;
            }
        };
        local.set(None);
        chat.create_room(&room, people, t);
    };
    let field_error = move || error().is_some().to_string();
    view! {
        <Modal open id="new-private-room" title=K::NewPrivateRoom>
            <form class="modal-form" on:submit=submit>
                <label for="private-room-name">{layout.tr(K::NameLabel)}</label>
                <div class="prefixed">
                    <span aria-hidden="true">"~"</span>
                    <input
                        id="private-room-name"
                        autofocus
                        required
                        autocomplete="off"
                        autocapitalize="none"
                        spellcheck="false"
                        maxlength="64"
                        aria-describedby="private-room-hint private-room-error"
                        aria-invalid=field_error
                        prop:value=move || name.get()
                        on:input=move |ev| {
                            name.set(event_target_value(&ev));
                            local.set(None);
                        }
                    />
                </div>
                <p id="private-room-hint" class="field-hint">{layout.tr(K::PrivateNameHint)}</p>
                <label for="private-room-topic">{layout.tr(K::TopicLabel)}</label>
                <input
                    id="private-room-topic"
                    autocomplete="off"
                    maxlength="200"
                    prop:value=move || topic.get()
                    on:input=move |ev| topic.set(event_target_value(&ev))
                />
                <label for="private-room-members">{layout.tr(K::MembersLabel)}</label>
                <input
                    id="private-room-members"
                    list="people-names"
                    autocomplete="off"
                    autocapitalize="none"
                    spellcheck="false"
                    placeholder=layout.tr(K::NamesPlaceholder)
                    aria-describedby="private-room-members-hint"
                    prop:value=move || members.get()
                    on:input=move |ev| {
                        members.set(event_target_value(&ev));
                        local.set(None);
                    }
                />
                <p id="private-room-members-hint" class="field-hint">{layout.tr(K::NamesHint)}</p>
                <p id="private-room-error" class="hint error" role="alert">{error}</p>
                <div class="modal-actions">
                    <button type="button" class="secondary" on:click=move |_| open.set(false)>
                        {layout.tr(K::Cancel)}
                    </button>
                    <button type="submit" class="primary" disabled=busy>
                        {move || layout.t(if busy() { K::Working } else { K::Create })}
                    </button>
                </div>
            </form>
        </Modal>
    }
}

/// 2 to 7 people besides oneself; opens their `dm:` room.
#[component]
fn NewConversation() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let dialogs = expect_context::<Dialogs>();
    let navigate = use_navigate();
    let open = dialogs.conversation;
    let people = RwSignal::new(String::new());
    let local = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if !open.get() {
            local.set(None);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let lang = layout.lang.get_untracked();
        let Some(me) = chat.name.get_untracked() else {
            return;
        };
        let names = match parse_names(&people.get_untracked(), Some(&me)) {
            Ok(n) => n,
            Err(bad) => {
                local.set(Some(lang.f(K::BadMemberName, &[("name", &bad)])));
                return;
            }
        };
        if !(2..=MAX_GROUP_OTHERS).contains(&names.len()) {
            let n = names.len().to_string();
            local.set(Some(lang.f(K::GroupCount, &[("n", &n)])));
            return;
        }
        let Some(room) = group_room(names.iter().map(String::as_str).chain([me.as_str()])) else {
            local.set(Some(lang.t(K::GroupHint).to_string()));
            return;
        };
        local.set(None);
        people.set(String::new());
        open.set(false);
        chat.add_to_sidebar(&room);
        layout.menu_open.set(false);
        navigate(&room_href(&room), Default::default());
    };
    view! {
        <Modal open id="new-conversation" title=K::NewConversation>
            <form class="modal-form" on:submit=submit>
                <label for="conversation-people">{layout.tr(K::PeopleLabel)}</label>
                <input
                    id="conversation-people"
                    autofocus
                    required
                    list="people-names"
                    autocomplete="off"
                    autocapitalize="none"
                    spellcheck="false"
                    placeholder=layout.tr(K::NamesPlaceholder)
                    aria-describedby="conversation-hint conversation-error"
                    aria-invalid=move || local.get().is_some().to_string()
                    prop:value=move || people.get()
                    on:input=move |ev| {
                        people.set(event_target_value(&ev));
                        local.set(None);
                    }
                />
                <p id="conversation-hint" class="field-hint">{layout.tr(K::GroupHint)}</p>
                <p id="conversation-error" class="hint error" role="alert">{move || local.get()}</p>
                <div class="modal-actions">
                    <button type="button" class="secondary" on:click=move |_| open.set(false)>
                        {layout.tr(K::Cancel)}
                    </button>
                    <button type="submit" class="primary">{layout.tr(K::Open)}</button>
                </div>
            </form>
        </Modal>
    }
}

/// Names to suggest in the dialogs: who this page has seen online or in
/// a room.
#[component]
pub fn PeopleNames() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let names = move || {
        let here = chat.here();
        let me = chat.name.get();
        let mut all: Vec<String> = here.online.get();
        all.extend(here.members.get());
        all.sort();
        all.dedup();
        all.retain(|n| Some(n) != me.as_ref());
        all
    };
    view! {
        <datalist id="people-names">
            <For each=names key=|n| n.clone() let:n>
                <option value=n></option>
            </For>
        </datalist>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_room_names_from_people() {
        assert_eq!(
            private_room_name("Design Team"),
            Some("~design-team".into())
        );
        assert_eq!(private_room_name(" ~ops "), Some("~ops".into()));
        assert_eq!(private_room_name("#ops"), Some("~ops".into()));
        assert_eq!(private_room_name("café"), None);
        assert_eq!(private_room_name(""), None);
        assert_eq!(private_room_name("~"), None);
        assert_eq!(private_room_name(&"x".repeat(65)), None);
        assert_eq!(
            private_room_name(&"x".repeat(64)).map(|r| r.len()),
            Some(65)
        );
    }

    #[test]
    fn names_from_one_box() {
        assert_eq!(
            parse_names("bob, @carol  dan,bob, alice", Some("alice")),
            Ok(vec!["bob".into(), "carol".into(), "dan".into()])
        );
        assert_eq!(parse_names(" , ", None), Ok(vec![]));
        assert_eq!(parse_names("bob, <x>", None), Err("<x>".into()));
    }

    #[test]
    fn refusals_have_words() {
        assert_eq!(refusal_key(ErrorCode::BadName), Some(K::RoomTaken));
        assert_eq!(refusal_key(ErrorCode::NotFound), Some(K::NoSuchAccount));
        assert_eq!(refusal_key(ErrorCode::RateLimited), None);
    }
}
