//! Sign in, register, and the account page with its API tokens. The forms
//! work without JavaScript too (plain POSTs to the server functions).

use crate::account::{
    ChangePassword, CreateToken, Login, Logout, Me, Register, RevokeToken, list_tokens, whoami,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// The message of a server function's error, without the framework's prefix.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// After a successful sign-in, registration or sign-out, a full page load
/// of the chat: the app's socket must start over as the new identity.
fn reload_home_on_success(done: impl Fn() -> bool + 'static) {
    Effect::new(move |_| {
        if done() {
            #[cfg(feature = "hydrate")]
            let _ = window().location().set_href("/");
        }
    });
}

/// The visitor, read once per page.
fn use_me() -> Resource<Result<Me, ServerFnError>> {
    Resource::new(|| (), |_| whoami())
}

/// `/login`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let me = use_me();
    let action = ServerAction::<Login>::new();
    reload_home_on_success(move || matches!(action.value().get(), Some(Ok(_))));
    let error = move || {
        action
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    view! {
        <Title text="Sign in · Causerie"/>
        <main class="auth-page">
            <a class="brand" href="/" rel="external">"Causerie"</a>
            <h1>"Sign in"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let csrf = me.await.map(|m| m.csrf).unwrap_or_default();
                    view! {
                        <ActionForm action=action attr:class="auth-form">
                            <input type="hidden" name="csrf" value=csrf/>
                            <label for="login-name">"Name"</label>
                            <input id="login-name" name="name" autocomplete="username" required maxlength="32"/>
                            <label for="login-password">"Password"</label>
                            <input id="login-password" type="password" name="password" autocomplete="current-password" required/>
                            <button type="submit">"Sign in"</button>
                        </ActionForm>
                    }
                })}
            </Suspense>
            <Show when=move || error().is_some()>
                <p class="hint error" role="alert">{error}</p>
            </Show>
            <p class="switch">"No account yet? " <A href="/register">"Register"</A></p>
        </main>
    }
}

/// `/register`.
#[component]
pub fn RegisterPage() -> impl IntoView {
    let me = use_me();
    let action = ServerAction::<Register>::new();
    reload_home_on_success(move || matches!(action.value().get(), Some(Ok(_))));
    let error = move || {
        action
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    view! {
        <Title text="Register · Causerie"/>
        <main class="auth-page">
            <a class="brand" href="/" rel="external">"Causerie"</a>
            <h1>"Create an account"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let csrf = me.await.map(|m| m.csrf).unwrap_or_default();
                    view! {
                        <ActionForm action=action attr:class="auth-form">
                            <input type="hidden" name="csrf" value=csrf/>
                            <label for="register-name">"Name"</label>
                            <input id="register-name" name="name" autocomplete="username" required maxlength="32"/>
                            <label for="register-password">"Password (8 characters or more)"</label>
                            <input id="register-password" type="password" name="password" autocomplete="new-password" required minlength="8"/>
                            <button type="submit">"Register"</button>
                        </ActionForm>
                    }
                })}
            </Suspense>
            <Show when=move || error().is_some()>
                <p class="hint error" role="alert">{error}</p>
            </Show>
            <p class="switch">"Already registered? " <A href="/login">"Sign in"</A></p>
        </main>
    }
}

