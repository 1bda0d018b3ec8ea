from __future__ import annotations

import io

import pytest

from molt_accel.errors import MoltInvalidInput, MoltProtocolError
from molt_accel.framing import FrameDecoder, encode_frame, read_frame


def test_frame_is_little_endian_length_then_body() -> None:
    assert encode_frame(b"abc") == b"\x03\x00\x00\x00abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


def test_oversized_body_is_refused_before_sending() -> None:
    with pytest.raises(MoltInvalidInput, match="over the frame limit"):
        encode_frame(b"x" * 11, max_frame_size=10)


def test_decoder_reassembles_frames_split_anywhere() -> None:
    stream = encode_frame(b"first") + encode_frame(b"") + encode_frame(b"third one")
    for piece in (1, 2, 3, 5, 7, len(stream)):
        decoder = FrameDecoder()
        frames: list[bytes] = []
        for start in range(0, len(stream), piece):
            frames += decoder.feed(stream[start : start + piece])
        assert frames == [b"first", b"", b"third one"]
        assert decoder.pending_bytes == 0


def test_decoder_refuses_an_announced_frame_over_the_limit() -> None:
    decoder = FrameDecoder(max_frame_size=4)
    with pytest.raises(MoltProtocolError, match="over the limit"):
        decoder.feed(b"\x05\x00\x00\x00")


def test_read_frame_tells_clean_end_from_truncation() -> None:
    assert read_frame(io.BytesIO(b"")) is None
    assert read_frame(io.BytesIO(encode_frame(b"ok"))) == b"ok"
    with pytest.raises(MoltProtocolError, match="inside a frame header"):
        read_frame(io.BytesIO(b"\x01\x00"))
    with pytest.raises(MoltProtocolError, match="1 of 3 bytes"):
        read_frame(io.BytesIO(b"\x03\x00\x00\x00a"))
