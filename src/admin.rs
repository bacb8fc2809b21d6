//! A team's administration as the page uses it: who may register (for the
//! register and invite pages), and, for admins only, the members list,
//! roles, bans, invite links and blocks of guest names. Server functions,
//! like [`crate::account`]: declared for both targets, bodies on the
//! server, every change checked against the visitor's CSRF token.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the register page says before anyone types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpState {
    /// The server has no account yet: this one will be its admin.
    pub first: bool,
    /// `open`, `invite` or `closed`.
    pub mode: String,
    /// The invite code asked about, if any, and why it cannot be used
    /// (`None` when it can): `unknown`, `used_up`, `expired`, `revoked`.
    pub invite_problem: Option<String>,
    /// The refusal in words, when the invite cannot be used.
    pub invite_message: Option<String>,
}

/// An account in the admins' list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub name: String,
    /// `admin` or `member`.
    pub role: String,
    /// RFC 3339, when the account was last connected; `None` if never.
    pub last_seen: Option<String>,
    pub banned: bool,
}

/// A live invite link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRow {
    pub code: String,
    /// The whole link to hand out.
    pub link: String,
    pub uses_left: i64,
    /// RFC 3339.
    pub expires: Option<String>,
}

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use crate::account::server::{fail, require_user, session, store_failed};
    use crate::http::state::AppState;
    use crate::store::{AccountChange, Invite, Role, format_ts};
    use axum::http::StatusCode;

    /// The signed-in visitor, if an admin; else a refusal.
    pub async fn require_admin(app: &AppState) -> Result<String, ServerFnError> {
        let session = session().await?;
        let user = require_user(&session).await?;
        let account = app.hub.store().account(&user).await.map_err(store_failed)?;
        match account {
            Some(a) if a.role == Role::Admin && !a.banned => Ok(a.name),
            _ => Err(fail(StatusCode::FORBIDDEN, "only admins may do this")),
        }
    }

    /// Where people reach the server: `CAUSERIE_PUBLIC_URL`, else the
    /// address this request came to.
    pub fn public_base(app: &AppState) -> String {
        if app.config.public_url.is_some() {
            return app.config.public_url();
        }
        let host = use_context::<axum::http::request::Parts>().and_then(|p| {
            p.headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
        match host {
            Some(h) => {
                let scheme = if app.config.secure_cookies {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{h}")
            }
            None => app.config.public_url(),
        }
    }

    pub fn invite_row(app: &AppState, i: Invite) -> InviteRow {
        InviteRow {
            link: format!("{}/invite/{}", public_base(app), i.code),
            code: i.code,
            uses_left: i.uses_left,
            expires: i.expires_ms.map(format_ts),
        }
    }

    /// The stored spelling of an account's name, or 404.
    pub async fn account_name(app: &AppState, name: &str) -> Result<String, ServerFnError> {
        app.hub
            .store()
            .account(name.trim())
            .await
            .map_err(store_failed)?
            .map(|a| a.name)
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, "there is no account by that name"))
    }

    pub fn changed(change: AccountChange) -> Result<(), ServerFnError> {
        match change {
            AccountChange::Done => Ok(()),
            AccountChange::NoSuchAccount => Err(fail(
                StatusCode::NOT_FOUND,
                "there is no account by that name",
            )),
            AccountChange::LastAdmin => Err(fail(
                StatusCode::CONFLICT,
                "the server would be left without an admin; make someone else admin first",
            )),
        }
    }
}

/// Whether registration is open to this visitor: the server's first
/// account, the mode, and what an invite code (if given) is worth.
#[server(prefix = "/_sfn", endpoint = "registration_info")]
pub async fn registration_info(
    #[server(default)] invite: Option<String>,
) -> Result<SignUpState, ServerFnError> {
    use crate::account::server::{app, store_failed};
    use crate::auth::{AuthError, Registration};
    let app = app()?;
    let first = !app
        .hub
        .store()
        .accounts_exist()
        .await
        .map_err(store_failed)?;
    let mode = match app.auth.registration() {
        Registration::Open => "open",
        Registration::Invite => "invite",
        Registration::Closed => "closed",
    };
    let (mut invite_problem, mut invite_message) = (None, None);
    if let Some(code) = invite.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        let invite = app.hub.store().invite(code).await.map_err(store_failed)?;
        let problem = match &invite {
            Some(i) => i.problem(crate::store::now_ms()),
            None => Some(crate::store::InviteProblem::Unknown),
        };
        if let Some(p) = problem {
            invite_problem = serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            if let Err(AuthError::Gone(m) | AuthError::Forbidden(m)) =
                app.auth.check_invite(code).await
            {
                invite_message = Some(m);
            }
        }
    }
    Ok(SignUpState {
        first,
        mode: mode.into(),
        invite_problem,
        invite_message,
    })
}

/// Every account, for admins: name, role, last seen, banned.
#[server(prefix = "/_sfn", endpoint = "list_members")]
pub async fn list_members() -> Result<Vec<MemberRow>, ServerFnError> {
    let app = crate::account::server::app()?;
    server::require_admin(&app).await?;
    let list = app
        .hub
        .store()
        .account_list()
        .await
        .map_err(crate::account::server::store_failed)?;
    Ok(list
        .into_iter()
        .map(|a| MemberRow {
            name: a.name,
            role: a.role.as_str().into(),
            last_seen: a.last_seen_ms.map(crate::store::format_ts),
            banned: a.banned,
        })
        .collect())
}

