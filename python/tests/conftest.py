"""Shared fixtures: the real worker binaries from the CMake build (never a Python stub)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _binary(variable: str, default: Path) -> Path:
    configured = os.environ.get(variable)
    path = Path(configured) if configured else default
    if not path.is_file():
        if configured or os.environ.get("MOLT_REQUIRE_WORKER") == "1":
            pytest.fail(f"{variable}: no worker binary at {path}")
        pytest.skip(f"build the workers first (cmake --build build/dev); {path} is missing")
    return path.resolve()


@pytest.fixture(scope="session")
def worker_bin() -> Path:
    """The stock molt-worker."""
    return _binary("MOLT_WORKER_BIN", ROOT / "build/dev/apps/molt-worker/molt-worker")


@pytest.fixture(scope="session")
def test_worker_bin() -> Path:
    """The test worker: echo, boom (throws), sleep (cancellable), spin (ignores cancel)."""
    return _binary("MOLT_TEST_WORKER_BIN", ROOT / "build/dev/tests/e2e/molt-test-worker")


@pytest.fixture(scope="session")
def demo_bin() -> Path:
    """molt-demo, the molt::web example service."""
    return _binary("MOLT_DEMO_BIN", ROOT / "build/dev/apps/molt-demo/molt-demo")


@pytest.fixture(scope="session")
def notes_bin() -> Path:
    """notes, the smallest molt::web sample service (apps/samples/notes)."""
    return _binary("MOLT_NOTES_BIN", ROOT / "build/dev/apps/samples/notes/notes")


@pytest.fixture(scope="session")
def chat_bin() -> Path:
    """chat, the WebSocket sample service (apps/samples/chat)."""
    return _binary("MOLT_CHAT_BIN", ROOT / "build/dev/apps/samples/chat/chat")


@pytest.fixture(scope="session")
def uploads_bin() -> Path:
    """uploads, the sample of multipart forms read as they arrive (apps/samples/uploads)."""
    return _binary("MOLT_UPLOADS_BIN", ROOT / "build/dev/apps/samples/uploads/uploads")


def postgres_installed() -> bool:
    return shutil.which("pg_config") is not None or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


@pytest.fixture(scope="session")
def postgres_cluster_dsn() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback (bench/pg_cluster.sh), for the whole session;
    skips when PostgreSQL is not installed."""
    if not postgres_installed():
        pytest.skip("PostgreSQL is not installed")
    base = Path(tempfile.mkdtemp(prefix="molt-pg-"))
    base.chmod(0o755)  # the cluster runs as `postgres` when we are root
    cluster = base / "cluster"
    script = ROOT / "bench" / "pg_cluster.sh"
    try:
        started = subprocess.run(
            ["bash", str(script), "start", str(cluster)], capture_output=True, text=True, timeout=120
        )
        assert started.returncode == 0, started.stderr
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "stop", str(cluster)], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def child_pids() -> set[int]:
    """Live (not zombie) children of this process, read from /proc."""
    me = os.getpid()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def worker_env(**overrides: str) -> dict[str, str]:
    """The environment for a worker child: ours, minus database settings, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOLT_DB_", "MOLT_FAKE_DB_"))}
    env.update(overrides)
    return env


# The decorator tests build Django requests and responses; the demo project's settings serve.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molt_demo.settings")
