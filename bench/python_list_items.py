#!/usr/bin/env python3
"""list_items (database mode, DESIGN.md section 5) through Python's sqlite3, or psycopg 3 on
PostgreSQL (--postgres DSN): the peer figure for the worker's database mode. Same SQL as the
worker (the statement it runs when no filter is given), the same JSON answer built with
json.dumps, one connection, a closed loop on one thread (what one Django worker process does
per request).

usage: python_list_items.py (DB_PATH | --postgres DSN) [--seconds S] [--user U] [--limit N]
prints: python_<driver> calls_per_s=... p50_us=... p99_us=... cpu_us_per_call=...
"""

import argparse
import json
import sqlite3
import time

ITEMS_SQL = (
    "SELECT id, created_at, status, title, score, unread FROM items "
    "WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?"
)
# The worker's counts statement (apps/common/list_items_query.cpp): kept counts, two lookups.
COUNTS_SQL = (
    "SELECT coalesce((SELECT n FROM item_counts WHERE user_id = ? AND status = 'open'), 0), "
    "coalesce((SELECT n FROM item_counts WHERE user_id = ? AND status = 'closed'), 0)"
)


def list_items(conn, user_id, limit, items_sql=ITEMS_SQL, counts_sql=COUNTS_SQL):
    rows = conn.execute(items_sql, (user_id, 0, limit)).fetchall()
    n_open, n_closed = conn.execute(counts_sql, (user_id, user_id)).fetchone()
    counts = {"open": n_open, "closed": n_closed}
    items = [
        {"id": r[0], "created_at": r[1], "status": r[2], "title": r[3], "score": r[4], "unread": bool(r[5])}
        for r in rows
    ]
    next_cursor = str(items[-1]["id"]) if len(items) == limit else None
    body = {"items": items, "next_cursor": next_cursor, "counts": counts}
    return json.dumps(body, separators=(",", ":")).encode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("db", nargs="?")
    parser.add_argument("--postgres", help="libpq conninfo: use psycopg 3 instead of sqlite3")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--user", type=int, default=7)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    if args.postgres:
        import psycopg  # only needed for PostgreSQL

        conn = psycopg.connect(args.postgres, autocommit=True)
        driver = "psycopg"
        # psycopg's placeholders are %s; the statements are otherwise the same.
        sql = (ITEMS_SQL.replace("?", "%s"), COUNTS_SQL.replace("?", "%s"))
    else:
        conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True, check_same_thread=False)
        driver = "sqlite"
        sql = (ITEMS_SQL, COUNTS_SQL)

    def call():
        return list_items(conn, args.user, args.limit, *sql)

    if len(json.loads(call())["items"]) != args.limit:
        raise SystemExit("the database does not hold enough rows for this user")
    latencies = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    end = start + args.seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        call()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    latencies.sort()
    n = len(latencies)
    print(
        f"python_{driver} calls_per_s={n / elapsed:.0f} "
        f"p50_us={latencies[n // 2] * 1e6:.1f} p99_us={latencies[int(n * 0.99)] * 1e6:.1f} "
        f"cpu_us_per_call={cpu / n * 1e6:.2f}"
    )


if __name__ == "__main__":
    main()
