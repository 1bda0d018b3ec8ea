"""list_items parity: the Django baselines and ``/offload/`` (the real worker) answer the same
bytes, in database mode (the worker reads the seeded file) and in fake-DB mode."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from demo_testing import SEED_ITEMS, SEED_USERS
from django.test import Client

pytestmark = pytest.mark.django_db

Query = dict[str, str]

# (q, status, cursor): filters alone and together, LIKE wildcards taken literally, a
# case-insensitive match (SQLite's LIKE), non-ASCII text, empty values, cursors at the edges.
FILTERS: list[tuple[str | None, str | None, str | None]] = [
    (None, None, None),
    ("alpha", None, None),
    (None, "open", None),
    (None, "closed", "250"),
    ("eta", "closed", None),
    ("Item 1", "open", "120"),
    ("%", None, None),
    ("_", None, None),
    ("1_", None, None),
    ("5%", "open", None),
    ("\\", None, None),
    ("ALPHA", None, None),
    ("é", None, None),
    ("", None, None),
    (None, "", None),
    (None, "nope", None),
    (None, None, ""),
    (None, None, "0"),
    (None, None, "-0"),
    (None, None, "007"),
    (None, None, str(SEED_ITEMS)),
    (None, None, str(SEED_ITEMS * SEED_USERS + 5)),
]
USERS = ["1", "2", "3", str(SEED_USERS), str(SEED_USERS + 1), "0", "-1", " 2", "+3"]
LIMITS = [None, "1", "50", "500", "0", "-3", "501", "", "100000"]
INVALID: list[Query] = [
    {},
    {"user_id": ""},
    {"user_id": "abc"},
    {"user_id": "1.5"},
    {"user_id": "2", "limit": "x"},
    {"user_id": "2", "limit": "9223372036854775808"},
    {"user_id": "9223372036854775808"},
    {"user_id": "2", "cursor": "abc"},
    {"user_id": "2", "cursor": "-5"},
    {"user_id": "2", "cursor": "+5"},
    {"user_id": "2", "cursor": " 5"},
    {"user_id": "2", "cursor": "5 "},
    {"user_id": "2", "cursor": "99999999999999999999"},
    {"user_id": "2", "q": "\0"},
    {"user_id": "2", "q": "a\0b"},
    {"user_id": "\uff12"},  # a fullwidth 2: Python's int() takes it
    {"user_id": "1_000"},
    {"user_id": "1" * 5000},  # past Python's int() digit limit
    {"user_id": "2", "q": "a" * 49999},  # past SQLite's LIKE pattern limit
    {"user_id": "2", "q": "%" * 25000},  # each escaped: the pattern doubles
    {"user_id": "2", "limit": "9" * 4400},
]


def _query(user: str, limit: str | None, q: str | None, status: str | None, cursor: str | None) -> Query:
    params = {"user_id": user, "limit": limit, "q": q, "status": status, "cursor": cursor}
    return {key: value for key, value in params.items() if value is not None}


def _grid() -> list[Query]:
    grid = [
        _query(user, limit, *filters)
        for user, limit in itertools.product(USERS[:4], LIMITS[:4])
        for filters in FILTERS
    ]
    grid += [_query(user, None, "a", None, None) for user in USERS[4:]]
    grid += [_query("2", limit, None, "open", None) for limit in LIMITS[4:]]
    return grid


def _get(client: Client, path: str, query: Query) -> tuple[int, bytes]:
    response = client.get(path, query)
    return response.status_code, response.content


def _error_code(body: bytes) -> str:
    return json.loads(body)["error"]["code"]


def _assert_same(query: Query, answers: dict[str, tuple[int, bytes]]) -> None:
    statuses = {path: status for path, (status, _) in answers.items()}
    assert len(set(statuses.values())) == 1, f"{query}: statuses differ: {statuses}"
    status = next(iter(statuses.values()))
    if status == 200:
        bodies = {path: body for path, (_, body) in answers.items()}
        first_path, first = next(iter(bodies.items()))
        for path, body in bodies.items():
            assert body == first, f"{query}: {path} differs from {first_path}:\n{body!r}\n{first!r}"
    else:
        codes = {path: _error_code(body) for path, (_, body) in answers.items()}
        assert set(codes.values()) == {"invalid_input"}, f"{query}: {codes}"


DATABASE_PATHS = ["/baseline/", "/baseline_raw/", "/offload/"]


@pytest.mark.usefixtures("database_worker")
class TestDatabaseMode:
    def test_grid_is_byte_identical(self, client: Client) -> None:
        pages = 0
        for query in _grid():
            answers = {path: _get(client, path, query) for path in DATABASE_PATHS}
            _assert_same(query, answers)
            status, body = answers["/offload/"]
            if status == 200 and json.loads(body)["items"]:
                pages += 1
        # The grid is not vacuous: most of its queries find rows.
        assert pages > len(_grid()) // 2

    @pytest.mark.parametrize("query", INVALID, ids=lambda q: repr(q))
    def test_invalid_input_is_400_everywhere(self, client: Client, query: Query) -> None:
        answers = {path: _get(client, path, query) for path in DATABASE_PATHS}
        assert {status for status, _ in answers.values()} == {400}, answers
        _assert_same(query, answers)

    def test_user_id_beyond_64_bits_is_400_everywhere(self, client: Client) -> None:
        for user in (str(2**64), str(-(2**63) - 1)):
            answers = {path: _get(client, path, {"user_id": user}) for path in DATABASE_PATHS}
            assert {status for status, _ in answers.values()} == {400}, answers

    def test_pages_chain_through_next_cursor(self, client: Client) -> None:
        """Following next_cursor visits each of the user's matching items once, in order."""
        for path in DATABASE_PATHS:
            seen: list[int] = []
            query: Query = {"user_id": "4", "status": "open", "limit": "64"}
            while True:
                page = json.loads(client.get(path, query).content)
                seen += [item["id"] for item in page["items"]]
                if page["next_cursor"] is None:
                    break
                query = {**query, "cursor": page["next_cursor"]}
            assert seen == sorted(set(seen))
            assert len(seen) == page["counts"]["open"]

    def test_baseline_reads_the_seeded_rows(self, client: Client) -> None:
        """The answers are the demo rows themselves (items.demo_rows), not just alike."""
        from items.demo_rows import demo_row

        user = 5
        page: dict[str, Any] = json.loads(client.get("/offload/", {"user_id": user}).content)
        expected = [demo_row(user, j, SEED_ITEMS) for j in range(50)]
        assert [item["id"] for item in page["items"]] == [row[0] for row in expected]
        assert [item["title"] for item in page["items"]] == [row[4] for row in expected]
        assert [item["score"] for item in page["items"]] == [row[5] for row in expected]
        assert [item["unread"] for item in page["items"]] == [bool(row[6]) for row in expected]
        closed = sum(1 for j in range(SEED_ITEMS) if (user + j) % 3 == 0)
        assert page["counts"] == {"open": SEED_ITEMS - closed, "closed": closed}
        assert page["next_cursor"] == str(expected[-1][0])

    def test_content_type_is_json(self, client: Client) -> None:
        for path in DATABASE_PATHS:
            response = client.get(path, {"user_id": "1"})
            assert response["Content-Type"] == "application/json", path


