"""Django's Tasks API (the ``django-tasks`` package) on molt's durable jobs (docs/django.md,
"Durable tasks"). A task enqueued here is a row of the jobs table in one of the project's
databases; ``molt-worker --jobs-sqlite PATH`` (or ``--jobs-postgres DSN``) runs it with the
worker export of the task's name, and its answer is the task's return value::

    # settings.py
    TASKS = {"default": {"BACKEND": "molt_accel.tasks.MoltTaskBackend"}}

    # myapp/tasks.py
    from django_tasks import task

    @task()
    def compute(values: list[float], scale: float = 1.0) -> dict:
        ...  # what task.call() runs here; molt-worker's "compute" export runs the enqueued ones

    result = compute.enqueue(values=[1, 2, 3], scale=2)
    result.refresh(); result.status, result.return_value

The rows are the ones ``molt::jobs::JobStore`` writes (docs/jobs.md): retries with backoff,
leases, at-least-once delivery, and a bound on a queue's unfinished jobs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.core import checks
from django.db import connections, transaction
from django.utils import timezone as django_timezone
from django.utils.module_loading import import_string
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.base import Task, TaskError, TaskResult, TaskResultStatus
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist
from django_tasks.signals import task_enqueued

from .config import ExportSpec, default_worker_cmd, load_manifest
from .errors import MoltBusy

F = TypeVar("F", bound=Callable[..., Any])

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,49}")
_STATUS = {
    "queued": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "succeeded": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}


class TaskQueueFull(MoltBusy):
    """The task's queue holds its most unfinished tasks (the backend's ``MAX_PENDING``)."""


class TaskFailed(Exception):
    """What a failed task's ``errors`` name: the worker's message is its traceback."""


def molt_entry(name: str) -> Callable[[F], F]:
    """Names the worker export that runs a task whose function has another name::

    @task()
    @molt_entry("compute")
    def scale_values(values: list[float], scale: float = 1.0) -> dict: ...
    """

    def mark(function: F) -> F:
        function.molt_entry = name  # type: ignore[attr-defined]
        return function

    return mark


def entry_of(task: Task) -> str:
    """The export a task runs as: its ``molt_entry``, else its function's name."""
    return getattr(task.func, "molt_entry", None) or task.func.__name__


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(ms: int | None) -> datetime | None:
    """A stored time as Django gives times: aware in UTC with USE_TZ, else naive local."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment if settings.USE_TZ else django_timezone.make_naive(moment)


def _queue_lock_key(table: str, queue: str) -> int:
    """The advisory lock molt::jobs takes for a queue on PostgreSQL (64-bit FNV-1a of the
    table's name, a NUL and the queue's, as a signed number), so that both sides count a
    queue's room under the same lock."""
    value = 1469598103934665603
    for byte in (table + "\0" + queue).encode():
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def _payload(task: Task, args: Iterable[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """An export takes one JSON object: the task's keyword arguments, or one positional dict."""
    args = list(args)
    if args and (len(args) > 1 or kwargs or not isinstance(args[0], dict)):
        raise InvalidTaskError(
            f"{task.module_path}: a molt task takes keyword arguments (its export's fields) "
            "or one dict, not positional values"
        )
    return dict(args[0]) if args else dict(kwargs)


class MoltTaskBackend(BaseTaskBackend):
    """OPTIONS: ``DATABASE`` (the alias of the database the jobs live in, "default"),
    ``TABLE`` ("molt_jobs"), ``MAX_PENDING`` (unfinished tasks a queue may hold, 10,000),
    ``MAX_ATTEMPTS`` (runs of a task in all, 5), ``WORKER_CMD`` (the worker whose exports the
    tasks run as, for the check of their names; ``MOLT_WORKER_CMD`` or the installed
    ``molt-worker`` when absent)."""

    supports_defer = True
    supports_get_result = True

    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        options = self.options
        self.database: str = options.get("DATABASE", "default")
        self.table: str = options.get("TABLE", "molt_jobs")
        self.max_pending: int = options.get("MAX_PENDING", 10_000)
        self.max_attempts: int = options.get("MAX_ATTEMPTS", 5)
        # molt::jobs' own bound on a payload (JobStoreOptions::max_payload_bytes).
        self.max_payload_bytes: int = options.get("MAX_PAYLOAD_BYTES", 1 << 20)
        self.worker_cmd: list[str] | None = options.get("WORKER_CMD")
        self._exports: dict[str, ExportSpec] | None = None

    def _quoted_table(self) -> str:
        """The table's name for SQL, checked here too: Django's checks may not have run."""
        if not _TABLE_NAME.fullmatch(self.table):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"molt task backend {self.alias!r}: TABLE {self.table!r} is not a table name"
            )
        return f'"{self.table}"'

    def exports(self) -> dict[str, ExportSpec]:
        """The worker's exports, read once (it runs the worker command with --print-exports)."""
        if self._exports is None:
            self._exports = load_manifest(self.worker_cmd or default_worker_cmd())
        return self._exports

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        problems = []
        if not _TABLE_NAME.fullmatch(self.table):
            problems.append(f"TABLE {self.table!r} is not 1 to 50 letters, digits and _")
        if self.database not in connections:
            problems.append(f"DATABASE {self.database!r} is not in settings.DATABASES")
        elif connections[self.database].vendor not in ("sqlite", "postgresql"):
            problems.append(f"DATABASE {self.database!r} is neither SQLite nor PostgreSQL")
        for name in ("MAX_PENDING", "MAX_ATTEMPTS"):
            value = getattr(self, name.lower())
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a whole number of at least 1, not {value!r}")
        if self.max_attempts > 1000:
            problems.append("MAX_ATTEMPTS is at most 1000")
        try:
            self.exports()
        except Exception as exc:  # the worker command, its manifest: whatever it says
            problems.append(f"the worker's exports cannot be read: {exc}")
        for problem in problems:
            yield checks.Error(f"molt task backend {self.alias!r}: {problem}", id="molt_accel.E001")
        if not problems and self.table not in connections[self.database].introspection.table_names():
            yield checks.Warning(
                f"molt task backend {self.alias!r}: the table {self.table!r} is not in the database "
                f"{self.database!r} yet; molt-worker --jobs-sqlite/--jobs-postgres creates it at its "
                "start, and tasks cannot be enqueued before",
                id="molt_accel.W001",
            )

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        entry = entry_of(task)
        exports = self.exports()
        if entry not in exports:
            known = ", ".join(sorted(exports)) or "none"
            raise InvalidTaskError(
                f"{task.module_path}: the worker has no export {entry!r} (it has: {known})"
            )
        spec = exports[entry]
        if spec.codec_in not in ("json", "msgpack") or spec.codec_out not in ("json", "msgpack"):
            raise InvalidTaskError(
                f"{task.module_path}: the export {entry!r} takes {spec.codec_in} and gives {spec.codec_out}; "
                "a task's export takes and gives JSON or MsgPack"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,200}", task.queue_name):
            raise InvalidTaskError(f"queue {task.queue_name!r}: 1 to 200 letters, digits and _ . : -")

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        try:
            payload = json.dumps(_payload(task, args, kwargs), separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:  # a set, a date, NaN: not JSON
            raise InvalidTaskError(f"{task.module_path}: its arguments are not JSON: {exc}") from None
        now = int(time.time() * 1000)
        run_at = _ms(task.run_after) if task.run_after is not None else now
        if len(payload.encode()) > self.max_payload_bytes:
            raise InvalidTaskError(
                f"{task.module_path}: its arguments are {len(payload.encode())} bytes of JSON, more than "
                f"MAX_PAYLOAD_BYTES ({self.max_payload_bytes})"
            )
        connection = connections[self.database]
        table = self._quoted_table()
        with transaction.atomic(using=self.database), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # The lock molt::jobs takes too: the queue's room is counted by one at a time.
                cursor.execute(
                    "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(%s)) AS held",
                    [_queue_lock_key(self.table, task.queue_name)],
                )
            # One statement that counts and writes: on SQLite it takes the write lock before it
            # reads (a read first, then a write, fails when another process wrote in between).
            cursor.execute(
                f"INSERT INTO {table} (queue, kind, payload, state, max_attempts, origin, created_at, run_at)"
                " SELECT %s, %s, %s, 'queued', %s, %s, %s, %s"
                f" WHERE (SELECT count(*) FROM {table}"
                " WHERE queue = %s AND state IN ('queued', 'running')) < %s"
                " RETURNING id",
                [
                    task.queue_name,
                    entry_of(task),
                    payload,
                    self.max_attempts,
                    task.module_path,
                    now,
                    run_at,
                    task.queue_name,
                    self.max_pending,
                ],
            )
            made = cursor.fetchone()
            if made is None:
                raise TaskQueueFull(
                    f'the task queue "{task.queue_name}" is full: MAX_PENDING ({self.max_pending}) tasks '
                    "wait or run"
                )
            (job_id,) = made
            if connection.vendor == "postgresql":
                # The runners LISTEN on the table's name: they hear of it once this commits.
                cursor.execute("SELECT pg_notify(%s, %s)", [self.table, task.queue_name])
        result = TaskResult(
            task=task,
            id=str(job_id),
            status=TaskResultStatus.READY,
            enqueued_at=_moment(now),
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=[],
            kwargs=json.loads(payload),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        if not re.fullmatch(r"[0-9]{1,18}", result_id):
            raise TaskResultDoesNotExist(result_id)
        table = self._quoted_table()
        with connections[self.database].cursor() as cursor:
            cursor.execute(
                "SELECT queue, payload, state, attempts, origin, last_error, result, created_at, run_at,"
                f" started_at, finished_at FROM {table} WHERE id = %s",
                [int(result_id)],
            )
            row = cursor.fetchone()
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        (
            queue,
            payload,
            state,
            attempts,
            origin,
            last_error,
            returned,
            created_at,
            run_at,
            started_at,
            finished_at,
        ) = row
        # Only a task of Django's: a job another enqueuer made has no Task to show.
        try:
            declared = import_string(origin) if origin else None
            kwargs = json.loads(payload)
        except (ImportError, ValueError):
            raise TaskResultDoesNotExist(result_id) from None
        if not isinstance(declared, Task) or not isinstance(kwargs, dict):
            raise TaskResultDoesNotExist(result_id)
        task = declared.using(
            queue_name=queue,
            backend=self.alias,
            run_after=_moment(run_at) if run_at > created_at else None,
        )
        status = _STATUS.get(state, TaskResultStatus.FAILED)
        # The latest failure, also of a task waiting for its retry or one that succeeded after
        # it (molt::jobs keeps the last one only).
        errors = []
        if last_error:
            errors.append(TaskError(exception_class_path=f"{__name__}.TaskFailed", traceback=last_error))
        result = TaskResult(
            task=task,
            id=result_id,
            status=status,
            enqueued_at=_moment(created_at),
            started_at=_moment(started_at),
            last_attempted_at=_moment(started_at),
            finished_at=_moment(finished_at),
            args=[],
            kwargs=kwargs,
            backend=self.alias,
            errors=errors,
            worker_ids=["molt-worker"] * attempts,
        )
        if status == TaskResultStatus.SUCCESSFUL and returned is not None:
            object.__setattr__(result, "_return_value", json.loads(returned))
        return result
