"""Payload builders for the demo contracts (DESIGN.md §5): Django request -> worker payload.

Each raises ``MoltInvalidInput`` with a message naming the field, which the decorator turns
into a 400 without calling the worker.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from molt_accel.errors import MoltInvalidInput, MoltPayloadTooLarge


def _query_params(request: Any) -> Any:
    params = getattr(request, "GET", None)
    return params if params is not None else {}


def _optional_text(params: Any, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    return str(value)


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# What a query string's integer looks like: ASCII digits, a sign, spaces around. Python's
# int() would also take "1_000" and digits of other scripts (fullwidth ones, say).
_INTEGER = re.compile(r"[ \t]*[-+]?[0-9]+[ \t]*")


def parse_int64(name: str, text: str) -> int:
    """``text`` as a 64-bit integer (the worker's integers), else ``MoltInvalidInput`` naming
    ``name``. Shared by the payload builders and the demo's baselines, which must agree."""
    if not _INTEGER.fullmatch(text):
        raise MoltInvalidInput(f"{name}: expected an integer, got {text[:40]!r}")
    try:
        value = int(text)
    except ValueError:  # past Python's digit limit (4,300)
        value = INT64_MAX + 1
    if not INT64_MIN <= value <= INT64_MAX:
        raise MoltInvalidInput(f"{name}: out of range (64-bit integer)")
    return value


# SQLite refuses a longer LIKE pattern (SQLITE_MAX_LIKE_PATTERN_LENGTH) as "too complex".
_MAX_LIKE_PATTERN = 50000


def check_search_text(name: str, text: str | None) -> None:
    """A search text (``%text%`` under LIKE, its wildcards escaped) must be one SQLite takes,
    as the worker checks: no NUL, at which LIKE would stop and match every row, and a pattern
    within SQLite's 50,000 bytes."""
    if text is None:
        return
    if "\0" in text:
        raise MoltInvalidInput(f"{name}: must not contain a NUL byte")
    escapes = text.count("%") + text.count("_") + text.count("\\")
    if 2 + len(text.encode("utf-8", "surrogatepass")) + escapes > _MAX_LIKE_PATTERN:
        raise MoltInvalidInput(f"{name}: too long (its search pattern would pass 50000 bytes)")


def finite_number(value: int | float, name: str) -> int | float:
    """``value`` as the worker can take it: an integer within 64 bits as it is, any other
    number as a float, refused when not a finite one (1e400 parses as inf; a 300-digit
    integer is no float)."""
    if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
        return value
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise MoltInvalidInput(f"{name}: number out of range")
    return number


def _integer(params: Any, name: str) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        raise MoltInvalidInput(f"{name}: required")
    return parse_int64(name, str(raw))


def build_list_items_payload(request: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``GET ?user_id=&q=&status=&cursor=&limit=`` -> the ``list_items`` payload. Only the
    fields present are sent, so the worker applies the contract's defaults."""
    params = _query_params(request)
    payload: dict[str, Any] = {"user_id": _integer(params, "user_id")}
    for name in ("q", "status", "cursor"):
        value = _optional_text(params, name)
        if value is not None:
            payload[name] = value
    check_search_text("q", payload.get("q"))
    if params.get("limit") not in (None, ""):
        payload["limit"] = _integer(params, "limit")
    return payload


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def request_too_big(exc: BaseException) -> MoltPayloadTooLarge | None:
    """The 413 for Django's RequestDataTooBig (a body past DATA_UPLOAD_MAX_MEMORY_SIZE), known
    by name (Django is optional here); None for any other error."""
    if type(exc).__name__ == "RequestDataTooBig":
        return MoltPayloadTooLarge("the request body is larger than Django takes")
    return None


def _request_body(request: Any) -> bytes:
    try:
        return getattr(request, "body", b"") or b""
    except Exception as exc:
        if too_big := request_too_big(exc):
            raise too_big from None
        raise


def _json_body(request: Any) -> Any:
    body = _request_body(request)
    if not body:
        raise MoltInvalidInput("a JSON request body is required")
    try:
        # NaN and Infinity are Python's extensions, not JSON.
        return json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MoltInvalidInput(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MoltInvalidInput("request body is not valid JSON: nested too deeply") from None


def build_compute_payload(request: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """JSON body ``{values, scale?, offset?}`` -> the ``compute`` payload."""
    body = _json_body(request)
    if not isinstance(body, dict):
        raise MoltInvalidInput("request body must be a JSON object")
    values = body.get("values")
    if not isinstance(values, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise MoltInvalidInput("values must be a list of numbers")
    payload: dict[str, Any] = {"values": [finite_number(v, f"values[{i}]") for i, v in enumerate(values)]}
    for name in ("scale", "offset"):
        if name in body:
            value = body[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise MoltInvalidInput(f"{name} must be a number")
            payload[name] = float(finite_number(value, name))
    return payload


def build_offload_table_payload(request: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """JSON body ``{rows, group_by?, value?, where?}`` -> the ``offload_table`` payload; the
    worker validates the details and names the field at fault."""
    body = _json_body(request)
    if not isinstance(body, dict):
        raise MoltInvalidInput("request body must be a JSON object")
    if not isinstance(body.get("rows"), list):
        raise MoltInvalidInput("rows must be a list of objects")
    return body
