#!/usr/bin/env bash
# A/B of two builds of `libhoney-bench`, alternating runs so that the VM's
# slow and fast spells fall on both (see docs/PERFORMANCE.md, "Noise").
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [PAIRS] [EVENTS]
#
# OLD_ARGS / NEW_ARGS (environment) add options to one side's `send`, for
# example NEW_ARGS="--transmission tokio" to set the tokio driver against
# the threaded one with the same binary for both.
#
# Needs a receiver on 127.0.0.1:18086:
#   libhoney-receiver --listen 127.0.0.1:18086 --quiet --no-record --track-unique count
# Prints one line per run: build, threads, CPU µs per event, events/s,
# delivered, peak RSS (MB).
set -euo pipefail
old="$1" new="$2" pairs="${3:-5}" events="${4:-1000000}"
url=http://127.0.0.1:18086
for i in $(seq 1 "$pairs"); do
    for t in 1 4; do
        # Alternate which build goes first.
        if (( i % 2 )); then order="old new"; else order="new old"; fi
        for which in $order; do
            bin=$old; extra=${OLD_ARGS:-}
            if [[ $which == new ]]; then bin=$new; extra=${NEW_ARGS:-}; fi
            curl -s -X POST "$url/_receiver/reset" >/dev/null
            # shellcheck disable=SC2086 # extra options are words
            "$bin" send --url "$url" --events "$events" --threads "$t" $extra | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('$which', $t, round(d['cpu_s'] / d['events'] * 1e6, 2), round(d['events'] / d['elapsed_s']),
      d['delivered'], round(d.get('peak_rss_mb', d.get('peak_rss_kb', 0) / 1024), 1), flush=True)"
        done
    done
done
