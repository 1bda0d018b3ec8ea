#!/usr/bin/env bash
# bench/run_db_bench.sh <build-dir>
#
# list_items in database mode (50 rows from the seeded demo database, SQLite) through the
# worker, against the same two queries and the same JSON through Python's sqlite3 in the same
# run (bench/python_list_items.py). Rounds are interleaved and repeated (BENCH_REPEAT, 3).
# Target from the issue: the worker at least 5x the Python figure. Measures, never asserts.
# Then the same on PostgreSQL against psycopg 3, on a throwaway cluster (bench/pg_cluster.sh)
# seeded with the same rows; the Python side runs from .venv (scripts/setup installs psycopg).
# BENCH_WORKER_THREADS sets the worker's --threads (a handler waiting on PostgreSQL holds its
# thread, so more threads than cores can pay there).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 <build-dir>" >&2
  exit 2
fi
build=$1
here=$(cd "$(dirname "$0")" && pwd)
load_client="$build/bench/worker_load"
worker="$build/apps/molt-worker/molt-worker"
seed="$build/apps/molt-seed/molt-seed"
for binary in "$load_client" "$worker" "$seed"; do
  [ -x "$binary" ] || { echo "bench: $binary is missing; build the release preset" >&2; exit 2; }
done
seconds=${BENCH_SECONDS:-3}
repeat=${BENCH_REPEAT:-3}
inflight=${BENCH_INFLIGHT:-64}
threads=${BENCH_WORKER_THREADS:-}  # the worker's handler threads; empty: its default (cores)

db="$build/bench-demo.db"
# Seeded again when missing or written before the schema molt-seed writes now (the page index
# covering the page's columns, item_counts): an older file would measure the old schema.
current_schema() {
  python3 -c 'import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
covering = len(c.execute("PRAGMA index_info(items_user_id_id)").fetchall()) == 7
counts = c.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", ("item_counts",)).fetchone()[0]
sys.exit(0 if covering and counts else 1)' "$1" 2>/dev/null
}
[ -s "$db" ] && current_schema "$db" || "$seed" --sqlite "$db" --force

echo "bench: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate() { sed -E 's/.*calls_per_s=([0-9.]+).*/\1/' <<<"$1"; }

# compare <label> <python peer args...>: interleaved rounds, worker env already exported.
compare() {
  local label=$1
  shift
  local worker_rates=() python_rates=() line
  for round in $(seq 1 "$repeat"); do
    line=$("$load_client" --modes list_items -k "$inflight" --seconds "$seconds" --items 50 \
      --worker "$worker${threads:+ --threads $threads}" | grep '^run')
    echo "worker  $line"
    worker_rates+=("$(rate "$line")")
    line=$("$python" "$here/python_list_items.py" "$@" --seconds "$seconds" --limit 50)
    echo "python  $line"
    python_rates+=("$(rate "$line")")
  done
  local w p ratio met
  w=$(median "${worker_rates[@]}")
  p=$(median "${python_rates[@]}")
  ratio=$(awk -v w="$w" -v p="$p" 'BEGIN {printf "%.1f", w / p}')
  met=$(awk -v r="$ratio" 'BEGIN {print (r >= 5) ? "met" : "NOT met"}')
  echo "median  $label worker calls_per_s=$w python calls_per_s=$p ratio=$ratio"
  echo "target  $label: worker >= 5x Python on list_items (database mode): $ratio ($met)"
}

python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python

MOLT_DB_SQLITE_PATH="$db" compare sqlite "$db"

if "$python" -c 'import psycopg' 2>/dev/null; then
  pgdir=$(mktemp -d /tmp/molt-bench-pg.XXXXXX)
  chmod 755 "$pgdir"
  trap '"$here/pg_cluster.sh" stop "$pgdir/pg"; rmdir "$pgdir" 2>/dev/null || true' EXIT
  dsn=$("$here/pg_cluster.sh" start "$pgdir/pg")
  "$seed" --postgres "$dsn" --force
  # Settle the fresh table first (visibility map for the index-only counts, planner
  # statistics): otherwise autovacuum does it in the middle of the rounds, at a random moment.
  "$python" -c 'import sys, psycopg; psycopg.connect(sys.argv[1], autocommit=True).execute("VACUUM ANALYZE items")' "$dsn"
  MOLT_DB_POSTGRES_DSN="$dsn" compare postgres --postgres "$dsn"
else
  echo "bench: psycopg is not installed (run scripts/setup); skipping PostgreSQL"
fi
echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
