"""list_items in database mode, answered by Django: through the ORM and through raw SQL.

Both answer what apps/molt-worker/list_items.cpp answers: the user's items filtered by
``status`` and ``title`` containing ``q`` (``%`` and ``_`` taken literally), after the
cursor's id, ``limit`` of them in id order; ``next_cursor`` is the last id (a string) when the
page is full, else null; ``counts`` are per status over all the user's items, read from
``item_counts`` (kept by triggers, items/schema.py).
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from items.contract import ListItemsQuery, cursor_after_id
from items.models import Item, ItemCount

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
    counts = dict(
        ItemCount.objects.filter(user_id=query.user_id, status__in=("open", "closed")).values_list(
            "status", "n"
        )
    )
    return page_json(items, query.limit, counts.get("open", 0), counts.get("closed", 0))


_SELECT = "SELECT id, created_at, status, title, score, unread FROM items WHERE user_id = %s"
# The counts statement of apps/common/list_items_query.cpp: kept counts, two key lookups.
_COUNTS = (
    "SELECT coalesce((SELECT n FROM item_counts WHERE user_id = %s AND status = 'open'), 0), "
    "coalesce((SELECT n FROM item_counts WHERE user_id = %s AND status = 'closed'), 0)"
)


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
        cursor.execute(_COUNTS, [query.user_id, query.user_id])
        n_open, n_closed = cursor.fetchone()
    return page_json(items, query.limit, int(n_open), int(n_closed))
