#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one at a time,
# under `nice -n 10`, and prints target, seconds, executions and findings.
#
#   fuzz/run.sh 600                      # every target, 10 minutes each
#   fuzz/run.sh 30 receiver_json         # one target, 30 seconds
#
# Needs the nightly toolchain and cargo-fuzz (installed from crates.io here
# when missing). Findings go to fuzz/artifacts/<target>/; the corpus grows
# in fuzz/corpus/<target>/ (seeded from fuzz/seeds/<target>/).
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(receiver_json receiver_msgpack receiver_decode encode_roundtrip sdk_answer sdk_answer_roundtrip)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if [ -d "seeds/$t" ]; then
        cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    fi
    log="artifacts/$t/last-run.log"
    if nice -n 10 cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        found=0
    else
        found=1
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "$t: ${secs}s, ${execs} executions, findings: ${found} (log: fuzz/$log)"
done
exit $status
