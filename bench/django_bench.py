"""The headline of issue 4: Django under gunicorn (sync workers), the same list_items contract
three ways, loaded by wrk at fixed concurrency in one run.

    /baseline/      the ORM, as Django users write it
    /baseline_raw/  raw SQL through Django's connection
    /offload/       @molt_offload -> molt-worker reading the same SQLite file

With --gateway PATH/TO/molt-demo it also measures molt-demo as a gateway in front of the same
gunicorn (DESIGN §10): `/offload/` answered natively by molt-demo at Django's URL, and
`/baseline/` forwarded through it to Django.

Seeds the demo database (1,000 users x 200 items) once, checks that the three answers are the
same bytes, then runs wrk on each endpoint, interleaved and repeated. Reports requests/s,
p50/p99 and the server's CPU time per request (user+sys of gunicorn and its molt-worker
children, from /proc), and the ratios. Measures only: the exit status does not depend on them.

    .venv/bin/python bench/django_bench.py build/release/apps/molt-worker/molt-worker
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo/django_app"
VENV_BIN = ROOT / ".venv/bin"
ENDPOINTS = ("/baseline/", "/baseline_raw/", "/offload/")
# Django's own floor on this machine: a pure-Python view answering one fake item. No endpoint
# of this server can cost less than this; it tells how much of each figure is Django itself.
FLOOR = "/baseline_fake/?limit=1"
# gunicorn's own floor: the same gunicorn settings serving bench/peers/wsgi_floor.py.
GUNICORN_FLOOR = "gunicorn bare WSGI"
# molt-demo in front of the same gunicorn (--gateway).
GATEWAY_NATIVE = "gateway: /offload/ native"
GATEWAY_FORWARDED = "gateway: /baseline/ forwarded"
TICKS = os.sysconf("SC_CLK_TCK")

# Each request asks for a random user's first page of 50 items.
WRK_SCRIPT = """
math.randomseed(42)
local separator = wrk.path:find("?", 1, true) and "&" or "?"
local page = wrk.path:find("limit=", 1, true) and "" or "&limit=50"
request = function()
  return wrk.format("GET", wrk.path .. separator .. "user_id=" .. math.random(1, 1000) .. page)
