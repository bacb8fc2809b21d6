//! The message box: Enter sends, Shift+Enter adds a line, Escape clears,
//! Up in an empty box edits one's last message, `@` lists people to
//! mention (Up/Down, Enter or Tab, Escape); files come with the attach
//! button or a paste (see `uploads`), and go with the message as its
//! caption's attachments.

use super::chat_state::Access;
use super::conversation::ReplyPreview;
use super::i18n::K;
use super::layout::Layout;
use super::mentions::{byte_offset, insert_mention, mention_query, utf16_offset};
use super::rooms::room_label;
use super::state::Chat;
use super::uploads::{Queue, UploadChips, Uploads};
use crate::protocol::{MAX_BODY_CHARS, clean_caption};
use leptos::html;
use leptos::prelude::*;

/// How often a typing notice may go out, in ms.
const TYPING_EVERY: f64 = 3000.0;

/// Writes and sends messages to the room in view.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let uploads = expect_context::<Uploads>();
    let picker = NodeRef::<html::Input>::new();
    let text = RwSignal::new(String::new());
    let area = NodeRef::<html::Textarea>::new();
    let last_typing = StoredValue::new(0.0f64);
    // The `@` being typed (its byte offset), the names offered, the one selected.
    let mention = RwSignal::new(None::<usize>);
    let candidates = RwSignal::new(Vec::<(String, bool)>::new());
    let selected = RwSignal::new(0usize);
    let list_open = move || mention.get().is_some() && candidates.with(|c| !c.is_empty());
    let close_list = move || {
        mention.set(None);
        candidates.set(Vec::new());
    };
    // Reads the `@` under the caret and offers the names that fit.
    let look_for_mention = move || {
        let Some(el) = area.get_untracked() else {
            return;
        };
        let value = el.value();
        let caret = el
            .selection_start()
            .ok()
            .flatten()
            .map_or(value.len(), |c| byte_offset(&value, c as usize));
        match mention_query(&value, caret) {
            Some((at, query)) => {
                let names = chat.mention_candidates(chat.here_untracked(), query);
                if mention.get_untracked() != Some(at) {
                    selected.set(0);
                }
                selected.update(|s| *s = (*s).min(names.len().saturating_sub(1)));
                mention.set(Some(at));
                candidates.set(names);
            }
            None => close_list(),
        }
    };
    let choose = move |i: usize| {
        let (Some(at), Some(name)) = (
            mention.get_untracked(),
            candidates.with_untracked(|c| c.get(i).map(|(n, _)| n.clone())),
        ) else {
            return;
        };
        let Some(el) = area.get_untracked() else {
            return;
        };
        let value = el.value();
        let caret = el
            .selection_start()
            .ok()
            .flatten()
            .map_or(value.len(), |c| byte_offset(&value, c as usize));
        let (new, at_end) = insert_mention(&value, at, caret, &name);
        text.set(new.clone());
        el.set_value(&new);
        let pos = utf16_offset(&new, at_end) as u32;
        let _ = el.set_selection_range(pos, pos);
        let _ = el.focus();
        close_list();
    };

    let submit = move || {
        // Files still uploading: the message waits, and the page says so.
        if uploads.queue.with_untracked(Queue::busy) {
            uploads.waiting.set(true);
            return;
        }
        let raw = text.get_untracked();
        let files = uploads.queue.with_untracked(Queue::ready);
        let Ok(body) = clean_caption(&raw, files.len()) else {
            return;
        };
        chat.send_message(body, files, new_nonce());
        uploads.clear();
        // The message ended the others' typing notice: the next key starts a new one.
        last_typing.set_value(0.0);
        text.set(String::new());
        if let Some(el) = area.get_untracked() {
            el.set_value("");
            let _ = el.focus();
        }
    };

    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if list_open() && !ev.is_composing() {
            let n = candidates.with_untracked(Vec::len);
            match ev.key().as_str() {
                "ArrowDown" => {
                    ev.prevent_default();
                    selected.update(|s| *s = (*s + 1) % n);
                    return;
                }
                "ArrowUp" => {
                    ev.prevent_default();
                    selected.update(|s| *s = (*s + n - 1) % n);
                    return;
                }
                "Enter" | "Tab" if !ev.shift_key() => {
                    ev.prevent_default();
                    choose(selected.get_untracked());
                    return;
                }
                "Escape" => {
                    ev.prevent_default();
                    close_list();
                    return;
                }
                _ => {}
            }
        }
        match ev.key().as_str() {
            "Enter" if !ev.shift_key() && !ev.is_composing() => {
                ev.prevent_default();
                submit();
            }
            "Escape" => {
                text.set(String::new());
                if let Some(el) = area.get_untracked() {
                    el.set_value("");
                }
                chat.set_reply(chat.here_untracked(), None);
            }
            "ArrowUp"
                if text.with_untracked(String::is_empty)
                    && !ev.shift_key()
                    && chat.edit_last(chat.here_untracked()) =>
            {
                ev.prevent_default();
            }
            _ => {}
        }
    };
    let on_input = move |ev: leptos::ev::Event| {
        text.set(event_target_value(&ev));
        look_for_mention();
        let now = super::now_ms();
        if now - last_typing.get_value() > TYPING_EVERY
            && chat.here_untracked().access.get_untracked() == Access::Joined
        {
            last_typing.set_value(now);
            chat.send_typing();
        }
    };
    let too_long = move || text.with(|t| t.trim().chars().count() > MAX_BODY_CHARS);
    let can_send = move || {
        let has_text = text.with(|t| !t.trim().is_empty());
        !too_long() && uploads.queue.with(|q| q.can_send(has_text))
    };
    let placeholder = move || {
        let label = room_label(&chat.current.get(), chat.name.get().as_deref());
        layout
            .lang
            .get()
            .f(K::MessagePlaceholder, &[("room", &label)])
    };

    let active_id = move || list_open().then(|| format!("mention-{}", selected.get()));
    view! {
        <ReplyPreview/>
        <UploadChips/>
        <div class="composer-wrap">
        <Show when=list_open>
            <ul id="mention-list" class="mention-list" role="listbox" aria-label=layout.tr(K::PeopleToMention)>
                <For
                    each=move || candidates.get().into_iter().enumerate()
                    key=|(i, (n, on))| format!("{i}|{n}|{on}")
                    children=move |(i, (name, online))| {
                        view! {
                            <li
                                id=format!("mention-{i}")
                                role="option"
                                class="mention-option"
                                aria-selected=move || (selected.get() == i).to_string()
                                on:mousedown=move |ev| {
                                    // Keep the focus in the box.
                                    ev.prevent_default();
                                    choose(i);
                                }
                            >
                                <span
                                    class="avatar tiny"
                                    aria-hidden="true"
                                    style=format!("--hue:{}", super::avatar::hue(&name))
                                >
                                    {super::avatar::initial(&name)}
                                </span>
                                <span class="mention-name">{name.clone()}</span>
                                {online.then(|| view! { <span class="mention-online">{layout.tr(K::Online)}</span> })}
                            </li>
                        }
                    }
                />
            </ul>
        </Show>
        <form
            class="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                submit();
            }
        >
            <Show when=move || chat.signed_in.get()>
                <input
                    type="file"
                    multiple
                    class="visually-hidden"
                    tabindex="-1"
                    aria-hidden="true"
                    node_ref=picker
                    on:change=move |_| {
                        if let Some(input) = picker.get_untracked() {
                            uploads.picked(&input);
                        }
                    }
                />
                <button
                    type="button"
                    class="icon-btn attach"
                    aria-label=layout.tr(K::AttachFiles)
                    title=layout.tr(K::AttachFiles)
                    on:click=move |_| {
                        if let Some(input) = picker.get_untracked() {
                            input.click();
                        }
                    }
                >
                    <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
                        <path d="M20.5 11.5 12 20a5.3 5.3 0 0 1-7.5-7.5l8.6-8.6a3.5 3.5 0 0 1 5 5l-8.6 8.6a1.8 1.8 0 0 1-2.5-2.5l7.9-7.9" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>
                    </svg>
                </button>
            </Show>
            <label for="message" class="visually-hidden">
                {layout.tr(K::MessageLabel)}
            </label>
            <textarea
                id="message"
                node_ref=area
                rows="1"
                placeholder=placeholder
                aria-describedby="composer-hint"
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=on_keydown
                on:paste=move |ev| uploads.paste(&ev)
                on:blur=move |_| close_list()
                on:click=move |_| look_for_mention()
                aria-autocomplete="list"
                aria-controls=move || list_open().then_some("mention-list")
                aria-activedescendant=active_id
                aria-invalid=move || too_long().to_string()
            ></textarea>
            <button
                type="submit"
                class="send"
                disabled=move || !can_send()
            >
                <svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
                    <path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z" fill="currentColor"/>
                </svg>
                <span class="send-label">{layout.tr(K::Send)}</span>
            </button>
        </form>
        </div>
        <p id="composer-hint" class="visually-hidden">
            {layout.tr(K::ComposerHint)}
        </p>
        <Show when=too_long>
            <p class="hint error" role="alert">
                {move || layout.lang.get().f(K::TooLong, &[("n", &MAX_BODY_CHARS.to_string())])}
            </p>
        </Show>
    }
    // Erased: the page's view type would otherwise grow past the compiler's depth.
    .into_any()
}

/// A fresh nonce for a `send`: the time and a random part. Sends happen
/// only in the browser; on the server it is empty.
fn new_nonce() -> String {
    #[cfg(feature = "hydrate")]
    return format!(
        "c-{:x}{:x}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e12) as u64
    );
    #[cfg(not(feature = "hydrate"))]
    String::new()
}
