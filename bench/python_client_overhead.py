"""Client overhead of molt_accel: MoltClient against a raw os.write/os.read floor, same worker,
same run (issue 4, benchmark 1).

The floor writes a prebuilt request frame and reads the answer with bare os.write/os.read:
no envelope building, no reader thread, no hand-off. MoltClient adds what a real caller needs
(ids, envelopes, the reader thread, decoding). Configurations are interleaved and repeated;
medians and the client/floor ratios come from this run only.

    .venv/bin/python bench/python_client_overhead.py build/release/apps/molt-worker/molt-worker
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import msgpack

from molt_accel import MoltClient
from molt_accel.framing import encode_frame
from molt_accel.wire import encode_request

LIST_PAYLOAD = {"user_id": 7, "limit": 50}


def read_exact(fd: int, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = os.read(fd, count - len(chunks))
        if not chunk:
            raise EOFError("worker closed its output")
        chunks += chunk
    return bytes(chunks)


class RawFloor:
    """The same frames over bare pipes: the least any Python client can do per call."""

    def __init__(self, worker: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOLT_DB_", "MOLT_FAKE_DB_"))}
        self.proc = subprocess.Popen([worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.stdin = self.proc.stdin.fileno()  # type: ignore[union-attr]
        self.stdout = self.proc.stdout.fileno()  # type: ignore[union-attr]

    def frame(self, entry: str, payload: bytes, codec: str) -> bytes:
        return encode_frame(encode_request("msgpack", 1, entry, 1000, codec, payload))

    def exchange(self, frame: bytes) -> bytes:
        os.write(self.stdin, frame)
        length = int.from_bytes(read_exact(self.stdout, 4), "little")
        return read_exact(self.stdout, length)

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait()


def rate(call: Callable[[], object], seconds: float) -> tuple[float, float, float]:
    """calls/s, p50 and p99 in µs over `seconds` of back-to-back calls (after a warm-up)."""
    warm_end = time.perf_counter() + 0.3
    while time.perf_counter() < warm_end:
        call()
    samples: list[float] = []
    clock = time.perf_counter
    end = clock() + seconds
    while True:
        start = clock()
        call()
        stop = clock()
        samples.append(stop - start)
        if stop >= end:
            break
    samples.sort()
    total = sum(samples)
    return len(samples) / total, samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worker", help="path to a (release) molt-worker")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    floor = RawFloor(args.worker)
    ping_frame = floor.frame("__ping__", b"", "raw")
    list_frame = floor.frame("list_items", msgpack.packb(LIST_PAYLOAD), "msgpack")
    client = MoltClient(
        [args.worker], env={k: v for k, v in os.environ.items() if not k.startswith("MOLT_DB_")}
    )
    client.ping()

    modes: dict[str, Callable[[], object]] = {
        "floor ping": lambda: floor.exchange(ping_frame),
        "client ping": client.ping,
        "floor list_items": lambda: floor.exchange(list_frame),
        "client list_items raw": lambda: client.call("list_items", LIST_PAYLOAD, decode_response=False),
        "client list_items decoded": lambda: client.call("list_items", LIST_PAYLOAD),
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in modes}
    print(f"bench: {os.cpu_count()} cores, load average before: {os.getloadavg()}")
    for round_number in range(args.repeat):
        for name, call in modes.items():
            measured = rate(call, args.seconds)
            results[name].append(measured)
            print(
                f"run {round_number + 1} {name:28s} {measured[0]:10,.0f} calls/s  "
                f"p50 {measured[1]:7.1f} us  p99 {measured[2]:7.1f} us"
            )
    floor.close()
    client.close()

    def median(name: str, index: int) -> float:
        return statistics.median(run[index] for run in results[name])

    print("\nmedians:")
    for name in modes:
        print(
            f"  {name:28s} {median(name, 0):10,.0f} calls/s  p50 {median(name, 1):7.1f} us  "
            f"p99 {median(name, 2):7.1f} us"
        )
    for client_mode, floor_mode in (
        ("client ping", "floor ping"),
        ("client list_items raw", "floor list_items"),
        ("client list_items decoded", "floor list_items"),
    ):
        ratios = [c[0] / f[0] for c, f in zip(results[client_mode], results[floor_mode], strict=True)]
        extra_us = statistics.median(
            c[1] - f[1] for c, f in zip(results[client_mode], results[floor_mode], strict=True)
        )
        print(
            f"ratio {client_mode} / {floor_mode}: {statistics.median(ratios):.3f}  "
            f"(client adds {extra_us:.1f} us at p50)"
        )


if __name__ == "__main__":
    main()
