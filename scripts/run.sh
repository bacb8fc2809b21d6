#!/usr/bin/env bash
# Sets up what is missing, builds the release, and runs Causerie on
# http://127.0.0.1:3000 (override with CAUSERIE_ADDR, DATABASE_URL, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
# Compiled into the server (the page's script names); the same value for
# cargo-leptos and cargo test, so they share one build.
export LEPTOS_OUTPUT_NAME=causerie
./scripts/setup.sh
cargo leptos build --release
./scripts/precompress.sh
export LEPTOS_SITE_ROOT=target/site
exec target/release/causerie "$@"
