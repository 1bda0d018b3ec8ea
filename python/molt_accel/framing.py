"""Frames on the worker pipe: a 4-byte little-endian length, then that many bytes."""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from molt_accel.errors import MoltPayloadTooLarge, MoltProtocolError
from molt_accel.wire import answer_request_id

DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024
HEADER_SIZE = 4
# Enough of an answer to read its request id, which the worker writes first.
ANSWER_PREFIX_SIZE = 64
DISCARD_CHUNK_SIZE = 64 * 1024
_HEADER = struct.Struct("<I")


class AnswerOverLimit(MoltProtocolError):
    """A whole answer longer than this client's frame limit, read past without being kept.

    The worker sent it within its own, larger limit and serves on: only the call it answers
    fails (a 502 in a view), where refusing the frame would kill the worker and every call on
    it, and an idempotent call sent again would kill the next one the same way."""

    def __init__(self, request_id: int, length: int, limit: int) -> None:
        super().__init__(
            f"the worker's answer of {length} bytes is over this client's frame limit of "
            f"{limit} bytes (max_frame_size)",
            request_id=request_id,
        )


# How a worker answers a frame over its own limit, which it skips unread: under request id 0
# (it never read the id), naming the frame's length and its limit (docs/worker.md).
_REFUSED_FRAME = re.compile(r"frame of (\d+) bytes exceeds the limit of (\d+) bytes")


def refused_frame(request_id: int, error: str | None) -> tuple[int, int] | None:
    """(length, limit) when an answer is a worker's refusal of a frame over its limit: the
    limit may be lower than this client's (set in the worker's environment by a wrapper)."""
    if request_id != 0 or not error:
        return None
    match = _REFUSED_FRAME.search(error)
    return (int(match[1]), int(match[2])) if match else None


def over_the_workers_limit(length: int, limit: int, request_id: int) -> MoltPayloadTooLarge:
    """The error of the call whose frame the worker refused (its caller's input: a 413)."""
    return MoltPayloadTooLarge(
        f"request of {length} bytes is over the worker's frame limit of {limit} bytes",
        request_id=request_id,
    )


def encode_frame(body: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """The frame carrying ``body``; refuses bodies over the limit before anything is sent.
    Too large a request is the caller's input (``MoltPayloadTooLarge``, a 413 in a view), not
    a fault of the worker's answers."""
    if len(body) > max_frame_size:
        raise MoltPayloadTooLarge(
            f"request of {len(body)} bytes is over the frame limit of {max_frame_size} bytes"
        )
    return _HEADER.pack(len(body)) + body


def frame_length(header: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> int:
    """The body length announced by a 4-byte header, checked against the limit."""
    length = announced_length(header)
    if length > max_frame_size:
        raise MoltProtocolError(
            f"worker sent a frame of {length} bytes, over the limit of {max_frame_size} bytes"
        )
    return length


def announced_length(header: bytes) -> int:
    """The body length a 4-byte header announces, unchecked."""
    (length,) = _HEADER.unpack(header)
    return length


def check_answer_start(first: bytes, length: int) -> None:
    """An answer starts with its envelope: a MsgPack map, or a JSON object (blanks allowed
    first). Anything else (a process printing text on the worker's stdout) is a broken stream,
    said at its first byte: waiting for the rest of a frame that long could wait forever."""
    if not first:
        raise MoltProtocolError(f"worker output ended inside a frame of {length} bytes")
    byte = first[0]
    if not (0x80 <= byte <= 0x8F or byte in (0xDE, 0xDF) or first in (b"{", b" ", b"\t", b"\r", b"\n")):
        raise MoltProtocolError(
            f"worker output is not frames (a frame of {length} bytes that starts with {first!r}): "
            "something else writes to the worker's stdout"
        )


def answer_over_limit(prefix: bytes, length: int, limit: int) -> AnswerOverLimit:
    """What to fail for a frame of ``length`` bytes over ``limit`` that starts with ``prefix``:
    the call it answers, when it starts as an answer does. Anything else is a broken stream
    (``MoltProtocolError``), and nothing after it can be trusted."""
    request_id = answer_request_id(prefix)
    if request_id is None:
        raise MoltProtocolError(f"worker sent a frame of {length} bytes, over the limit of {limit} bytes")
    return AnswerOverLimit(request_id, length, limit)


def read_frame(stream: BinaryIO, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes | None:
    """The next frame body from a buffered stream; None at a clean end of stream.

    A stream that ends inside a frame is a protocol error: the peer died mid-answer. An
    answer over the limit is read past and raised as ``AnswerOverLimit``.
    """
    header = stream.read(HEADER_SIZE)
    if not header:
        return None
    if len(header) < HEADER_SIZE:
        raise MoltProtocolError("worker output ended inside a frame header")
    length = announced_length(header)
    if length > max_frame_size:
        first = stream.read(1)
        check_answer_start(first, length)
        prefix = first + stream.read(min(length, ANSWER_PREFIX_SIZE) - 1)
        over = answer_over_limit(prefix, length, max_frame_size)
        left = length - len(prefix)
        while left > 0:
            piece = stream.read(min(left, DISCARD_CHUNK_SIZE))
            if not piece:
                raise MoltProtocolError(f"worker output ended inside a frame of {length} bytes")
            left -= len(piece)
        raise over
    body = stream.read(length)
    if len(body) < length:
        raise MoltProtocolError(f"worker output ended inside a frame ({len(body)} of {length} bytes)")
    return body


class FrameDecoder:
    """Splits a byte stream that arrives in arbitrary pieces into frame bodies."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._max = max_frame_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Adds ``data`` and returns every frame it completes, in order."""
        self._buffer += data
        frames: list[bytes] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= HEADER_SIZE:
            length = frame_length(bytes(buffer[offset : offset + HEADER_SIZE]), self._max)
            end = offset + HEADER_SIZE + length
            if end > len(buffer):
                break
            frames.append(bytes(buffer[offset + HEADER_SIZE : end]))
            offset = end
        if offset:
            del buffer[:offset]
        return frames

    @property
    def pending_bytes(self) -> int:
        """Bytes held for a frame that is not complete yet."""
        return len(self._buffer)
