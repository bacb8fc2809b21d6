//! Accounts as the page uses them: register, sign in and out, API tokens.
//! Server functions: the browser calls them over HTTP; their bodies run
//! only on the server. Every one that changes state checks the session's
//! CSRF token (synchronizer token pattern).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The session key of the signed-in account's name.
pub const SESSION_USER: &str = "user";
/// The session key of the CSRF token.
pub const SESSION_CSRF: &str = "csrf";

/// Who the page's visitor is, and the token their forms must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: Option<String>,
    pub csrf: String,
}

/// An API token as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: i64,
    pub label: String,
    /// RFC 3339 creation time.
    pub created: String,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub token: String,
    pub row: TokenRow,
}

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use crate::auth::{AuthError, digest};
    use crate::state::AppState;
    use tower_sessions::Session;

    pub fn app() -> Result<AppState, ServerFnError> {
        use_context::<AppState>().ok_or_else(|| ServerFnError::new("no server state"))
    }

    pub async fn session() -> Result<Session, ServerFnError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|_| ServerFnError::new("sessions are unavailable"))
    }

    fn store_failed(e: impl std::fmt::Display) -> ServerFnError {
        ServerFnError::new(format!("the session store failed: {e}"))
    }

    /// The session's CSRF token, made on first use.
    pub async fn csrf(session: &Session) -> Result<String, ServerFnError> {
        if let Some(t) = session
            .get::<String>(SESSION_CSRF)
            .await
            .map_err(store_failed)?
        {
            return Ok(t);
        }
        let bytes: [u8; 24] = rand::random();
        let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        session
            .insert(SESSION_CSRF, &t)
            .await
            .map_err(store_failed)?;
        Ok(t)
    }

    /// Refuses a state change whose form does not carry the session's token.
    pub async fn check_csrf(session: &Session, given: &str) -> Result<(), ServerFnError> {
        let want = session
            .get::<String>(SESSION_CSRF)
            .await
            .map_err(store_failed)?;
        // Comparing digests keeps the comparison's timing from telling anything.
        match want {
            Some(w) if digest(&w) == digest(given) => Ok(()),
            _ => Err(ServerFnError::new(
                "this form has expired; reload the page and try again",
            )),
        }
    }

    pub async fn user(session: &Session) -> Result<Option<String>, ServerFnError> {
        session
            .get::<String>(SESSION_USER)
            .await
            .map_err(store_failed)
    }

    pub async fn require_user(session: &Session) -> Result<String, ServerFnError> {
        user(session)
            .await?
            .ok_or_else(|| ServerFnError::new("sign in first"))
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
            .remove::<String>(SESSION_CSRF)
            .await
            .map_err(store_failed)?;
        Ok(())
    }

    pub fn refused(e: AuthError) -> ServerFnError {
        ServerFnError::new(e.to_string())
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
            return Err(ServerFnError::new(
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
    Ok(Me {
        name: server::user(&session).await?,
        csrf: server::csrf(&session).await?,
    })
}

/// Creates an account and signs it in.
#[server(prefix = "/_sfn", endpoint = "register")]
pub async fn register(name: String, password: String, csrf: String) -> Result<(), ServerFnError> {
    let app = server::app()?;
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    server::throttle(&app).await?;
    // The browser's guest cookie: it may turn the guest name it holds into
    // an account.
    let headers = leptos_axum::extract::<axum::http::HeaderMap>()
        .await
        .unwrap_or_default();
    let guest = crate::ws::cookie(&headers, crate::ws::GUEST_COOKIE);
    let actor = app
        .auth
        .register(name.trim(), &password, guest)
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

/// Signs out: the session is deleted.
#[server(prefix = "/_sfn", endpoint = "logout")]
pub async fn logout(csrf: String) -> Result<(), ServerFnError> {
    let session = server::session().await?;
    server::check_csrf(&session, &csrf).await?;
    session
        .flush()
        .await
        .map_err(|e| ServerFnError::new(format!("the session store failed: {e}")))?;
    leptos_axum::redirect("/");
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
        .map_err(|e| ServerFnError::new(e.to_string()))?;
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
    let done = app
        .hub
        .store()
        .revoke_token(&user, id)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    if !done {
        return Err(ServerFnError::new("no such token"));
    }
    Ok(())
}
