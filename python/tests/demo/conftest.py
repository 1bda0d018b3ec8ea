"""The Django demo under test: its settings, a seeded SQLite file, and the real molt-worker.

Set up at import, before pytest-django configures Django: the demo project and ``python/`` on
``sys.path``, ``DJANGO_SETTINGS_MODULE``, a fresh database file, and ``MOLT_WORKER_CMD`` for
the worker binary (``MOLT_WORKER_BIN``, else the dev build). Without the binary every test here
is skipped (failed with ``MOLT_REQUIRE_WORKER=1``).
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import django
import pytest

ROOT = Path(__file__).resolve().parents[3]
DEMO_DIR = ROOT / "demo" / "django_app"
# The demo project, molt_accel, and demo_testing (this folder) importable whatever the
# import mode.
for _path in (Path(__file__).parent, DEMO_DIR, ROOT / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo_testing import SEED_ITEMS, SEED_USERS  # noqa: E402


def _binary(variable: str, default: Path) -> Path | None:
    configured = os.environ.get(variable)
    path = Path(configured) if configured else default
    return path.resolve() if path.is_file() else None


WORKER_BIN = _binary("MOLT_WORKER_BIN", ROOT / "build/dev/apps/molt-worker/molt-worker")
SEED_BIN = _binary("MOLT_SEED_BIN", ROOT / "build/dev/apps/molt-seed/molt-seed")

_DATA_DIR = Path(tempfile.mkdtemp(prefix="molt-demo-tests-"))
atexit.register(shutil.rmtree, _DATA_DIR, ignore_errors=True)
DEMO_DB = _DATA_DIR / "demo.sqlite3"

# MOLT_DEMO_TEST_POSTGRES_DSN runs the suite against that (empty, throwaway) PostgreSQL
# database instead of a SQLite file; test_postgres.py does so with a cluster of its own.
POSTGRES_DSN = os.environ.get("MOLT_DEMO_TEST_POSTGRES_DSN", "").strip()

for _name in list(os.environ):
    if _name.startswith(("MOLT_DB_", "MOLT_FAKE_DB_", "MOLT_DEMO_", "MOLT_ACCEL_")):
        del os.environ[_name]
os.environ["DJANGO_SETTINGS_MODULE"] = "molt_demo.settings"
os.environ["MOLT_DEMO_SQLITE_PATH"] = str(DEMO_DB)
if POSTGRES_DSN:
    os.environ["MOLT_DEMO_POSTGRES_DSN"] = POSTGRES_DSN
# A generous deadline: the tests check answers, not speed, and may run on a loaded machine.
os.environ["MOLT_DEMO_TIMEOUT_MS"] = "10000"
if WORKER_BIN is not None:
    os.environ["MOLT_WORKER_CMD"] = shlex.join([str(WORKER_BIN), "--stdio"])

django.setup()

# pytest-django loads the settings early when DJANGO_SETTINGS_MODULE is already in the
# environment: they would then name another database, which seed_demo --force would wipe.
from django.conf import settings  # noqa: E402

if (settings.SQLITE_PATH, settings.POSTGRES_DSN) != (DEMO_DB, POSTGRES_DSN):
    raise pytest.UsageError(
        "the demo settings were loaded before python/tests/demo/conftest.py configured them; "
        "run pytest without DJANGO_SETTINGS_MODULE in the environment"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if WORKER_BIN is not None:
        return
    message = "build molt-worker first (cmake --build build/dev --target molt-worker)"
    if os.environ.get("MOLT_REQUIRE_WORKER") == "1":
        raise pytest.UsageError(f"MOLT_REQUIRE_WORKER=1: {message}")
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.skip(reason=message))


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: object) -> None:
    """The test database is the demo's own (the SQLite file, or the PostgreSQL database),
    seeded once with ``seed_demo``: the worker reads the same one."""
    from django.core.management import call_command

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        call_command("seed_demo", users=SEED_USERS, items=SEED_ITEMS, force=True, verbosity=0)


@pytest.fixture(scope="session")
def sqlite_only() -> None:
    if POSTGRES_DSN:
        pytest.skip("compares SQLite files; this run is on PostgreSQL")


@pytest.fixture(scope="session")
def seed_bin() -> Path:
    if SEED_BIN is None:
        pytest.skip("build molt-seed first (cmake --build build/dev --target molt-seed)")
    return SEED_BIN


def _use_worker(monkeypatch: pytest.MonkeyPatch, database: bool) -> Iterator[None]:
    """Points the decorator's shared client at a fresh worker with (or without) the test
    database: the worker inherits this process's environment."""
    from molt_accel import reset_shared_client

    monkeypatch.delenv("MOLT_DB_SQLITE_PATH", raising=False)
    monkeypatch.delenv("MOLT_DB_POSTGRES_DSN", raising=False)
    if database and POSTGRES_DSN:
        monkeypatch.setenv("MOLT_DB_POSTGRES_DSN", POSTGRES_DSN)
    elif database:
        monkeypatch.setenv("MOLT_DB_SQLITE_PATH", str(DEMO_DB))
    reset_shared_client()
    try:
        yield
    finally:
        reset_shared_client()


@pytest.fixture(scope="module")
def database_worker() -> Iterator[None]:
    """``/offload/`` answered by a worker reading the seeded demo database."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _use_worker(monkeypatch, True)


@pytest.fixture(scope="module")
def fake_worker() -> Iterator[None]:
    """``/offload/`` answered by a worker without a database (the fake-DB contract)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _use_worker(monkeypatch, False)
