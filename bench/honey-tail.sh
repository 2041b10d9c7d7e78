#!/usr/bin/env bash
# `honey tail --backfill` throughput and memory, as reported in
# docs/PERFORMANCE.md ("honey: tail and send"). Builds honey and the receiver
# (release), generates a JSON log and an nginx combined log deterministically,
# starts the receiver binary on loopback (not recording; it counts distinct
# `seq` values), and for each log runs
#   /usr/bin/time -v honey tail --backfill ...
# reporting lines/s, lines lost (accepted by the receiver vs. lines in the
# file) and peak RSS. Then it pipes the first --send-lines JSON lines through
# `honey send --stdin`, one process per line, and extrapolates that rate to
# the full file (labelled as such).
#
#   nice -n 10 bench/honey-tail.sh                  # 1,000,000 lines each
#   nice -n 10 bench/honey-tail.sh --lines 200000 --send-lines 500   # quick look
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
lines=1000000
send_lines=2000
work="${TMPDIR:-/tmp}/honey-tail-bench"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --lines) lines="$2"; shift 2 ;;
        --send-lines) send_lines="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

cargo build --release -p libhoney-cli -p libhoney-receiver
honey="$target/release/honey"
receiver="$target/release/libhoney-receiver"
mkdir -p "$work"

# Deterministic logs (awk with a fixed seed; same bytes on every run).
json="$work/app-$lines.jsonl"
nginx="$work/access-$lines.log"
if [[ ! -s "$json" ]]; then
    awk -v n="$lines" 'BEGIN {
        srand(42);
        split("GET GET GET POST PUT DELETE", m, " ");
        split("200 200 200 200 201 204 301 404 500 503", st, " ");
        split("api web worker auth", svc, " ");
        for (i = 0; i < n; i++) {
            s = 1700000000 + int(i / 1000);
            printf("{\"time\":\"2023-11-14T22:%02d:%02d.%03dZ\",\"seq\":%d,\"level\":\"%s\",\"service\":\"%s\",\"method\":\"%s\",\"path\":\"/v1/items/%d\",\"status\":%d,\"duration_ms\":%.3f,\"user_id\":%d,\"request_id\":\"%08x-%04x\",\"msg\":\"request handled\"}\n",
                int(i / 60000) % 60, int(i / 1000) % 60, i % 1000, i,
                (i % 50 == 0) ? "warn" : "info", svc[1 + i % 4], m[1 + int(rand() * 6)],
                int(rand() * 100000), st[1 + int(rand() * 10)], rand() * 250,
                int(rand() * 1000000), int(rand() * 4294967295), i % 65536);
        }
    }' > "$json"
fi
if [[ ! -s "$nginx" ]]; then
    awk -v n="$lines" 'BEGIN {
        srand(7);
        split("GET GET GET POST PUT DELETE", m, " ");
        split("200 200 200 200 201 204 301 404 500 503", st, " ");
        split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mon, " ");
        for (i = 0; i < n; i++) {
            printf("10.%d.%d.%d - %s [%02d/%s/2023:%02d:%02d:%02d +0000] \"%s /shop/items/%d?ref=%d HTTP/1.1\" %d %d \"https://example.com/p/%d\" \"Mozilla/5.0 (X11; Linux x86_64) bench/%d\"\n",
                int(rand() * 256), int(rand() * 256), int(rand() * 256),
                (i % 10 == 0) ? "alice" : "-", 1 + int(i / 86400) % 28, mon[1 + int(i / 2419200) % 12],
                int(i / 3600) % 24, int(i / 60) % 60, i % 60,
                m[1 + int(rand() * 6)], int(rand() * 100000), i,
                st[1 + int(rand() * 10)], int(rand() * 50000), int(rand() * 1000), i % 100);
        }
    }' > "$nginx"
fi

# The receiver, as its own process on loopback.
rx_out="$work/receiver.out"
"$receiver" --listen 127.0.0.1:0 --quiet --no-record --track-unique seq > "$rx_out" 2> "$work/receiver.err" &
rx_pid=$!
trap 'kill -TERM $rx_pid 2>/dev/null || true' EXIT
url=""
for _ in $(seq 600); do
    url="$(head -1 "$rx_out" 2>/dev/null | awk '/^listening on/ {print $3}')"
    [[ -n "$url" ]] && break
    sleep 0.05
done
[[ -n "$url" ]] || { echo "the receiver did not start" >&2; cat "$work/receiver.err" >&2; exit 1; }
stats() { curl -s "$url/_receiver/stats"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
reset() { curl -s -X POST "$url/_receiver/reset" > /dev/null; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "receiver: $url"
printf '\n| run | lines | seconds | lines/s | lost | peak RSS | honey CPU s |\n|---|---:|---:|---:|---:|---:|---:|\n'

run_tail() { # name file parser
    local name="$1" file="$2" parser="$3"
    reset
    local log="$work/$name.time"
    /usr/bin/time -v "$honey" tail --backfill --quiet --api-host "$url" -k bench -d bench \
        --parser "$parser" "$file" 2> "$log" || { cat "$log" >&2; exit 1; }
    local wall rss accepted n cpu
    wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')"
    rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")"
    cpu="$(awk -F': ' '/User time|System time/ {t += $2} END {print t}' "$log")"
    n="$(wc -l < "$file")"
    # The receiver counts an event once its answer is written: give the last one a moment.
    sleep 0.2
    accepted="$(stats | field events_accepted)"
    printf '| %s | %d | %.2f | %.0f | %d | %.1f MB | %.2f |\n' "$name" "$n" "$wall" \
        "$(echo "$n / $wall" | bc -l)" "$((n - accepted))" "$(echo "$rss / 1024" | bc -l)" "$cpu"
}

run_tail "tail --backfill, JSON" "$json" json
run_tail "tail --backfill, nginx preset" "$nginx" nginx

# One `honey send` process per line, on a sample, extrapolated.
reset
head -n "$send_lines" "$json" > "$work/sample.jsonl"
start=$(date +%s.%N)
while IFS= read -r l; do
    printf '%s' "$l" | "$honey" send --stdin --api-host "$url" -k bench -d bench
done < "$work/sample.jsonl"
end=$(date +%s.%N)
secs="$(echo "$end - $start" | bc -l)"
accepted="$(stats | field events_accepted)"
rate="$(echo "$send_lines / $secs" | bc -l)"
printf '| send, one process per line (%d-line sample) | %d | %.2f | %.0f | %d | - | - |\n' \
    "$send_lines" "$send_lines" "$secs" "$rate" "$((send_lines - accepted))"
printf '| send, extrapolated to %d lines | %d | %.0f (extrapolated) | %.0f | - | - | - |\n' \
    "$lines" "$lines" "$(echo "$lines / $rate" | bc -l)" "$rate"
