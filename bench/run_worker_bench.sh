#!/usr/bin/env bash
# bench/run_worker_bench.sh <build-dir>
#
# The worker over pipes against the echo floor: echo, ping and list_items (50 items), K=64
# requests in flight, interleaved and repeated 3 times (DESIGN.md §9: this VM's runs vary a
# lot, so configurations are interleaved and medians and ratios come from one run). Prints
# every run, the medians, the ratios, and whether the issue's targets are met:
#   - ping throughput >= half the echo floor;
#   - list_items (50 items) >= 50k calls/s with K=64.
# Measures, never asserts: the exit status is 0 whether or not a target is met.
#
# Knobs (environment): BENCH_SECONDS (3), BENCH_REPEAT (3), BENCH_INFLIGHT (64),
# BENCH_WORKER_ARGS (extra molt-worker flags, e.g. "--threads 1").
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 <build-dir>" >&2
  exit 2
fi
build=$1
load_client="$build/bench/worker_load"
echo_floor="$build/bench/echo_floor"
worker="$build/apps/molt-worker/molt-worker"
for binary in "$load_client" "$echo_floor" "$worker"; do
  if [ ! -x "$binary" ]; then
    echo "bench: $binary is missing; build with: cmake --preset release && cmake --build --preset release" >&2
    exit 2
  fi
done

seconds=${BENCH_SECONDS:-3}
repeat=${BENCH_REPEAT:-3}
inflight=${BENCH_INFLIGHT:-64}
worker_args=${BENCH_WORKER_ARGS:-}

# A busy machine (another build, say) depresses every figure; say so next to them.
echo "bench: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$("$load_client" --modes echo,ping,list_items --repeat "$repeat" -k "$inflight" \
  --seconds "$seconds" --items 50 --echo "$echo_floor" --worker "$worker $worker_args")
echo "$results"
echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

ping_ratio=$(awk -F'[= ]+' '/^ratio +ping\/echo=/ {print $3}' <<<"$results")
list_rate=$(awk '/^median mode=list_items / {
  for (i = 1; i <= NF; i++) if ($i ~ /^calls_per_s=/) { sub("calls_per_s=", "", $i); print $i } }' \
  <<<"$results")

verdict() {  # verdict <label> <value> <threshold>
  if awk -v v="$2" -v t="$3" 'BEGIN { exit !(v >= t) }'; then
    echo "target $1: $2 (>= $3) met"
  else
    echo "target $1: $2 (>= $3) NOT met"
  fi
}
verdict "ping/echo throughput ratio" "$ping_ratio" 0.5
verdict "list_items (50 items, K=$inflight) calls/s" "$list_rate" 50000
