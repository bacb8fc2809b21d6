//! Files over HTTP (PROTOCOL.md 1.1, "Files"): `POST /api/files` takes an
//! upload; `GET /files/{id}/{name}` and `/files/{id}/thumb` serve one to
//! those who may read a room whose messages carry it (and to its uploader
//! before it is sent). To anyone else a file does not exist: 404.

use super::api::{Failure, reader};
use super::state::AppState;
use crate::files::{UploadError, sniff};
use crate::hub::{Actor, Identity};
use crate::protocol::{
    ErrorCode, RoomKind, UPLOAD_PATH, clean_file_name, parse_room, valid_file_id,
};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tower_sessions::Session;

/// What a served file may do in the browser: nothing. `sandbox` makes a
/// file opened on its own a unique origin without scripts, so that a
/// document that slipped through could not act as the site.
const FILE_POLICY: &str = "sandbox; default-src 'none'; img-src 'self'; \
     style-src 'unsafe-inline'; frame-ancestors 'none'";

/// The files' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(UPLOAD_PATH, post(upload))
        .route("/files/{id}/{name}", get(serve))
}

impl From<UploadError> for Failure {
    fn from(e: UploadError) -> Self {
        if matches!(
            e,
            UploadError::Spool(_) | UploadError::Blob(_) | UploadError::Store(_)
        ) {
            tracing::warn!("upload failed: {e}");
        }
        Failure::new(e.code(), e.to_string())
    }
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

/// `POST /api/files?name=NAME`: the raw body is the file.
async fn upload(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: Session,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, Failure> {
    let Query(q) = query.map_err(|e| Failure::new(ErrorCode::BadRequest, e.body_text()))?;
    let actor = reader(&app, &headers, &session).await?.ok_or_else(|| {
        Failure::new(
            ErrorCode::Unauthorized,
            "sign in, or send Authorization: Bearer <token>",
        )
    })?;
    if !matches!(actor.identity, Identity::Account | Identity::Bot) {
        return Err(UploadError::NotAccount.into());
    }
    if !headers.contains_key(header::AUTHORIZATION) {
        super::api::same_origin(&app, &headers)?;
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let name = app
        .files
        .admit(&actor.name, q.name.as_deref(), length)
        .await?;
    let file = app.files.upload(&actor.name, name, body).await?;
    app.metrics.uploads.inc();
    Ok((StatusCode::CREATED, Json(file)).into_response())
}

/// `GET /files/{id}/{name}`, and `/files/{id}/thumb` for an image's
/// thumbnail.
async fn serve(
    State(app): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    session: Session,
) -> Result<Response, Failure> {
    let missing = || Failure::new(ErrorCode::NotFound, "no such file");
    if !valid_file_id(&id) {
        return Err(missing());
    }
    let actor = reader(&app, &headers, &session).await?;
    if !may_read(&app, actor.as_ref(), &id).await? {
        return Err(missing());
    }
    let thumb = name == "thumb";
    let etag = if thumb {
        format!("\"{id}-thumb\"")
    } else {
        format!("\"{id}\"")
    };
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut opened = app.files.open(&id, thumb).await?;
        // A file without a thumbnail (not an image) named "thumb".
        if opened.is_none() && thumb {
            opened = app.files.open(&id, false).await?;
        }
        let opened = opened.ok_or_else(missing)?;
        let inline = sniff::shown_inline(&opened.mime);
        let mut res = Body::from_stream(opened.body).into_response();
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&opened.mime) {
            h.insert(header::CONTENT_TYPE, v);
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(opened.size));
        let shown = clean_file_name(&name).unwrap_or("file");
        if let Ok(v) = HeaderValue::from_str(&disposition(inline, shown)) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        res
    };
    let h = res.headers_mut();
    // The bytes of an id never change; who may read them can, so only the
    // reader's own browser keeps them.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_POLICY),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    Ok(res)
}

/// Whether `actor` (none: a visitor) may read file `id`: its uploader, or
/// someone who may read one of the rooms whose messages carry it.
async fn may_read(app: &AppState, actor: Option<&Actor>, id: &str) -> Result<bool, Failure> {
    let account = actor
        .filter(|a| matches!(a.identity, Identity::Account | Identity::Bot))
        .map(|a| a.name.as_str());
    let readers = app.hub.store().file_readers(id, account).await?;
    if readers.uploader {
        return Ok(true);
    }
    for room in &readers.rooms {
        let ok = match actor {
            Some(actor) => app.hub.check_access(actor, room).await.is_ok(),
            None => app.config.guests && matches!(parse_room(room), Ok(RoomKind::Public)),
        };
        if ok {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `Content-Disposition` for a file named `name`: shown in the page, or
/// saved. The plain `filename` keeps ASCII only; `filename*` (RFC 6266,
/// RFC 8187) carries the whole name.
fn disposition(inline: bool, name: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        crate::protocol::encode_path_segment(name)
    )
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn dispositions_quote_nothing_they_should_not() {
        assert_eq!(
            disposition(false, "report \"final\".pdf"),
            "attachment; filename=\"report _final_.pdf\"; \
             filename*=UTF-8''report%20%22final%22.pdf"
        );
        assert_eq!(
            disposition(true, "café.png"),
            "inline; filename=\"caf_.png\"; filename*=UTF-8''caf%C3%A9.png"
        );
    }
}
