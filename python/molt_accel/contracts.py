"""Payload builders for the demo contracts (DESIGN.md §5): Django request -> worker payload.

Each raises ``MoltInvalidInput`` with a message naming the field, which the decorator turns
into a 400 without calling the worker.
"""

from __future__ import annotations

import json
from typing import Any

from molt_accel.errors import MoltInvalidInput


def _query_params(request: Any) -> Any:
    params = getattr(request, "GET", None)
    return params if params is not None else {}


def _optional_text(params: Any, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    return str(value)


def _integer(params: Any, name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise MoltInvalidInput(f"{name} is required")
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise MoltInvalidInput(f"{name} must be an integer, got {str(raw)[:40]!r}") from None


def build_list_items_payload(request: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``GET ?user_id=&q=&status=&cursor=&limit=`` -> the ``list_items`` payload. Only the
    fields present are sent, so the worker applies the contract's defaults."""
    params = _query_params(request)
    payload: dict[str, Any] = {"user_id": _integer(params, "user_id")}
    for name in ("q", "status", "cursor"):
        value = _optional_text(params, name)
        if value is not None:
            payload[name] = value
    if params.get("limit") not in (None, ""):
        payload["limit"] = _integer(params, "limit")
    return payload


def _json_body(request: Any) -> Any:
    body = getattr(request, "body", b"") or b""
    if not body:
        raise MoltInvalidInput("a JSON request body is required")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MoltInvalidInput(f"request body is not valid JSON: {exc}") from None


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
    payload: dict[str, Any] = {"values": values}
    for name in ("scale", "offset"):
        if name in body:
            value = body[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise MoltInvalidInput(f"{name} must be a number")
            payload[name] = float(value)
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
