//! `/admin`: the server's admins see the members (name, role, last seen),
//! make or unmake admins, ban and unban, make and revoke invite links, and
//! end a guest's connections with a day's block of the name. Plain forms
//! (they work without JavaScript too), every control labelled.

use crate::account::whoami;
use crate::admin::{
    BanAccount, BlockGuest, MakeInvite, MemberRow, RevokeInvite, SetAdmin, UnbanAccount,
    list_invites, list_members,
};
use crate::ui::account_pages::error_text;
use crate::ui::i18n::K;
use crate::ui::layout::Layout;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// A stored time (RFC 3339) as `YYYY-MM-DD HH:MM UTC`.
fn short_time(ts: &str) -> String {
    match ts.get(0..16) {
        Some(t) => format!("{} UTC", t.replace('T', " ")),
        None => ts.to_string(),
    }
}

/// `/admin`.
#[component]
pub fn AdminPage() -> impl IntoView {
    let layout = expect_context::<Layout>();
    let me = Resource::new(|| (), |_| whoami());
    // A plain string: the server reads the title after the render, outside
    // the request's reactive arena (docs/TESTING.md).
    let page_title = format!(
        "{} · Causerie",
        layout.lang.get_untracked().t(K::AdminTitle)
    );
    view! {
        <Title text=page_title/>
        <main class="auth-page admin-page">
            <a class="brand" href="/" rel="external">"Causerie"</a>
            <h1>{layout.tr(K::AdminTitle)}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let me = me.await.unwrap_or_default();
                    if !me.admin {
                        return view! {
                            <p class="hint error" role="alert" data-testid="admin-only">{layout.tr(K::AdminOnly)}</p>
                        }
                            .into_any();
                    }
                    view! {
                        <Members csrf=me.csrf.clone() me=me.name.clone().unwrap_or_default()/>
                        <Invites csrf=me.csrf.clone()/>
                        <Guests csrf=me.csrf.clone()/>
                    }
                        .into_any()
                })}
            </Suspense>
            <p class="switch"><a href="/" rel="external">{layout.tr(K::BackToChat)}</a></p>
        </main>
    }
}

/// The first error among some actions' last answers, in words.
fn first_error<I: IntoIterator<Item = Option<Result<(), ServerFnError>>>>(
    answers: I,
) -> Option<String> {
    answers
        .into_iter()
        .flatten()
        .find_map(|r| r.err())
        .map(|e| error_text(&e))
}

