//! Security headers on every response: a Content-Security-Policy (a page's
//! names the nonce its scripts carry), no framing, no MIME sniffing, no
//! referrer.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// What every page may load: its own scripts (the inline ones by the
/// response's nonce), its WebAssembly, its styles and its own WebSocket.
/// Style attributes stay allowed: the message list colours avatars with
/// them, and they run no code.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The policy of everything that is not a page (API answers, files): it
/// loads nothing.
const OTHER_POLICY: &str = "default-src 'none'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The service worker's policy (a worker runs under the one its script
/// came with): it fetches the site's own files, nothing else.
const WORKER_POLICY: &str = "default-src 'none'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'";

/// Sets the security headers; a page's own policy (with its nonce, set
/// while it rendered) is kept.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let worker = req.uri().path() == "/sw.js";
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if worker { WORKER_POLICY } else { OTHER_POLICY };
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    // Older browsers do not read frame-ancestors.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Room names are in paths; links in messages lead to other sites.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Sets a page's policy, with the nonce leptos gave this response's
/// scripts. Called while the page's shell renders.
pub fn set_page_policy() {
    use leptos::prelude::use_context;
    let Some(nonce) = leptos::nonce::use_nonce() else {
        return;
    };
    let Some(res) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&page_policy(&nonce)) {
        res.insert_header(HeaderName::from_static("content-security-policy"), v);
    }
}

/// Tells the browser to drop what it kept for this site: the pages the
/// service worker kept for offline use (conversations, private ones too),
/// the unsent outbox and the read marks. Said when someone signs out, so
/// that the next person at a shared computer finds none of it.
pub fn clear_site_data() {
    use leptos::prelude::use_context;
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.insert_header(
            HeaderName::from_static("clear-site-data"),
            HeaderValue::from_static("\"cache\", \"storage\""),
        );
    }
}
