from __future__ import annotations

import base64
import copy
import json
import pickle
from pathlib import Path
from typing import Any

import msgpack
import pytest

from molt_accel.errors import MoltInternalError, MoltInvalidInput, MoltProtocolError
from molt_accel.wire import (
    RawAnswer,
    decode_answer,
    decode_payload,
    encode_payload,
    encode_request,
    resolve_wire,
)


def test_msgpack_request_envelope_has_the_protocol_keys() -> None:
    body = encode_request("msgpack", 7, "list_items", 250, "msgpack", b"\x81\xa1a\x01")
    assert msgpack.unpackb(body) == {
        "request_id": 7,
        "entry": "list_items",
        "timeout_ms": 250,
        "codec": "msgpack",
        "payload": b"\x81\xa1a\x01",
    }


def test_json_request_envelope_carries_base64_payload() -> None:
    body = encode_request("json", 8, "health", 0, "json", b'{"x":1}')
    envelope = json.loads(body)
    assert envelope["payload_b64"] == base64.b64encode(b'{"x":1}').decode()
    assert "payload" not in envelope


def test_answers_decode_on_both_wires() -> None:
    packed = msgpack.packb(
        {"request_id": 3, "status": "Ok", "codec": "json", "payload": b"[1]", "metrics": {"exec_us": 5}},
        use_bin_type=True,
    )
    answer = decode_answer(packed)
    assert (answer.request_id, answer.status, answer.payload, answer.metrics) == (
        3,
        "Ok",
        b"[1]",
        {"exec_us": 5},
    )
    as_json = json.dumps(
        {"request_id": 4, "status": "Busy", "codec": "raw", "payload_b64": "", "error": "queue full"}
    ).encode()
    answer = decode_answer(as_json)
    assert (answer.request_id, answer.status, answer.error, answer.payload) == (4, "Busy", "queue full", b"")


def test_a_raw_answer_copies_and_pickles_with_its_codec() -> None:
    raw = RawAnswer(b"{}", "json")
    for back in (copy.copy(raw), pickle.loads(pickle.dumps(raw))):
        assert back == b"{}" and back.codec == "json"


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never used in MsgPack
        msgpack.packb([1, 2]),
        msgpack.packb({"status": "Ok"}),
        msgpack.packb({"request_id": "1", "status": "Ok"}),
        msgpack.packb({"request_id": 1, "status": "Ok", "payload": 5}),
        b'{"request_id": 1, "status": "Ok", "payload_b64": "***"}',
        b"{not json",
        b"\x81\x91\x01\x01",  # {[1]: 1}: a key no dict can hold (it killed the reader thread)
    ],
)
def test_malformed_answers_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(MoltProtocolError):
        decode_answer(body)


def test_payload_codecs() -> None:
    value = {"user_id": 3, "q": "é", "scores": [0.5, 1]}
    assert decode_payload(encode_payload(value, "msgpack"), "msgpack") == value
    assert encode_payload(value, "json") == '{"user_id":3,"q":"é","scores":[0.5,1]}'.encode()
    assert encode_payload(b"raw", "raw") == b"raw"
    with pytest.raises(MoltInternalError, match="cannot be encoded") as refused:
        encode_payload("text", "raw")
    # The builder's mistake, in the library's words: kept in detail, out of HTTP answers.
    assert refused.value.detail == "codec 'raw' needs a bytes payload, got str"
    with pytest.raises(ValueError, match="unknown codec"):
        encode_payload({}, "yaml")
    with pytest.raises(MoltProtocolError):
        decode_payload(b"{", "json")


def _nested(depth: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return outer


@pytest.mark.parametrize(
    ("payload", "codec", "message"),
    [
        ({"user_id": 2**64}, "msgpack", "a number in the request is out of range"),
        ({"user_id": 2**64}, "json", None),  # JSON carries it; the worker judges it
        ({"x": float("nan")}, "json", "a number in the request is NaN or infinite"),
        ({"q": "\ud800"}, "msgpack", "a string in the request is not valid Unicode"),
        ({"q": "\ud800"}, "json", "a string in the request is not valid Unicode"),
        (_nested(3000), "msgpack", "the request is nested too deeply"),
        (_nested(3000), "json", "the request is nested too deeply"),
    ],
)
def test_a_request_value_no_codec_carries_is_named_in_our_words(
    payload: Any, codec: str, message: str | None
) -> None:
    if message is None:
        encode_payload(payload, codec)
        return
    with pytest.raises(MoltInvalidInput) as raised:
        encode_payload(payload, codec)
    # Shown to the HTTP client as it is (no detail): no Python codec text in it.
    assert raised.value.message.startswith(message) and raised.value.detail is None


@pytest.mark.parametrize("payload", [{"x": object()}, {(1, 2): 3}])
def test_a_payload_the_builder_got_wrong_keeps_its_text_for_the_logs(payload: Any) -> None:
    # A tuple key's TypeError names "float" among the key types JSON takes: no NaN here.
    # The builder's bug, not the request's: a 500 logged as a warning, not a 400.
    with pytest.raises(MoltInternalError) as raised:
        encode_payload(payload, "json")
    assert raised.value.message == "the payload cannot be encoded"
    assert raised.value.detail is not None


@pytest.mark.parametrize(
    "body",
    [
        b'{"request_id": 1, "status": "Ok", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        msgpack.packb({"request_id": 1, "status": "Ok", "x": {(1, 2): 3}}),
    ],
)
def test_an_envelope_python_cannot_hold_is_a_protocol_error(body: bytes) -> None:
    # A RecursionError killed the reader; a key msgpack cannot hash escaped as a TypeError.
    with pytest.raises(MoltProtocolError, match="unreadable answer"):
        decode_answer(body)


def test_a_payload_python_cannot_hold_is_a_protocol_error() -> None:
    with pytest.raises(MoltProtocolError):
        decode_payload(b"[" * 5000 + b"]" * 5000, "json")
    nested_key = b"\x81\x91\x01\x02"  # {[1]: 2}: a list as a map key
    with pytest.raises(MoltProtocolError):
        decode_payload(nested_key, "msgpack")


def test_wire_comes_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOLT_WIRE", raising=False)
    assert resolve_wire(None) == "msgpack"
    monkeypatch.setenv("MOLT_WIRE", "JSON")
    assert resolve_wire(None) == "json"
    assert resolve_wire("msgpack") == "msgpack"
    with pytest.raises(ValueError, match=r"^wire must be"):
        resolve_wire("xml")
    monkeypatch.setenv("MOLT_WIRE", "xml")
    with pytest.raises(ValueError, match=r"^MOLT_WIRE must be"):  # says where it came from
        resolve_wire(None)


def test_packaged_manifest_is_the_stock_workers() -> None:
    root = Path(__file__).resolve().parents[2]
    packaged = json.loads((root / "python/molt_accel/default_exports.json").read_text())
    built = json.loads((root / "apps/molt-worker/molt_exports.json").read_text())
    assert packaged == built
