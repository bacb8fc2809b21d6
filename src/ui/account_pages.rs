//! Sign in, register, and the account page with its API tokens. The forms
//! work without JavaScript too (plain POSTs to the server functions).

use crate::account::{
    ChangePassword, CreateToken, Login, Logout, Me, Register, RemoveDevice, RevokeToken,
    SetDevicePreviews, list_devices, list_tokens, whoami,
};
use crate::admin::registration_info;
use crate::ui::i18n::K;
use crate::ui::layout::Layout;
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
    let ready = form_ready();
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
                        <ActionForm action=action attr:class="auth-form" attr:data-ready=ready>
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
            <FirstAccountNotice/>
            <p class="switch">"No account yet? " <A href="/register">"Register"</A></p>
        </main>
    }
}

/// On a server without accounts, the way to its first (admin) account.
#[component]
fn FirstAccountNotice() -> impl IntoView {
    let layout = expect_context::<Layout>();
    let info = Resource::new(|| (), |_| registration_info(None));
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let first = info.await.map(|i| i.first).unwrap_or(false);
                first.then(|| view! {
                    <p class="hint notice" role="status" data-testid="first-account">
                        {layout.tr(K::FirstAccountLogin)} " "
                        <A href="/register">{layout.tr(K::CreateFirstAccount)}</A>
                    </p>
                })
            })}
        </Suspense>
    }
}

/// A form's (or a list of forms') `data-ready`: set once the page runs, so that a test (or a
/// person's script) knows a submit goes through the page, not as a plain
/// form post.
fn form_ready() -> impl Fn() -> Option<&'static str> + Send + Sync + Copy + 'static {
    let layout = expect_context::<Layout>();
    move || layout.hydrated.get().then_some("true")
}

/// `/register` (an invite code may come as `?invite=CODE`).
#[component]
pub fn RegisterPage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let invite = query.with_untracked(|q| q.get("invite"));
    view! { <Registration invite/> }
}

/// `/invite/{code}`: registration with an invite code, or why the link
/// is dead.
#[component]
pub fn InvitePage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let invite = params.with_untracked(|p| p.get("code"));
    view! { <Registration invite/> }
}

/// What an invite problem says, in the page's language.
fn invite_problem_key(problem: &str) -> K {
    match problem {
        "used_up" => K::InviteUsedUp,
        "expired" => K::InviteExpired,
        "revoked" => K::InviteRevoked,
        _ => K::InviteUnknown,
    }
}

/// The registration form, or what keeps this visitor from it: the first
/// account of an empty server is offered to anyone (it becomes admin);
/// past it, `CAUSERIE_REGISTRATION` and the invite code decide.
#[component]
fn Registration(invite: Option<String>) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let me = use_me();
    let ready = form_ready();
    let info = {
        let invite = invite.clone();
        Resource::new(move || (), move |_| registration_info(invite.clone()))
    };
    let action = ServerAction::<Register>::new();
    reload_home_on_success(move || matches!(action.value().get(), Some(Ok(_))));
    let error = move || {
        action
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    let title = if invite.is_some() {
        K::InviteTitle
    } else {
        K::RegTitle
    };
    // A plain string: the server reads the title after the render, outside
    // the request's reactive arena (docs/TESTING.md).
    let page_title = format!("{} · Causerie", layout.lang.get_untracked().t(title));
    view! {
        <Title text=page_title/>
        <main class="auth-page">
            <a class="brand" href="/" rel="external">"Causerie"</a>
            <h1>{layout.tr(title)}</h1>
            <Suspense fallback=|| ()>
                {move || {
                    let invite = invite.clone();
                    Suspend::new(async move {
                        let csrf = me.await.map(|m| m.csrf).unwrap_or_default();
                        let info = info.await.unwrap_or_default();
                        let notice = |key: K, class: &'static str| {
                            view! { <p class=class role="status" data-testid="registration-notice">{layout.tr(key)}</p> }
                        };
                        // A dead link says why, whatever the mode.
                        if let Some(p) = info.invite_problem.as_deref() {
                            return view! {
                                {notice(invite_problem_key(p), "hint error")}
                            }
                                .into_any();
                        }
                        let (lead, open) = if info.first {
                            (Some(K::FirstAccount), true)
                        } else if invite.is_some() && info.mode != "closed" {
                            (Some(K::Invited), true)
                        } else {
                            match info.mode.as_str() {
                                "open" => (None, true),
                                "closed" => (Some(K::RegClosed), false),
                                _ => (Some(K::RegInviteOnly), false),
                            }
                        };
                        let lead = lead.map(|k| notice(k, if open { "hint notice" } else { "hint error" }));
                        let form = open.then(|| {
                            view! {
                                <ActionForm action=action attr:class="auth-form" attr:data-ready=ready>
                                    <input type="hidden" name="csrf" value=csrf/>
                                    <input type="hidden" name="invite" value=invite.clone().unwrap_or_default()/>
                                    <label for="register-name">{layout.tr(K::RegName)}</label>
                                    <input id="register-name" name="name" autocomplete="username" required maxlength="32"/>
                                    <label for="register-password">{layout.tr(K::RegPassword)}</label>
                                    <input id="register-password" type="password" name="password" autocomplete="new-password" required minlength="8"/>
                                    <button type="submit">{layout.tr(K::RegSubmit)}</button>
                                </ActionForm>
                            }
                        });
                        view! { {lead} {form} }.into_any()
                    })
                }}
            </Suspense>
            <Show when=move || error().is_some()>
                <p class="hint error" role="alert">{error}</p>
            </Show>
            <p class="switch">{layout.tr(K::RegHaveAccount)} " " <A href="/login">{layout.tr(K::SignIn)}</A></p>
        </main>
    }
}

