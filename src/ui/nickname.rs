//! A guest picks a nickname, remembered in this browser.

use super::i18n::K;
use super::layout::Layout;
use super::prefs::{self, NAME_KEY};
use super::state::Chat;
use crate::protocol::validate_name;
use leptos::prelude::*;

/// The nickname this browser remembers.
pub fn remembered() -> Option<String> {
    prefs::get(NAME_KEY).filter(|n| validate_name(n).is_ok())
}

/// Asks for a nickname before chatting.
#[component]
pub fn NicknameForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    // Uncontrolled: read the box when the form is sent. A value bound from a
    // signal would be reset by hydration, losing what someone typed while
    // the page's code was still loading.
    let input = NodeRef::<leptos::html::Input>::new();
    let local_error = RwSignal::new(None::<K>);
    let error = move || {
        let lang = layout.lang.get();
        local_error
            .get()
            .map(|k| lang.t(k))
            .or_else(|| chat.name_error.get().map(|c| lang.error(c)))
    };
    view! {
        <form
            class="nickname"
            on:submit=move |ev| {
                ev.prevent_default();
                let name = input
                    .get_untracked()
                    .map(|i| i.value())
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                match validate_name(&name) {
                    Ok(()) => {
                        local_error.set(None);
                        prefs::set(NAME_KEY, &name);
                        chat.set_name(Some(name), false);
                    }
                    Err(_) => local_error.set(Some(K::NameInvalid)),
                }
            }
        >
            <label for="nickname">{layout.tr(K::PickNickname)}</label>
            <div class="row">
                <input
                    id="nickname"
                    name="nickname"
                    autocomplete="nickname"
                    maxlength="32"
                    placeholder=layout.tr(K::NicknamePlaceholder)
                    aria-invalid=move || error().is_some().to_string()
                    aria-describedby="nickname-error"
                    node_ref=input
                />
                <button type="submit">{layout.tr(K::JoinChat)}</button>
            </div>
            <p id="nickname-error" class="hint error" role="alert">
                {error}
            </p>
            <Show when=move || layout.first_account.get()>
                <p class="hint notice first-account" data-testid="first-account">
                    {layout.tr(K::FirstAccount)} " "
                    <a href="/register" rel="external">{layout.tr(K::CreateFirstAccount)}</a>
                </p>
            </Show>
        </form>
    }
}
