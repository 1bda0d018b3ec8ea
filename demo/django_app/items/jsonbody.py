"""Reading a request's JSON body, and the checks the baselines share."""

from __future__ import annotations

import json
from typing import Any

from items.contract import InvalidRequest
from molt_accel.contracts import finite_number

JsonObject = dict[str, Any]


def _refuse_constant(name: str) -> Any:
    raise InvalidRequest(f"body: {name} is not JSON")


def parse_json_object(body: bytes) -> JsonObject:
    """The body as a JSON object. ``NaN`` and ``Infinity`` are refused, as the worker's JSON
    parser and molt_accel's payload builders refuse them (Python's json module takes them)."""
    if not body:
        raise InvalidRequest("body: a JSON object is required")
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except InvalidRequest:
        raise
    except ValueError as exc:  # not JSON, not UTF-8, or an integer past Python's 4,300 digits
        raise InvalidRequest(f"body: not JSON ({exc})") from None
    except RecursionError:
        raise InvalidRequest("body: not JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise InvalidRequest("body: expected a JSON object")
    return value


def is_number(value: Any) -> bool:
    """A JSON number: int or float, not bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_float(value: int | float, name: str) -> float:
    return float(finite_number(value, name))


def optional_number(body: JsonObject, name: str, default: float) -> float:
    """``body[name]`` when present (it must then be a number), else ``default``."""
    if name not in body:
        return default
    value = body[name]
    if not is_number(value):
        raise InvalidRequest(f"{name}: expected a number")
    return to_float(value, name)


def optional_string(body: JsonObject, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name}: expected a string")
    return value
