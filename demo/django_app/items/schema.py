"""The ``items`` and ``item_counts`` DDL per backend, exactly as apps/molt-seed/demo_seed.cpp
writes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    create_table: str
    create_indexes: tuple[str, ...]
    # item_counts: a user's items per status, filled from the rows, then kept by triggers on
    # every insert, delete and change of user_id or status (a counter cache). list_items reads
    # its ``counts`` there: two key lookups instead of counting the user's index entries.
    create_counts: tuple[str, ...]


# (user_id, id): a user's items in id order, the keyset page. (user_id, status): a user's items
# per status counted from the index alone (item_counts is filled that way). On SQLite the page
# index also carries the page's other columns, so the page is read from the index without a
# table lookup per row.
_STATUS_INDEX = "CREATE INDEX items_user_id_status ON items(user_id, status)"
_SQLITE_INDEXES = (
    "CREATE INDEX items_user_id_id ON items(user_id, id, created_at, status, title, score, unread)",
    _STATUS_INDEX,
)
_POSTGRES_INDEXES = ("CREATE INDEX items_user_id_id ON items(user_id, id)", _STATUS_INDEX)

_FILL_COUNTS = (
    "INSERT INTO item_counts(user_id, status, n) "
    "SELECT user_id, status, count(*) FROM items GROUP BY user_id, status"
)
_SQLITE_COUNTS = (
    "CREATE TABLE item_counts(user_id INTEGER NOT NULL, status TEXT NOT NULL, n INTEGER NOT "
    "NULL, PRIMARY KEY(user_id, status)) WITHOUT ROWID",
    _FILL_COUNTS,
    "CREATE TRIGGER items_count_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO item_counts(user_id, status, n) VALUES (NEW.user_id, NEW.status, 1) "
    "ON CONFLICT(user_id, status) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER items_count_delete AFTER DELETE ON items BEGIN "
    "UPDATE item_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status; END",
    "CREATE TRIGGER items_count_update AFTER UPDATE OF user_id, status ON items BEGIN "
    "UPDATE item_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status; "
    "INSERT INTO item_counts(user_id, status, n) VALUES (NEW.user_id, NEW.status, 1) "
    "ON CONFLICT(user_id, status) DO UPDATE SET n = n + 1; END",
)
_POSTGRES_COUNTS = (
    "CREATE TABLE item_counts(user_id BIGINT NOT NULL, status TEXT NOT NULL, n BIGINT NOT "
    "NULL, PRIMARY KEY(user_id, status))",
    _FILL_COUNTS,
    "CREATE OR REPLACE FUNCTION items_count_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP <> 'INSERT' THEN "
    "UPDATE item_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status; "
    "END IF; "
    "IF TG_OP <> 'DELETE' THEN "
    "INSERT INTO item_counts(user_id, status, n) VALUES (NEW.user_id, NEW.status, 1) "
    "ON CONFLICT (user_id, status) DO UPDATE SET n = item_counts.n + 1; "
    "END IF; "
    "RETURN NULL; "
    "END $$",
    "CREATE TRIGGER items_count_change AFTER INSERT OR DELETE OR UPDATE OF user_id, status "
    "ON items FOR EACH ROW EXECUTE FUNCTION items_count_change()",
)

DIALECTS = {
    "sqlite": Dialect(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, created_at TEXT "
        "NOT NULL, status TEXT NOT NULL, title TEXT NOT NULL, score REAL NOT NULL, unread "
        "INTEGER NOT NULL)",
        _SQLITE_INDEXES,
        _SQLITE_COUNTS,
    ),
    "postgresql": Dialect(
        "CREATE TABLE items(id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, created_at TEXT NOT "
        "NULL, status TEXT NOT NULL, title TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, "
        "unread INTEGER NOT NULL)",
        _POSTGRES_INDEXES,
        _POSTGRES_COUNTS,
    ),
}

INSERT = (
    "INSERT INTO items(id, user_id, created_at, status, title, score, unread) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
