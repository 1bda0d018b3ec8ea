"""molt::web's WebSockets against FastAPI's on uvicorn (uvloop, the `websockets` protocol), in
one run: an echo endpoint (/ws/echo) under bench/ws_load, each socket sending a 32-byte text
message and waiting for its echo.

The server is pinned to core 0 and the load to core 1. For each server, interleaved and
repeated: round trips per second, and the server's CPU time per round trip (user+sys from
/proc over the run, divided by the round trips): on two cores the load generator is often
the limit, so the CPU per message is the figure that compares servers. Then the resident
memory that N idle open sockets add to each server.

    .venv/bin/python bench/run_ws_bench.py build/release [--seconds 5 --repeat 3 --connections 64 --idle 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_web_bench import (
    Server,
    cpu_seconds,
    fastapi_server,
    free_port,
    rss_kib,
    start,
    stop,
    tree,
    wait_listening,
)


def round_trips(load: Path, port: int, seconds: float, connections: int) -> int:
    output = subprocess.run(
        ["taskset", "-c", "1", str(load), str(port), "/ws/echo", str(connections), f"{seconds:g}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(output.split()[1])


def idle_cost(load: Path, server: Server, count: int, env: dict[str, str]) -> float:
    """Bytes of resident memory each idle open socket adds to the server."""
    port = free_port()
    process = start(server, port, env)
    try:
        time.sleep(0.5)
        before = rss_kib(tree(process.pid))
        holder = subprocess.Popen(
            ["taskset", "-c", "1", str(load), str(port), "/ws/echo", str(count), "20", "--idle"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        line = holder.stdout.readline()
        if not line.startswith("open"):
            raise SystemExit(f"bench: the idle sockets did not all open ({line.strip()})")
        time.sleep(1)
        after = rss_kib(tree(process.pid))
        holder.kill()
        holder.wait()
        return (after - before) * 1024 / count
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description="molt::web WebSockets vs FastAPI on uvicorn")
    parser.add_argument("build", type=Path, help="the CMake build folder (release)")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--idle", type=int, default=1000, help="idle sockets for the memory figure")
    args = parser.parse_args()
    args.build = args.build.resolve()  # the servers run in a folder of their own
    load = args.build / "bench/ws_load"
    work = Path(tempfile.mkdtemp(prefix="molt-ws-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLT_")}
    env["MOLT_BENCH_SQLITE"] = str(work / "demo.sqlite3")
    # molt-demo seeds its database on its first start, and listens once it has: not timed.
    seed_port = free_port()
    seeding = subprocess.Popen(
        [
            str(args.build / "apps/molt-demo/molt-demo"),
            "--port",
            str(seed_port),
            "--db",
            str(work / "demo.sqlite3"),
        ],
        stderr=subprocess.DEVNULL,
    )
    wait_listening(seed_port, 300)
    seeding.terminate()
    seeding.wait()
    servers = [
        Server(
            "molt-demo",
            [
                str(args.build / "apps/molt-demo/molt-demo"),
                "--port",
                "{port}",
                "--threads",
                "1",
                "--db",
                str(work / "demo.sqlite3"),
            ],
            work,
        ),
        fastapi_server(),
    ]
    print(f"bench: {os.cpu_count()} cores, load average before: {os.getloadavg()}")
    results: dict[str, list[tuple[float, float]]] = {s.name: [] for s in servers}
    for _ in range(args.repeat):
        for server in servers:
            port = free_port()
            process = start(server, port, env)
            try:
                round_trips(load, port, 1, args.connections)  # warm-up
                pids = tree(process.pid)
                before = sum(cpu_seconds(pids).values())
                trips = round_trips(load, port, args.seconds, args.connections)
                used = sum(cpu_seconds(pids).values()) - before
                results[server.name].append((trips / args.seconds, used * 1e6 / max(trips, 1)))
            finally:
                stop(process)
    print("\n| server | round trips/s | CPU µs per round trip |")
    print("|---|---:|---:|")
    medians = {}
    for name, rounds in results.items():
        rate = statistics.median(r for r, _ in rounds)
        cpu = statistics.median(c for _, c in rounds)
        medians[name] = cpu
        print(f"| {name} | {rate:,.0f} | {cpu:.1f} |")
    print(f"\nFastAPI / molt-demo CPU per round trip: {medians['fastapi'] / medians['molt-demo']:.1f}x")
    if args.idle:
        for server in servers:
            print(
                f"idle: {args.idle} open WebSockets added {idle_cost(load, server, args.idle, env):,.0f} "
                f"bytes each to {server.name}"
            )


if __name__ == "__main__":
    main()
