"""End to end under gunicorn (sync workers): a client that disconnects mid-request makes the
offloaded view cancel its worker request, and nothing is left running afterwards."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, worker_env

GUNICORN = ROOT / ".venv/bin/gunicorn"
SLOW_MS = 4000  # the fake database's delay: far longer than the test waits for a cancel


def wait_for(predicate: object, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def http_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_client_disconnect_cancels_the_worker_request(worker_bin: Path, tmp_path: Path) -> None:
    if not GUNICORN.is_file():
        pytest.skip("gunicorn is installed by scripts/setup")
    manifest = tmp_path / "exports.json"  # a unique path: it finds this test's workers in /proc
    manifest.write_text((ROOT / "python/molt_accel/default_exports.json").read_text())
    log = tmp_path / "server.log"
    env = worker_env(
        PYTHONPATH=str(ROOT / "python"),
        DJANGO_SETTINGS_MODULE="molt_demo.settings",
        MOLT_DEMO_SQLITE_PATH=str(tmp_path / "demo.sqlite3"),
        MOLT_DEMO_WORKER_DB="fake",
        MOLT_DEMO_TIMEOUT_MS="20000",
        MOLT_FAKE_DB_DELAY_MS=str(SLOW_MS),
        MOLT_WORKER_CMD=shlex.join(
            [str(worker_bin), "--stdio", "--threads", "1", "--log-requests", "--exports", str(manifest)]
        ),
    )
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(GUNICORN), "molt_demo.wsgi", "--workers", "1", "--bind", "127.0.0.1:0", "--timeout", "30"],
            cwd=ROOT / "demo/django_app",
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: b"Listening at" in log.read_bytes(), 20), log.read_text()
        port = int(re.search(rb"Listening at: http://127\.0\.0\.1:(\d+)", log.read_bytes()).group(1))  # type: ignore[union-attr]

        started = time.monotonic()
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(b"GET /offload/?user_id=3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.3)
        conn.close()  # the client gives up mid-request

        def cancelled_in_worker() -> bool:
            return b'"entry":"list_items","status":"Cancelled"' in log.read_bytes()

        assert wait_for(cancelled_in_worker, 3), log.read_text()
        assert time.monotonic() - started < SLOW_MS / 1000  # stopped, not run to completion

        # The server goes on serving; its single worker thread was freed by the cancel.
        reply = http_get(port, "/baseline_fake/?user_id=3&limit=1")
        assert reply.startswith(b"HTTP/1.1 200") and b'"id":3000' in reply
        assert processes_mentioning(str(manifest)), "the worker should still be running"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    # gunicorn's exit closed the worker's input: no molt-worker is left behind.
    assert wait_for(lambda: not processes_mentioning(str(manifest)), 10)
    assert server.returncode == 0


def test_an_entry_missing_from_the_manifest_stops_the_server_at_boot(
    worker_bin: Path, tmp_path: Path
) -> None:
    if not GUNICORN.is_file():
        pytest.skip("gunicorn is installed by scripts/setup")
    manifest = tmp_path / "exports.json"
    manifest.write_text(
        '{"abi_version":"0.1","exports":[{"name":"health","codec_in":"json","codec_out":"json"}]}'
    )
    env = worker_env(
        PYTHONPATH=str(ROOT / "python"),
        DJANGO_SETTINGS_MODULE="molt_demo.settings",
        MOLT_DEMO_SQLITE_PATH=str(tmp_path / "demo.sqlite3"),
        MOLT_WORKER_CMD=shlex.join([str(worker_bin), "--stdio", "--exports", str(manifest)]),
    )
    server = subprocess.run(
        [str(GUNICORN), "molt_demo.wsgi", "--workers", "1", "--bind", "127.0.0.1:0"],
        cwd=ROOT / "demo/django_app",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert server.returncode != 0
    assert (
        b"ImproperlyConfigured: molt_offload(entry='list_items'): the worker's manifest has no such export"
        in (server.stderr)
    )
