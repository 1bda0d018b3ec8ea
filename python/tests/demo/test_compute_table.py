"""compute and offload_table: the Python baselines and the worker agree, and both refuse bad
input with a 400."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fake_worker")]


def _post(client: Client, path: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = client.post(path, data, content_type="application/json")
    return response.status_code, json.loads(response.content)


def _canonical(value: Any) -> str:
    """Parsed JSON, written so that 1, 1.0 and true stay apart (== would merge them)."""
    return json.dumps(value, sort_keys=True)


def _assert_same(client: Client, pair: tuple[str, str], body: Any) -> Any:
    (status_a, answer_a), (status_b, answer_b) = (_post(client, p, body) for p in pair)
    assert status_a == status_b, (body, answer_a, answer_b)
    if status_a == 200:
        assert _canonical(answer_a) == _canonical(answer_b), body
    else:
        assert answer_a["error"]["code"] == answer_b["error"]["code"] == "invalid_input"
    return status_a, answer_a


COMPUTE = ("/compute/baseline/", "/compute/offload/")
TABLE = ("/table/baseline/", "/table/offload/")

COMPUTE_OK: list[Any] = [
    {"values": [1, 2, 3]},
    {"values": [0.1, 0.2, 0.3], "scale": 3, "offset": -0.5},
    {"values": [], "scale": 2.5},
    {"values": [-1e-7, 1e300, 12345678901234567, 2**63 + 5], "scale": 1e-3, "offset": 7},
    {"values": [1.5] * 1000, "scale": 0.1, "offset": 0.2},
    {"values": [1e308, 1e308]},
    {"values": [1, 2], "ignored": "extra keys are ignored"},
]
COMPUTE_BAD: list[Any] = [
    {},
    {"values": "1,2"},
    {"values": [True]},
    {"values": [1, "2"]},
    {"values": [1, None]},
    {"values": [1], "scale": "2"},
    {"values": [1], "offset": None},
    [1, 2, 3],
    "not json",
    "",
    '{"values": [NaN]}',
    '{"values": [1], "scale": Infinity}',
    '{"values": [1e400]}',
    {"values": [10**400]},
    {"values": [1], "offset": -(10**400)},
    '{"values": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"values": [' + "1" * 5000 + "]}",  # past Python's int() digit limit
]


@pytest.mark.parametrize("body", COMPUTE_OK, ids=range(len(COMPUTE_OK)))
def test_compute_parity(client: Client, body: Any) -> None:
    status, answer = _assert_same(client, COMPUTE, body)
    assert status == 200
    assert answer["count"] == len(body["values"])


def test_compute_matches_its_definition(client: Client) -> None:
    values = [0.25 * i - 3 for i in range(40)]
    status, answer = _post(client, COMPUTE[1], {"values": values, "scale": 1.5, "offset": 2})
    assert status == 200
    assert answer["scaled"] == [v * 1.5 + 2 for v in values]
    assert math.isclose(answer["sum"], sum(values))


@pytest.mark.parametrize("body", COMPUTE_BAD, ids=range(len(COMPUTE_BAD)))
def test_compute_refuses_bad_input(client: Client, body: Any) -> None:
    status, _ = _assert_same(client, COMPUTE, body)
    assert status == 400


def _demo_rows() -> list[dict[str, Any]]:
    from items.demo_rows import demo_rows

    names = ("id", "user_id", "created_at", "status", "title", "score", "unread")
    return [{**dict(zip(names, row, strict=True)), "unread": bool(row[6])} for row in demo_rows(3, 40)]


MIXED: list[dict[str, Any]] = [
    {"k": None, "v": 1},
    {"k": True, "v": 2.5},
    {"k": False, "v": -1},
    {"k": 2, "v": 3},
    {"k": 2.0, "v": 4},
    {"k": 1.5, "v": 0},
    {"k": "b", "v": 10},
    {"k": "a", "v": 1e-9},
    {"k": "é", "v": 7},
    {"v": 5},
    {"k": 10**19, "v": 2},
]


def _where(column: str, op: str, value: Any) -> dict[str, Any]:
    return {"where": {"column": column, "op": op, "value": value}}


def _table_cases() -> list[dict[str, Any]]:
    rows = _demo_rows()
    cases: list[dict[str, Any]] = [
        {"rows": rows},
        {"rows": []},
        {"rows": rows, "group_by": "status"},
        {"rows": rows, "group_by": "status", "value": "score"},
        {"rows": rows, "group_by": "user_id", "value": "score"},
        {"rows": rows, "group_by": "unread", "value": "id"},
        {"rows": rows, "value": "score", "where": {"column": "unread", "op": "eq", "value": True}},
        {"rows": MIXED, "group_by": "k", "value": "v"},
        {"rows": MIXED, "group_by": "k"},
        {"rows": MIXED, "group_by": "missing"},
        {"rows": MIXED, "group_by": "k", "where": {"column": "k", "op": "eq", "value": None}},
        {"rows": MIXED, "group_by": "k", "where": {"column": "k", "op": "eq", "value": 1}},
        {"rows": MIXED, "group_by": "k", "where": {"column": "k", "op": "eq", "value": True}},
        {"rows": rows, "group_by": "status", "where": None, "value": None},
    ]
    for op in ("eq", "ne", "lt", "le", "gt", "ge"):
        for value in (4.5, 4, "open", None, True):
            cases.append({"rows": rows, "group_by": "status", "value": "score", **_where("score", op, value)})
            cases.append({"rows": MIXED, "group_by": "k", **_where("k", op, value)})
    for needle in ("alpha", "Item 1", "", 5):
        cases.append({"rows": rows, "group_by": "status", **_where("title", "contains", needle)})
    # Sums past the largest double: "Infinity" as a string from both (bare, it is no JSON).
    cases.append({"rows": [{"g": "x", "v": 1e308}, {"g": "x", "v": 1e308}], "group_by": "g", "value": "v"})
    return cases


TABLE_BAD: list[Any] = [
    {},
    {"rows": "x"},
    {"rows": [1]},
    {"rows": [{"a": 1}, "x"]},
    {"rows": [{"a": 1}], "group_by": 3},
    {"rows": [{"a": 1}], "value": "a", "group_by": ["a"]},
    {"rows": [{"a": [1]}], "group_by": "a"},
    {"rows": [{"a": "x"}], "value": "a"},
    {"rows": [{"a": True}], "value": "a"},
    {"rows": [{"b": 1}], "value": "a"},
    {"rows": [{"a": 1}], "where": {"column": "a", "op": "like", "value": 1}},
    {"rows": [{"a": 1}], "where": {"column": "a", "op": "eq"}},
    {"rows": [{"a": 1}], "where": {"op": "eq", "value": 1}},
    {"rows": [{"a": 1}], "where": "a = 1"},
    [],
    "not json",
    '{"rows": [{"a": NaN}]}',
]


def test_table_parity(client: Client) -> None:
    cases = _table_cases()
    grouped = 0
    for body in cases:
        status, answer = _assert_same(client, TABLE, body)
        assert status == 200, (body, answer)
        grouped += len(answer["groups"]) > 1
    assert grouped > len(cases) // 3  # not vacuous: most cases make several groups


@pytest.mark.parametrize("body", TABLE_BAD, ids=range(len(TABLE_BAD)))
def test_table_refuses_bad_input(client: Client, body: Any) -> None:
    status, _ = _assert_same(client, TABLE, body)
    assert status == 400
