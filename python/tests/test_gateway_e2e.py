"""molt-demo as a gateway in front of the Django demo under gunicorn (DESIGN §10): it answers
list_items itself at Django's own ``/offload/`` URL, with the bytes Django's views give, and
forwards every other request to Django."""

from __future__ import annotations

import http.client
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, worker_env
from test_gunicorn_e2e import GUNICORN, wait_for

DJANGO_DIR = ROOT / "demo/django_app"


def start_logged(
    command: list[str],
    log: Path,
    port_pattern: bytes,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts a server with its output in `log`, and reads its port there once it says it."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    if not wait_for(lambda: re.search(port_pattern, log.read_bytes()) is not None, 20):
        process.kill()
        pytest.fail(log.read_text())
    port = re.search(port_pattern, log.read_bytes())
    assert port is not None
    return process, int(port.group(1))


def start_gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    command = [str(GUNICORN), "molt_demo.wsgi", "--workers", "1", "--bind", "127.0.0.1:0"]
    return start_logged(command, log, rb"Listening at: http://127\.0\.0\.1:(\d+)", DJANGO_DIR, env)


def start_gateway(
    demo_bin: Path, db: Path, upstream_port: int, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    command = [str(demo_bin), "--port", "0", "--host", "127.0.0.1", "--threads", "1", "--db", str(db)]
    command += ["--upstream", f"127.0.0.1:{upstream_port}", "--items-path", "/offload/"]
    # molt-demo names its port first and its upstream last: wait for the last line.
    process, _ = start_logged(command, log, rb"gateway to http://127\.0\.0\.1:(\d+)")
    port = re.search(rb"serving http://127\.0\.0\.1:(\d+)", log.read_bytes())
    assert port is not None
    return process, int(port.group(1))


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_gateway_serves_list_items_itself_and_forwards_the_rest(
    demo_bin: Path, worker_bin: Path, tmp_path: Path
) -> None:
    if not GUNICORN.is_file():
        pytest.skip("gunicorn is installed by scripts/setup")
    db = tmp_path / "demo.sqlite3"
    env = worker_env(
        PYTHONPATH=str(ROOT / "python"),
        DJANGO_SETTINGS_MODULE="molt_demo.settings",
        MOLT_DEMO_SQLITE_PATH=str(db),
        MOLT_WORKER_CMD=shlex.join([str(worker_bin), "--stdio"]),  # the /offload/ view, unused here
    )
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--users", "12", "--items", "40"],
        cwd=DJANGO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    django, django_port = start_gunicorn(env, tmp_path / "gunicorn.log")
    gateway = None
    try:
        gateway, port = start_gateway(demo_bin, db, django_port, tmp_path / "gateway.log")

        # list_items at Django's URL, answered by the gateway: Django's bytes, for a grid.
        # A repeated key: the last one, as Django reads it.
        grid = ["user_id=3", "user_id=7&limit=5", "user_id=7&limit=5&status=open", "user_id=11&q=item"]
        for query in [*grid, "user_id=3&limit=2&user_id=9"]:
            status, headers, body = get(port, f"/offload/?{query}")
            django_status, _, django_body = get(django_port, f"/baseline/?{query}")
            assert (status, body) == (django_status, django_body), query
            assert headers["content-type"] == "application/json"
            assert headers["vary"] == "Accept"  # molt-demo's own /items handler answered

        # Everything else is Django's, through the gateway: same status and bytes.
        for path in ["/baseline/?user_id=5&limit=3", "/baseline_raw/?user_id=5&limit=3", "/nowhere/"]:
            through = get(port, path)
            direct = get(django_port, path)
            assert (through[0], through[2]) == (direct[0], direct[2]), path
            assert through[1].get("content-type") == direct[1].get("content-type"), path
            assert "vary" not in through[1] or "Accept" not in through[1]["vary"], path
            assert "x-request-id" in through[1]  # the gateway's middleware saw it too
            assert "server" not in through[1]  # no version banner passed on

        # A bad query is Django's 400 when forwarded, and the gateway's own 400 at /offload/.
        status, _, body = get(port, "/offload/?user_id=abc")
        assert status == 400 and b"user_id" in body

        # Django down: a clean 502 from the gateway, naming no internals.
        django.send_signal(signal.SIGTERM)
        django.wait(timeout=20)
        status, headers, body = get(port, "/baseline/?user_id=1")
        assert status == 502
        assert b'"bad_gateway"' in body and b"127.0.0.1" not in body
    finally:
        if gateway is not None:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=20) == 0
        if django.poll() is None:
            django.kill()
            django.wait()


@pytest.mark.parametrize("upstream", ["8000", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", ":8000"])
def test_a_bad_upstream_is_refused_at_start(demo_bin: Path, tmp_path: Path, upstream: str) -> None:
    run = subprocess.run(
        [str(demo_bin), "--port", "0", "--db", str(tmp_path / "demo.sqlite3"), "--upstream", upstream],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--upstream takes HOST:PORT" in run.stderr
