//! Middleware around the pages and server functions: the guest cookie,
//! same-origin checks on form posts, readable server-function errors.

use super::api::Failure;
use super::cookies;
use super::pages::Pages;
use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Defence in depth against CSRF beside the forms' tokens: a state-changing
/// request that says where it comes from must come from an allowed origin.
pub async fn same_origin_posts(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::POST && req.uri().path().starts_with("/_sfn") {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let ok = origin.to_str().is_ok_and(|o| state.origin_allowed(o, host));
            if !ok {
                return Failure::new(
                    crate::protocol::ErrorCode::Forbidden,
                    "cross-origin form refused",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// The browser's guest cookie, read from the request or made for it; in
/// the request's extensions, so that the first page can already carry a
/// form token bound to it.
#[derive(Debug, Clone)]
pub struct GuestId(pub String);

/// Gives each browser a random guest cookie with its first page (or its
/// first server-function call), so that its tabs share a guest name, other
/// people cannot take it meanwhile, and its forms' CSRF token is bound to it.
pub async fn guest_cookie(
    State(pages): State<Arc<Pages>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let page = req.method() == Method::GET && pages.is_page(path);
    let wants = page || path.starts_with("/_sfn");
    let had = cookies::get(req.headers(), cookies::GUEST).filter(|v| !v.is_empty());
    let made = match (&had, wants) {
        (None, true) => Some(format!("{:032x}", rand::random::<u128>())),
        _ => None,
    };
    if let Some(id) = had.as_ref().or(made.as_ref()) {
        req.extensions_mut().insert(GuestId(id.clone()));
    }
    let mut res = next.run(req).await;
    if let Some(v) = made.as_deref().and_then(cookies::set_guest) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Server-function errors the framework answers itself (arguments that do
/// not decode, an unknown function) come as HTTP 500 with its internal
/// text: say it as a 400 a person can read, in the encoding the page
/// decodes. The functions' own refusals carry their status already.
pub async fn readable_errors(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/_sfn") {
        return next.run(req).await;
    }
    let res = next.run(req).await;
    let status = res.status();
    if status != axum::http::StatusCode::INTERNAL_SERVER_ERROR
        && status != axum::http::StatusCode::BAD_REQUEST
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Error bodies are short; a long one is not the framework's.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let ours = text.starts_with("ServerError|");
    if status == axum::http::StatusCode::INTERNAL_SERVER_ERROR && ours {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    if !ours {
        tracing::debug!("server function refused: {text}");
    }
    let message = if ours {
        text.trim_start_matches("ServerError|").to_string()
    } else if text.starts_with("Could not find a server function") {
        "no such action; reload the page and try again".to_string()
    } else {
        "this form is incomplete or out of date; reload the page and try again".to_string()
    };
    parts.status = axum::http::StatusCode::BAD_REQUEST;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Response::from_parts(
        parts,
        axum::body::Body::from(format!("ServerError|{message}")),
    )
}
