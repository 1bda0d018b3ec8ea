"""Run inside a fresh virtualenv where only the molt_accel wheel (and its dependencies) is
installed: the decorator must find the bundled molt-worker and its packaged manifest on its
own, with MOLT_WORKER_CMD unset and the virtualenv not on PATH."""

from __future__ import annotations

import json
import os
import sys

import django
from django.conf import settings

assert "MOLT_WORKER_CMD" not in os.environ, "the check needs MOLT_WORKER_CMD unset"
settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver"])
django.setup()

from django.test import RequestFactory  # noqa: E402

import molt_accel  # noqa: E402
from molt_accel.config import default_worker_cmd  # noqa: E402

command = default_worker_cmd()
assert command[0].startswith(sys.prefix), f"worker not from this environment: {command}"


@molt_accel.molt_offload(entry="list_items")
def view(request: object) -> None:
    raise AssertionError("the worker should have answered")


response = view(RequestFactory().get("/items", {"user_id": "9", "limit": "3"}))
assert response.status_code == 200, response.content
items = json.loads(response.content)["items"]
assert [item["id"] for item in items] == [9000, 9001, 9002], items
molt_accel.reset_shared_client()
print(f"installed wheel OK: {command[0]} answered list_items")
