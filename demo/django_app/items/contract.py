"""The list_items request (DESIGN.md §5) as the baselines read it from a query string.

The same rules as the worker's decoder and apps/molt-worker/list_items.cpp, so that a bad
request is a 400 on every endpoint: ``user_id`` a required integer, ``limit`` an optional
integer (default 50, clamped to 1..500; empty means absent), both within int64 (the worker's
integers); ``q``, ``status`` and ``cursor`` optional strings, sent as given when present, even
empty (molt_accel's ``build_list_items_payload`` does the same).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import QueryDict

from molt_accel.contracts import INT64_MAX, check_search_text, parse_int64

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class InvalidRequest(ValueError):
    """A request the contract refuses; answered 400 with ``str(error)`` as the message."""


@dataclass(frozen=True)
class ListItemsQuery:
    user_id: int
    q: str | None = None
    status: str | None = None
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT


def clamp_limit(limit: int | None) -> int:
    return DEFAULT_LIMIT if limit is None else min(max(limit, 1), MAX_LIMIT)


def parse_list_items(params: QueryDict) -> ListItemsQuery:
    raw_user = params.get("user_id")
    if raw_user is None or raw_user == "":
        raise InvalidRequest("user_id: required")
    raw_limit = params.get("limit") or None
    q = params.get("q")
    check_search_text("q", q)
    return ListItemsQuery(
        user_id=parse_int64("user_id", raw_user),
        q=q,
        status=params.get("status"),
        cursor=params.get("cursor"),
        limit=clamp_limit(None if raw_limit is None else parse_int64("limit", raw_limit)),
    )


def cursor_after_id(cursor: str | None) -> int:
    """The item id a database-mode cursor stands for: digits (an optional ``-`` only for
    zero), as the worker's ``std::from_chars`` reads them; none means from the start."""
    if not cursor:
        return 0
    digits = cursor[1:] if cursor.startswith("-") else cursor
    if not digits or not all("0" <= c <= "9" for c in digits):
        raise InvalidRequest(f"cursor: expected an item id (digits), got {cursor!r}")
    value = int(cursor)
    if value < 0 or value > INT64_MAX:
        raise InvalidRequest(f"cursor: expected an item id (digits), got {cursor!r}")
    return value
