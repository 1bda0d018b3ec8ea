"""Django's Tasks API on molt's durable jobs: the demo project enqueues ``items.tasks.compute``
(molt_accel.tasks.MoltTaskBackend) into its own SQLite file, and the real ``molt-worker
--jobs-only --jobs-sqlite`` on that file runs them with its ``compute`` export. Django runs in
a child process of its own, as it would in production, on a file of the test's."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, worker_env

# Runs in the Django child: enqueues what the test asks (a JSON list of steps on argv), waits
# for results, and prints what it saw as one JSON line.
DJANGO_SCRIPT = r"""
import json, sys, time
from datetime import timedelta

import django
django.setup()
from django.utils import timezone
from django_tasks import task_backends
from django_tasks.exceptions import InvalidTaskError
from items.tasks import compute
from molt_accel.tasks import TaskQueueFull

def wait(result):
    deadline = time.monotonic() + 15
    while not result.is_finished and time.monotonic() < deadline:
        time.sleep(0.02)
        result.refresh()
    return result

def seen(result):
    out = {"id": result.id, "status": str(result.status), "attempts": result.attempts}
    if str(result.status) == "SUCCESSFUL":
        out["value"] = result.return_value
    out["errors"] = [e.traceback for e in result.errors]
    times = (result.enqueued_at, result.started_at, result.finished_at)
    out["timed"] = None not in times and times[0] <= times[1] <= times[2]
    return out

report = {}
good = compute.enqueue(values=[1, 2, 3], scale=2)
report["enqueued"] = str(good.status)
report["good"] = seen(wait(good))
report["as_dict"] = seen(wait(compute.enqueue({"values": [4], "offset": 1})))
report["bad"] = seen(wait(compute.enqueue(values="not a list")))
later = compute.using(run_after=timezone.now() + timedelta(seconds=1)).enqueue(values=[5])
report["deferred_at_once"] = str(compute.get_backend().get_result(later.id).status)
report["deferred"] = seen(wait(later))
try:
    compute.enqueue(1, 2)
    report["positional"] = "accepted"
except InvalidTaskError as exc:
    report["positional"] = str(exc)
# Many enqueues while the worker claims and completes: none may fail on SQLite's lock.
failures = 0
for i in range(150):
    try:
        compute.enqueue(values=[i])
    except Exception as exc:
        failures += 1
        report["enqueue_failure"] = repr(exc)
report["enqueue_failures"] = failures
bounded = compute.using(backend="bounded", queue_name="later")
kept = bounded.enqueue(values=[1])
again = task_backends["bounded"].get_result(kept.id)
report["bounded_result"] = [again.task.backend, again.task.queue_name, again.backend]
for bad_id in ["\u00b2", "99999999999999999999", "0", "abc"]:
    try:
        task_backends["default"].get_result(bad_id)
        report.setdefault("bad_ids", []).append("found")
    except Exception as exc:
        report.setdefault("bad_ids", []).append(type(exc).__name__)
try:
    compute.enqueue(values=[float("nan")])
    report["nan"] = "accepted"
except InvalidTaskError as exc:
    report["nan"] = str(exc)
try:
    compute.enqueue(values=[0.5] * 300000)
    report["too_big"] = "accepted"
except InvalidTaskError as exc:
    report["too_big"] = str(exc)
try:
    bounded.enqueue(values=[2])
    report["full"] = "accepted"
except TaskQueueFull as exc:
    report["full"] = str(exc)
