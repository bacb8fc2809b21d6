//! `GET /ws`: the WebSocket handshake. Checks the request and its Origin,
//! admits the address, reads who the cookies say it is, then hands the
//! upgraded socket to [`super::connection`].

use super::api::Failure;
use super::connection::{self, Peer};
use super::cookies;
use super::state::AppState;
use crate::auth::Holder;
use crate::protocol::ErrorCode;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Why an upgrade request was refused, before any WebSocket check of ours.
fn not_a_websocket(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

/// `GET /ws`: checks the handshake and the Origin, then upgrades.
pub async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: tower_sessions::Session,
    mut req: Request,
) -> Response {
    let headers = req.headers();
    if req.method() != Method::GET {
        return not_a_websocket(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade is a GET",
        );
    }
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return not_a_websocket(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade");
    }
    if !has(header::SEC_WEBSOCKET_VERSION, "13") {
        return not_a_websocket(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return not_a_websocket(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
    };
    let accept = derive_accept_key(key.as_bytes());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let ok = origin.to_str().is_ok_and(|o| app.origin_allowed(o, host));
        if !ok {
            tracing::warn!(%peer, origin = ?origin, "refused WebSocket from a foreign origin");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    let holder = cookies::get(headers, cookies::GUEST).map(Holder::Cookie);
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return not_a_websocket(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded",
        );
    };
    let slot = match app.limits.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(e) => {
            tracing::warn!(%peer, "refused WebSocket: {e}");
            return Failure::new(ErrorCode::RateLimited, e.to_string()).into_response();
        }
    };
    // A session that cannot be read is no session: the client may still
    // say hello with a name or a token.
    let account = super::session::session_user(&app.auth, &session)
        .await
        .ok()
        .flatten()
        .zip(session.id().map(|id| id.to_string()));
    // Boxed: the upgrade's task keeps what it captured for the
    // connection's whole life, so let that be one pointer.
    let client = Box::new(Peer {
        app,
        peer,
        holder,
        account,
        _slot: slot,
    });
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "the upgrade did not complete");
                return;
            }
        };
        connection::start(upgraded, *client).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
