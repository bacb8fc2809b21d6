#!/usr/bin/env bash
# Precompresses the built page files (brotli and gzip) so the server sends
# them compressed without spending CPU per request.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in target/site/pkg/*.wasm target/site/pkg/*.js target/site/pkg/*.css; do
  [ -f "$f" ] || continue
  gzip -9 -k -f "$f"
  brotli -q 11 -k -f "$f"
done
