"""``manage.py seed_demo``: the demo rows of molt-seed, written through Django's connection."""

from __future__ import annotations

import itertools
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from items.demo_rows import DEFAULT_ITEMS_PER_USER, DEFAULT_USERS, demo_rows
from items.schema import DIALECTS, INSERT

BATCH_ROWS = 10_000
MAX_COUNT = 10_000_000


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_COUNT:
        raise ValueError(f"expected 1..{MAX_COUNT}, got {value}")
    return value


class Command(BaseCommand):
    help = (
        "(Re)creates the items table with molt-seed's schema and its deterministic rows, in one transaction."
    )

    # Seeding needs no worker: skip the checks, which import the URLconf and so the offloaded
    # views (molt_offload checks its worker when the view is defined).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=_count, default=DEFAULT_USERS, help="users (ids 1..N)")
        parser.add_argument("--items", type=_count, default=DEFAULT_ITEMS_PER_USER, help="items per user")
        parser.add_argument(
            "--force", action="store_true", help="replace an items table that already has rows"
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias")

    def handle(self, *args: Any, **options: Any) -> None:
        users, items, force = options["users"], options["items"], options["force"]
        connection = connections[options["database"]]
        dialect = DIALECTS.get(connection.vendor)
        if dialect is None:
            raise CommandError(f"seed_demo supports SQLite and PostgreSQL, not {connection.vendor}")
        started = time.monotonic()
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            if "items" in connection.introspection.table_names(cursor):
                cursor.execute("SELECT count(*) FROM items")
                existing = cursor.fetchone()[0]
                if existing and not force:
                    raise CommandError(
                        f"the database already has an items table with {existing} rows; "
                        "pass --force to drop and recreate it"
                    )
                # An empty table is replaced too, so the schema is always exactly molt-seed's.
                cursor.execute("DROP TABLE items")  # and its triggers
            cursor.execute("DROP TABLE IF EXISTS item_counts")
            cursor.execute(dialect.create_table)
            rows = demo_rows(users, items)
            while batch := list(itertools.islice(rows, BATCH_ROWS)):
                cursor.executemany(INSERT, batch)
            # Built once over all the rows: cheaper than maintaining them insert by insert.
            for statement in (*dialect.create_indexes, *dialect.create_counts):
                cursor.execute(statement)
        took = time.monotonic() - started
        self.stdout.write(
            f"seed_demo: wrote {users * items} rows ({users} users x {items} items) in {took:.3f} s"
        )
