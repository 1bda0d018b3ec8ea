"""compute (DESIGN.md §5) in Python: ``{values, scale=1.0, offset=0.0}`` ->
``{count, sum, scaled}`` with ``scaled[i] = values[i] * scale + offset``."""

from __future__ import annotations

from typing import Any

from items.contract import InvalidRequest
from items.jsonbody import JsonObject, is_number, optional_number, to_float


def compute(body: JsonObject) -> dict[str, Any]:
    values = body.get("values")
    if not isinstance(values, list):
        raise InvalidRequest("values: expected an array of numbers")
    if not all(is_number(v) for v in values):
        raise InvalidRequest("values: expected an array of numbers")
    scale = optional_number(body, "scale", 1.0)
    offset = optional_number(body, "offset", 0.0)
    total = 0.0
    scaled = []
    for i, value in enumerate(values):
        number = to_float(value, f"values[{i}]")
        total += number
        scaled.append(number * scale + offset)
    return {"count": len(values), "sum": total, "scaled": scaled}
