"""The demo's durable tasks (Django's Tasks API on molt's jobs, docs/django.md "Durable tasks").

``compute.enqueue(values=[...], scale=2)`` writes a job that ``molt-worker --jobs-sqlite`` (or
``--jobs-postgres``) runs with its ``compute`` export; ``compute.call(...)`` runs the Python
below, the same contract (DESIGN.md §5), here in the process."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from items import compute as python_compute


@task()
def compute(values: list[float], scale: float = 1.0, offset: float = 0.0) -> dict[str, Any]:
    return python_compute.compute({"values": values, "scale": scale, "offset": offset})
