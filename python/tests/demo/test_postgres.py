"""The list_items parity on PostgreSQL: the demo suite run again, in a child pytest, against a
throwaway cluster (conftest's postgres_cluster_dsn). Skipped when PostgreSQL is not installed, and inside
that child run itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def postgres_dsn(request: pytest.FixtureRequest) -> str:
    if os.environ.get("MOLT_DEMO_TEST_POSTGRES_DSN"):
        pytest.skip("already running on PostgreSQL")
    return request.getfixturevalue("postgres_cluster_dsn")


def test_database_tests_on_postgres(postgres_dsn: str) -> None:
    # The tests that touch the database; the 64-bit overflow case is Django-side payload
    # encoding, the same on every database.
    here = Path(__file__).parent
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not beyond_64_bits"]
    command += [str(here / "test_list_items.py"), str(here / "test_seed.py")]
    # The child configures Django and the worker itself: none of the settings this process
    # was given (or gave itself) leak into it; the binaries' locations do.
    leaking = ("MOLT_DB_", "MOLT_FAKE_DB_", "MOLT_DEMO_", "MOLT_ACCEL_", "MOLT_WORKER_CMD", "DJANGO_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(leaking)}
    env["MOLT_DEMO_TEST_POSTGRES_DSN"] = postgres_dsn
    child = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-2000:]
    assert " passed" in child.stdout
