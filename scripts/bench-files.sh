#!/usr/bin/env bash
# Uploads' figures (docs/PERFORMANCE.md, "Files"): throughput and the
# server's peak memory for one 25 MB upload, for 20 at once, and for 20
# 12-megapixel JPEGs at once. Each phase runs on a fresh server (peak
# memory is the process's VmHWM).
# Usage: scripts/bench-files.sh [SERVER_BINARY]
# Builds nothing: `cargo build --release --features ssr` first. The JPEG is
# written by the thumbnail benchmark:
#   CAUSERIE_BENCH_JPEG=target/bench-12mp.jpg cargo test --release --features ssr \
#     --lib files::image::tests::bench -- --ignored --nocapture
set -euo pipefail
server=${1:-target/release/causerie}
jpeg=${JPEG:-target/bench-12mp.jpg}
run=$(mktemp -d /tmp/causerie-files-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$run"' EXIT

for i in $(seq 20); do head -c 25000000 /dev/urandom >"$run/f$i.bin"; done

start() {
  rm -rf "$run/db"; mkdir -p "$run/db"
  printf 'benchmark-password\n' | DATABASE_URL="sqlite://$run/db/chat.db" "$server" user add bench --admin >/dev/null
  token=$(DATABASE_URL="sqlite://$run/db/chat.db" "$server" token add bench | tail -1)
  CAUSERIE_ADDR=127.0.0.1:0 DATABASE_URL="sqlite://$run/db/chat.db" LEPTOS_SITE_ROOT=target/site \
  CAUSERIE_UPLOADS_PER_MIN=100000 CAUSERIE_UPLOAD_QUOTA_BYTES=100000000000 \
  CAUSERIE_HTTP_CONNECTIONS_PER_IP=1000 RUST_LOG=warn "$server" >"$run/server.log" 2>&1 &
  pid=$!
  port=
  for _ in $(seq 100); do
    port=$(ss -ltnpH 2>/dev/null | grep "pid=$pid," | sed -E 's/.*127\.0\.0\.1:([0-9]+).*/\1/' | head -1 || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "the server did not start:"; cat "$run/server.log"; exit 1; }
  rss_before=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
}

stop() {
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

up() { # file name → prints seconds
  curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $token" \
    --data-binary "@$1" "http://127.0.0.1:$port/api/files?name=$2"
}

start
for i in 1 2 3; do
  read -r code secs < <(up "$run/f$i.bin" "f$i.bin")
  [ "$code" = 201 ] || { echo "upload answered $code"; cat "$run/server.log"; exit 1; }
  echo "one 25 MB upload: $secs s ($(awk -v s="$secs" 'BEGIN { printf "%.0f", 25 / s }') MB/s)"
done
stop
echo "peak memory, one 25 MB upload at a time: $((peak / 1024)) MiB (idle: $((rss_before / 1024)) MiB)"

start
t0=$(date +%s.%N)
for i in $(seq 20); do up "$run/f$i.bin" "f$i.bin" >"$run/c$i.out" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
t1=$(date +%s.%N)
ok=$(cat "$run"/c*.out | grep -c '^201 ' || true)
stop
echo "20 concurrent 25 MB uploads: $ok answered 201 in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s ($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 500 / (b - a) }') MB/s); peak memory $((peak / 1024)) MiB"

if [ -f "$jpeg" ]; then
  start
  read -r code secs < <(up "$jpeg" photo.jpg)
  echo "one 12-megapixel JPEG ($(stat -c %s "$jpeg") bytes): $code in $secs s, thumbnail included"
  stop
  echo "peak memory, one 12 MP JPEG: $((peak / 1024)) MiB"
  start
  for i in $(seq 20); do cp "$jpeg" "$run/p$i.jpg"; printf '%s' "$i" >>"$run/p$i.jpg"; done
  t0=$(date +%s.%N)
  for i in $(seq 20); do up "$run/p$i.jpg" "p$i.jpg" >"$run/j$i.out" & done
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
  t1=$(date +%s.%N)
  ok=$(cat "$run"/j*.out | grep -c '^201 ' || true)
  stop
  echo "20 concurrent 12 MP JPEGs: $ok answered 201 in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s; peak memory $((peak / 1024)) MiB"
else
  echo "(no $jpeg: run the thumbnail benchmark with CAUSERIE_BENCH_JPEG first)"
fi