/// The members table with its role and ban buttons.
#[component]
fn Members(csrf: String, me: String) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let set_admin = ServerAction::<SetAdmin>::new();
    let ban = ServerAction::<BanAccount>::new();
    let unban = ServerAction::<UnbanAccount>::new();
    let members = Resource::new(
        move || {
            (
                set_admin.version().get(),
                ban.version().get(),
                unban.version().get(),
            )
        },
        |_| list_members(),
    );
    let error = move || {
        first_error([
            set_admin.value().get(),
            ban.value().get(),
            unban.value().get(),
        ])
    };
    let row = move |m: MemberRow, csrf: String, me: &str| {
        let name = m.name.clone();
        let is_admin = m.role == "admin";
        let role = if is_admin {
            K::RoleAdmin
        } else {
            K::RoleMember
        };
        let seen = m
            .last_seen
            .as_deref()
            .map(short_time)
            .unwrap_or_else(|| layout.t(K::NeverSeen).to_string());
        let (role_label, role_text) = if is_admin {
            (K::UnmakeAdminLabel, K::UnmakeAdmin)
        } else {
            (K::MakeAdminLabel, K::MakeAdmin)
        };
        let (ban_label, ban_text) = if m.banned {
            (K::UnbanLabel, K::Unban)
        } else {
            (K::BanLabel, K::Ban)
        };
        let named = move |k: K| {
            let name = name.clone();
            move || layout.lang.get().f(k, &[("name", &name)])
        };
        let itself = m.name == me;
        let ban_form = {
            let (csrf, name, label) = (csrf.clone(), m.name.clone(), named(ban_label));
            if m.banned {
                view! {
                    <ActionForm action=unban attr:class="inline-form">
                        <input type="hidden" name="csrf" value=csrf/>
                        <input type="hidden" name="name" value=name/>
                        <button type="submit" class="secondary" aria-label=label>{layout.tr(ban_text)}</button>
                    </ActionForm>
                }
                    .into_any()
            } else {
                view! {
                    <ActionForm action=ban attr:class="inline-form">
                        <input type="hidden" name="csrf" value=csrf/>
                        <input type="hidden" name="name" value=name/>
                        <button type="submit" class="danger" aria-label=label>{layout.tr(ban_text)}</button>
                    </ActionForm>
                }
                    .into_any()
            }
        };
        let role_form = {
            let (name, label, make) = (m.name.clone(), named(role_label), (!is_admin).to_string());
            view! {
                <ActionForm action=set_admin attr:class="inline-form">
                    <input type="hidden" name="csrf" value=csrf/>
                    <input type="hidden" name="name" value=name/>
                    <input type="hidden" name="admin" value=make/>
                    <button type="submit" class="secondary" aria-label=label>{layout.tr(role_text)}</button>
                </ActionForm>
            }
        };
        let banned = m.banned;
        let key = m.name.clone();
        view! {
            <tr data-member=key>
                <th scope="row">{m.name}</th>
                <td>
                    {layout.tr(role)}
                    {banned.then(|| view! { " · " <strong class="banned">{layout.tr(K::Banned)}</strong> })}
                </td>
                <td>{seen}</td>
                <td class="actions">
                    {role_form}
                    {(!itself).then_some(ban_form)}
                </td>
            </tr>
        }
    };
    view! {
        <section aria-labelledby="admin-members">
            <h2 id="admin-members">{layout.tr(K::AdminMembers)}</h2>
            <Show when=move || error().is_some()>
                <p class="hint error" role="alert">{error}</p>
            </Show>
            <Transition fallback=|| ()>
                {move || {
                    let csrf = csrf.clone();
                    let me = me.clone();
                    members.get().map(move |r| {
                        let rows = r.unwrap_or_default();
                        view! {
                            <div class="table-scroll">
                                <table class="members">
                                    <thead>
                                        <tr>
                                            <th scope="col">{layout.tr(K::AdminName)}</th>
                                            <th scope="col">{layout.tr(K::AdminRole)}</th>
                                            <th scope="col">{layout.tr(K::AdminLastSeen)}</th>
                                            <th scope="col">{layout.tr(K::AdminActions)}</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {rows.into_iter().map(|m| row(m, csrf.clone(), &me)).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

/// Making, listing and revoking invite links.
#[component]
fn Invites(csrf: String) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let make = ServerAction::<MakeInvite>::new();
    let revoke = ServerAction::<RevokeInvite>::new();
    let invites = Resource::new(
        move || (make.version().get(), revoke.version().get()),
        |_| list_invites(),
    );
    let made = move || make.value().get().and_then(|r| r.ok());
    let error = move || {
        make.value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| revoke.value().get().and_then(|r| r.err()))
            .map(|e| error_text(&e))
    };
    let csrf2 = csrf.clone();
    view! {
        <section aria-labelledby="admin-invites">
            <h2 id="admin-invites">{layout.tr(K::AdminInvites)}</h2>
            <ActionForm action=make attr:class="auth-form invite-form">
                <input type="hidden" name="csrf" value=csrf/>
                <label for="invite-uses">{layout.tr(K::InviteUses)}</label>
                <input id="invite-uses" name="uses" type="number" min="1" max="1000" value="1" required/>
                <label for="invite-hours">{layout.tr(K::InviteExpiry)}</label>
                <select id="invite-hours" name="hours">
                    <option value="1">{layout.tr(K::OneHour)}</option>
                    <option value="24">{layout.tr(K::OneDay)}</option>
                    <option value="168" selected>{layout.tr(K::SevenDays)}</option>
                    <option value="720">{layout.tr(K::ThirtyDays)}</option>
                </select>
                <button type="submit">{layout.tr(K::MakeInvite)}</button>
            </ActionForm>
            <Show when=move || made().is_some()>
                <div class="new-token" role="status">
                    <p>{layout.tr(K::NewInvite)}</p>
                    <code data-testid="new-invite">{move || made().map(|i| i.link).unwrap_or_default()}</code>
                </div>
            </Show>
            <Show when=move || error().is_some()>
                <p class="hint error" role="alert">{error}</p>
            </Show>
            <Transition fallback=|| ()>
                {move || {
                    let csrf = csrf2.clone();
                    invites.get().map(move |r| {
                        let rows = r.unwrap_or_default();
                        if rows.is_empty() {
                            return view! { <p class="hint">{layout.tr(K::NoInvites)}</p> }.into_any();
                        }
                        view! {
                            <ul class="tokens invites">
                                {rows
                                    .into_iter()
                                    .map(|i| {
                                        let tail = i.code.chars().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect::<String>();
                                        let label = move || layout.lang.get().f(K::RevokeLabel, &[("code", &tail)]);
                                        let expires = i.expires.as_deref().map(short_time).unwrap_or_default();
                                        let csrf = csrf.clone();
                                        let code = i.code.clone();
                                        view! {
                                            <li class="token invite">
                                                <code class="label">{i.link.clone()}</code>
                                                <span class="created">
                                                    {layout.tr(K::UsesLeft)} ": " {i.uses_left} " · "
                                                    {layout.tr(K::Expires)} ": " {expires}
                                                </span>
                                                <ActionForm action=revoke attr:class="inline-form">
                                                    <input type="hidden" name="csrf" value=csrf/>
                                                    <input type="hidden" name="code" value=code/>
                                                    <button type="submit" class="secondary" aria-label=label>{layout.tr(K::Revoke)}</button>
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
        </section>
    }
}

/// Ending a guest's connections and blocking the name for a day.
#[component]
fn Guests(csrf: String) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let block = ServerAction::<BlockGuest>::new();
    let done = move || matches!(block.value().get(), Some(Ok(())));
    let error = move || first_error([block.value().get()]);
    view! {
        <section aria-labelledby="admin-guests">
            <h2 id="admin-guests">{layout.tr(K::AdminGuests)}</h2>
            <p class="hint">{layout.tr(K::GuestBlockHint)}</p>
            <ActionForm action=block attr:class="auth-form guest-form">
                <input type="hidden" name="csrf" value=csrf/>
                <label for="guest-name">{layout.tr(K::GuestName)}</label>
                <input id="guest-name" name="name" required maxlength="32" autocomplete="off"/>
                <button type="submit" class="danger">{layout.tr(K::BlockGuest)}</button>
            </ActionForm>
            <Show when=done>
                <p class="hint" role="status">{layout.tr(K::Done)}</p>
            </Show>
            <Show when=move || error().is_some()>
                <p class="hint error" role="alert">{error}</p>
            </Show>
            <p><A href="/account">{layout.tr(K::Account)}</A></p>
        </section>
    }
}
