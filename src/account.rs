//! Accounts as the page uses them: register, sign in and out, API tokens.
//! Server functions: the browser calls them over HTTP; their bodies run
//! only on the server. Every one that changes state checks the visitor's
//! CSRF token: kept in the session once signed in, derived from the guest
//! cookie before (so that anonymous visits store nothing).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Who the page's visitor is, and the token their forms must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: Option<String>,
    pub csrf: String,
    /// Whether the signed-in account is an admin (the page then links to `/admin`).
    #[serde(default)]
    pub admin: bool,
    /// Whether the server has no account yet: the chat page then asks for
    /// the first one, which becomes its admin.
    #[serde(default)]
    pub first_account: bool,
}

/// An API token as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: i64,
    pub label: String,
    /// RFC 3339 creation time.
    pub created: String,
}

/// A device that gets the account's Web Pushes, as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// The push service's URL for it: what removing it names.
    pub endpoint: String,
    /// Which browser, on which system.
    pub label: String,
    /// Whether private rooms' text shows in its notifications.
    pub previews: bool,
    /// RFC 3339 time it was subscribed.
    pub created: String,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub token: String,
    pub row: TokenRow,
}

#[cfg(feature = "ssr")]
pub(crate) mod server {
    use super::*;
    use crate::auth::{AuthError, digest};
    use crate::http::session::{SESSION_CSRF, SESSION_SINCE, SESSION_USER};
    use crate::http::state::AppState;
    use axum::http::{StatusCode, header};
    use tower_sessions::Session;

    /// A refusal with the HTTP status it deserves and a message for people.
    pub fn fail(status: StatusCode, message: impl Into<String>) -> ServerFnError {
        // A plain form post (no JavaScript) is answered with a redirect back
        // to its page, which shows the message; a status would replace it.
        let form_post = use_context::<axum::http::request::Parts>().is_some_and(|p| {
            p.headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        });
        if !form_post && let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(status);
        }
        ServerFnError::new(message.into())
    }

    /// The database failed: said plainly, the details go to the log.
    pub fn store_failed(e: impl std::fmt::Display) -> ServerFnError {
        tracing::warn!("server function: the store failed: {e}");
        fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server cannot reach its database right now; try again in a moment",
        )
    }

    pub fn app() -> Result<AppState, ServerFnError> {
        use_context::<AppState>().ok_or_else(|| store_failed("no server state"))
    }

    pub async fn session() -> Result<Session, ServerFnError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|_| store_failed("sessions are unavailable"))
    }

    /// The form token of a visitor not signed in: an HMAC of their browser's
    /// guest cookie under the server's key. Nothing is stored for it, and
    /// another browser's token does not fit.
    fn guest_token() -> Option<String> {
        use hmac::{Hmac, Mac};
        let app = use_context::<AppState>()?;
        let parts = use_context::<axum::http::request::Parts>()?;
        let guest = parts.extensions.get::<crate::http::middleware::GuestId>()?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&app.form_key).ok()?;
        mac.update(b"causerie form token\0");
        mac.update(guest.0.as_bytes());
        let bytes = mac.finalize().into_bytes();
        Some(hex::encode(bytes))
    }

    /// The token this visitor's forms carry: a signed-in session keeps one
    /// in the session (made on first use); anyone else gets [`guest_token`],
    /// so that an anonymous visit stores no session.
    pub async fn csrf(session: &Session) -> Result<String, ServerFnError> {
        if user(session).await?.is_none() {
            return guest_token().ok_or_else(|| {
                fail(
                    StatusCode::BAD_REQUEST,
                    "this page needs cookies; allow them and reload the page",
                )
            });
        }
        if let Some(t) = session
            .get::<String>(SESSION_CSRF)
            .await
            .map_err(store_failed)?
        {
            return Ok(t);
        }
        let bytes: [u8; 24] = rand::random();
        let t = hex::encode(bytes);
        session
            .insert(SESSION_CSRF, &t)
            .await
            .map_err(store_failed)?;
        Ok(t)
    }

    /// Refuses a state change whose form does not carry the visitor's token.
    pub async fn check_csrf(session: &Session, given: &str) -> Result<(), ServerFnError> {
        let want = if user(session).await?.is_some() {
            session
                .get::<String>(SESSION_CSRF)
                .await
                .map_err(store_failed)?
        } else {
            guest_token()
        };
        // Comparing digests keeps the comparison's timing from telling anything.
        match want {
            Some(w) if digest(&w) == digest(given) => Ok(()),
            _ => Err(fail(
                StatusCode::FORBIDDEN,
                "this form has expired; reload the page and try again",
            )),
        }
    }

    pub async fn user(session: &Session) -> Result<Option<String>, ServerFnError> {
        crate::http::session::session_user(&app()?.auth, session)
            .await
            .map_err(refused)
    }

    pub async fn require_user(session: &Session) -> Result<String, ServerFnError> {
        user(session)
            .await?
            .ok_or_else(|| fail(StatusCode::UNAUTHORIZED, "sign in first"))
    }

    /// Starts a signed-in session under a new id (no fixation), with a new
    /// CSRF token.
    pub async fn sign_in(session: &Session, name: &str) -> Result<(), ServerFnError> {
        session.cycle_id().await.map_err(store_failed)?;
        session
            .insert(SESSION_USER, name)
            .await
            .map_err(store_failed)?;
        session
            .insert(SESSION_SINCE, crate::store::now_ms())
            .await
            .map_err(store_failed)?;
        session
            .remove::<String>(SESSION_CSRF)
            .await
            .map_err(store_failed)?;
        Ok(())
    }

    /// Gives a signed-in session a new id and a new start, keeping its
    /// account and CSRF token (after a password change: the sessions from
    /// before it end, this one goes on).
    pub async fn renew(session: &Session) -> Result<(), ServerFnError> {
        session.cycle_id().await.map_err(store_failed)?;
        session
            .insert(SESSION_SINCE, crate::store::now_ms())
            .await
            .map_err(store_failed)
    }

    /// An account refusal with its status: a wrong password is 401, a
    /// taken or bad name 409 or 400, a store failure 503.
    pub fn refused(e: AuthError) -> ServerFnError {
        match e {
            AuthError::Unauthorized(m) => fail(StatusCode::UNAUTHORIZED, m),
            AuthError::BadName(m) if m.contains("taken") => fail(StatusCode::CONFLICT, m),
            AuthError::BadName(m) | AuthError::BadRequest(m) => fail(StatusCode::BAD_REQUEST, m),
            AuthError::RateLimited(m) => fail(StatusCode::TOO_MANY_REQUESTS, m),
            AuthError::Forbidden(m) => fail(StatusCode::FORBIDDEN, m),
            AuthError::Gone(m) => fail(StatusCode::GONE, m),
            AuthError::Store(e) => store_failed(e),
        }
    }

    pub fn row(t: crate::store::TokenInfo) -> TokenRow {
        TokenRow {
            id: t.id,
            label: t.label,
            created: crate::store::format_ts(t.created_ms),
        }
    }

    /// Counts an attempt against the visitor's address; refuses floods.
    pub async fn throttle(app: &AppState) -> Result<(), ServerFnError> {
        let ip = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .await
            .map(|c| c.0.ip())
            .ok();
        if let Some(ip) = ip
            && app.limits.check_login(ip).is_err()
        {
            return Err(fail(
                StatusCode::TOO_MANY_REQUESTS,
                "too many attempts from your address; wait a minute",
            ));
        }
        Ok(())
    }
}