print(json.dumps(report))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path, worker_bin: Path) -> Iterator[dict[str, str]]:
    """The Django child's environment, and a worker running the jobs of its database: a SQLite
    file, or a database of its own on a throwaway PostgreSQL cluster."""
    if request.param == "sqlite":
        database = str(tmp_path / "demo.sqlite3")
        worker_database = ["--jobs-sqlite", database]
        django_database = {"MOLT_DEMO_SQLITE_PATH": database}
    else:
        cluster = request.getfixturevalue("postgres_cluster_dsn")
        name = f"tasks_{tmp_path.name.lower()}"[:60]
        import psycopg

        with psycopg.connect(cluster, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        dsn = f"{cluster} dbname={name}"
        worker_database = ["--jobs-postgres", dsn]
        django_database = {"MOLT_DEMO_POSTGRES_DSN": dsn}
    worker = subprocess.Popen(
        [str(worker_bin), "--jobs-only", *worker_database, "--jobs-threads", "2"],
        env=worker_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stderr is not None
    line = worker.stderr.readline()  # the table exists once it says so
    assert "as jobs of default" in line, line
    env = worker_env(
        DJANGO_SETTINGS_MODULE="molt_demo.settings",
        MOLT_WORKER_CMD=f"{worker_bin} --stdio",
        PYTHONPATH=f"{ROOT / 'python'}:{ROOT / 'demo/django_app'}",
        **django_database,
    )
    yield env
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    log = worker.stderr.read()
    assert "outcome=succeeded" in log, log


def run_django(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", DJANGO_SCRIPT], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tasks_enqueued_in_django_are_run_by_the_worker(project: dict[str, str]) -> None:
    report = run_django(project)
    assert report["enqueued"] == "READY"
    # The worker's compute export ran it: the same answer as the Python contract.
    assert report["good"]["status"] == "SUCCESSFUL", report
    assert report["good"]["value"] == {"count": 3, "sum": 6.0, "scaled": [2.0, 4.0, 6.0]}
    assert report["good"]["attempts"] == 1
    assert report["good"]["timed"], report["good"]
    assert report["as_dict"]["value"] == {"count": 1, "sum": 4.0, "scaled": [5.0]}
    # Bad input fails at once (not retried), with the worker's words.
    assert report["bad"]["status"] == "FAILED"
    assert report["bad"]["attempts"] == 1
    assert report["bad"]["errors"] == ["payload.values: expected array, got string"]
    # run_after: not before its time.
    assert report["deferred_at_once"] == "READY"
    assert report["deferred"]["status"] == "SUCCESSFUL"
    assert "keyword arguments" in report["positional"]
    assert 'the task queue "later" is full' in report["full"]
    assert report["enqueue_failures"] == 0, report.get("enqueue_failure")
    # A result read back keeps its backend and queue (refresh() reads the same place).
    assert report["bounded_result"] == ["bounded", "later", "bounded"]
    assert report["bad_ids"] == ["TaskResultDoesNotExist"] * 4
    assert "MAX_PAYLOAD_BYTES" in report["too_big"]
    assert "its arguments are not JSON" in report["nan"]


def test_a_task_the_worker_does_not_export_is_refused_where_it_is_declared(
    worker_bin: Path, tmp_path: Path
) -> None:
    script = r"""
import django
django.setup()
from django_tasks import task
from django_tasks.exceptions import InvalidTaskError
from molt_accel.tasks import molt_entry

# Checked where the task is declared (django-tasks validates it then): at import, not at
# the first enqueue.
try:
    @task()
    def not_exported(x: int) -> int:
        return x
    print("accepted")
except InvalidTaskError as exc:
    print(exc)

@task()
@molt_entry("compute")
def renamed(values: list) -> dict:
    return {}

print("renamed: ok" if renamed.get_backend().exports()["compute"] else "renamed: ?")
"""
    env = worker_env(
        DJANGO_SETTINGS_MODULE="molt_demo.settings",
        MOLT_DEMO_SQLITE_PATH=str(tmp_path / "demo.sqlite3"),
        MOLT_WORKER_CMD=f"{worker_bin} --stdio",
        PYTHONPATH=f"{ROOT / 'python'}:{ROOT / 'demo/django_app'}",
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "the worker has no export 'not_exported'" in lines[0]
    assert "compute" in lines[0]  # it names what there is
    assert lines[1] == "renamed: ok"


def test_a_pipe_worker_is_not_turned_into_a_job_runner_by_the_environment(
    worker_bin: Path, tmp_path: Path
) -> None:
    from molt_accel import MoltClient

    jobs_env = worker_env(MOLT_JOBS_ONLY="1", MOLT_JOBS_SQLITE_PATH=str(tmp_path / "jobs.db"))
    # The worker itself: --stdio given, jobs-only from the environment, is a startup error.
    done = subprocess.run(
        [str(worker_bin), "--stdio"],
        env=jobs_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--jobs-only" in done.stderr, done.stderr
    # molt_accel's workers leave the jobs' settings out of their environment: they serve.
    with MoltClient(worker_cmd=[str(worker_bin), "--stdio"], env=jobs_env) as client:
        client.ping()
    assert not (tmp_path / "jobs.db").exists()


def test_the_worker_refuses_jobs_only_without_a_database(worker_bin: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(worker_bin), "--jobs-only"], env=worker_env(), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "--jobs-only needs --jobs-sqlite or --jobs-postgres" in done.stderr
    started = time.monotonic()
    done = subprocess.run(
        [str(worker_bin), "--jobs-only", "--jobs-sqlite", str(tmp_path / "missing" / "x.db")],
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "jobs:" in done.stderr and "missing/x.db" in done.stderr, done.stderr
    done = subprocess.run(
        [str(worker_bin), "--jobs-only", "--jobs-sqlite", str(tmp_path / "x.db"), "--jobs-poll-ms", "5"],
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--jobs-poll-ms" in done.stderr, done.stderr
    assert time.monotonic() - started < 10


def test_django_checks_say_what_is_missing(worker_bin: Path, tmp_path: Path) -> None:
    env = worker_env(
        DJANGO_SETTINGS_MODULE="molt_demo.settings",
        MOLT_DEMO_SQLITE_PATH=str(tmp_path / "demo.sqlite3"),
        MOLT_WORKER_CMD=f"{worker_bin} --stdio",
        PYTHONPATH=f"{ROOT / 'python'}:{ROOT / 'demo/django_app'}",
    )
    manage = [sys.executable, str(ROOT / "demo/django_app/manage.py"), "check"]
    done = subprocess.run(manage, env=env, capture_output=True, text=True, timeout=60)
    assert "molt_accel.W001" in done.stderr + done.stdout, done.stderr
    assert "the table 'molt_jobs' is not in the database" in done.stderr + done.stdout


def test_a_misconfigured_backend_is_an_error_of_the_checks(tmp_path: Path) -> None:
    from molt_accel.tasks import MoltTaskBackend

    backend = MoltTaskBackend(
        "broken",
        {
            "OPTIONS": {
                "TABLE": "jobs; DROP",
                "DATABASE": "elsewhere",
                "MAX_PENDING": 0,
                "WORKER_CMD": [str(tmp_path / "no-such-worker")],
            }
        },
    )
    messages = [message.msg for message in backend.check()]
    assert all(message.startswith("molt task backend 'broken': ") for message in messages)
    text = "\n".join(messages)
    assert "TABLE 'jobs; DROP' is not" in text
    assert "DATABASE 'elsewhere' is not in settings.DATABASES" in text
    assert "MAX_PENDING must be a whole number of at least 1, not 0" in text
    assert "the worker's exports cannot be read" in text and "no-such-worker" in text
    # Without the checks, the table's name is still never put into SQL.
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="is not a table name"):
        backend.get_result("1")


def test_the_queue_lock_is_the_one_molt_jobs_takes() -> None:
    from molt_accel.tasks import _queue_lock_key

    # What molt::jobs' JobStore computes for the same table and queue (64-bit FNV-1a, signed).
    assert _queue_lock_key("molt_jobs", "default") == 2449976575452535381
