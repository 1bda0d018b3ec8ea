"""``manage.py seed_demo`` writes what molt-seed writes: the same schema, the same rows."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from demo_testing import SEED_ITEMS, SEED_USERS
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import Count

from items.models import Item, ItemCount

pytestmark = pytest.mark.django_db


def _dump(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return connection.execute(sql).fetchall()


ROWS = "SELECT id, user_id, created_at, status, title, score, unread FROM items ORDER BY id"
TYPES = (
    "SELECT typeof(id), typeof(user_id), typeof(created_at), typeof(status), typeof(title), "
    "typeof(score), typeof(unread), count(*) FROM items GROUP BY 1, 2, 3, 4, 5, 6, 7"
)
SCHEMA = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"


@pytest.fixture(scope="module")
def molt_seed_db(sqlite_only: None, seed_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("molt-seed") / "seed.sqlite3"
    command = [str(seed_bin), "--sqlite", str(path), "--users", str(SEED_USERS)]
    subprocess.run([*command, "--items", str(SEED_ITEMS)], check=True, capture_output=True)
    return path


def test_same_rows_as_molt_seed(molt_seed_db: Path) -> None:
    ours = _dump(settings.DATABASES["default"]["NAME"], ROWS)
    theirs = _dump(molt_seed_db, ROWS)
    assert len(ours) == SEED_USERS * SEED_ITEMS
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine == reference
        assert [type(v) for v in mine] == [type(v) for v in reference], mine


def test_same_schema_and_storage_types_as_molt_seed(molt_seed_db: Path) -> None:
    ours = settings.DATABASES["default"]["NAME"]
    assert _dump(ours, SCHEMA) == _dump(molt_seed_db, SCHEMA)
    assert _dump(ours, TYPES) == _dump(molt_seed_db, TYPES)


def test_refuses_to_overwrite_without_force() -> None:
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", users=1, items=1)


def test_counts_are_checked() -> None:
    with pytest.raises(CommandError):
        call_command("seed_demo", "--users", "0", "--force")


def _kept_and_counted() -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]:
    kept = {(c.user_id, c.status): c.n for c in ItemCount.objects.filter(n__gt=0)}
    counted = {
        (row["user_id"], row["status"]): row["n"]
        for row in Item.objects.values("user_id", "status").annotate(n=Count("id"))
    }
    return kept, counted


def test_item_counts_follow_orm_writes() -> None:
    kept, counted = _kept_and_counted()
    assert kept == counted
    assert sum(kept.values()) == SEED_USERS * SEED_ITEMS
    writes = [
        lambda: Item.objects.create(
            id=10_000_000, user_id=1, created_at="x", status="archived", title="t", score=0.0, unread=False
        ),
        lambda: Item.objects.filter(user_id=2).update(status="closed"),
        lambda: Item.objects.filter(id=10_000_000).update(user_id=3),
        lambda: Item.objects.filter(user_id=1, status="open").delete(),
    ]
    for write in writes:
        write()
        kept, counted = _kept_and_counted()
        assert kept == counted
    assert (3, "archived") in kept
    assert (1, "open") not in kept
    assert kept[(2, "closed")] == SEED_ITEMS
