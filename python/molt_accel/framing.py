"""Frames on the worker pipe: a 4-byte little-endian length, then that many bytes."""

from __future__ import annotations

import struct
from typing import BinaryIO

from molt_accel.errors import MoltInvalidInput, MoltProtocolError

DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024
HEADER_SIZE = 4
_HEADER = struct.Struct("<I")


def encode_frame(body: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """The frame carrying ``body``; refuses bodies over the limit before anything is sent.
    Too large a request is the caller's input (``MoltInvalidInput``, a 400 in a view), not a
    fault of the worker's answers."""
    if len(body) > max_frame_size:
        raise MoltInvalidInput(
            f"request of {len(body)} bytes is over the frame limit of {max_frame_size} bytes"
        )
    return _HEADER.pack(len(body)) + body


def frame_length(header: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> int:
    """The body length announced by a 4-byte header, checked against the limit."""
    (length,) = _HEADER.unpack(header)
    if length > max_frame_size:
        raise MoltProtocolError(
            f"worker sent a frame of {length} bytes, over the limit of {max_frame_size} bytes"
        )
    return length


def read_frame(stream: BinaryIO, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes | None:
    """The next frame body from a buffered stream; None at a clean end of stream.

    A stream that ends inside a frame is a protocol error: the peer died mid-answer.
    """
    header = stream.read(HEADER_SIZE)
    if not header:
        return None
    if len(header) < HEADER_SIZE:
        raise MoltProtocolError("worker output ended inside a frame header")
    length = frame_length(header, max_frame_size)
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
