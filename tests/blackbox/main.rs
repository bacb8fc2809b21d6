//! The black-box tests: the real `causerie` binary spawned, spoken to over
//! WebSockets and HTTP, against SQLite, PostgreSQL and Redis
//! (docs/TESTING.md). One test binary, so the harness in [`common`] and
//! every file compile and link once; a file's tests are named after it
//! (`chat::`, `faults::`, ...), which is what `cargo test --test blackbox
//! chat::` filters on.
//!
//! Tests share nothing in this process but the harness's bookkeeping of
//! PostgreSQL databases: each starts servers of its own (own port, own data
//! directory or database, own Redis key prefix), and tests that break Redis
//! start a `redis-server` of their own.

#[macro_use]
mod common;

mod accounts;
mod api;
mod chat;
mod conversations;
mod errors;
mod faults;
mod files;
mod matrix;
mod pages;
mod postgres;
mod proptest_protocol;
mod push;
mod reading;
mod scaleout;
mod security;
mod security_http;
mod security_names;
mod slow_consumer;
mod team;
mod team_accounts;
