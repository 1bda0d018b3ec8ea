#!/usr/bin/env bash
# fuzz/run.sh <build-dir> <seconds-per-target>
#
# Runs every libFuzzer target for the given time, starting from seeds written by make_seeds
# plus whatever earlier runs found. Exits non-zero when any target finds a crash, a sanitizer
# report or a failed property; the input that did it is saved under
# <build-dir>/fuzz-artifacts/<target>/ and can be replayed with `<target> <file>`.
#
# Everything it writes stays inside <build-dir>: the checked-in tree is never touched.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <build-dir> <seconds-per-target>" >&2
  exit 2
fi
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
targets=(fuzz_frames fuzz_worker_stream fuzz_typed_decode fuzz_router fuzz_http fuzz_form)

for target in "${targets[@]}" make_seeds; do
  if [ ! -x "$build/fuzz/$target" ]; then
    echo "fuzz: $build/fuzz/$target is missing; build with: cmake --preset fuzz && cmake --build --preset fuzz" >&2
    exit 2
  fi
done

seeds="$build/fuzz-seeds"
rm -rf "$seeds"
"$build/fuzz/make_seeds" "$seeds" || exit 2

# UBSan already aborts (-fno-sanitize-recover); make ASan and UBSan reports come with stacks.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for target in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$target"     # grows across runs; the first directory is written
  artifacts="$build/fuzz-artifacts/$target"
  log="$build/fuzz-logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  dict=()
  [ -f "$here/$target.dict" ] && dict=(-dict="$here/$target.dict")
  # libFuzzer stops itself after -max_total_time; the outer timeout bounds a hang at exit.
  timeout --kill-after=10 $((seconds + 60)) \
    "$build/fuzz/$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" "$seeds/$target" \
    >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $target ok (${seconds}s, ${runs:-?} runs, ${cov:-cov: ?})"
  else
    failed+=("$target")
    echo "fuzz: $target FAILED (exit $rc); log: $log" >&2
    grep -E 'ERROR|SUMMARY|fuzz property failed|runtime error|Test unit written' "$log" \
      | head -20 >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
