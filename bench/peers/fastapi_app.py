"""The FastAPI peer of molt-demo for bench/run_web_bench.py and bench/run_ws_bench.py: the
same endpoints, written the way FastAPI's documentation writes them.

/json and /plaintext are the TechEmpower pair; /items is the list_items contract
(DESIGN.md section 5) on the same SQLite file as molt-demo (MOLT_BENCH_SQLITE), the same SQL,
one connection per worker thread.

    MOLT_BENCH_SQLITE=demo.sqlite3 uvicorn --loop uvloop --http httptools peers.fastapi_app:app
"""

from __future__ import annotations

import os
import sqlite3
import threading

from fastapi import FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse

app = FastAPI()
_local = threading.local()

_PAGE = (
    "SELECT id, created_at, status, title, score, unread FROM items "
    "WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?"
)
# The counts statement of apps/common/list_items_query.cpp: kept counts, two key lookups.
_COUNTS = (
    "SELECT coalesce((SELECT n FROM item_counts WHERE user_id = ? AND status = 'open'), 0), "
    "coalesce((SELECT n FROM item_counts WHERE user_id = ? AND status = 'closed'), 0)"
)


def _db() -> sqlite3.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        path = os.environ["MOLT_BENCH_SQLITE"]
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        _local.connection = connection
    return connection


# Nothing blocks here: `async def` runs on the event loop (a plain `def` would be sent to a
# thread pool, which FastAPI does for blocking code such as /items below).
@app.get("/json")
async def json_endpoint() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return "Hello, World!"


# bench/run_ws_bench.py: each message back as it came, as FastAPI's documentation writes it.
@app.websocket("/ws/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


# sqlite3 blocks: a plain `def`, which FastAPI runs in its thread pool.
@app.get("/items")
def items(user_id: int, limit: int = Query(50), cursor: str | None = None) -> dict[str, object]:
    limit = max(1, min(limit, 500))
    try:
        after = int(cursor) if cursor else 0
    except ValueError:
        raise HTTPException(status_code=400, detail="cursor: expected an item id") from None
    db = _db()
    rows = db.execute(_PAGE, (user_id, after, limit)).fetchall()
    n_open, n_closed = db.execute(_COUNTS, (user_id, user_id)).fetchone()
    page = [
        {
            "id": row[0],
            "created_at": row[1],
            "status": row[2],
            "title": row[3],
            "score": float(row[4]),
            "unread": bool(row[5]),
        }
        for row in rows
    ]
    return {
        "items": page,
        "next_cursor": str(page[-1]["id"]) if len(page) == limit else None,
        "counts": {"open": n_open, "closed": n_closed},
    }