/// `/account`: sign out, and API tokens for bots and scripts.
#[component]
pub fn AccountPage() -> impl IntoView {
    let me = use_me();
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let logout = ServerAction::<Logout>::new();
    let password = ServerAction::<ChangePassword>::new();
    reload_home_on_success(move || matches!(logout.value().get(), Some(Ok(_))));
    let password_changed = move || matches!(password.value().get(), Some(Ok(_)));
    let password_error = move || {
        password
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let created = move || create.value().get().and_then(|r| r.ok());
    let error = move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| revoke.value().get().and_then(|r| r.err()))
            .map(|e| error_text(&e))
    };
    view! {
        <Title text="Account · Causerie"/>
        <main class="auth-page account-page">
            <a class="brand" href="/" rel="external">"Causerie"</a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let me = me.await.unwrap_or_default();
                    let Some(name) = me.name.clone() else {
                        return view! {
                            <p>"You are not signed in. " <A href="/login">"Sign in"</A></p>
                        }
                            .into_any();
                    };
                    let csrf = me.csrf.clone();
                    let csrf2 = me.csrf.clone();
                    let csrf3 = me.csrf.clone();
                    let csrf4 = me.csrf.clone();
                    view! {
                        <h1>"Signed in as " {name}</h1>
                        <ActionForm action=logout attr:class="inline-form">
                            <input type="hidden" name="csrf" value=csrf/>
                            <button type="submit" class="secondary">"Sign out"</button>
                        </ActionForm>
                        <h2>"Password"</h2>
                        <ActionForm action=password attr:class="auth-form password-form">
                            <input type="hidden" name="csrf" value=csrf4/>
                            <label for="current-password">"Current password"</label>
                            <input id="current-password" type="password" name="current" autocomplete="current-password" required/>
                            <label for="new-password">"New password (8 characters or more)"</label>
                            <input id="new-password" type="password" name="password" autocomplete="new-password" required minlength="8"/>
                            <button type="submit">"Change password"</button>
                        </ActionForm>
                        <Show when=password_changed>
                            <p class="hint" role="status">
                                "Password changed. Your other sessions are signed out."
                            </p>
                        </Show>
                        <Show when=move || password_error().is_some()>
                            <p class="hint error" role="alert">{password_error}</p>
                        </Show>
                        <h2>"API tokens"</h2>
                        <p class="hint">
                            "A token lets a bot or a script post as you: "
                            <code>"Authorization: Bearer <token>"</code>
                            " on the HTTP API, or "
                            <code>"{\"type\":\"hello\",\"token\":\"…\"}"</code>
                            " on the WebSocket. It is shown once."
                        </p>
                        <ActionForm action=create attr:class="auth-form token-form">
                            <input type="hidden" name="csrf" value=csrf2/>
                            <label for="token-label">"Label"</label>
                            <input id="token-label" name="label" required maxlength="64" placeholder="e.g. deploy bot"/>
                            <button type="submit">"Create token"</button>
                        </ActionForm>
                        <Show when=move || created().is_some()>
                            <div class="new-token" role="status">
                                <p>"Your new token (copy it now, it will not be shown again):"</p>
                                <code data-testid="new-token">{move || created().map(|t| t.token).unwrap_or_default()}</code>
                            </div>
                        </Show>
                        <Transition fallback=|| ()>
                            {move || {
                                let csrf = csrf3.clone();
                                tokens
                                    .get()
                                    .map(|r| {
                                        let rows = r.unwrap_or_default();
                                        view! {
                                            <ul class="tokens">
                                                {rows
                                                    .into_iter()
                                                    .map(|t| {
                                                        let csrf = csrf.clone();
                                                        view! {
                                                            <li class="token">
                                                                <span class="label">{t.label.clone()}</span>
                                                                <span class="created">{t.created.get(0..10).unwrap_or("").to_string()}</span>
                                                                <ActionForm action=revoke attr:class="inline-form">
                                                                    <input type="hidden" name="csrf" value=csrf/>
                                                                    <input type="hidden" name="id" value=t.id.to_string()/>
                                                                    <button type="submit" class="secondary">"Revoke"</button>
                                                                </ActionForm>
                                                            </li>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </ul>
                                        }
                                    })
                            }}
                        </Transition>
                    }
                        .into_any()
                })}
            </Suspense>
            <Show when=move || error().is_some()>
                <p class="hint error" role="alert">{error}</p>
            </Show>
            <p class="switch"><a href="/" rel="external">"Back to the chat"</a></p>
        </main>
    }
}
