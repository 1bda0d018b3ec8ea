"""list_items in database mode, answered by Django: through the ORM and through raw SQL.

Both answer what apps/molt-worker/list_items.cpp answers: the user's items filtered by
``status`` and ``title`` containing ``q`` (``%`` and ``_`` taken literally), after the
cursor's id, ``limit`` of them in id order; ``next_cursor`` is the last id (a string) when the
page is full, else null; ``counts`` are per status over all the user's items.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Count, Q

from items.contract import ListItemsQuery, cursor_after_id
from items.models import Item

ItemRow = tuple[int, str, str, str, float, Any]


def item_json(row: ItemRow) -> dict[str, Any]:
    item_id, created_at, status, title, score, unread = row
    return {
        "id": item_id,
        "created_at": created_at,
        "status": status,
        "title": title,
        "score": float(score),
        "unread": bool(unread),
    }


def page_json(items: list[dict[str, Any]], limit: int, open_: int, closed: int) -> dict[str, Any]:
    return {
        "items": items,
        "next_cursor": str(items[-1]["id"]) if len(items) == limit else None,
        "counts": {"open": open_, "closed": closed},
    }


def list_items_orm(query: ListItemsQuery) -> dict[str, Any]:
    """What a Django developer writes: a filtered queryset, a slice, one aggregate."""
    rows = Item.objects.filter(user_id=query.user_id, id__gt=cursor_after_id(query.cursor))
    if query.status is not None:
        rows = rows.filter(status=query.status)
    if query.q is not None:
        rows = rows.filter(title__contains=query.q)
    items = [
        item_json((i.id, i.created_at, i.status, i.title, i.score, i.unread))
        for i in rows.order_by("id")[: query.limit]
    ]
    counts = Item.objects.filter(user_id=query.user_id).aggregate(
        open=Count("id", filter=Q(status="open")),
        closed=Count("id", filter=Q(status="closed")),
    )
    return page_json(items, query.limit, counts["open"], counts["closed"])


_SELECT = "SELECT id, created_at, status, title, score, unread FROM items WHERE user_id = %s"
_COUNTS = "SELECT status, count(*) FROM items WHERE user_id = %s GROUP BY status"


def like_contains(q: str) -> str:
    """``%q%`` with q's own ``%``, ``_`` and ``\\`` escaped for ``LIKE ... ESCAPE '\\'``."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_items_raw(query: ListItemsQuery) -> dict[str, Any]:
    """The worker's statements, through Django's connection."""
    sql = [_SELECT]
    params: list[Any] = [query.user_id]
    if query.status is not None:
        sql.append("AND status = %s")
        params.append(query.status)
    if query.q is not None:
        sql.append("AND title LIKE %s ESCAPE '\\'")
        params.append(like_contains(query.q))
    sql.append("AND id > %s ORDER BY id LIMIT %s")
    params += [cursor_after_id(query.cursor), query.limit]
    with connection.cursor() as cursor:
        cursor.execute(" ".join(sql), params)
        items = [item_json(row) for row in cursor.fetchall()]
        cursor.execute(_COUNTS, [query.user_id])
        counts = _status_counts(cursor.fetchall())
    return page_json(items, query.limit, counts.get("open", 0), counts.get("closed", 0))


def _status_counts(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    return {status: int(n) for status, n in rows}
