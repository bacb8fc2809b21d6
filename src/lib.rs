//! Causerie: a self-hostable real-time chat.
//!
//! The same crate builds the server (feature `ssr`) and the WebAssembly that
//! hydrates the page in the browser (feature `hydrate`). See
//! `docs/ARCHITECTURE.md` for one message's way through the modules.

// The chat page's view is one deep type (Leptos builds it statically).
#![recursion_limit = "512"]

pub mod account;
pub mod admin;
pub mod app;
pub mod protocol;
pub mod ui;

#[cfg(feature = "hydrate")]
pub mod client;
#[cfg(feature = "hydrate")]
pub mod install;
#[cfg(feature = "hydrate")]
pub mod notifications;

#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod backplane;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod files;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod hub;
#[cfg(feature = "ssr")]
pub mod limits;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod names;
#[cfg(feature = "ssr")]
pub mod process;
#[cfg(feature = "ssr")]
pub mod push;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod store;

/// The browser's entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    install::register_service_worker();
}
