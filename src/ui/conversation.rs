//! A message's conversation parts (version 1.1): its action bar (react,
//! reply, edit, delete), the quote of the message it answers, its
//! reactions and their picker, the edit box that takes the body's place,
//! and the preview of the message the composer answers.
//!
//! Which picker, confirmation or tapped row is open is page state, not
//! chat state: [`ConvUi`], given by the message list.

use super::chat_state::Line;
use super::file_info::body_or_files;
use super::i18n::K;
use super::layout::Layout;
use super::state::{Chat, Room};
use leptos::html;
use leptos::prelude::*;

/// The emoji the picker offers first.
pub const QUICK_EMOJI: [&str; 8] = ["👍", "❤️", "😂", "🎉", "👀", "🙏", "✅", "😮"];
/// How long a message jumped to stays highlighted, in ms.
const FLASH_MS: u64 = 2000;

/// What is open in the message list; one of each at a time.
#[derive(Clone, Copy)]
pub struct ConvUi {
    /// The message whose reaction picker is open.
    pub picker: RwSignal<Option<i64>>,
    /// The message whose deletion waits for a confirmation.
    pub confirm: RwSignal<Option<i64>>,
    /// The message whose actions a tap opened (touch screens have no hover).
    pub active: RwSignal<Option<i64>>,
    /// The message briefly highlighted after a jump to it.
    pub flash: RwSignal<Option<i64>>,
}

impl ConvUi {
    pub fn new() -> Self {
        ConvUi {
            picker: RwSignal::new(None),
            confirm: RwSignal::new(None),
            active: RwSignal::new(None),
            flash: RwSignal::new(None),
        }
    }

    /// Highlights a message for a moment.
    pub fn flash(&self, id: i64) {
        let flash = self.flash;
        flash.set(Some(id));
        set_timeout(
            move || {
                if flash.try_get_untracked() == Some(Some(id)) {
                    flash.set(None);
                }
            },
            std::time::Duration::from_millis(FLASH_MS),
        );
    }
}

impl Default for ConvUi {
    fn default() -> Self {
        Self::new()
    }
}

/// The start of a body on one line, for quotes.
pub fn snippet(body: &str) -> String {
    let one: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 90 {
        one.chars().take(90).collect::<String>() + "…"
    } else {
        one
    }
}

/// Focuses the element of that id, if the page has one.
pub fn focus_id(id: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(id))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

/// Above a reply's body: who and what it answers; a click brings the
/// original into view.
#[component]
pub fn ReplyQuote(room: Room, id: i64) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let original = Memo::new(move |_| room.line(id));
    let label = move || {
        let name = original.with(|o| o.as_ref().map(|l| l.author.clone()).unwrap_or_default());
        layout.lang.get().f(K::ShowOriginal, &[("name", &name)])
    };
    view! {
        <button
            class="quote"
            class:quote-gone=move || original.with(|o| o.as_ref().is_some_and(|l| l.deleted))
            aria-label=label
            on:click=move |_| chat.seek(room, id)
        >
            {move || match original.get() {
                Some(l) if l.deleted => view! {
                    <span class="quote-text">{layout.t(K::OriginalDeleted)}</span>
                }
                .into_any(),
                Some(l) => view! {
                    <span class="quote-author" style=format!("--hue:{}", super::avatar::hue(&l.author))>
                        {l.author.clone()}
                    </span>
                    <span class="quote-text">{snippet(&body_or_files(&l.body, &l.attachments))}</span>
                }
                .into_any(),
                None => view! {
                    <span class="quote-text">{layout.t(K::OriginalEarlier)}</span>
                }
                .into_any(),
            }}
        </button>
    }
}

/// Under a message: its reactions, each a button that adds or takes back
/// the person's own.
#[component]
pub fn Reactions(room: Room, id: i64) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let ui = expect_context::<ConvUi>();
    let reactions = Memo::new(move |_| {
        room.line(id)
            .filter(|l| !l.deleted)
            .map(|l| l.reactions.into_iter().collect::<Vec<_>>())
            .unwrap_or_default()
    });
    view! {
        <Show when=move || reactions.with(|r| !r.is_empty())>
            <div class="reactions" role="group" aria-label=layout.tr(K::ReactionsOf)>
                <For
                    each=move || reactions.get()
                    key=|(emoji, who)| format!("{emoji}|{}", who.join(","))
                    children=move |(emoji, who)| {
                        let me = chat.name.get_untracked();
                        let mine = me.as_ref().is_some_and(|m| who.contains(m));
                        let you = layout.t(K::You);
                        let names = who
                            .iter()
                            .map(|n| if Some(n) == me.as_ref() { you.to_string() } else { n.clone() })
                            .collect::<Vec<_>>()
                            .join(", ");
                        let label = layout.lang.get_untracked().f(K::ReactionLabel, &[("emoji", &emoji), ("names", &names)]);
                        let e = emoji.clone();
                        view! {
                            <button
                                class="reaction"
                                class:mine=mine
                                aria-pressed=mine.to_string()
                                title=label.clone()
                                aria-label=label
                                on:click=move |_| chat.toggle_reaction(room, id, &e)
                            >
                                <span class="reaction-emoji" aria-hidden="true">{emoji.clone()}</span>
                                <span class="reaction-count" aria-hidden="true">{who.len()}</span>
                            </button>
                        }
                    }
                />
                <button
                    class="reaction add-reaction"
                    aria-label=layout.tr(K::AddReaction)
                    title=layout.tr(K::AddReaction)
                    on:click=move |_| ui.picker.update(|p| *p = if *p == Some(id) { None } else { Some(id) })
                >
                    <SmileIcon/>
                    <span aria-hidden="true">"+"</span>
                </button>
            </div>
        </Show>
    }
}

