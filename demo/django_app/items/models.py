"""The ``items`` and ``item_counts`` tables that molt-seed writes and molt-worker's
``list_items`` reads.

The table is not Django's to create: ``seed_demo`` (or molt-seed) writes it with exactly the
schema of apps/molt-seed/main.cpp, so the worker and Django read the same file or database.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


class IntegerBooleanField(models.BooleanField):
    """A bool stored as INTEGER 0/1, molt-seed's column type on SQLite and PostgreSQL."""

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "integer"

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> bool | None:
        return None if value is None else bool(value)

    def get_db_prep_value(
        self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False
    ) -> int | None:
        value = super().get_db_prep_value(value, connection, prepared)
        return None if value is None else int(value)


class Item(models.Model):
    id = models.BigIntegerField(primary_key=True)
    user_id = models.BigIntegerField()
    created_at = models.TextField()
    status = models.TextField()
    title = models.TextField()
    score = models.FloatField()
    unread = IntegerBooleanField()

    class Meta:
        managed = False
        db_table = "items"
        # Documentation only (unmanaged): items/schema.py has the DDL, where on SQLite
        # items_user_id_id also carries the page's other columns after (user_id, id).
        indexes = [
            models.Index(fields=["user_id", "id"], name="items_user_id_id"),
            models.Index(fields=["user_id", "status"], name="items_user_id_status"),
        ]

    def __str__(self) -> str:
        return self.title


class ItemCount(models.Model):
    """A user's items per status, kept by triggers on ``items`` (items/schema.py)."""

    pk = models.CompositePrimaryKey("user_id", "status")
    user_id = models.BigIntegerField()
    status = models.TextField()
    n = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "item_counts"

    def __str__(self) -> str:
        return f"{self.user_id} {self.status}: {self.n}"
