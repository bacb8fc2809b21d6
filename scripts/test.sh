#!/usr/bin/env bash
# Runs every test of Causerie: formatting and lints, the Rust unit and
# integration tests against the real server binary, and the browser tests.
# One release build serves all of them.
#
# PostgreSQL and Redis tests run when their URLs are set:
#   CAUSERIE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres
#   CAUSERIE_TEST_REDIS=redis://127.0.0.1:6379
set -euo pipefail
cd "$(dirname "$0")/.."
# Compiled into the server (the page's script names); the same value for
# cargo-leptos and cargo test, so they share one build.
export LEPTOS_OUTPUT_NAME=causerie
./scripts/setup.sh

start=$(date +%s)
cargo fmt --all --check
python3 scripts/import-cycles.py src
cargo leptos build --release
./scripts/precompress.sh
./scripts/wasm-budget.sh
built=$(date +%s)
cargo test --release --features ssr
tested=$(date +%s)
(cd end2end && npx playwright test)
done_at=$(date +%s)
echo "timings: build $((built - start))s, rust tests $((tested - built))s, browser tests $((done_at - tested))s"
