#!/usr/bin/env bash
# Runs the property tests with many cases, in release mode:
#
#   ./scripts/fuzz.sh [CASES]     # default 1000000
#
# - tests/blackbox/proptest_protocol.rs: frame decoding and the validators;
# - src/hub/room.rs (`hub::room` unit tests): the sequencer and presence;
# - src/files/image.rs (`files::image` unit tests): uploaded images, seeds of
#   every format with bytes changed, cut and added.
#
# CASES is passed as PROPTEST_CASES (CI runs the default, 256). ROOM_CASES
# overrides it for the room properties, which cost more per case.
# A failure is saved under proptest-regressions/ and replayed first next time.
set -euo pipefail
cd "$(dirname "$0")/.."

cases="${1:-1000000}"
room_cases="${ROOM_CASES:-$cases}"

# Build first, so that the times below are the tests' own.
cargo test --release --features ssr --no-run --test blackbox --lib

run() {
    local label=$1
    shift
    local start
    start=$(date +%s)
    local status=0
    "$@" || status=$?
    echo "fuzz: $label: $(($(date +%s) - start)) s, exit $status"
    return "$status"
}

failed=0
run "protocol, PROPTEST_CASES=$cases" \
    env PROPTEST_CASES="$cases" cargo test --release --features ssr --test blackbox proptest_protocol:: ||
    failed=1
run "room, PROPTEST_CASES=$room_cases" \
    env PROPTEST_CASES="$room_cases" cargo test --release --features ssr --lib hub::room ||
    failed=1
run "images, PROPTEST_CASES=$cases" \
    env PROPTEST_CASES="$cases" cargo test --release --features ssr --lib files::image ||
    failed=1
exit "$failed"
