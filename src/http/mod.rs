//! Everything HTTP: the router and its one list of page paths, the pages'
//! preload, the REST API, the cookie sessions, and the WebSocket handshake
//! and connection. Handlers translate between HTTP and the hub: what a
//! request may do is decided in [`crate::hub`].

pub mod api;
pub mod connection;
pub mod cookies;
pub mod files;
pub mod headers;
pub mod listen;
pub mod middleware;
pub mod pages;
pub mod preload;
pub mod push;
pub mod reframe;
pub mod router;
pub mod session;
pub mod state;
pub mod upgrade;
