"""The list_items parity on PostgreSQL: the demo suite run again, in a child pytest, against a
throwaway cluster (bench/pg_cluster.sh). Skipped when PostgreSQL is not installed, and inside
that child run itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLUSTER_SCRIPT = ROOT / "bench" / "pg_cluster.sh"


def _postgres_installed() -> bool:
    return shutil.which("pg_config") is not None or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    if os.environ.get("MOLT_DEMO_TEST_POSTGRES_DSN"):
        pytest.skip("already running on PostgreSQL")
    if not _postgres_installed():
        pytest.skip("PostgreSQL is not installed")
    base = Path(tempfile.mkdtemp(prefix="molt-demo-pg-"))
    base.chmod(0o755)  # the cluster runs as `postgres` when we are root
    cluster = base / "cluster"
    try:
        started = subprocess.run(
            ["bash", str(CLUSTER_SCRIPT), "start", str(cluster)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(cluster)], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


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