FAKE_PATHS = ["/baseline_fake/", "/offload/"]


def _fake_grid() -> list[Query]:
    texts = [None, "", "abc", "é", "😀x", "%_"]
    grid = [
        _query(user, limit, q, status, cursor)
        for user in ["1", "0", "-7", "123456789", str(10**12), str(-(10**12))]
        for limit in [None, "1", "3", "500", "0", "9999"]
        for q, status, cursor in [(None, None, None), ("abc", "open", "xyz")]
    ]
    grid += [_query("42", "7", q, s, c) for q, s, c in itertools.product(texts, repeat=3)]
    return grid


@pytest.mark.usefixtures("fake_worker")
class TestFakeMode:
    def test_grid_is_byte_identical(self, client: Client) -> None:
        for query in _fake_grid():
            _assert_same(query, {path: _get(client, path, query) for path in FAKE_PATHS})

    @pytest.mark.parametrize(
        "query",
        [
            {},
            {"user_id": "x"},
            {"user_id": str(10**12 + 1)},
            {"user_id": str(-(10**12) - 1)},
            {"user_id": "2", "q": "\0"},
            {"user_id": "\uff12"},
        ],
        ids=lambda q: repr(q),
    )
    def test_invalid_input_is_400_everywhere(self, client: Client, query: Query) -> None:
        answers = {path: _get(client, path, query) for path in FAKE_PATHS}
        assert {status for status, _ in answers.values()} == {400}, answers
        _assert_same(query, answers)
