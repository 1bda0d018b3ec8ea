"""Peak memory and time of one large db_query through molt-worker, against Python doing it.

Usage (from the repository root, with a release build):

    .venv/bin/python bench/db_query_memory.py build/release/apps/molt-worker/molt-worker \
        --rows 1000000 --backend both

A table of `--rows` rows (bigint, text, float8, text, int) is made in a SQLite file and, for
postgres, in a throwaway cluster (bench/pg_cluster.sh, 127.0.0.1). A fresh worker answers one
`SELECT * FROM t` through MoltClient in each result format; its peak resident size (VmHWM) is
read from /proc when the answer is in. The peer is a fresh Python process that runs the same
query with the standard sqlite3 module or psycopg, and encodes {columns, rows, row_count} with
msgpack.packb or json.dumps: the work Django would do itself. "x answer" is the peak over the
answer's size; "ratio" is the worker's peak over Python's.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from molt_accel.client import MoltClient

MB = 1_000_000
HERE = Path(__file__).resolve().parent

PYTHON_PEER = """
import json, sys, time
import msgpack

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

backend, target, result_format = sys.argv[1:4]
started = time.perf_counter()
if backend == "sqlite":
    import sqlite3
    connection = sqlite3.connect(target)
else:
    import psycopg
    connection = psycopg.connect(target)
cursor = connection.execute("SELECT * FROM t")
rows = [list(row) for row in cursor.fetchall()]
answer = {"columns": [d[0] for d in cursor.description], "rows": rows, "row_count": len(rows)}
data = msgpack.packb(answer) if result_format == "msgpack" else json.dumps(answer).encode()
print(len(data), peak() * 1024, time.perf_counter() - started)
"""


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def make_sqlite(path: Path, rows: int) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, title TEXT, score REAL, note TEXT, n INTEGER)")
    connection.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        ((i, f"title {i}", i / 7, "note", i % 97) for i in range(1, rows + 1)),
    )
    connection.commit()
    connection.close()


def make_postgres(dsn: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE t(id bigint PRIMARY KEY, title text, score float8, note text, n int)"
        )
        connection.execute(
            "INSERT INTO t SELECT g, 'title ' || g, g / 7.0, 'note', g %% 97 FROM generate_series(1, %s) g",
            (rows,),
        )


def worker_run(worker: str, env: dict[str, str], result_format: str) -> tuple[int, int, float]:
    with MoltClient(worker_cmd=[worker], env=env, max_frame_size=1 << 30) as client:
        client.start()
        pid = client.pid
        assert pid is not None
        started = time.perf_counter()
        answer = client.call(
            "db_query",
            {"sql": "SELECT * FROM t", "result_format": result_format},
            timeout_ms=600_000,
            decode_response=False,
        )
        took = time.perf_counter() - started
        return len(answer), vm_hwm(pid), took


def python_run(backend: str, target: str, result_format: str) -> tuple[int, int, float]:
    out = subprocess.run(
        [sys.executable, "-c", PYTHON_PEER, backend, target, result_format],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]), int(out[1]), float(out[2])


def report(backend: str, target: str, worker: str, env: dict[str, str]) -> None:
    for result_format in ("msgpack", "json"):
        size, peak, took = worker_run(worker, env, result_format)
        py_size, py_peak, py_took = python_run(backend, target, result_format)
        print(
            f"| {backend} | {result_format} | {size / MB:.1f} MB"
            f" | {peak / MB:.0f} MB ({peak / size:.1f}x answer) | {took:.2f} s"
            f" | {py_peak / MB:.0f} MB ({py_peak / py_size:.1f}x answer) | {py_took:.2f} s"
            f" | {peak / py_peak:.2f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("worker")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    worker = str(Path(args.worker).resolve())
    base = {
        "MOLT_DB_MAX_ROWS": str(args.rows),
        "MOLT_WORKER_MAX_FRAME_SIZE": str(1 << 30),
        "PATH": os.environ.get("PATH", ""),
    }
    print("| backend | format | answer | worker peak | worker | python peak | python | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="molt-dbmem-") as scratch:
        os.chmod(scratch, 0o755)  # the cluster may run as `postgres` (see pg_cluster.sh)
        if args.backend in ("sqlite", "both"):
            path = Path(scratch) / "t.sqlite3"
            make_sqlite(path, args.rows)
            report("sqlite", str(path), worker, {**base, "MOLT_DB_SQLITE_PATH": str(path)})
        if args.backend in ("postgres", "both"):
            cluster = Path(scratch) / "pg"
            dsn = subprocess.run(
                ["bash", str(HERE / "pg_cluster.sh"), "start", str(cluster)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            try:
                make_postgres(dsn, args.rows)
                report("postgres", dsn, worker, {**base, "MOLT_DB_POSTGRES_DSN": dsn})
            finally:
                subprocess.run(["bash", str(HERE / "pg_cluster.sh"), "stop", str(cluster)], check=False)


if __name__ == "__main__":
    main()
