"""The worker's cost when calls come one at a time, as they do from a gunicorn sync worker:
CPU time and context switches per call in the molt-worker process, and in this Python
client, from /proc. Give several worker binaries to compare them interleaved in one run.

    .venv/bin/python bench/worker_one_at_a_time.py build/release/apps/molt-worker/molt-worker [OTHER ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from molt_accel import MoltClient

PAYLOAD = {"user_id": 7, "limit": 50}
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def context_switches(pid: int) -> int:
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if "ctxt_switches" in line:
                total += int(line.split()[1])
    return total


def measure(worker: str, calls: int) -> tuple[float, float, float, float]:
    """calls/s, worker µs and switches per call, client µs per call."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOLT_DB_", "MOLT_FAKE_DB_"))}
    with MoltClient([worker, "--stdio"], env=env) as client:
        for _ in range(2000):  # warm-up
            client.call("list_items", PAYLOAD, decode_response=False)
        pid = client._current_worker().pid
        worker_before, switches_before = process_cpu(pid), context_switches(pid)
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        for _ in range(calls):
            client.call("list_items", PAYLOAD, decode_response=False)
        elapsed = time.perf_counter() - started
        worker_cpu = process_cpu(pid) - worker_before
        switches = context_switches(pid) - switches_before
        client_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    return calls / elapsed, worker_cpu / calls * 1e6, switches / calls, client_cpu / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workers", nargs="+", help="molt-worker binaries (release builds)")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"bench: {os.cpu_count()} cores, load average before: {os.getloadavg()}")
    print("| round | worker | calls/s | worker CPU µs/call | worker switches/call | client CPU µs/call |")
    print("|---:|---|---:|---:|---:|---:|")
    for round_number in range(1, args.repeat + 1):
        for worker in args.workers:
            rate, worker_us, switches, client_us = measure(worker, args.calls)
            print(
                f"| {round_number} | `{worker}` | {rate:,.0f} | {worker_us:.1f} | {switches:.2f} "
                f"| {client_us:.1f} |"
            )


if __name__ == "__main__":
    main()