end
"""


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    usage = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        usage[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return usage


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    def micros(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = micros(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = micros(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"bench: {errors.group(1)} error responses:\n{output}")
    return rps, p50, p99, requests


def main() -> None:
    parser = argparse.ArgumentParser(description="Django baseline vs offload under gunicorn")
    parser.add_argument("worker", type=lambda p: str(Path(p).resolve()), help="path to a release molt-worker")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--worker-class",
        default="sync",
        choices=("sync", "gthread"),
        help="sync closes the connection after each response; gthread keeps it alive",
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--gateway",
        type=lambda p: str(Path(p).resolve()),
        help="a release molt-demo: also measure it as a gateway",
    )
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="molt-django-bench-"))
    db = data / "demo.sqlite3"
    script = data / "random_user.lua"
    script.write_text(WRK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOLT_", "DJANGO_"))}
    env.update(
        PYTHONPATH=str(ROOT / "python"),
        DJANGO_SETTINGS_MODULE="molt_demo.settings",
        MOLT_DEMO_SQLITE_PATH=str(db),
        MOLT_DEMO_TIMEOUT_MS="2000",
        MOLT_WORKER_CMD=shlex.join([args.worker, "--stdio"]),
    )
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "seed_demo", "--users", "1000", "--items", "200"],
        cwd=DEMO,
        env=env,
        check=True,
    )
    gunicorn = [
        str(VENV_BIN / "gunicorn"),
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        *(["--threads", str(args.threads)] if args.worker_class == "gthread" else []),
    ]
    server, port = start_gunicorn([*gunicorn, "molt_demo.wsgi"], DEMO, env, data / "django.log")
    bare = None
    gateway = None
    try:
        # gunicorn's own floor, the same settings serving a bare WSGI callable.
        bare, bare_port = start_gunicorn(
            [*gunicorn, "peers.wsgi_floor:app"], ROOT / "bench", env, data / "bare.log"
        )
        base = f"http://127.0.0.1:{port}"
        targets = {path: base + path for path in (*ENDPOINTS, FLOOR)}
        targets[GUNICORN_FLOOR] = f"http://127.0.0.1:{bare_port}/"
        roots = {path: [server.pid] for path in targets}
        roots[GUNICORN_FLOOR] = [bare.pid]
        if args.gateway:
            gateway, gateway_port = start_gateway(args.gateway, port, db, data / "gateway.log")
            targets[GATEWAY_NATIVE] = f"http://127.0.0.1:{gateway_port}/offload/"
            targets[GATEWAY_FORWARDED] = f"http://127.0.0.1:{gateway_port}/baseline/"
            roots[GATEWAY_NATIVE] = roots[GATEWAY_FORWARDED] = [gateway.pid, server.pid]
        sample = "?user_id=7&limit=50"
        checked = {
            path: url for path, url in targets.items() if path in ENDPOINTS or path.startswith("gateway")
        }
        bodies = {
            path: urllib.request.urlopen(url + sample, timeout=10).read() for path, url in checked.items()
        }
        same = len(set(bodies.values())) == 1
        print(
            f"bench: parity of the {len(bodies)} answers for {sample}: "
            f"{'identical' if same else 'DIFFERENT'} "
            f"({len(bodies['/offload/'])} bytes)"
        )
        print(f"bench: {os.cpu_count()} cores, load average before: {os.getloadavg()}")
        measured = tuple(targets)
        runs: dict[str, list[tuple[float, float, float, float]]] = {path: [] for path in measured}
        for round_number in range(1, args.repeat + 1):
            for path in measured:
                # Warm-up: starts the molt-worker children and fills caches.
                subprocess.run(
                    ["wrk", "-t1", "-c", str(args.connections), "-d", "1s", "-s", str(script), targets[path]],
                    capture_output=True,
                    check=True,
                )
                before = cpu_seconds([pid for root in roots[path] for pid in descendants(root)])
                output = subprocess.run(
                    [
                        "wrk",
                        "-t1",
                        "-c",
                        str(args.connections),
                        "-d",
                        f"{args.seconds}s",
                        "--latency",
                        "-s",
                        str(script),
                        targets[path],
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                after = cpu_seconds([pid for root in roots[path] for pid in descendants(root)])
                rps, p50, p99, requests = parse_wrk(output)
                cpu_us = sum(after[pid] - before.get(pid, 0.0) for pid in after) / requests * 1e6
                runs[path].append((rps, p50, p99, cpu_us))
                print(
                    f"run {round_number} {path:24s} {rps:9,.0f} req/s  p50 {p50 / 1000:7.2f} ms  "
                    f"p99 {p99 / 1000:7.2f} ms  server CPU {cpu_us:7.0f} us/req"
                )
        print(f"bench: load average after: {os.getloadavg()}")
    finally:
        for process in (gateway, server, bare):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

    print_summary(args, runs, measured)


def print_summary(
    args: argparse.Namespace,
    runs: dict[str, list[tuple[float, float, float, float]]],
    measured: tuple[str, ...],
) -> None:
    print(
        f"\nmedians (gunicorn {args.worker_class} x{args.workers}, wrk -t1 -c{args.connections}, "
        f"{args.seconds}s x {args.repeat}):"
    )
    print("| endpoint | req/s | p50 ms | p99 ms | server CPU µs/req |")
    print("|---|---:|---:|---:|---:|")
    for path in measured:
        med = [statistics.median(run[i] for run in runs[path]) for i in range(4)]
        print(f"| `{path}` | {med[0]:,.0f} | {med[1] / 1000:.2f} | {med[2] / 1000:.2f} | {med[3]:,.0f} |")
    for peer in ("/baseline/", "/baseline_raw/"):
        rps_ratio = statistics.median(o[0] / b[0] for o, b in zip(runs["/offload/"], runs[peer], strict=True))
        cpu_ratio = statistics.median(b[3] / o[3] for o, b in zip(runs["/offload/"], runs[peer], strict=True))
        p99_offload = statistics.median(run[2] for run in runs["/offload/"])
        p99_peer = statistics.median(run[2] for run in runs[peer])
        print(
            f"ratio /offload/ vs {peer}: {rps_ratio:.2f}x req/s, "
            f"{cpu_ratio:.2f}x less server CPU per request, "
            f"p99 {p99_offload / 1000:.2f} vs {p99_peer / 1000:.2f} ms"
        )
    floor_cpu = statistics.median(run[3] for run in runs[FLOOR])
    offload_cpu = statistics.median(run[3] for run in runs["/offload/"])
    baseline_cpu = statistics.median(run[3] for run in runs["/baseline/"])
    if offload_cpu <= floor_cpu:
        print(f"Django's floor ({FLOOR}) costs {floor_cpu:,.0f} us/req, /offload/ less: a noisy run")
    else:
        print(
            f"Django's floor ({FLOOR}) costs {floor_cpu:,.0f} us/req: "
            f"/offload/ adds {offload_cpu - floor_cpu:,.0f} us to it, "
            f"/baseline/ adds {baseline_cpu - floor_cpu:,.0f} us "
            f"({(baseline_cpu - floor_cpu) / (offload_cpu - floor_cpu):.1f}x as much)"
        )
    bare_cpu = statistics.median(run[3] for run in runs[GUNICORN_FLOOR])
    print(
        f"gunicorn's own floor (a bare WSGI app) costs {bare_cpu:,.0f} us/req: the most /offload/ "
        f"could serve, at no cost above it, is {baseline_cpu / bare_cpu:.1f}x the ORM baseline's "
        f"CPU per request; Django's floor allows {baseline_cpu / floor_cpu:.1f}x"
    )
    if GATEWAY_NATIVE in runs:
        for path in (GATEWAY_NATIVE, GATEWAY_FORWARDED):
            rps_ratio = statistics.median(
                g[0] / b[0] for g, b in zip(runs[path], runs["/baseline/"], strict=True)
            )
            cpu_ratio = statistics.median(
                b[3] / g[3] for g, b in zip(runs[path], runs["/baseline/"], strict=True)
            )
            print(
                f"ratio {path} vs /baseline/ direct: {rps_ratio:.2f}x req/s, "
                f"{cpu_ratio:.2f}x less server CPU per request (gateway and gunicorn together)"
            )


def start_gateway(
    demo: str, upstream_port: int, db: Path, log_path: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """molt-demo on a free port in front of gunicorn, reading the same SQLite file."""
    command = [demo, "--port", "0", "--host", "127.0.0.1", "--db", str(db)]
    command += ["--upstream", f"127.0.0.1:{upstream_port}", "--items-path", "/offload/"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(rb"serving http://127\.0\.0\.1:(\d+)", log_path.read_bytes())
        if found:
            return process, int(found.group(1))
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"bench: molt-demo did not start:\n{log_path.read_text()}")


def start_gunicorn(
    command: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts gunicorn on a free loopback port; returns it and the port."""
    log = log_path.open("wb")
    server = subprocess.Popen(
        [*command, "--bind", "127.0.0.1:0", "--log-level", "warning", "--error-logfile", "-"],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(400):
        match = re.search(rb"Listening at: http://127\.0\.0\.1:(\d+)", log_path.read_bytes())
        if match:
            return server, int(match.group(1))
        time.sleep(0.05)
    # --log-level warning hides the line; find the port from the socket table instead.
    return server, listening_port(server.pid)


def listening_port(root: int) -> int:
    inodes = set()
    for pid in descendants(root):
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
            return int(fields[1].split(":")[1], 16)
    raise SystemExit("bench: gunicorn is not listening")


if __name__ == "__main__":
    sys.exit(main())
