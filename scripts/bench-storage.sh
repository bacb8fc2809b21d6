#!/usr/bin/env bash
# The send path's figure (docs/PERFORMANCE.md, §C6.3): a fresh server and
# SQLite file, rate limits lifted, then `causerie-load storage`.
# Usage: scripts/bench-storage.sh [SERVER_BINARY] [LOADGEN_BINARY]
# Builds neither: `cargo build --release --features ssr` and
# `cargo build --release -p causerie-load` first (one workspace, one target/).
set -euo pipefail
server=${1:-target/release/causerie}
load=${2:-target/release/causerie-load}
run=$(mktemp -d /tmp/causerie-bench.XXXXXX)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$run"' EXIT
CAUSERIE_ADDR=127.0.0.1:0 DATABASE_URL="sqlite://$run/chat.db" LEPTOS_SITE_ROOT=target/site \
CAUSERIE_RATE_PER_SEC=100000 CAUSERIE_RATE_BURST=100000 \
CAUSERIE_ROOMS_PER_MIN=100000 CAUSERIE_HTTP_CONNECTIONS_PER_IP=1000000 \
CAUSERIE_IP_RATE_PER_SEC=1000000 CAUSERIE_IP_RATE_BURST=1000000 \
CAUSERIE_CONNECTS_PER_MIN=1000000 CAUSERIE_CONNECTIONS_PER_IP=1000000 \
RUST_LOG=warn "$server" >"$run/server.log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
  port=$(ss -ltnpH 2>/dev/null | grep "pid=$pid," | sed -E 's/.*127\.0\.0\.1:([0-9]+).*/\1/' | head -1 || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start:"; cat "$run/server.log"; exit 1; }
"$load" storage --url "ws://127.0.0.1:$port/ws" --server-pid "$pid" \
  --clients "${CLIENTS:-50}" --in-flight "${IN_FLIGHT:-8}" --duration "${DURATION:-10}"
