//! Web Push over HTTP (PROTOCOL.md, "Reading, notifications"): the
//! server's public key, and each device's subscription, kept for the
//! signed-in account (session cookie or Bearer token).

use super::api::{Failure, caller_account};
use super::state::AppState;
use crate::protocol::ErrorCode;
use crate::push::{BrowserSubscription, DEVICES_PER_ACCOUNT, MAX_ENDPOINT};
use crate::store::{PushSubscription, now_ms};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

/// Largest subscription body: an endpoint and two keys.
const MAX_BODY: usize = MAX_ENDPOINT + 1024;

/// The push routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/push/key", get(key)).route(
        "/api/push/subscriptions",
        get(list)
            .post(subscribe)
            .delete(unsubscribe)
            .layer(DefaultBodyLimit::max(MAX_BODY)),
    )
}

#[derive(Serialize)]
struct Key {
    key: String,
}

async fn key(State(app): State<AppState>) -> Json<Key> {
    Json(Key {
        key: app.vapid_public.clone(),
    })
}

/// A device as the account page lists it (no keys).
#[derive(Serialize)]
struct Device {
    endpoint: String,
    label: String,
    previews: bool,
    created_ms: i64,
}

#[derive(Serialize)]
struct Devices {
    subscriptions: Vec<Device>,
}

async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: Session,
) -> Result<Json<Devices>, Failure> {
    let name = caller_account(&app, &headers, &session).await?;
    let subscriptions = app
        .hub
        .store()
        .pushes(&name)
        .await?
        .into_iter()
        .map(|p| Device {
            endpoint: p.endpoint,
            label: p.label,
            previews: p.previews,
            created_ms: p.created_ms,
        })
        .collect();
    Ok(Json(Devices { subscriptions }))
}

fn json_failure(e: JsonRejection) -> Failure {
    match e {
        JsonRejection::BytesRejection(_) => {
            Failure::new(ErrorCode::TooLarge, "request body too large")
        }
        e => Failure::new(ErrorCode::BadRequest, e.body_text()),
    }
}

async fn subscribe(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: Session,
    body: Result<Json<BrowserSubscription>, JsonRejection>,
) -> Result<Response, Failure> {
    let name = caller_account(&app, &headers, &session).await?;
    let Json(sub) = body.map_err(json_failure)?;
    let checked = sub
        .check(&app.destinations)
        .map_err(|e| Failure::new(ErrorCode::BadRequest, e.to_string()))?;
    let saved = PushSubscription {
        endpoint: checked.endpoint,
        account: name,
        p256dh: checked.p256dh,
        auth: checked.auth,
        previews: sub.previews,
        label: browser_label(&headers),
        created_ms: now_ms(),
    };
    app.hub
        .store()
        .save_push(&saved, DEVICES_PER_ACCOUNT)
        .await?;
    devices_changed(&app).await;
    Ok((
        StatusCode::CREATED,
        Json(Device {
            endpoint: saved.endpoint,
            label: saved.label,
            previews: saved.previews,
            created_ms: saved.created_ms,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
struct Endpoint {
    endpoint: String,
}

async fn unsubscribe(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: Session,
    body: Result<Json<Endpoint>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    let name = caller_account(&app, &headers, &session).await?;
    let Json(which) = body.map_err(json_failure)?;
    if app.hub.store().delete_push(&name, &which.endpoint).await? {
        devices_changed(&app).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure::new(
            ErrorCode::NotFound,
            "no such subscription for this account",
        ))
    }
}

/// The device is kept (or gone) whatever happens here: the pusher's list
/// of accounts is read again on its own a little later.
async fn devices_changed(app: &AppState) {
    if let Err(e) = app.pusher.devices_changed().await {
        tracing::warn!(error = %e, "could not read which accounts have push devices");
    }
}

/// A short name for the browser, from its User-Agent, for the account
/// page's list of devices.
fn browser_label(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map_or("A browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| *name);
    match system {
        Some(s) => format!("{browser} on {s}"),
        None => browser.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_by_browser_and_system() {
        let mut h = HeaderMap::new();
        assert_eq!(browser_label(&h), "A browser");
        h.insert(
            header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"
                .parse()
                .unwrap(),
        );
        assert_eq!(browser_label(&h), "Chrome on Linux");
    }
}
