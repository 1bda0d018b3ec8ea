"""Envelopes and payload codecs of the worker protocol (DESIGN.md §4).

A request or answer is a map, MsgPack by default and JSON as a fallback (the "wire"); the
payload inside it is encoded with its own ``codec``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import Any, Literal

import msgpack

from molt_accel.errors import MoltInternalError, MoltInvalidInput, MoltProtocolError

Wire = Literal["msgpack", "json"]
WIRES: tuple[Wire, ...] = ("msgpack", "json")
CODECS = ("msgpack", "json", "raw", "arrow_ipc")

_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def resolve_wire(wire: str | None) -> Wire:
    """The wire to speak: the argument, else ``MOLT_WIRE``, else MsgPack."""
    chosen = wire or os.environ.get("MOLT_WIRE") or "msgpack"
    chosen = chosen.strip().lower()
    if chosen not in WIRES:
        where = "wire" if wire else "MOLT_WIRE"
        raise ValueError(f"{where} must be 'msgpack' or 'json', got {chosen!r}")
    return chosen  # type: ignore[return-value]


def encode_payload(payload: Any, codec: str) -> bytes:
    """The bytes of ``payload`` in ``codec``; raw codecs take bytes as they are.

    A value from the request the codec cannot carry (an integer beyond 64 bits, NaN in JSON)
    is ``MoltInvalidInput``; what only the payload builder can have put there (an object, a
    tuple key, text for a raw codec) is ``MoltInternalError``, a bug to log. Nothing is sent."""
    try:
        if codec == "msgpack":
            return msgpack.packb(payload, use_bin_type=True)
        if codec == "json":
            return _json_encoder.encode(payload).encode()
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise _cannot_encode(codec, exc) from None
    if codec in ("raw", "arrow_ipc"):
        if isinstance(payload, (bytes, bytearray, memoryview)):
            return bytes(payload)
        raise _builder_mistake(f"codec {codec!r} needs a bytes payload, got {type(payload).__name__}")
    raise ValueError(f"unknown codec {codec!r} (expected one of {', '.join(CODECS)})")


def _builder_mistake(detail: str) -> MoltInternalError:
    """A payload that only the payload builder can have made wrong: the server's bug (500,
    logged as a warning), its text kept out of the answer, in ``detail``."""
    return MoltInternalError("the payload cannot be encoded", detail=detail)


def _cannot_encode(codec: str, exc: BaseException) -> MoltInvalidInput | MoltInternalError:
    """The error for a payload ``codec`` cannot carry. What comes from the request itself
    gets a message for the HTTP client in this library's words; the rest is the builder's."""
    text = str(exc)
    if isinstance(exc, TypeError):  # an object, a tuple key: the builder's doing, not the request's
        return _builder_mistake(f"as {codec}: {text}")
    if isinstance(exc, UnicodeError):
        return MoltInvalidInput("a string in the request is not valid Unicode")
    if text.startswith("Out of range float"):  # json's allow_nan=False
        return MoltInvalidInput("a number in the request is NaN or infinite, which JSON cannot carry")
    if isinstance(exc, OverflowError) or "out of range" in text:  # msgpack's integers
        return MoltInvalidInput("a number in the request is out of range")
    if isinstance(exc, RecursionError) or "recursion" in text:
        return MoltInvalidInput("the request is nested too deeply")
    return _builder_mistake(f"as {codec}: {text}")


def decode_payload(data: bytes, codec: str) -> Any:
    """The value of an answer's payload; raw codecs stay bytes."""
    try:
        if codec == "msgpack":
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        if codec == "json":
            return json.loads(data)
    except (
        ValueError,
        TypeError,  # a map key that cannot be hashed (a list)
        RecursionError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
    ) as exc:
        raise MoltProtocolError(f"worker answer is not valid {codec}: {exc!r}") from None
    return data


