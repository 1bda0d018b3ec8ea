"""The ``items`` table's DDL per backend, exactly as apps/molt-seed/main.cpp writes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    create_table: str
    create_indexes: tuple[str, ...]


# (user_id, id): a user's items in id order, the keyset page. (user_id, status): the
# per-status counts from the index alone. On SQLite the page index also carries the page's
# other columns, so the page is read from the index without a table lookup per row.
_STATUS_INDEX = "CREATE INDEX items_user_id_status ON items(user_id, status)"
_SQLITE_INDEXES = (
    "CREATE INDEX items_user_id_id ON items(user_id, id, created_at, status, title, score, unread)",
    _STATUS_INDEX,
)
_POSTGRES_INDEXES = ("CREATE INDEX items_user_id_id ON items(user_id, id)", _STATUS_INDEX)

DIALECTS = {
    "sqlite": Dialect(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, created_at TEXT "
        "NOT NULL, status TEXT NOT NULL, title TEXT NOT NULL, score REAL NOT NULL, unread "
        "INTEGER NOT NULL)",
        _SQLITE_INDEXES,
    ),
    "postgresql": Dialect(
        "CREATE TABLE items(id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, created_at TEXT NOT "
        "NULL, status TEXT NOT NULL, title TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, "
        "unread INTEGER NOT NULL)",
        _POSTGRES_INDEXES,
    ),
}

INSERT = (
    "INSERT INTO items(id, user_id, created_at, status, title, score, unread) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