/// Who is signed in, and the CSRF token for this session's forms.
#[server(prefix = "/_sfn", endpoint = "whoami")]
pub async fn whoami() -> Result<Me, ServerFnError> {
    let session = server::session().await?;
    let name = server::user(&session).await?;
    let admin = match &name {
        Some(n) => server::app()?
            .hub
            .store()
            .account(n)
            .await
            .map_err(server::store_failed)?
            .is_some_and(|a| a.role == crate::store::Role::Admin),
        None => false,
    };
    let first_account = name.is_none()
        && !server::app()?
            .hub
            .store()
            .accounts_exist()
            .await
            .map_err(server::store_failed)?;
    Ok(Me {
        name,
        csrf: server::csrf(&session).await?,
        admin,
        first_account,
    })
}

/// Creates an account and signs it in; past the server's first account,
/// `CAUSERIE_REGISTRATION` decides, and `invite` carries an invite code.
#[server(prefix = "/_sfn", endpoint = "register")]
pub async fn register(
    name: String,
    password: String,
    csrf: String,
    #[server(default)] invite: Option<String>,
) -> Result<(), ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    server::throttle(&app).await?;
    // The browser's guest cookie: it may turn the guest name it holds into
    // an account.
    let headers = leptos_axum::extract::<axum::http::HeaderMap>()
        .await
        .unwrap_or_default();
    let guest = crate::http::cookies::get(&headers, crate::http::cookies::GUEST);
    let actor = app
        .auth
        .register(name.trim(), &password, guest.as_deref(), invite.as_deref())
        .await
        .map_err(server::refused)?;
    server::sign_in(&session, &actor.name).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Signs in with a name and password.
#[server(prefix = "/_sfn", endpoint = "login")]
pub async fn login(name: String, password: String, csrf: String) -> Result<(), ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    server::throttle(&app).await?;
    let actor = app
        .auth
        .login(name.trim(), &password)
        .await
        .map_err(server::refused)?;
    server::sign_in(&session, &actor.name).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Signs out: the session is deleted, and the browser drops what it kept
