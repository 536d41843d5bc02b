#!/usr/bin/env bash
# Runs every posthaste benchmark and prints the performance table (README, "Performance").
#
#   bash scripts/bench.sh
#
# About 7 minutes on 2 cores after the release build; longer while the resilience scenarios
# miss their goals (their waits are bounded). Installs the Python baseline's dependencies
# (requests, tenacity) with pip, and wrk with apt-get, when they are missing. Everything talks to
# loopback servers it starts itself. Raw results: $CARGO_TARGET_DIR/posthaste-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export POSTHASTE_BENCH_OUT="$CARGO_TARGET_DIR/posthaste-bench"
rm -rf "$POSTHASTE_BENCH_OUT" "$CARGO_TARGET_DIR/criterion/send" "$CARGO_TARGET_DIR/criterion/encode_500"
mkdir -p "$POSTHASTE_BENCH_OUT"

if ! python3 -c 'import requests, tenacity' 2>/dev/null; then
    echo "== installing the Python baseline's dependencies (requests, tenacity)"
    python3 -m pip install --quiet requests tenacity ||
        echo "(pip failed: the Python baseline will be left out of the table)"
fi

if ! command -v wrk >/dev/null; then
    echo "== installing wrk (the sink's own limit is measured with it)"
    { apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; } >/dev/null 2>&1 ||
        echo "(wrk could not be installed: the sink's limit will be left out of the table)"
fi

echo "== send and encode (criterion)"
cargo bench --bench send -- --warm-up-time 1 --measurement-time 3 2>&1 | tee "$POSTHASTE_BENCH_OUT/send.txt"
echo "== logging front end against fmt().json() + non_blocking (criterion)"
cargo bench --bench logging --all-features -- --warm-up-time 1 --measurement-time 3 2>&1 | tee "$POSTHASTE_BENCH_OUT/logging.txt"
echo "== end to end"
cargo bench --bench e2e 2>&1 | tee "$POSTHASTE_BENCH_OUT/e2e.txt"
echo "== CPU overhead and memory under an outage"
cargo bench --bench overhead 2>&1 | tee "$POSTHASTE_BENCH_OUT/overhead.txt"
# The bench writes its own figures to resilience.txt; the whole output goes to resilience.log.
echo "== resilience under faults (flaky, outage, fleet), library defaults"
cargo bench --bench resilience 2>&1 | tee "$POSTHASTE_BENCH_OUT/resilience.log"

echo
python3 scripts/bench_table.py "$POSTHASTE_BENCH_OUT" "$CARGO_TARGET_DIR/criterion" | tee "$POSTHASTE_BENCH_OUT/table.md"
