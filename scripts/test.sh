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
# A real S3 API (s3s-fs, on a directory) for the S3 file store's tests;
# stopped on exit.
s3_root=$(mktemp -d)
mkdir -p "$s3_root/causerie-test"
s3_port=${CAUSERIE_TEST_S3_PORT:-9814}
s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key causerie --secret-key causerie-secret "$s3_root" >"$s3_root.log" 2>&1 &
s3_pid=$!
trap 'kill "$s3_pid" 2>/dev/null; rm -rf "$s3_root" "$s3_root.log"' EXIT
for _ in $(seq 50); do
  (echo >"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
  sleep 0.1
done
export CAUSERIE_TEST_S3="http://127.0.0.1:$s3_port"
cargo test --release --features ssr
tested=$(date +%s)
(cd end2end && npx playwright test)
done_at=$(date +%s)
echo "timings: build $((built - start))s, rust tests $((tested - built))s, browser tests $((done_at - tested))s"