/// Makes an account an admin, or a member again (never the last admin).
#[server(prefix = "/_sfn", endpoint = "set_admin")]
pub async fn set_admin(name: String, admin: bool, csrf: String) -> Result<(), ServerFnError> {
    use crate::account::server::{app, check_csrf, session, store_failed};
    use crate::store::Role;
    let app = app()?;
    check_csrf(&session().await?, &csrf).await?;
    server::require_admin(&app).await?;
    let name = server::account_name(&app, &name).await?;
    let role = if admin { Role::Admin } else { Role::Member };
    server::changed(
        app.hub
            .store()
            .set_role(&name, role)
            .await
            .map_err(store_failed)?,
    )
}

/// Bans an account (it keeps its name): its connections close with 4003
/// on every node, its sessions and tokens stop.
#[server(prefix = "/_sfn", endpoint = "ban_account")]
pub async fn ban_account(name: String, csrf: String) -> Result<(), ServerFnError> {
    use crate::account::server::{app, check_csrf, session, store_failed};
    let app = app()?;
    check_csrf(&session().await?, &csrf).await?;
    server::require_admin(&app).await?;
    let name = server::account_name(&app, &name).await?;
    server::changed(
        app.hub
            .store()
            .set_banned(&name, true)
            .await
            .map_err(store_failed)?,
    )?;
    app.hub.end_connections(
        &crate::auth::credentials::account(&name),
        crate::protocol::Ended::Banned,
    );
    Ok(())
}

/// Lifts a ban.
#[server(prefix = "/_sfn", endpoint = "unban_account")]
pub async fn unban_account(name: String, csrf: String) -> Result<(), ServerFnError> {
    use crate::account::server::{app, check_csrf, session, store_failed};
    let app = app()?;
    check_csrf(&session().await?, &csrf).await?;
    server::require_admin(&app).await?;
    let name = server::account_name(&app, &name).await?;
    server::changed(
        app.hub
            .store()
            .set_banned(&name, false)
            .await
            .map_err(store_failed)?,
    )
}

/// The invite links that can still be used, for admins.
#[server(prefix = "/_sfn", endpoint = "list_invites")]
pub async fn list_invites() -> Result<Vec<InviteRow>, ServerFnError> {
    let app = crate::account::server::app()?;
    server::require_admin(&app).await?;
    let list = app
        .hub
        .store()
        .live_invites()
        .await
        .map_err(crate::account::server::store_failed)?;
    Ok(list
        .into_iter()
        .map(|i| server::invite_row(&app, i))
        .collect())
}

/// Makes an invite link good for `uses` registrations over `hours`.
#[server(prefix = "/_sfn", endpoint = "make_invite")]
pub async fn make_invite(uses: i64, hours: i64, csrf: String) -> Result<InviteRow, ServerFnError> {
    use crate::account::server::{app, check_csrf, refused, session};
    let app = app()?;
    check_csrf(&session().await?, &csrf).await?;
    let admin = server::require_admin(&app).await?;
    let invite = app
        .auth
        .create_invite(&admin, uses, hours.saturating_mul(3_600_000))
        .await
        .map_err(refused)?;
    Ok(server::invite_row(&app, invite))
}

/// Revokes an invite link.
#[server(prefix = "/_sfn", endpoint = "revoke_invite")]
pub async fn revoke_invite(code: String, csrf: String) -> Result<(), ServerFnError> {
    use crate::account::server::{app, check_csrf, fail, session, store_failed};
    let app = app()?;
    check_csrf(&session().await?, &csrf).await?;
    server::require_admin(&app).await?;
    let revoked = app
        .hub
        .store()
        .revoke_invite(code.trim())
        .await
        .map_err(store_failed)?;
    if !revoked {
        return Err(fail(
            axum::http::StatusCode::NOT_FOUND,
            "no such live invite; it may be revoked already",
        ));
    }
    Ok(())
}

/// Ends a guest's connections (4003) and blocks that guest name for a day.
#[server(prefix = "/_sfn", endpoint = "block_guest")]
pub async fn block_guest(name: String, csrf: String) -> Result<(), ServerFnError> {
    use crate::account::server::{app, check_csrf, fail, session, store_failed};
    use axum::http::StatusCode;
    let app = app()?;
    check_csrf(&session().await?, &csrf).await?;
    server::require_admin(&app).await?;
    let name = name.trim();
    if crate::protocol::validate_name(name).is_err() {
        return Err(fail(StatusCode::BAD_REQUEST, "that is not a guest name"));
    }
    if app
        .hub
        .store()
        .account(name)
        .await
        .map_err(store_failed)?
        .is_some()
    {
        return Err(fail(
            StatusCode::CONFLICT,
            "that name is an account's, not a guest's: ban the account instead",
        ));
    }
    let until = crate::store::now_ms() + crate::auth::GUEST_BLOCK_MS;
    app.hub
        .store()
        .block_guest(&crate::names::name_key(name), until)
        .await
        .map_err(store_failed)?;
    app.hub.end_connections(
        &crate::auth::credentials::person(name),
        crate::protocol::Ended::Blocked,
    );
    Ok(())
}