/// `/account`: sign out, and API tokens for bots and scripts.
#[component]
pub fn AccountPage() -> impl IntoView {
    let me = use_me();
    let ready = form_ready();
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let logout = ServerAction::<Logout>::new();
    let password = ServerAction::<ChangePassword>::new();
    let remove_device = ServerAction::<RemoveDevice>::new();
    let set_previews = ServerAction::<SetDevicePreviews>::new();
    let devices = Resource::new(
        move || (remove_device.version().get(), set_previews.version().get()),
        |_| list_devices(),
    );
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
            .or_else(|| remove_device.value().get().and_then(|r| r.err()))
            .or_else(|| set_previews.value().get().and_then(|r| r.err()))
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
                    let csrf5 = me.csrf.clone();
                    let admin_link = me.admin.then(|| {
                        let layout = expect_context::<Layout>();
                        view! { <p><A href="/admin">{layout.tr(K::AdminLink)}</A></p> }
                    });
                    view! {
                        <h1>"Signed in as " {name}</h1>
                        {admin_link}
                        <ActionForm action=logout attr:class="inline-form">
                            <input type="hidden" name="csrf" value=csrf/>
                            <button type="submit" class="secondary">"Sign out"</button>
                        </ActionForm>
                        <h2>"Password"</h2>
                        <ActionForm action=password attr:class="auth-form password-form" attr:data-ready=ready>
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
                        <h2>"Notifications on your devices"</h2>
                        <p class="hint">
                            "When you have Causerie open nowhere, these devices are notified of "
                            "what your rooms' notification levels ask for."
                        </p>
                        <Transition fallback=|| ()>
                            {move || {
                                let csrf = csrf5.clone();
                                devices
                                    .get()
                                    .map(|r| {
                                        let rows = r.unwrap_or_default();
                                        if rows.is_empty() {
                                            return view! {
                                                <p class="hint" data-testid="no-devices">"No device gets notifications yet."</p>
                                            }
                                                .into_any();
                                        }
                                        view! {
                                            <ul class="tokens devices" data-ready=ready>
                                                {rows
                                                    .into_iter()
                                                    .map(|d| {
                                                        let csrf = csrf.clone();
                                                        let csrf_previews = csrf.clone();
                                                        let endpoint = d.endpoint.clone();
                                                        let shows = if d.previews { "shows private rooms' text" } else { "hides private rooms' text" };
                                                        let (switch, switch_to) = if d.previews {
                                                            ("Hide text", "false")
                                                        } else {
                                                            ("Show text", "true")
                                                        };
                                                        view! {
                                                            <li class="token device">
                                                                <span class="label">{d.label.clone()}</span>
                                                                <span class="hint">
                                                                    <span class="created">{d.created.get(0..10).unwrap_or("").to_string()}</span>
                                                                    " · " {shows}
                                                                </span>
                                                                <ActionForm action=set_previews attr:class="inline-form">
                                                                    <input type="hidden" name="csrf" value=csrf_previews/>
                                                                    <input type="hidden" name="endpoint" value=endpoint/>
                                                                    <input type="hidden" name="previews" value=switch_to/>
                                                                    <button
                                                                        type="submit"
                                                                        class="secondary"
                                                                        title="Whether this device's notifications show what is said in private rooms and direct messages, on a lock screen too"
                                                                    >
                                                                        {switch}
                                                                    </button>
                                                                </ActionForm>
                                                                <ActionForm action=remove_device attr:class="inline-form">
                                                                    <input type="hidden" name="csrf" value=csrf/>
                                                                    <input type="hidden" name="endpoint" value=d.endpoint.clone()/>
                                                                    <button type="submit" class="secondary">"Remove"</button>
                                                                </ActionForm>
                                                            </li>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </ul>
                                        }
                                            .into_any()
                                    })
                            }}
                        </Transition>
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
