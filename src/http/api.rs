//! The HTTP API of `PROTOCOL.md`, on top of the hub: rooms, messages,
//! health and metrics.

use super::state::AppState;
use crate::hub::{Actor, Caller, HubError, Post, Via};
use crate::protocol::{ApiError, ApiErrorBody, ErrorCode, HISTORY_PAGE, MessagePage, RoomInfo};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(rooms))
        .route(
            "/api/rooms/{room}/messages",
            get(messages).post(post_message),
        )
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

async fn rooms(State(app): State<AppState>) -> Result<Json<Vec<RoomInfo>>, Failure> {
    let names = app.hub.store().public_rooms(500).await?;
    Ok(Json(
        names
            .into_iter()
            .map(|name| RoomInfo {
                online: app.hub.online_count(&name),
                name,
                kind: None,
                topic: String::new(),
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
struct PageQuery {
    before: Option<i64>,
    limit: Option<usize>,
}

async fn messages(
    State(app): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MessagePage>, Failure> {
    let Query(q) = query.map_err(|e| Failure::new(ErrorCode::BadRequest, e.body_text()))?;
    crate::protocol::parse_room(&room)
        .map_err(|e| Failure::new(ErrorCode::BadRequest, e.to_string()))?;
    if room.starts_with("dm:") {
        // Only the two members read a DM, with their token.
        let actor = bearer(&app, &headers)
            .await?
            .ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "direct messages need a token"))?;
        app.hub.check_access(&actor, &room)?;
    }
    if !app.hub.store().room_exists(&room).await? {
        return Err(Failure::new(
            ErrorCode::NotFound,
            format!("no room {room:?}"),
        ));
    }
    let limit = q.limit.unwrap_or(HISTORY_PAGE).clamp(1, 200);
    let page = app.hub.store().page_before(&room, q.before, limit).await?;
    Ok(Json(MessagePage {
        room,
        messages: page.messages,
        more: page.more,
    }))
}

#[derive(Deserialize)]
struct PostBody {
    body: String,
    #[serde(default)]
    nonce: Option<String>,
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
