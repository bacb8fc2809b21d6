//! The HTTP API of `PROTOCOL.md`, on top of the hub: rooms, messages,
//! health and metrics.

use super::state::AppState;
use crate::auth::Auth;
use crate::hub::{Actor, Caller, HubError, Post, Via};
use crate::protocol::{
    ApiError, ApiErrorBody, ErrorCode, HISTORY_PAGE, MessagePage, RoomInfo, RoomKind, SEARCH_PAGE,
    SearchPage,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tower_sessions::Session;

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(rooms))
        .route(
            "/api/rooms/{room}/messages",
            get(messages).post(post_message),
        )
        .route("/api/search", get(search))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// An API failure, rendered as `{"error":{"code","message"}}`.
#[derive(Debug)]
pub struct Failure(ErrorCode, String);

impl Failure {
    /// A failure with its code and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure(code, message.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ApiError {
            error: ApiErrorBody {
                code: self.0,
                message: self.1,
            },
        };
        (status, Json(body)).into_response()
    }
}

impl From<HubError> for Failure {
    fn from(e: HubError) -> Self {
        Failure(e.code(), e.to_string())
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure(ErrorCode::Unavailable, e.to_string())
    }
}

/// The actor behind `Authorization: Bearer <token>`, if any.
async fn bearer(app: &AppState, headers: &HeaderMap) -> Result<Option<Actor>, Failure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            Failure::new(
                ErrorCode::Unauthorized,
                "expected Authorization: Bearer <token>",
            )
        })?;
    match app.auth.token(token).await {
        Ok(Some(actor)) => Ok(Some(actor)),
        Ok(None) => Err(Failure::new(
            ErrorCode::Unauthorized,
            "that token is not valid",
        )),
        Err(e) => Err(Failure::new(e.code(), e.to_string())),
    }
}

/// Who reads: the Bearer token's actor, else the account the session is
/// signed in as, else no one (a visitor, who reads what a guest may).
pub(super) async fn reader(
    app: &AppState,
    headers: &HeaderMap,
    session: &Session,
) -> Result<Option<Actor>, Failure> {
    if let Some(actor) = bearer(app, headers).await? {
        return Ok(Some(actor));
    }
    match super::session::session_user(&app.auth, session).await {
        Ok(name) => Ok(name.map(Auth::account)),
        Err(e) => Err(Failure::new(e.code(), e.to_string())),
    }
}

/// The signed-in account behind a request that changes an account's own
/// things: a Bearer token of an account, or a session (whose request, if
/// it says where it comes from, must come from an allowed origin).
pub async fn caller_account(
    app: &AppState,
    headers: &HeaderMap,
    session: &Session,
) -> Result<String, Failure> {
    let from_session = !headers.contains_key(header::AUTHORIZATION);
    let actor = reader(app, headers, session).await?.ok_or_else(|| {
        Failure::new(
            ErrorCode::Unauthorized,
            "sign in, or send Authorization: Bearer <token>",
        )
    })?;
    if actor.identity != crate::hub::Identity::Account {
        return Err(Failure::new(
            ErrorCode::Forbidden,
            "only accounts have devices to notify",
        ));
    }
    if from_session {
        same_origin(app, headers)?;
    }
    Ok(actor.name)
}

/// Refuses a request made with the session cookie that says it comes from
/// an origin not allowed (another site's page).
pub(super) fn same_origin(app: &AppState, headers: &HeaderMap) -> Result<(), Failure> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !origin.to_str().is_ok_and(|o| app.origin_allowed(o, host)) {
            return Err(Failure::new(
                ErrorCode::Forbidden,
                "cross-origin request refused",
            ));
        }
    }
    Ok(())
}

/// A visitor reads the public rooms only when guests are allowed.
fn visitor_may_read(app: &AppState) -> Result<(), Failure> {
    if app.config.guests {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::Unauthorized,
            "sign in, or send Authorization: Bearer <token>",
        ))
    }
}

async fn rooms(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: Session,
) -> Result<Json<Vec<RoomInfo>>, Failure> {
    let entries = match reader(&app, &headers, &session).await? {
        Some(actor) => app.hub.rooms_of(&actor).await?,
        None => {
            visitor_may_read(&app)?;
            app.hub.rooms_of(&VISITOR).await?
        }
    };
    Ok(Json(
        entries
            .into_iter()
            .map(|r| RoomInfo {
                online: app.hub.online_count(&r.room),
                name: r.room,
                kind: Some(r.kind),
                topic: r.topic,
            })
            .collect(),
    ))
}

/// Whom a visitor counts as for listing rooms: no one's private or direct
/// rooms.
static VISITOR: std::sync::LazyLock<Actor> = std::sync::LazyLock::new(|| Actor {
    name: String::new(),
    identity: crate::hub::Identity::PassingGuest,
});

