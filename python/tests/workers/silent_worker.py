"""A worker that never answers: it logs the entry and request id of every frame it reads to
the file named by $SILENT_WORKER_LOG, and "EOF" when its input closes. It shows what reached
a stuck worker, which the real binaries cannot (a stopped process reads nothing)."""

from __future__ import annotations

import os
import struct
import sys

import msgpack


def main() -> None:
    source = sys.stdin.buffer
    with open(os.environ["SILENT_WORKER_LOG"], "a", buffering=1) as log:
        while True:
            header = source.read(4)
            if len(header) < 4:
                log.write("EOF\n")
                return
            (length,) = struct.unpack("<I", header)
            message = msgpack.unpackb(source.read(length), raw=False)
            log.write(f"{message.get('entry')} {message.get('request_id')}\n")


if __name__ == "__main__":
    main()