def encode_request(
    wire: Wire, request_id: int, entry: str, timeout_ms: int, codec: str, payload: bytes
) -> bytes:
    """The body of a request frame."""
    if wire == "msgpack":
        return msgpack.packb(
            {
                "request_id": request_id,
                "entry": entry,
                "timeout_ms": timeout_ms,
                "codec": codec,
                "payload": payload,
            },
            use_bin_type=True,
        )
    envelope = {
        "request_id": request_id,
        "entry": entry,
        "timeout_ms": timeout_ms,
        "codec": codec,
        "payload_b64": base64.b64encode(payload).decode("ascii"),
    }
    return _json_encoder.encode(envelope).encode()


def encode_cancel(wire: Wire, request_id: int) -> bytes:
    """The body of a ``__cancel__`` request for ``request_id`` (its payload on the same wire)."""
    payload = encode_payload({"request_id": request_id}, wire)
    return encode_request(wire, request_id, "__cancel__", 0, wire, payload)


class RawAnswer(bytes):
    """An answer's payload as the worker wrote it (``decode_response=False``), with the codec
    it was written in: an export may answer in another than its manifest's ``codec_out``
    (``db_query``'s ``result_format``)."""

    codec: str

    def __new__(cls, payload: bytes, codec: str) -> RawAnswer:
        raw = super().__new__(cls, payload)
        raw.codec = codec
        return raw

    def __getnewargs__(self) -> tuple[bytes, str]:  # copy and pickle (Django's cache)
        return (bytes(self), self.codec)


class Answer:
    """One decoded answer frame."""

    __slots__ = ("codec", "entry", "error", "metrics", "payload", "request_id", "status")

    def __init__(
        self,
        request_id: int,
        status: str,
        codec: str,
        payload: bytes,
        error: str | None,
        metrics: dict[str, Any],
        entry: str | None,
    ) -> None:
        self.request_id = request_id
        self.status = status
        self.codec = codec
        self.payload = payload
        self.error = error
        self.metrics = metrics
        self.entry = entry


_JSON_REQUEST_ID = re.compile(rb'\{\s*"request_id"\s*:\s*(\d{1,20})\s*[,}]')


def answer_request_id(prefix: bytes) -> int | None:
    """The request id an answer starts with, read from its first bytes alone (the worker
    writes ``request_id`` first on both wires); None when they do not start that way."""
    if prefix[:1] == b"{":
        match = _JSON_REQUEST_ID.match(prefix)
        return int(match.group(1)) if match else None
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(prefix)
    try:
        if unpacker.read_map_header() < 1 or unpacker.unpack() != "request_id":
            return None
        value = unpacker.unpack()
    except (msgpack.OutOfData, ValueError, TypeError, msgpack.FormatError, msgpack.StackError):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def decode_answer(body: bytes) -> Answer:
    """Reads an answer on whichever wire it came (a JSON object starts with ``{``)."""
    try:
        if body[:1] == b"{":
            envelope = json.loads(body)
            encoded = envelope.get("payload_b64") or ""
            payload = base64.b64decode(encoded, validate=True) if encoded else b""
        else:
            envelope = msgpack.unpackb(body, raw=False, strict_map_key=False)
            payload = envelope.get("payload") or b"" if isinstance(envelope, dict) else b""
    except (
        ValueError,
        TypeError,  # a map key msgpack cannot hash (a list), from a worker that is not ours
        RecursionError,  # JSON nested past Python's limit
        binascii.Error,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
    ) as exc:
        raise MoltProtocolError(f"unreadable answer from the worker: {exc!r}") from None
    if not isinstance(envelope, dict):
        raise MoltProtocolError("worker answer is not a map")
    request_id = envelope.get("request_id")
    status = envelope.get("status")
    if not isinstance(request_id, int) or isinstance(request_id, bool) or not isinstance(status, str):
        raise MoltProtocolError("worker answer lacks request_id or status")
    if not isinstance(payload, (bytes, bytearray)):
        raise MoltProtocolError("worker answer payload is not bytes")
    codec = envelope.get("codec") or "raw"
    metrics = envelope.get("metrics")
    error = envelope.get("error")
    entry = envelope.get("entry")
    return Answer(
        request_id,
        status,
        codec if isinstance(codec, str) else "raw",
        bytes(payload),
        error if isinstance(error, str) else None,
        metrics if isinstance(metrics, dict) else {},
        entry if isinstance(entry, str) else None,
    )