#[derive(Deserialize)]
struct PageQuery {
    before: Option<i64>,
    /// The page around this message, for jumping to it.
    around: Option<i64>,
    limit: Option<usize>,
}

async fn messages(
    State(app): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    session: Session,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MessagePage>, Failure> {
    let Query(q) = query.map_err(|e| Failure::new(ErrorCode::BadRequest, e.body_text()))?;
    let kind = crate::protocol::parse_room(&room)
        .map_err(|e| Failure::new(ErrorCode::BadRequest, e.to_string()))?;
    match (reader(&app, &headers, &session).await?, kind) {
        (Some(actor), _) => app.hub.check_access(&actor, &room).await?,
        (None, _) if !app.config.guests => visitor_may_read(&app)?,
        (None, RoomKind::Public) => {}
        // A private room does not exist for a visitor, as for any non-member.
        (None, RoomKind::Private) => return Err(HubError::NoRoom(room).into()),
        (None, RoomKind::Direct(_)) => {
            return Err(Failure::new(
                ErrorCode::Unauthorized,
                "direct messages need a token or a signed-in session",
            ));
        }
    }
    if !app.hub.store().room_exists(&room).await? {
        return Err(HubError::NoRoom(room).into());
    }
    let limit = q.limit.unwrap_or(HISTORY_PAGE).clamp(1, 200);
    if let Some(id) = q.around {
        let page = app.hub.store().around(&room, id, limit).await?;
        return Ok(Json(MessagePage {
            room,
            messages: page.messages,
            more: page.more_before,
            more_after: Some(page.more_after),
        }));
    }
    let page = app.hub.store().page_before(&room, q.before, limit).await?;
    Ok(Json(MessagePage {
        room,
        messages: page.messages,
        more: page.more,
        more_after: None,
    }))
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    room: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /api/search`: messages of the rooms the caller may read.
async fn search(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    session: Session,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SearchPage>, Failure> {
    let Query(q) = query.map_err(|e| Failure::new(ErrorCode::BadRequest, e.body_text()))?;
    let actor = match reader(&app, &headers, &session).await? {
        Some(actor) => actor,
        None => {
            visitor_may_read(&app)?;
            // As for reading a direct room's messages: no one to be.
            if q.room.as_deref().is_some_and(|r| r.starts_with("dm:")) {
                return Err(Failure::new(
                    ErrorCode::Unauthorized,
                    "direct messages need a token or a signed-in session",
                ));
            }
            VISITOR.clone()
        }
    };
    let caller = Caller {
        actor: &actor,
        ip: Some(peer.ip()),
    };
    let page = app
        .hub
        .search(
            caller,
            &q.q,
            q.room.as_deref(),
            q.cursor.as_deref(),
            q.limit.unwrap_or(SEARCH_PAGE),
        )
        .await?;
    Ok(Json(page))
}

#[derive(Deserialize)]
struct PostBody {
    body: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    reply_to: Option<i64>,
    /// Ids of files the bot uploaded (`POST /api/files`).
    #[serde(default)]
    attachments: Vec<String>,
}

async fn post_message(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PostBody>, JsonRejection>,
) -> Result<Response, Failure> {
    let actor = bearer(&app, &headers)
        .await?
        .ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "posting needs a Bearer token"))?;
    let Json(post) = body.map_err(|e| match e {
        JsonRejection::BytesRejection(_) => {
            Failure::new(ErrorCode::TooLarge, "request body too large")
        }
        e => Failure::new(ErrorCode::BadRequest, e.body_text()),
    })?;
    let post = Post {
        room,
        body: post.body,
        nonce: post.nonce,
        reply_to: post.reply_to,
        attachments: post.attachments,
    };
    let caller = Caller {
        actor: &actor,
        ip: Some(peer.ip()),
    };
    let posted = app.hub.post(caller, post, Via::Straight).await?;
    // Its own task: a client that hangs up after the commit must not stop
    // the broadcast.
    let appended = tokio::spawn(posted)
        .await
        .map_err(|e| Failure::new(ErrorCode::Unavailable, e.to_string()))??;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(appended.message)).into_response())
}

async fn healthz(State(app): State<AppState>) -> Response {
    let store = app.hub.store().ping().await.map_err(|e| e.to_string());
    let backplane = app.hub.backplane_ping().await;
    let body = serde_json::json!({
        "store": store.as_ref().err().map(String::as_str).unwrap_or("ok"),
        "backplane": backplane.as_ref().err().map(String::as_str).unwrap_or("ok"),
    });
    let status = if store.is_ok() && backplane.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
