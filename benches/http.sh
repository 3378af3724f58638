#!/usr/bin/env bash
# The HTTP comparison: the bench server with and without the gate, under wrk, on loopback.
# The server runs on one core and wrk on the other (taskset); runs alternate between the
# two servers, in turn plain first and gated first, so that a slow moment of the machine
# touches both.
#
#   benches/http.sh [runs] [seconds]      (defaults: 5 runs of 5 s per case)
#
# Prints one line per run and a summary: requests per second and p99 latency, with the gate
# over without it, allowed and denied; the ratio of the means, and the median and range of
# each run's own ratio (steadier on a machine whose speed swings from run to run).
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-5}"
seconds="${2:-5}"
server_core="${SERVER_CORE:-1}"
load_core="${LOAD_CORE:-0}"
connections="${CONNECTIONS:-32}"

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
cargo build --release --example bench_server >&2
server="${CARGO_TARGET_DIR:-target}/release/examples/bench_server"

start() {
  taskset -c "$server_core" "$server" --port "$1" ${2:+--gate} >/dev/null &
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "the bench server on port $1 did not start" >&2
  exit 1
}

start 8181 ""
plain=$!
start 8182 gate
gated=$!
trap 'kill $plain $gated 2>/dev/null || true' EXIT

# wrk's p99 in microseconds, from its --latency table.
p99_us() {
  awk '$1 == "99%" {
    v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
    if (unit == "us") print v; else if (unit == "ms") print v * 1000; else print v * 1000000
  }'
}

load() { # port source-header
  taskset -c "$load_core" wrk -t1 -c"$connections" -d"${seconds}s" --latency \
    -H "x-source-api: $2" -H "x-target-api: acme/orders" "http://127.0.0.1:$1/orders" 2>&1
}

echo "case run rps p99_us"
for run in $(seq "$runs"); do
  for case in allowed denied; do
    source="acme/billing"; [ "$case" = denied ] && source="acme/crm"
    # Odd runs load the plain server first, even runs the gated one: a machine that slows
    # down or speeds up over a pair does not always favour the same side.
    sides="plain gated"; [ $((run % 2)) = 0 ] && sides="gated plain"
    for side in $sides; do
      port=8181; [ "$side" = gated ] && port=8182
      out="$(load "$port" "$source")"
      rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
      p99="$(p99_us <<<"$out")"
      non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
      echo "$case/$side $run $rps $p99 ${non2xx:+non2xx=$non2xx}"
    done
  done
done | tee /tmp/http-bench.$$
echo
awk '
  { rps[$1] += $3; n[$1]++; p[$1, n[$1]] = $4; r[$1, $2] = $3 }
  END {
    for (c in n) mean[c] = rps[c] / n[c]
    split("allowed denied", cases, " ")
    for (i = 1; i <= 2; i++) {
      c = cases[i]
      printf "%s: rps with gate / without = %.3f\n", c, mean[c "/gated"] / mean[c "/plain"]
      # The same run'"'"'s pair, gated over plain: the median and the range over the runs.
      runs = n[c "/plain"]
      for (j = 1; j <= runs; j++) ratio[j] = r[c "/gated", j] / r[c "/plain", j]
      for (j = 2; j <= runs; j++) for (k = j; k > 1 && ratio[k - 1] > ratio[k]; k--) {
        t = ratio[k]; ratio[k] = ratio[k - 1]; ratio[k - 1] = t
      }
      median = runs % 2 ? ratio[(runs + 1) / 2] : (ratio[runs / 2] + ratio[runs / 2 + 1]) / 2
      printf "  pairs: median %.3f, runs %.3f..%.3f\n", median, ratio[1], ratio[runs]
      for (s = 1; s <= 2; s++) {
        side = s == 1 ? "plain" : "gated"; key = c "/" side
        lo = 1e18; hi = 0; sum = 0
        for (j = 1; j <= n[key]; j++) { v = p[key, j]; sum += v; if (v < lo) lo = v; if (v > hi) hi = v }
        printf "  %s: mean rps %.0f, p99 mean %.0f us (runs %.0f..%.0f us)\n", side, mean[key], sum / n[key], lo, hi
      }
    }
  }' /tmp/http-bench.$$
rm -f /tmp/http-bench.$$
