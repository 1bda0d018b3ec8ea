"""molt::web against its peers, in one run (issue 5's benchmark).

Servers, each pinned to core 0 (wrk on core 1), one worker/thread each:
    molt-demo      the example service (molt::web + molt::db on SQLite)
    beast_hello    a bare Boost.Beast coroutine server: the floor (/json and /plaintext only)
    fastapi        FastAPI on uvicorn with uvloop + httptools (its fastest setup)
    granian        the same FastAPI app on granian (Rust HTTP server, ASGI)
Endpoints: /json, /plaintext and /items (50 rows of a random user from the same SQLite file).

For each server and endpoint, interleaved and repeated: requests/s, p50/p99 latency from wrk,
and the server's CPU time per request (user+sys from /proc over the run, children included).
On two cores wrk saturates its own core near 50-90k requests/s, so CPU per request is the
figure that compares servers (DESIGN.md section 9).

Optional, for molt-demo and the floor: user-space instructions per request under callgrind
(--callgrind), and the resident memory of idle keep-alive connections (--idle N).

    .venv/bin/python bench/run_web_bench.py build/release [--seconds 8 --repeat 3 --callgrind --idle 10000]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv/bin"
TICKS = os.sysconf("SC_CLK_TCK")
ENDPOINTS = ("/json", "/plaintext", "/items")
ITEMS_SCRIPT = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/items?user_id=" .. math.random(1, 1000) .. "&limit=50")
end
"""


@dataclass
class Server:
    name: str
    command: list[str]
    cwd: Path
    endpoints: tuple[str, ...] = ENDPOINTS


