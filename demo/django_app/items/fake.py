"""list_items in fake-DB mode (DESIGN.md §5): the worker's deterministic rows, in Python.

The baseline for a worker started without a database, so that ``/offload/`` can be checked
against it byte for byte.
"""

from __future__ import annotations

from typing import Any

from items.contract import InvalidRequest, ListItemsQuery

MAX_USER_ID = 10**12


def _length(text: str | None) -> int:
    return 0 if text is None else len(text)


def list_items_fake(query: ListItemsQuery) -> dict[str, Any]:
    if abs(query.user_id) > MAX_USER_ID:
        raise InvalidRequest("user_id: out of range (|user_id| <= 10^12)")
    base = abs(query.user_id) * 1000 + _length(query.q) + _length(query.status) + _length(query.cursor)
    items = []
    counts = {"open": 0, "closed": 0}
    for idx in range(query.limit):
        item_id = base + idx
        status = "open" if idx % 2 == 0 else "closed"
        counts[status] += 1
        items.append(
            {
                "id": item_id,
                "created_at": f"2026-01-{idx % 28 + 1:02d}T00:00:{idx % 60:02d}Z",
                "status": status,
                "title": f"Item {item_id}",
                "score": (idx % 100) / 100,
                "unread": idx % 3 == 0,
            }
        )
    return {
        "items": items,
        "next_cursor": f"{query.user_id}:{query.limit}",
        "counts": counts,
    }
