//! The message box: Enter sends, Shift+Enter adds a line, Escape clears.

use super::chat_state::Access;
use super::i18n::K;
use super::layout::Layout;
use super::rooms::room_label;
use super::state::Chat;
use crate::protocol::{MAX_BODY_CHARS, clean_body};
use leptos::html;
use leptos::prelude::*;

/// How often a typing notice may go out, in ms.
const TYPING_EVERY: f64 = 3000.0;

/// Writes and sends messages to the room in view.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let text = RwSignal::new(String::new());
    let area = NodeRef::<html::Textarea>::new();
    let last_typing = StoredValue::new(0.0f64);

    let submit = move || {
        let raw = text.get_untracked();
        let Ok(body) = clean_body(&raw) else { return };
        chat.send_message(body, new_nonce());
        // The message ended the others' typing notice: the next key starts a new one.
        last_typing.set_value(0.0);
        text.set(String::new());
        if let Some(el) = area.get_untracked() {
            el.set_value("");
            let _ = el.focus();
        }
    };

    let on_keydown = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "Enter" if !ev.shift_key() && !ev.is_composing() => {
            ev.prevent_default();
            submit();
        }
        "Escape" => {
            text.set(String::new());
            if let Some(el) = area.get_untracked() {
                el.set_value("");
            }
        }
        _ => {}
    };
    let on_input = move |ev: leptos::ev::Event| {
        text.set(event_target_value(&ev));
        let now = super::now_ms();
        if now - last_typing.get_value() > TYPING_EVERY
            && chat.here_untracked().access.get_untracked() == Access::Joined
        {
            last_typing.set_value(now);
            chat.send_typing();
        }
    };
    let too_long = move || text.with(|t| t.trim().chars().count() > MAX_BODY_CHARS);
    let placeholder = move || {
        let label = room_label(&chat.current.get(), chat.name.get().as_deref());
        layout
            .lang
            .get()
            .f(K::MessagePlaceholder, &[("room", &label)])
    };

    view! {
        <form
            class="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                submit();
            }
        >
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
                aria-invalid=move || too_long().to_string()
            ></textarea>
            <button
                type="submit"
                class="send"
                disabled=move || text.with(|t| t.trim().is_empty()) || too_long()
            >
                <svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
                    <path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z" fill="currentColor"/>
                </svg>
                <span class="send-label">{layout.tr(K::Send)}</span>
            </button>
        </form>
        <p id="composer-hint" class="visually-hidden">
            {layout.tr(K::ComposerHint)}
        </p>
        <Show when=too_long>
            <p class="hint error" role="alert">
                {move || layout.lang.get().f(K::TooLong, &[("n", &MAX_BODY_CHARS.to_string())])}
            </p>
        </Show>
    }
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
