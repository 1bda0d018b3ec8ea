"""offload_table in Python, the rules of apps/molt-worker/offload_table.cpp.

Input ``{rows, group_by?, value?, where?: {column, op, value}}``; output ``{row_count,
matched, groups: [{key, count, sum, mean, min, max}]}``. A missing column reads as null;
groups are ordered null < booleans < numbers < strings, each group keeps the first key seen
(``1`` and ``1.0`` are one group); sum/mean/min/max are null without ``value``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from items.contract import InvalidRequest
from items.jsonbody import JsonObject, is_number, optional_string, to_float

OPS = ("eq", "ne", "lt", "le", "gt", "ge", "contains")


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: Any


@dataclass
class Group:
    key: Any
    count: int = 0
    values: list[float] = field(default_factory=list)


def _number(value: Any) -> float | None:
    return to_float(value, "rows") if is_number(value) else None


def _same_json(a: Any, b: Any) -> bool:
    """Equality of two JSON values by kind, as Boost.JSON compares them."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _matches(cell: Any, where: Filter) -> bool:
    if where.op == "ne":
        return not _matches(cell, Filter(where.column, "eq", where.value))
    a, b = _number(cell), _number(where.value)
    if where.op == "eq":
        return _same_json(cell, where.value) or (a is not None and b is not None and a == b)
    if where.op == "contains":
        return isinstance(cell, str) and isinstance(where.value, str) and where.value in cell
    if a is None or b is None:
        return False
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[where.op]


def _group_order(key: Any) -> tuple[int, Any]:
    if key is None:
        return (0, 0)
    if isinstance(key, bool):
        return (1, key)
    if is_number(key):
        try:
            return (2, float(key))
        except OverflowError:  # a 400-digit integer: the worker reads it as infinity
            return (2, math.inf if key > 0 else -math.inf)
    return (3, key)


def _parse_filter(raw: Any) -> Filter | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest("where: expected an object")
    column, op = raw.get("column"), raw.get("op")
    if not isinstance(column, str) or not isinstance(op, str) or "value" not in raw:
        raise InvalidRequest("where: expected {column: string, op: string, value}")
    if op not in OPS:
        raise InvalidRequest(f"where.op: expected one of {', '.join(OPS)}, got {op!r}")
    return Filter(column, op, raw["value"])


def offload_table(body: JsonObject) -> dict[str, Any]:
    rows = body.get("rows")
    if not isinstance(rows, list):
        raise InvalidRequest("rows: expected an array")
    group_by = optional_string(body, "group_by")
    value = optional_string(body, "value")
    where = _parse_filter(body.get("where"))
    groups: dict[tuple[int, Any], Group] = {}
    matched = 0
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidRequest(f"rows[{index}]: expected an object")
        if where is not None and not _matches(row.get(where.column), where):
            continue
        matched += 1
        key = row.get(group_by) if group_by is not None else None
        if isinstance(key, (list, dict)):
            raise InvalidRequest(f"rows[{index}]: group_by column must be scalar")
        group = groups.setdefault(_group_order(key), Group(key))
        group.count += 1
        if value is not None:
            number = _number(row.get(value))
            if number is None:
                raise InvalidRequest(f"rows[{index}].{value}: expected number")
            group.values.append(number)
    return {
        "row_count": len(rows),
        "matched": matched,
        "groups": [_group_json(groups[k], value is not None) for k in sorted(groups)],
    }


def _group_json(group: Group, with_value: bool) -> dict[str, Any]:
    total: float | None = None
    if with_value:
        total = 0.0
        for number in group.values:
            total += number
    return {
        "key": group.key,
        "count": group.count,
        "sum": total,
        "mean": None if total is None else total / group.count,
        "min": min(group.values) if with_value else None,
        "max": max(group.values) if with_value else None,
    }