/// The emoji to react with: a few common ones, and a field for any other.
#[component]
pub fn ReactionPicker(room: Room, id: i64) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let ui = expect_context::<ConvUi>();
    let other = RwSignal::new(String::new());
    let first = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        if let Some(b) = first.get() {
            let _ = b.focus();
        }
    });
    let close = move || {
        ui.picker.set(None);
        focus_id(&format!("react-{id}"));
    };
    let choose = move |emoji: &str| {
        chat.toggle_reaction(room, id, emoji);
        close();
    };
    let buttons = QUICK_EMOJI
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let node = if i == 0 { first } else { NodeRef::new() };
            view! {
                <button type="button" class="pick" node_ref=node aria-label=*e title=*e on:click=move |_| choose(e)>
                    {*e}
                </button>
            }
        })
        .collect_view();
    view! {
        <div
            class="picker"
            role="group"
            aria-label=layout.tr(K::AddReaction)
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" {
                    ev.prevent_default();
                    ev.stop_propagation();
                    close();
                }
            }
        >
            <div class="picks">{buttons}</div>
            <form
                class="picker-other"
                on:submit=move |ev| {
                    ev.prevent_default();
                    let e = other.get_untracked();
                    if !e.trim().is_empty() {
                        choose(&e);
                    }
                }
            >
                <input
                    type="text"
                    maxlength="16"
                    placeholder="🙂"
                    aria-label=layout.tr(K::OtherEmoji)
                    prop:value=move || other.get()
                    on:input=move |ev| other.set(event_target_value(&ev))
                />
                <button type="submit" class="pick-add">{layout.tr(K::Add)}</button>
            </form>
        </div>
    }
}

/// The buttons over a message on hover, keyboard focus or a tap.
#[component]
pub fn MessageActions(room: Room, line: Line) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let ui = expect_context::<ConvUi>();
    let Some(id) = line.id else {
        return ().into_any();
    };
    if line.deleted {
        return ().into_any();
    }
    let author = line.author.clone();
    let l2 = line.clone();
    let may_edit = move || chat.may_edit(&line);
    let may_delete = move || chat.may_delete(&l2);
    let react_label = move || layout.t(K::React);
    view! {
        <div class="msg-actions" role="toolbar" aria-label=layout.tr(K::MessageActions) data-author=author>
            <button
                id=format!("react-{id}")
                class="act"
                aria-label=react_label
                title=react_label
                aria-expanded=move || (ui.picker.get() == Some(id)).to_string()
                on:click=move |_| ui.picker.update(|p| *p = if *p == Some(id) { None } else { Some(id) })
            >
                <SmileIcon/>
            </button>
            <button
                class="act"
                aria-label=layout.tr(K::Reply)
                title=layout.tr(K::Reply)
                on:click=move |_| {
                    chat.set_reply(room, Some(id));
                    focus_id("message");
                }
            >
                <svg class="icon" viewBox="0 0 24 24" width="17" height="17" aria-hidden="true">
                    <path d="M10 8V4L3 11l7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z" fill="currentColor"/>
                </svg>
            </button>
            <Show when=may_edit.clone()>
                <button
                    class="act"
                    aria-label=layout.tr(K::Edit)
                    title=layout.tr(K::Edit)
                    on:click=move |_| chat.start_edit(room, id)
                >
                    <svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
                        <path d="M4 20h4L19 9l-4-4L4 16zM14 6l4 4" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/>
                    </svg>
                </button>
            </Show>
            <Show when=may_delete.clone()>
                <button
                    class="act act-danger"
                    aria-label=layout.tr(K::Delete)
                    title=layout.tr(K::Delete)
                    on:click=move |_| ui.confirm.set(Some(id))
                >
                    <svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
                        <path d="M5 7h14M10 7V4h4v3M7 7l1 13h8l1-13" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>
                    </svg>
                </button>
            </Show>
        </div>
    }
    .into_any()
}

