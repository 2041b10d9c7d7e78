#!/usr/bin/env bash
# Bursts at the SDK's defaults (issue #13): what a new user sees when a loop
# or a hundred tasks send faster than the pipeline delivers. Builds the
# release binaries, starts a receiver on 127.0.0.1:18087, and runs each
# burst REPEAT times (default 5), one JSON line per run: sent, delivered,
# overflowed, failed, without a response, responses dropped, wall time, CPU
# seconds and peak RSS of the sending process (the receiver's not counted).
#
#   bench/burst.sh [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
repeat="${1:-5}"
cargo build --release -q -p libhoney-bench -p libhoney-receiver
port=18087
url=http://127.0.0.1:$port
target/release/libhoney-receiver --listen 127.0.0.1:$port --quiet --no-record >/dev/null 2>&1 &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -s "$url/_receiver/stats" >/dev/null 2>&1 && break
    sleep 0.1
done
for i in $(seq 1 "$repeat"); do
    target/release/burst thread --url "$url" --events 200000
    target/release/burst tasks --url "$url" --tasks 100 --per-task 1000
    target/release/burst tasks --url "$url" --tasks 100 --per-task 1000 --async
    target/release/burst tasks --url "$url" --tasks 100 --per-task 1000 --async --transmission tokio
    target/release/burst tasks --url "$url" --tasks 100 --per-task 1000 --transmission tokio
done
