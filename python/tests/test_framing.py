from __future__ import annotations

import io

import msgpack
import pytest

from molt_accel.errors import MoltInvalidInput, MoltProtocolError
from molt_accel.framing import AnswerOverLimit, FrameDecoder, encode_frame, read_frame
from molt_accel.wire import answer_request_id


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


@pytest.mark.parametrize(
    "answer",
    [
        msgpack.packb({"request_id": 7, "status": "Ok", "payload": b"x" * 100}, use_bin_type=True),
        b'{"request_id":7,"status":"Ok","payload_b64":"' + b"eA" * 100 + b'"}',
    ],
)
def test_an_answer_over_the_limit_is_read_past_and_names_its_call(answer: bytes) -> None:
    stream = io.BytesIO(encode_frame(answer) + encode_frame(b"next"))
    with pytest.raises(AnswerOverLimit, match=f"answer of {len(answer)} bytes") as raised:
        read_frame(stream, max_frame_size=50)
    assert raised.value.request_id == 7
    assert read_frame(stream, max_frame_size=50) == b"next"  # the stream is still in step


@pytest.mark.parametrize(
    "start",
    [
        b"x" * 80,  # not an answer at all
        msgpack.packb({"status": "Ok", "request_id": 7, "payload": b"x" * 60}),  # id not first
        msgpack.packb([7, "Ok"] * 20),
        b'{"status":"Ok","request_id":7' + b" " * 60,
        msgpack.packb({"request_id": -1, "payload": b"x" * 60}),
    ],
)
def test_a_frame_over_the_limit_that_is_no_answer_breaks_the_stream(start: bytes) -> None:
    # Said at the first byte when it cannot start an answer, else once its id cannot be read.
    with pytest.raises(MoltProtocolError, match=r"over the limit of 50|is not frames") as raised:
        read_frame(io.BytesIO(encode_frame(start)), max_frame_size=50)
    assert not isinstance(raised.value, AnswerOverLimit)


def test_request_id_is_read_from_a_cut_prefix() -> None:
    packed = msgpack.packb({"request_id": 2**40, "payload": b"x" * 100}, use_bin_type=True)
    assert answer_request_id(packed[:21]) == 2**40
    assert answer_request_id(packed[:20]) is None
    assert answer_request_id(packed[:5]) is None
    assert answer_request_id(b'{ "request_id" : 12 ,') == 12
    assert answer_request_id(b'{"request_id":12') is None  # the number may go on
