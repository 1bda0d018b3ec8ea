"""Peak memory of molt-worker for one large payload, against Python decoding the same bytes.

Usage (from the repository root):

    .venv/bin/python bench/worker_memory.py build/release/apps/molt-worker/molt-worker --mib 8

For each shape, one fresh worker gets one request through MoltClient; its peak resident size
(VmHWM) above its size before the request is divided by the payload's size. The peer is a fresh
Python process that decodes the same bytes with msgpack.unpackb or json.loads, the work the
Django process would do without the worker, measured the same way (VmHWM above the size after
the bytes were read; ru_maxrss would carry the parent's peak across the fork). "ratio" is the
worker's growth over Python's: below 1, the worker needs less memory for the same payload.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from molt_accel.client import MoltClient
from molt_accel.errors import MoltAccelError
from molt_accel.wire import encode_payload

MIB = 1 << 20

PYTHON_PEER = """
import json, sys
import msgpack
def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
data = open(sys.argv[1], "rb").read()
before = peak()
value = msgpack.unpackb(data) if sys.argv[2] == "msgpack" else json.loads(data)
print((peak() - before) * 1024)
"""


def shapes(size: int) -> dict[str, tuple[str, str, Any]]:
    return {
        "list_items, refused at its first field": ("list_items", "msgpack", {"user_id": [{}] * size}),
        "compute, 1-byte ints, refused after them": (
            "compute",
            "msgpack",
            {"values": [1] * size, "scale": "x"},
        ),
        "compute, floats": ("compute", "msgpack", {"values": [1.5] * (size // 9)}),
        "offload_table, rows {a: 1} (JSON)": ("offload_table", "json", {"rows": [{"a": 1}] * (size // 8)}),
        "offload_table, empty rows (JSON)": ("offload_table", "json", {"rows": [{}] * (size // 3)}),
    }


def peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def worker_growth(binary: str, entry: str, codec: str, payload: Any) -> tuple[float, str]:
    client = MoltClient(worker_cmd=[binary, "--threads", "1"], max_frame_size=256 * MIB)
    try:
        client.start()
        pid = client.pid
        assert pid is not None
        before = peak_mib(pid)
        try:
            client.call(entry, payload, codec=codec, timeout_ms=60_000, decode_response=False)
            outcome = "Ok"
        except MoltAccelError as exc:
            outcome = type(exc).__name__
        return peak_mib(pid) - before, outcome
    finally:
        client.close()


def python_growth(body: bytes, codec: str) -> float:
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(body)
        f.flush()
        out = subprocess.run(
            [sys.executable, "-c", PYTHON_PEER, f.name, codec], check=True, capture_output=True, text=True
        )
    return int(out.stdout) / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worker", help="path of molt-worker (a release build)")
    parser.add_argument("--mib", type=int, default=8, help="payload size, MiB")
    args = parser.parse_args()
    print(f"{'shape':42s} {'MiB':>5s} {'worker x':>9s} {'python x':>9s} {'ratio':>6s}  worker answer")
    for name, (entry, codec, payload) in shapes(args.mib * MIB).items():
        body = encode_payload(payload, codec)
        size = len(body) / MIB
        worker, outcome = worker_growth(args.worker, entry, codec, payload)
        python = python_growth(body, codec)
        ratio = worker / python if python > 0 else float("inf")
        print(f"{name:42s} {size:5.1f} {worker / size:9.1f} {python / size:9.1f} {ratio:6.2f}  {outcome}")


if __name__ == "__main__":
    main()