/// of the account (pages kept offline, the outbox, read marks).
#[server(prefix = "/_sfn", endpoint = "logout")]
pub async fn logout(csrf: String) -> Result<(), ServerFnError> {
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    let ended = session.id().map(|id| id.to_string());
    session.flush().await.map_err(server::store_failed)?;
    crate::http::headers::clear_site_data();
    if let (Some(id), Ok(app)) = (ended, server::app()) {
        // The session's open sockets end with it, on every node.
        app.hub.end_connections(
            &crate::auth::credentials::session(&id),
            crate::protocol::Ended::SignedOut,
        );
    }
    leptos_axum::redirect("/");
    Ok(())
}

/// Changes the signed-in account's password. Its other sessions end, and
/// their open connections close on every node; this one goes on under a
/// new id.
#[server(prefix = "/_sfn", endpoint = "change_password")]
pub async fn change_password(
    current: String,
    password: String,
    csrf: String,
) -> Result<(), ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    let user = server::require_user(&session).await?;
    server::throttle(&app).await?;
    let this = session.id().map(|id| id.to_string());
    app.auth
        .change_password(&user, &current, &password)
        .await
        .map_err(server::refused)?;
    server::renew(&session).await?;
    app.hub.end_connections_except(
        &crate::auth::credentials::account_sessions(&user),
        this.as_deref()
            .map(crate::auth::credentials::session)
            .as_deref(),
        crate::protocol::Ended::PasswordChanged,
    );
    Ok(())
}

/// The signed-in account's live API tokens.
#[server(prefix = "/_sfn", endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenRow>, ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    let user = server::require_user(&session).await?;
    let tokens = app
        .hub
        .store()
        .tokens(&user)
        .await
        .map_err(server::store_failed)?;
    Ok(tokens.into_iter().map(server::row).collect())
}

/// Creates an API token; its secret is in the answer and nowhere else.
#[server(prefix = "/_sfn", endpoint = "create_token")]
pub async fn create_token(label: String, csrf: String) -> Result<NewToken, ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    let user = server::require_user(&session).await?;
    let (token, info) = app
        .auth
        .create_token(&user, &label)
        .await
        .map_err(server::refused)?;
    Ok(NewToken {
        token,
        row: server::row(info),
    })
}

/// Revokes one of the signed-in account's tokens.
#[server(prefix = "/_sfn", endpoint = "revoke_token")]
pub async fn revoke_token(id: i64, csrf: String) -> Result<(), ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    let user = server::require_user(&session).await?;
    let revoked = app
        .hub
        .store()
        .revoke_token(&user, id)
        .await
        .map_err(server::store_failed)?;
    let Some(hash) = revoked else {
        return Err(server::fail(
            axum::http::StatusCode::NOT_FOUND,
            "no such token; it may be revoked already",
        ));
    };
    // Its open connections end now, on every node, not at their next hello.
    app.hub.end_connections(
        &crate::auth::credentials::token(&hash),
        crate::protocol::Ended::TokenRevoked,
    );
    Ok(())
}

/// The devices that get the signed-in account's pushes, newest first.
#[server(prefix = "/_sfn", endpoint = "list_devices")]
pub async fn list_devices() -> Result<Vec<DeviceRow>, ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    let user = server::require_user(&session).await?;
    let devices = app
        .hub
        .store()
        .pushes(&user)
        .await
        .map_err(server::store_failed)?;
    Ok(devices
        .into_iter()
        .map(|d| DeviceRow {
            endpoint: d.endpoint,
            label: d.label,
            previews: d.previews,
            created: crate::store::format_ts(d.created_ms),
        })
        .collect())
}

/// Stops pushes to one of the signed-in account's devices.
#[server(prefix = "/_sfn", endpoint = "remove_device")]
pub async fn remove_device(endpoint: String, csrf: String) -> Result<(), ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    let user = server::require_user(&session).await?;
    let removed = app
        .hub
        .store()
        .delete_push(&user, &endpoint)
        .await
        .map_err(server::store_failed)?;
    if !removed {
        return Err(server::fail(
            axum::http::StatusCode::NOT_FOUND,
            "no such device; it may be removed already",
        ));
    }
    if let Err(e) = app.pusher.devices_changed().await {
        tracing::warn!(error = %e, "could not read which accounts have push devices");
    }
    Ok(())
}

/// Whether one of the signed-in account's devices shows the text of
/// private rooms' and direct messages' pushes (on a lock screen, say).
#[server(prefix = "/_sfn", endpoint = "set_device_previews")]
pub async fn set_device_previews(
    endpoint: String,
    previews: bool,
    csrf: String,
) -> Result<(), ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    let user = server::require_user(&session).await?;
    let store = app.hub.store();
    let devices = store.pushes(&user).await.map_err(server::store_failed)?;
    let Some(mut device) = devices.into_iter().find(|d| d.endpoint == endpoint) else {
        return Err(server::fail(
            axum::http::StatusCode::NOT_FOUND,
            "no such device; it may be removed already",
        ));
    };
    device.previews = previews;
    store
        .save_push(&device, crate::push::DEVICES_PER_ACCOUNT)
        .await
        .map_err(server::store_failed)?;
    Ok(())
}
