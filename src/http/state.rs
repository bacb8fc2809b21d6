//! The one state handed to every handler.

use crate::auth::Auth;
use crate::config::Config;
use crate::hub::{Hub, Outboxes};
use crate::limits::Limits;
use crate::metrics::Metrics;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by the HTTP handlers, the WebSocket connections and the pages.
///
/// One pointer: every open connection holds a clone for its whole life.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Shares `services` with everything that serves requests.
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Services {
    pub config: Arc<Config>,
    pub hub: Arc<Hub>,
    pub auth: Arc<Auth>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub leptos: LeptosOptions,
    /// Cancelled on SIGTERM / Ctrl-C.
    pub shutdown: CancellationToken,
    /// Every open WebSocket connection's queue; told at shutdown.
    pub outboxes: Arc<Outboxes>,
    /// Live WebSocket connections, awaited at shutdown.
    pub tracker: TaskTracker,
    /// The server's secret for visitors' form tokens (kept in the database,
    /// so that every node and every restart agree).
    pub form_key: Arc<[u8]>,
    /// The server's VAPID public key, base64url (`GET /api/push/key`).
    pub vapid_public: String,
    /// Where push endpoints may point.
    pub destinations: crate::push::Destinations,
    /// Pushes to people who are away; told when devices change.
    pub pusher: Arc<crate::push::Pusher>,
    /// Uploaded files: their limits, bytes and records.
    pub files: Arc<crate::files::Files>,
}

impl Services {
    /// Whether a WebSocket may be opened from a page of `origin`: one
    /// listed in `CAUSERIE_ORIGINS`, or the server's own, meaning the `Host`
    /// it was reached at when that host is an IP address or `localhost`. A
    /// domain name must be listed: otherwise a rebound DNS name pointing at
    /// this server would pass for it.
    pub fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        if self
            .config
            .extra_origins()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let Some(origin_host) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return false;
        }
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        name.parse::<std::net::IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost")
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.leptos.clone()
    }
}
