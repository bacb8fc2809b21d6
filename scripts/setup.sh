#!/usr/bin/env bash
# Installs whatever Causerie's build and tests need and is missing, on Debian.
# Safe to run again: every step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_missing=()
have cc || apt_missing+=(build-essential)
have pkg-config || apt_missing+=(pkg-config)
have chromium || apt_missing+=(chromium)
have brotli || apt_missing+=(brotli)
have node || apt_missing+=(nodejs)
have npm || apt_missing+=(npm)
if [ ${#apt_missing[@]} -gt 0 ]; then
  say "apt-get install ${apt_missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_missing[@]}"
fi

if ! have cargo; then
  echo "Rust is missing: install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version >/dev/null 2>&1; then
  say "cargo install cargo-leptos 0.3.10 (about 14 minutes)"
  # 0.3.10 is the newest that builds on rustc 1.95.
  cargo install cargo-leptos --locked --version 0.3.10
fi

# cargo-leptos runs the wasm-bindgen on PATH: it must match Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
got=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$want" != "$got" ]; then
  say "cargo install wasm-bindgen-cli $want"
  # Not --locked: its lock file names a crate version the registry here lacks.
  cargo install wasm-bindgen-cli --version "$want" --force
fi

# A filesystem-backed S3 server, for the tests of the S3 file store.
if ! have s3s-fs; then
  say "cargo install s3s-fs 0.14.1 (about 5 minutes)"
  cargo install s3s-fs --version 0.14.1 --features binary --locked
fi

if ! have wasm-opt; then
  say "npm install -g binaryen (wasm-opt)"
  npm install -g binaryen
fi

if [ ! -d end2end/node_modules ]; then
  say "npm ci in end2end/"
  (cd end2end && npm ci --no-audit --no-fund)
fi
say "setup done"