/// "Delete this message?" under it, until confirmed or cancelled.
#[component]
pub fn ConfirmDelete(room: Room, id: i64) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let ui = expect_context::<ConvUi>();
    let yes = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        if let Some(b) = yes.get() {
            let _ = b.focus();
        }
    });
    let cancel = move || {
        ui.confirm.set(None);
        focus_id("message");
    };
    view! {
        <div
            class="confirm"
            role="alertdialog"
            aria-label=layout.tr(K::ConfirmDelete)
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" {
                    ev.prevent_default();
                    cancel();
                }
            }
        >
            <span>{layout.tr(K::ConfirmDelete)}</span>
            <button
                class="danger"
                node_ref=yes
                on:click=move |_| {
                    chat.delete(room, id);
                    ui.confirm.set(None);
                    focus_id("message");
                }
            >
                {layout.tr(K::Delete)}
            </button>
            <button class="link" on:click=move |_| cancel()>{layout.tr(K::Cancel)}</button>
        </div>
    }
}

/// The body made editable in place: Enter saves, Shift+Enter adds a line,
/// Escape cancels.
#[component]
pub fn EditBox(room: Room, body: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let text = RwSignal::new(body);
    let area = NodeRef::<html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = area.get() {
            let _ = el.focus();
            let end = text.with_untracked(|t| t.encode_utf16().count()) as u32;
            let _ = el.set_selection_range(end, end);
        }
    });
    let save = move || {
        chat.save_edit(room, &text.get_untracked());
        if room.editing.get_untracked().is_none() {
            focus_id("message");
        }
    };
    let cancel = move || {
        chat.cancel_edit(room);
        focus_id("message");
    };
    view! {
        <div class="edit-box">
            <textarea
                node_ref=area
                class="edit-area"
                aria-label=layout.tr(K::EditLabel)
                rows="2"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
                    "Enter" if !ev.shift_key() && !ev.is_composing() => {
                        ev.prevent_default();
                        save();
                    }
                    "Escape" => {
                        ev.prevent_default();
                        cancel();
                    }
                    _ => {}
                }
            ></textarea>
            <div class="edit-foot">
                <span class="edit-hint">{layout.tr(K::EditHint)}</span>
                <button class="link" on:click=move |_| cancel()>{layout.tr(K::Cancel)}</button>
                <button class="small-btn" on:click=move |_| save()>{layout.tr(K::Save)}</button>
            </div>
        </div>
    }
}

/// Above the composer: the message it answers, and × to answer none.
#[component]
pub fn ReplyPreview() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let target = move || {
        let room = chat.here();
        room.reply_to.get().and_then(|id| room.line(id))
    };
    move || {
        target().map(|l| {
            let room = chat.here_untracked();
            let who = layout.lang.get().f(K::ReplyingTo, &[("name", &l.author)]);
            view! {
                <div class="reply-preview" data-testid="reply-preview">
                    <div class="reply-preview-body">
                        <span class="reply-preview-who">{who}</span>
                        <span class="quote-text">{snippet(&body_or_files(&l.body, &l.attachments))}</span>
                    </div>
                    <button
                        class="icon-btn reply-cancel"
                        aria-label=layout.tr(K::CancelReply)
                        title=layout.tr(K::CancelReply)
                        on:click=move |_| {
                            chat.set_reply(room, None);
                            focus_id("message");
                        }
                    >
                        "×"
                    </button>
                </div>
            }
        })
    }
}

/// Why the last edit, deletion or reaction was refused.
#[component]
pub fn RefusedNotice() -> impl IntoView {
    use super::chat_state::Change;
    use crate::protocol::ErrorCode;
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let text = move || {
        let (kind, code) = chat.refused.get()?;
        let lang = layout.lang.get();
        let what = lang.t(match kind {
            Change::React => K::RefusedReact,
            Change::Edit => K::RefusedEdit,
            Change::Delete => K::RefusedDelete,
        });
        let why = match code {
            ErrorCode::Forbidden => lang.t(K::ChangeForbidden),
            ErrorCode::NotFound => lang.t(K::ChangeNotFound),
            ErrorCode::BadRequest => lang.t(K::ChangeBad),
            other => lang.error(other),
        };
        Some(format!("{what} {why}"))
    };
    view! {
        <Show when=move || chat.refused.get().is_some()>
            <p class="notice" role="alert" data-testid="refused">
                <span>{text}</span>
                <button class="link" on:click=move |_| chat.dismiss_refused()>
                    {layout.tr(K::Dismiss)}
                </button>
            </p>
        </Show>
    }
}

#[component]
fn SmileIcon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="17" height="17" aria-hidden="true">
            <circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2"/>
            <path d="M8.5 14.5c.9 1.2 2.1 1.8 3.5 1.8s2.6-.6 3.5-1.8" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>
            <circle cx="9" cy="10" r="1.2" fill="currentColor"/>
            <circle cx="15" cy="10" r="1.2" fill="currentColor"/>
        </svg>
    }
}
