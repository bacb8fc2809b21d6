//! Every route: the WebSocket, the API, the pages and their files, with the
//! cookie sessions and the middleware around them.

use super::middleware::{guest_cookie, readable_errors, same_origin_posts};
use super::pages::Pages;
use super::state::AppState;
use super::{api, files, headers, preload, push, upgrade};
use crate::app::{App, shell};
use crate::config::Config;
use crate::store::{self, StoreError};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::sync::Arc;
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Every route: the WebSocket, the API, the pages and their files.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let pages = Arc::new(Pages::new(routes.iter().map(|r| r.path())));
    let context_state = state.clone();
    let shell_options = state.leptos.clone();
    let pkg_dir = std::path::Path::new(&*state.leptos.site_root).join(&*state.leptos.site_pkg_dir);
    // Built files, precompressed by the build (scripts/precompress.sh);
    // revalidated with Last-Modified, since their names carry no hash.
    let pkg = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        // The answer depends on Accept-Encoding: without this a shared cache
        // could hand the brotli bytes to a client that cannot read them
        // (ServeDir sets it itself only from tower-http 0.7).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::VARY,
            HeaderValue::from_static("accept-encoding"),
        ))
        .service(
            ServeDir::new(pkg_dir)
                .precompressed_br()
                .precompressed_gzip(),
        );
    Router::new()
        .nest_service("/pkg", pkg)
        .merge(api::routes())
        .merge(files::routes())
        .merge(push::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_state.clone()),
            move || shell(shell_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(readable_errors))
        .layer(middleware::from_fn_with_state(pages.clone(), guest_cookie))
        // The chat page renders from a snapshot read before it, never
        // waiting on the store in the middle of a render.
        .layer(middleware::from_fn_with_state(
            (state.clone(), pages),
            preload::snapshot_first,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            same_origin_posts,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_frame_bytes))
        // Pages and API answers; /pkg is precompressed, /ws is added after.
        .layer(CompressionLayer::new())
        .route("/ws", get(upgrade::upgrade))
        .layer(middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// How often expired sessions are deleted.
const SESSION_SWEEP: Duration = Duration::from_secs(3600);

/// Deletes expired sessions now and then. A loop of our own rather than
/// `continuously_delete_expired`, which ends at its first error: a
/// database down for a minute must not stop the sweeping for good.
fn sweep_sessions<S: tower_sessions::session_store::ExpiredDeletion + Clone>(store: S) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SESSION_SWEEP);
        loop {
            every.tick().await;
            if let Err(e) = store.delete_expired().await {
                tracing::warn!("could not delete expired sessions: {e}");
            }
        }
    });
}

/// Adds cookie sessions, kept in the same database as history.
pub async fn with_sessions(
    router: Router,
    pool: store::SessionPool,
    config: &Config,
) -> Result<Router, StoreError> {
    use tower_sessions::cookie::SameSite;
    use tower_sessions::{Expiry, SessionManagerLayer, SessionStore, cookie::time};
    fn layer<S: SessionStore + Clone>(store: S, config: &Config) -> SessionManagerLayer<S> {
        SessionManagerLayer::new(store)
            .with_name("causerie_session")
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(config.secure_cookies)
            .with_expiry(Expiry::OnInactivity(time::Duration::days(30)))
    }
    match pool {
        store::SessionPool::Sqlite(pool) => {
            let s = tower_sessions_sqlx_store::SqliteStore::new(pool);
            s.migrate()
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            sweep_sessions(s.clone());
            Ok(router.layer(layer(s, config)))
        }
        store::SessionPool::Postgres(pool) => {
            let s = tower_sessions_sqlx_store::PostgresStore::new(pool);
            // Nodes starting together race on CREATE SCHEMA IF NOT EXISTS;
            // the loser's second try finds the schema.
            let mut tries = 0;
            while let Err(e) = s.migrate().await {
                tries += 1;
                if tries >= 3 {
                    return Err(StoreError::Unavailable(e.to_string()));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            sweep_sessions(s.clone());
            Ok(router.layer(layer(s, config)))
        }
    }
}
