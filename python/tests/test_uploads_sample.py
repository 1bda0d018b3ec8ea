"""The uploads sample (apps/samples/uploads): multipart forms read as they arrive, files written
piece by piece, posted by curl (an independent multipart encoder, with its Expect: 100-continue
and chunked uploads) and by raw sockets that stop half way."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def uploads(uploads_bin: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    folder = tmp_path / "store"
    process = subprocess.Popen(
        [str(uploads_bin), "--port", "0", "--dir", str(folder), "--max-mib", "64"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    match = re.search(r"serving http://127\.0\.0\.1:(\d+)", process.stderr.readline())
    assert match, "uploads did not report its port"
    yield int(match.group(1)), folder
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def curl(port: int, *arguments: str) -> tuple[int, dict]:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "60",
            "-w",
            "\n%{http_code}",
            *arguments,
            f"http://127.0.0.1:{port}/files",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    body, status = done.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def stored(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def test_files_and_fields_are_stored_as_sent(uploads: tuple[int, Path], tmp_path: Path) -> None:
    port, folder = uploads
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 << 20))  # curl sends Expect: 100-continue for it
    small = tmp_path / "notes.txt"
    small.write_bytes(b"line one\r\n--not the boundary\r\n")
    status, answer = curl(
        port,
        "-F",
        "title=h\u00e9llo",
        "-F",
        f"photo=@{big};type=image/png",
        "-F",
        f"notes=@{small}",
    )
    assert status == 201, answer
    assert answer["fields"] == {"title": "h\u00e9llo"}
    files = answer["files"]
    assert [(f["field"], f["filename"], f["content_type"], f["bytes"]) for f in files] == [
        ("photo", "big.bin", "image/png", 20 << 20),
        ("notes", "notes.txt", "text/plain", small.stat().st_size),
    ]
    assert (folder / files[0]["id"]).read_bytes() == big.read_bytes()
    assert (folder / files[1]["id"]).read_bytes() == small.read_bytes()
    assert stored(folder) == sorted(f["id"] for f in files)  # no .part left


def test_a_chunked_upload_is_stored_too(uploads: tuple[int, Path], tmp_path: Path) -> None:
    port, folder = uploads
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(3 << 20))
    status, answer = curl(port, "-H", "Transfer-Encoding: chunked", "-F", f"data=@{data}")
    assert status == 201, answer
    assert (folder / answer["files"][0]["id"]).read_bytes() == data.read_bytes()


def wait_for(condition, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_an_upload_cut_short_is_written_as_it_comes_and_then_removed(uploads: tuple[int, Path]) -> None:
    port, folder = uploads
    head = b'--B\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n'
    declared = len(head) + (10 << 20) + len(b"\r\n--B--\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(
            b"POST /files HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            + f"Content-Length: {declared}\r\n\r\n".encode()
            + head
        )
        for _ in range(32):  # 2 MiB of the 10 declared
            client.sendall(b"x" * (64 << 10))
        # Written as it arrives: the file is on disk, under its temporary name, before the
        # body has ended.
        wait_for(
            lambda: any(
                name.endswith(".part") and (folder / name).stat().st_size > (1 << 20)
                for name in stored(folder)
            ),
            "no partial file grew on disk",
        )
    wait_for(lambda: stored(folder) == [], f"the partial file stayed: {stored(folder)}")


def test_bad_forms_are_refused_and_leave_nothing(uploads: tuple[int, Path]) -> None:
    port, folder = uploads
    part = b'--B\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n' + b"y" * 100_000

    def post(body: bytes, content_type: str) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(
                f"POST /files HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        status = int(answer.split(b" ", 2)[1])
        return status, answer.split(b"\r\n\r\n", 1)[1]

    status, body = post(part, "multipart/form-data; boundary=B")  # never ends
    assert status == 400 and b"the body ends inside a part" in body
    status, body = post(part + b"\r\n--B--", "text/plain")
    assert status == 415
    status, body = post(
        b'--B\r\nContent-Disposition: form-data; name="t"\r\n\r\n' + b"t" * 70_000 + b"\r\n--B--",
        "multipart/form-data; boundary=B",
    )
    assert status == 413 and b"field 't' passes 65536 bytes" in body
    assert stored(folder) == []