def fastapi_server() -> Server:
    """FastAPI on uvicorn with uvloop and httptools, one worker: the peer of molt-demo (its
    WebSockets on uvicorn's default implementation)."""
    return Server(
        "fastapi",
        [
            str(VENV_BIN / "uvicorn"),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--workers",
            "1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
            "--no-access-log",
            "--app-dir",
            str(ROOT / "bench"),
            "peers.fastapi_app:app",
        ],
        ROOT / "bench",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on {port}")


def tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / TICKS
        except OSError:
            pass
    return out


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def micros(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def wrk(
    port: int, endpoint: str, seconds: float, connections: int, script: Path
) -> tuple[float, float, float, int]:
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if endpoint == "/items":
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{endpoint}"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = micros(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = micros(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in output or (
        "Socket errors" in output and "connect 0, read 0, write 0, timeout 0" not in output
    ):
        print(f"bench: warning: {endpoint}: {output.strip().splitlines()[-3:]}")
    return rps, p50, p99, requests


def start(server: Server, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [part.replace("{port}", str(port)) for part in server.command]
    process = subprocess.Popen(
        ["taskset", "-c", "0", *command],
        cwd=server.cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_listening(port)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def instructions_per_request(
    command: list[str], cwd: Path, env: dict[str, str], endpoint: str, out: Path
) -> float:
    """User-space instructions per request under callgrind, counted after a warm-up."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    dump = out / f"callgrind.{Path(command[0]).name}.out"
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={dump}", *command],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port, 120)
    script = out / "items.lua"
    wrk(port, endpoint, 2, 4, script)  # warm-up, not counted
    subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], capture_output=True, check=True)
    _, _, _, requests = wrk(port, endpoint, 5, 4, script)
    subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], capture_output=True, check=True)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    text = dump.read_text(errors="replace")
    # "summary:" is 0 with --instr-atstart=no; "totals:" has what was counted.
    total = sum(int(m) for m in re.findall(r"^totals:\s+(\d+)", text, re.M))
    return total / max(requests, 1)


def idle_connection_cost(command: list[str], cwd: Path, env: dict[str, str], count: int) -> tuple[int, float]:
    """Resident memory added per idle keep-alive connection (each served one request first)."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_listening(port)
    request = b"GET /json HTTP/1.1\r\nHost: b\r\n\r\n"
    warm = socket.create_connection(("127.0.0.1", port))
    for _ in range(200):  # the first requests allocate what every later one reuses
        warm.sendall(request)
        warm.recv(4096)
    time.sleep(0.2)
    before = rss_kib([process.pid])
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        sockets.append(s)
    for s in sockets:
        s.recv(4096)
    time.sleep(0.5)
    after = rss_kib([process.pid])
    for s in sockets:
        s.close()
    warm.close()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    return after - before, (after - before) * 1024 / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description="molt::web vs FastAPI/uvicorn, granian and a bare Beast server"
    )
    parser.add_argument("build", type=lambda p: Path(p).resolve(), help="a release build folder")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per request")
    parser.add_argument("--idle", type=int, default=0, help="also measure N idle keep-alive connections")
    parser.add_argument("--only", default="", help="comma-separated server names")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    work = Path(tempfile.mkdtemp(prefix="molt-web-bench-"))
    db = work / "demo.sqlite3"
    script = work / "items.lua"
    script.write_text(ITEMS_SCRIPT)
    demo = str(args.build / "apps/molt-demo/molt-demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLT_")}
    env["MOLT_BENCH_SQLITE"] = str(db)
    # molt-demo creates and seeds the database on its first start; the peers read the same file.
    # It listens only once the rows are committed.
    seed_port = free_port()
    seeding = subprocess.Popen([demo, "--port", str(seed_port), "--db", str(db)], stderr=subprocess.DEVNULL)
    wait_listening(seed_port, 300)
    seeding.terminate()
    seeding.wait()

    servers = [
        Server("molt-demo", [demo, "--port", "{port}", "--threads", "1", "--db", str(db)], work),
        Server(
            "beast_hello", [str(args.build / "bench/beast_hello"), "{port}"], work, ("/json", "/plaintext")
        ),
        fastapi_server(),
        Server(
            "granian",
            [
                str(VENV_BIN / "granian"),
                "--interface",
                "asgi",
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--port",
                "{port}",
                "--no-access-log",
                "--log-level",
                "warning",
                "peers.fastapi_app:app",
            ],
            ROOT / "bench",
        ),
    ]
    if args.only:
        servers = [s for s in servers if s.name in args.only.split(",")]

    print(f"bench: {os.cpu_count()} cores, load average before: {os.getloadavg()}")
    runs: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for round_number in range(1, args.repeat + 1):
        for server in servers:
            port = free_port()
            process = start(server, port, env)
            try:
                for endpoint in server.endpoints:
                    wrk(port, endpoint, 1, args.connections, script)  # warm-up
                    before = cpu_seconds(tree(process.pid))
                    rps, p50, p99, requests = wrk(port, endpoint, args.seconds, args.connections, script)
                    after = cpu_seconds(tree(process.pid))
                    cpu_us = sum(after[p] - before.get(p, 0.0) for p in after) / max(requests, 1) * 1e6
                    runs.setdefault((server.name, endpoint), []).append((rps, p50, p99, cpu_us))
                    print(
                        f"run {round_number} {server.name:12s} {endpoint:10s} {rps:10,.0f} req/s  "
                        f"p50 {p50 / 1000:6.2f} ms  p99 {p99 / 1000:6.2f} ms  CPU {cpu_us:7.1f} us/req"
                    )
            finally:
                stop(process)
    print(f"bench: load average after: {os.getloadavg()}")

    print(
        f"\nmedians (wrk -t1 -c{args.connections}, {args.seconds:g}s x {args.repeat}, "
        "server on core 0, wrk on core 1):"
    )
    print("| server | endpoint | req/s | p50 ms | p99 ms | CPU µs/req |")
    print("|---|---|---:|---:|---:|---:|")
    medians: dict[tuple[str, str], list[float]] = {}
    for (name, endpoint), values in runs.items():
        medians[(name, endpoint)] = [statistics.median(v[i] for v in values) for i in range(4)]
        m = medians[(name, endpoint)]
        print(f"| {name} | `{endpoint}` | {m[0]:,.0f} | {m[1] / 1000:.2f} | {m[2] / 1000:.2f} | {m[3]:.1f} |")
    for endpoint in ENDPOINTS:
        ours = medians.get(("molt-demo", endpoint))
        for peer in ("fastapi", "granian", "beast_hello"):
            theirs = medians.get((peer, endpoint))
            if ours and theirs:
                print(
                    f"ratio {endpoint}: {peer} uses {theirs[3] / ours[3]:.1f}x "
                    "the CPU per request of molt-demo "
                    f"({theirs[3]:.1f} vs {ours[3]:.1f} us); req/s {ours[0] / theirs[0]:.2f}x"
                )

    if args.callgrind and shutil.which("valgrind"):
        for name, command in (
            ("molt-demo", [demo, "--port", "{port}", "--threads", "1", "--db", str(db)]),
            ("beast_hello", [str(args.build / "bench/beast_hello"), "{port}"]),
        ):
            for endpoint in ("/json",) if name == "beast_hello" else ("/json", "/items"):
                ir = instructions_per_request(command, work, env, endpoint, work)
                print(f"callgrind {name} {endpoint}: {ir:,.0f} instructions per request")
    if args.idle:
        grown, per_connection = idle_connection_cost(
            [demo, "--port", "{port}", "--threads", "1", "--db", str(db)], work, env, args.idle
        )
        print(
            f"idle: {args.idle} keep-alive connections added {grown:,} KiB resident to molt-demo: "
            f"{per_connection:,.0f} bytes per connection"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
