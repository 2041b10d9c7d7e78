#!/usr/bin/env bash
# The end-to-end benchmark, as reported in docs/PERFORMANCE.md: builds this
# SDK's sender and the receiver (release), the libhoney-rust 0.1.6 peer and the
# libhoney-py 2.4.0 peer (a venv from PyPI), then runs every sender as its own
# process against one receiver process over loopback and prints the tables.
#
#   bench/run.sh                      # everything (about 10 minutes on 2 cores)
#   bench/run.sh --skip-peers         # this SDK only
#   bench/run.sh --repeat 1 --events 100000 --big-events 200000   # quick look
#
# Options after the script name go to `libhoney-bench compare`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

cargo build --release -p libhoney-bench -p libhoney-receiver
# (a separate call: naming an example would build that example instead of the binaries)
cargo build --release -p libhoney-receiver --example ceiling
peer_args=()
if [[ " $* " != *" --skip-peers "* ]]; then
    (cd bench/peers/libhoney-rust-0.1.6 && CARGO_TARGET_DIR="$target/peers" cargo build --release --locked)
    bench/peers/libhoney-py/setup.sh
    peer_args=(--peer-rust "$target/peers/release/peer-libhoney-rust"
               --peer-py-python bench/peers/libhoney-py/.venv/bin/python
               --peer-py-script bench/peers/libhoney-py/send.py)
fi
exec "$target/release/libhoney-bench" compare \
    --receiver "$target/release/libhoney-receiver" \
    --ceiling "$target/release/examples/ceiling" \
    "${peer_args[@]}" "$@"
