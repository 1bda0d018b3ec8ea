"""The list_items request (DESIGN.md §5) as the baselines read it from a query string.

The same rules as the worker's decoder and apps/molt-worker/list_items.cpp, so that a bad
request is a 400 on every endpoint: ``user_id`` a required integer, ``limit`` an optional
integer (default 50, clamped to 1..500; empty means absent), both within int64 (the worker's
integers); ``q``, ``status`` and ``cursor`` optional strings, sent as given when present, even
empty (molt_accel's ``build_list_items_payload`` does the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import QueryDict

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class InvalidRequest(ValueError):
    """A request the contract refuses; answered 400 with ``str(error)`` as the message."""


@dataclass(frozen=True)
class ListItemsQuery:
    user_id: int
    q: str | None = None
    status: str | None = None
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT


# ASCII digits, a sign, spaces around, as molt_accel's payload builder reads them (Python's
# int() alone would also take "1_000" and digits of other scripts).
_INTEGER = re.compile(r"[ \t]*[-+]?[0-9]+[ \t]*")


def parse_int64(name: str, text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise InvalidRequest(f"{name}: expected an integer, got {text!r}")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidRequest(f"{name}: out of range (64-bit integer)")
    return value


def clamp_limit(limit: int | None) -> int:
    return DEFAULT_LIMIT if limit is None else min(max(limit, 1), MAX_LIMIT)


def parse_list_items(params: QueryDict) -> ListItemsQuery:
    raw_user = params.get("user_id")
    if raw_user is None or raw_user == "":
        raise InvalidRequest("user_id: required")
    raw_limit = params.get("limit") or None
    q = params.get("q")
    if q is not None and "\0" in q:
        # SQLite's LIKE stops at a NUL, so "%\0%" would match every item; the worker refuses it.
        raise InvalidRequest("q: must not contain a NUL byte")
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
