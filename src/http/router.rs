//! Wiring: open the store, build the hub and the router, serve until a
//! signal, then shut down in order.

use crate::app::{App, shell};
use crate::auth::Auth;
use crate::backplane::{self, BackplaneError, RedisSettings};
use crate::config::{Config, ConfigError};
use crate::hub::{Hub, Outboxes};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::state::{AppState, Services};
use crate::store::{self, StoreError};
use crate::ui::snapshot::preload;
use crate::{api, headers, listen, ws};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{}", .0.detail())]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Backplane(#[from] BackplaneError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("leptos configuration: {0}")]
    Leptos(String),
}

/// Logs to stdout; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> Result<(), ServeError> {
    // First: a SIGTERM during startup must shut down in order, not kill.
    let signalled = shutdown_signal()?;
    let (store, session_pool) = store::open(&config.database_url).await?;
    let form_key = form_key(store.as_ref()).await?;
    let metrics = Arc::new(Metrics::new());
    let redis = config.redis_url.as_ref().map(|url| RedisSettings {
        url: url.clone(),
        prefix: backplane::default_prefix(&config.database_url),
        rate_per_sec: config.rate_per_sec,
        rate_burst: config.rate_burst,
    });
    let backplane = backplane::open(redis, metrics.clone())?;
    let outboxes = Arc::new(Outboxes::default());
    let hub = Hub::new(store.clone(), backplane, metrics.clone(), outboxes.clone());
    tokio::spawn(hub.clone().run_ticker());

    let mut leptos = leptos::config::get_configuration(None)
        .map_err(|e| ServeError::Leptos(e.to_string()))?
        .leptos_options;
    if leptos.output_name.is_empty() {
        leptos.output_name = "causerie".into();
    }
    let limits = Arc::new(Limits::new(config.limits()));
    {
        let limits = limits.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                limits.prune();
            }
        });
    }
    {
        // Empty rooms made by guests go after a while: a name taken for
        // nothing does not stay taken, nor fill the room list, for good.
        let hub = hub.clone();
        let ttl = config.empty_room_ttl;
        // Looked at a few times per lifetime, at most every ten minutes.
        let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(every);
            loop {
                every.tick().await;
                match hub.expire_empty_rooms(ttl).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rooms = n, "expired empty rooms made by guests"),
                    Err(e) => tracing::warn!(error = %e, "could not expire empty rooms"),
                }
            }
        });
    }
    let state = AppState::new(Services {
        auth: Arc::new(
            Auth::new(config.guests, config.bots()?, store.clone())
                .with_guest_names_per_browser(config.guest_names_per_browser),
        ),
        config: Arc::new(config),
        hub,
        limits,
        metrics,
        leptos: leptos.clone(),
        shutdown: CancellationToken::new(),
        outboxes,
        tracker: TaskTracker::new(),
        form_key,
    });

    // Every connection is pinged and checked for silence from here, on one
    // timer, rather than each keeping its own.
    tokio::spawn(
        state
            .outboxes
            .clone()
            .keep_alive(state.config.idle_timeout() / 2),
    );

    let router = with_sessions(router(state.clone()), session_pool, &state.config).await?;
    let listener = tokio::net::TcpListener::bind(state.config.addr).await?;
    let files = listen::raise_file_limit();
    let gate = listen::Gate::new(
        state.config.http_connections_per_ip,
        listen::connection_budget(files.now),
    );
    tracing::info!(
        "open-file limit {} (was {}): up to {} connections, {} per address",
        files.now,
        files.before,
        listen::connection_budget(files.now),
        gate.per_ip(),
    );
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let shutdown = state.shutdown.clone();
    let outboxes = state.outboxes.clone();
    tokio::spawn(async move {
        signalled.await;
        tracing::info!("shutting down");
        shutdown.cancel();
        outboxes.go_away();
    });
    let serve = listen::serve(
        listener,
        router,
        state.config.http(),
        gate,
        state.shutdown.clone(),
    );
    // Graceful shutdown waits for every HTTP connection to finish; one that
    // never does (a client that stopped reading, a socket that never sent
    // its request) must not keep the process alive past the bound.
    let bound = async {
        state.shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_WAIT).await;
    };
    tokio::select! {
        () = serve => {},
        () = bound => tracing::warn!("some HTTP connections did not finish in time"),
    }

    state.tracker.close();
    if tokio::time::timeout(SHUTDOWN_WAIT, state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Every route: the WebSocket, the API, the pages and their files.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
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
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_state.clone()),
            move || shell(shell_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(readable_errors))
        .layer(middleware::from_fn(guest_cookie))
        // The chat page renders from a snapshot read before it, never
        // waiting on the store in the middle of a render.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            preload::snapshot_first,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            same_origin_posts,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_frame_bytes))
        // Pages and API answers; /pkg is precompressed, /ws is added after.
        .layer(CompressionLayer::new())
        .route("/ws", get(ws::upgrade))
        .layer(middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// The secret visitors' form tokens are made with: made once, kept in the
/// store, the same on every node.
async fn form_key(store: &dyn store::Store) -> Result<Arc<[u8]>, StoreError> {
    let fresh: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = store.setting_or("form_key", &fresh).await?;
    Ok(key.into_bytes().into())
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
async fn with_sessions(
    router: Router,
    pool: store::SessionPool,
    config: &Config,
) -> Result<Router, ServeError> {
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
                    return Err(StoreError::Unavailable(e.to_string()).into());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            sweep_sessions(s.clone());
            Ok(router.layer(layer(s, config)))
        }
    }
}

/// Defence in depth against CSRF beside the forms' tokens: a state-changing
/// request that says where it comes from must come from an allowed origin.
async fn same_origin_posts(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    if req.method() == Method::POST && req.uri().path().starts_with("/_sfn") {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let ok = origin.to_str().is_ok_and(|o| state.origin_allowed(o, host));
            if !ok {
                return crate::api::Failure::new(
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
async fn guest_cookie(mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let page = req.method() == Method::GET
        && !["/api", "/ws", "/pkg", "/healthz", "/metrics", "/_sfn"]
            .iter()
            .any(|p| path.starts_with(p));
    let wants = page || path.starts_with("/_sfn");
    let had = ws::cookie(req.headers(), ws::GUEST_COOKIE)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let made = match (&had, wants) {
        (None, true) => Some(format!("{:032x}", rand::random::<u128>())),
        _ => None,
    };
    if let Some(id) = had.as_ref().or(made.as_ref()) {
        req.extensions_mut().insert(GuestId(id.clone()));
    }
    let mut res = next.run(req).await;
    if let Some(id) = made {
        let cookie = format!(
            "{}={id}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax",
            ws::GUEST_COOKIE
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// Server-function errors the framework answers itself (arguments that do
/// not decode, an unknown function) come as HTTP 500 with its internal
/// text: say it as a 400 a person can read, in the encoding the page
/// decodes. The functions' own refusals carry their status already.
async fn readable_errors(req: Request, next: Next) -> Response {
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

/// Installs the SIGTERM and Ctrl-C handlers at once, so that no signal is
/// missed between now and the first poll; resolves at the first of them.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
