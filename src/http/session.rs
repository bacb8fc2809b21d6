//! The account a cookie session is signed in as, and the keys sessions keep.

use crate::auth::{Auth, AuthError};
use crate::store::StoreError;
use tower_sessions::Session;

/// The session key of the signed-in account's name.
pub const SESSION_USER: &str = "user";
/// The session key of the CSRF token.
pub const SESSION_CSRF: &str = "csrf";
/// The session key of when it signed in (ms): a password change ends the
/// sessions from before it.
pub const SESSION_SINCE: &str = "since";

/// The account a session is signed in as, if the session still counts
/// (the account's password has not changed since it signed in).
pub async fn session_user(auth: &Auth, session: &Session) -> Result<Option<String>, AuthError> {
    let read = |e: tower_sessions::session::Error| {
        AuthError::Store(StoreError::Unavailable(e.to_string()))
    };
    let Some(name) = session.get::<String>(SESSION_USER).await.map_err(read)? else {
        return Ok(None);
    };
    let since = session
        .get::<i64>(SESSION_SINCE)
        .await
        .map_err(read)?
        .unwrap_or(0);
    Ok(auth.session_counts(&name, since).await?.then_some(name))
}
