//! Wiring and the process's life: opens the store and the backplane, builds
//! the hub and the shared state, serves until a signal, shuts down in order.

use crate::auth::Auth;
use crate::backplane::{self, BackplaneError, RedisSettings};
use crate::config::{Config, ConfigError};
use crate::http::listen;
use crate::http::router::{router, with_sessions};
use crate::http::state::{AppState, Services};
use crate::hub::{Admission, Hub, Outboxes};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::push::{self, Destinations, Pusher, Vapid};
use crate::store::{self, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    #[error("web push: {0}")]
    Vapid(#[from] push::VapidError),
    #[error("web push client: {0}")]
    PushClient(#[from] reqwest::Error),
    #[error("{0}")]
    Files(#[from] crate::files::blobs::BlobError),
}

/// Logs to stdout; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// Logs for an administration command: warnings and worse, on standard
/// error (standard output is the command's answer).
pub fn init_tracing_for_commands() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// How often a server looks for accounts banned elsewhere.
const BAN_WATCH: Duration = Duration::from_secs(2);
/// How far back each look reaches past the previous one: clocks of nodes
/// and of the command line differ a little, and ending a banned account's
/// connections twice does nothing.
const BAN_WATCH_MARGIN_MS: i64 = 10_000;

/// Closes (4003) this node's connections of accounts banned since the last
/// look, wherever the ban was made (another node, `causerie user ban`):
/// through the store, so it needs no Redis.
async fn watch_bans(store: Arc<dyn store::Store>, outboxes: Arc<Outboxes>) {
    let mut since = store::now_ms();
    let mut every = tokio::time::interval(BAN_WATCH);
    loop {
        every.tick().await;
        let look = store::now_ms();
        match store.banned_since(since - BAN_WATCH_MARGIN_MS).await {
            Ok(names) => {
                for name in names {
                    let n = outboxes.end_except(
                        &crate::auth::credentials::account(&name),
                        None,
                        crate::protocol::Ended::Banned,
                    );
                    if n > 0 {
                        tracing::info!(account = %name, connections = n, "closed a banned account's connections");
                    }
                }
                since = look;
            }
            Err(e) => tracing::warn!(error = %e, "could not look for bans"),
        }
    }
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

    let mut leptos = leptos::config::get_configuration(None)
        .map_err(|e| ServeError::Leptos(e.to_string()))?
        .leptos_options;
    if leptos.output_name.is_empty() {
        leptos.output_name = "causerie".into();
    }
    let limits = Arc::new(Limits::new(config.limits()));
    let auth = Arc::new(
        Auth::new(config.guests, config.bots()?, store.clone())
            .with_guest_names_per_browser(config.guest_names_per_browser)
            .with_registration(config.registration),
    );
    let outboxes = Arc::new(Outboxes::default());
    let admission = Admission::new(limits.clone(), auth.clone(), config.max_rooms);
    let hub = Hub::new(
        store.clone(),
        backplane,
        metrics.clone(),
        outboxes.clone(),
        admission,
    );
    tokio::spawn(hub.clone().run_ticker());
    let vapid = Arc::new(Vapid::load(store.as_ref()).await?);
    let destinations = Destinations::new(config.push_exempt.iter().cloned());
    let sender = push::Sender::new(
        vapid.clone(),
        &config.push_contact,
        destinations.clone(),
        config.push_timeout,
    )?;
    let pusher = Pusher::start(&hub, store.clone(), sender, metrics.clone()).await?;
    tokio::spawn(watch_bans(store.clone(), outboxes.clone()));
    let blobs = crate::files::blobs::Blobs::open(&config.files_location())?;
    let files = crate::files::Files::new(blobs, store.clone(), config.file_limits());
    files.start_sweeping(config.file_sweep);
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
        auth,
        config: Arc::new(config),
        hub,
        limits,
        metrics,
        leptos: leptos.clone(),
        shutdown: CancellationToken::new(),
        outboxes,
        tracker: TaskTracker::new(),
        form_key,
        vapid_public: vapid.public.clone(),
        destinations,
        pusher,
        files,
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

/// The secret visitors' form tokens are made with: made once, kept in the
/// store, the same on every node.
async fn form_key(store: &dyn store::Store) -> Result<Arc<[u8]>, StoreError> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    let key = store.setting_or("form_key", &fresh).await?;
    Ok(key.into_bytes().into())
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
