"""HTTP answers of the decorator: results and errors as Django responses.

Django is optional: without it (plain Python tests, other frameworks) the factories return
``{"status": ..., "payload": ...}`` dicts.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

from molt_accel.errors import MoltAccelError, MoltBusy
from molt_accel.wire import RawAnswer, decode_payload

ResponseFactory = Callable[[Any, int], Any]


def _bytes_as_base64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON")


_compact = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_bytes_as_base64
)


def _json_ready(value: Any) -> Any:
    """``value`` with what the encoder refuses replaced: non-finite floats by their names,
    and map keys that are not text (bytes, a msgpack map may have them) by text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {_json_key(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def _json_key(key: Any) -> Any:
    if isinstance(key, (bytes, bytearray, memoryview)):
        return _bytes_as_base64(key)
    if isinstance(key, float) and not math.isfinite(key):
        return _json_ready(key)
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(key)


def json_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON that any parser takes: bytes (a msgpack bin) become
    base64 strings, and NaN and the infinities the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"``, as the worker's ``db_query`` and PostgreSQL's ``to_json`` write them.
    (Python's ``json`` would write bare ``NaN``, which ``JSON.parse`` refuses.) A lone
    surrogate in a string is written as its ``\\udXXX`` escape."""
    try:
        text = _compact.encode(value)
    except (ValueError, TypeError):  # rare: only then is the value walked
        text = _compact.encode(_json_ready(value))
    return text.encode("utf-8", "backslashreplace")


# Safe messages for HTTP clients, by error code: the worker's own text stays in the logs.
_SAFE_MESSAGES = {
    "worker_unavailable": "The service is temporarily unavailable.",
    "busy": "The service is busy; retry shortly.",
    "timeout": "The request took too long.",
    "cancelled": "The request was cancelled.",
    "invalid_input": "The request is invalid.",
    "payload_too_large": "The request is too large.",
    "internal_error": "The request failed.",
    "protocol_error": "The service answered incorrectly.",
}


def _reason(status: int) -> str | None:
    """The reason phrase when Django has none: 499 is nginx's, not in http.HTTPStatus."""
    return "Client Closed Request" if status == 499 else None


def _optional_django_http() -> Any:
    try:
        from django import http
    except ImportError:
        return None
    return http


def raw_json_response_factory(payload: Any, status: int) -> Any:
    """JSON pass-through: bytes from the worker become the body as they are (no decode and
    re-encode); other values are serialized compactly. An answer the worker wrote in MsgPack
    (an export whose ``codec_out`` is msgpack) is converted: its bytes are not JSON."""
    http = _optional_django_http()
    if http is None:
        return {"status": status, "payload": payload}
    if isinstance(payload, RawAnswer) and payload.codec == "msgpack":
        payload = decode_payload(payload, "msgpack")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return http.HttpResponse(
            bytes(payload), status=status, reason=_reason(status), content_type="application/json"
        )
    return http.HttpResponse(
        json_bytes(payload), status=status, reason=_reason(status), content_type="application/json"
    )


def json_response_factory(payload: Any, status: int) -> Any:
    """The default factory: the decoded result as JSON (``json_bytes``)."""
    http = _optional_django_http()
    if http is None:
        return {"status": status, "payload": payload}
    if isinstance(payload, (bytes, bytearray, memoryview)):  # a raw export's answer
        return http.HttpResponse(
            bytes(payload), status=status, reason=_reason(status), content_type="application/octet-stream"
        )
    return http.HttpResponse(
        json_bytes(payload), status=status, reason=_reason(status), content_type="application/json"
    )


_CONTENT_TYPES = {"json": "application/json", "msgpack": "application/msgpack"}


def undecoded_response_factory(payload: Any, status: int) -> Any:
    """The default for ``decode_response=False``: the worker's bytes as they are, typed by the
    codec the answer came in (``application/json``, ``application/msgpack``, else
    ``application/octet-stream``). Errors (a dict) are JSON, as everywhere."""
    http = _optional_django_http()
    if http is None or not isinstance(payload, (bytes, bytearray, memoryview)):
        return json_response_factory(payload, status)
    content_type = _CONTENT_TYPES.get(getattr(payload, "codec", ""), "application/octet-stream")
    return http.HttpResponse(bytes(payload), status=status, reason=_reason(status), content_type=content_type)


def error_status(error: MoltAccelError, busy_status: int = 429) -> int:
    """The HTTP status of ``error``; ``busy_status`` (429 or 503) is the decorator's setting,
    read at decoration so that a bad value cannot fail a request."""
    return busy_status if isinstance(error, MoltBusy) else error.http_status


def error_body(error: MoltAccelError, debug: bool = False) -> dict[str, Any]:
    """``{"error": {"code", "message"}}``: a stable code and a safe message. Messages of
    bad-input errors raised on the Django side (the payload builders) are the user's own
    doing and are shown; worker text only when ``debug`` (``MOLT_ACCEL_DEBUG_ERRORS``)."""
    message = _SAFE_MESSAGES.get(error.code, "The request failed.")
    if error.code == "invalid_input" and error.detail is None:
        message = error.message
    body: dict[str, Any] = {"code": error.code, "message": message}
    if debug:
        body["detail"] = error.detail or error.message
    return {"error": body}
