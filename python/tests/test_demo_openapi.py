"""molt-demo's OpenAPI document, checked by tools that did not write it: the document against
the OpenAPI 3.1 specification (openapi-spec-validator), and the demo's real answers against
the schemas the document gives for them (jsonschema)."""

from __future__ import annotations

import http.client
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from test_molt_demo_binary import start


@pytest.fixture(scope="module")
def demo(demo_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    process, port = start(demo_bin, tmp_path_factory.mktemp("openapi") / "demo.sqlite3")
    yield port
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


@pytest.fixture(scope="module")
def document(demo: int) -> dict[str, Any]:
    status, headers, body = call(demo, "GET", "/openapi.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def answer_schema(document: dict[str, Any], path: str, method: str, status: int) -> jsonschema.Validator:
    """A validator of the JSON answer `status` of `method path`."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    # Its "#/components/schemas/..." references resolve against a root that holds them.
    return jsonschema.Draft202012Validator({**schema, "components": document.get("components", {})})


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises, naming the first error
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/health",
        "/json",
        "/plaintext",
        "/items",
        "/items/{id}",
        "/items/import",
        "/items/export",
        "/reports",
        "/reports/{id}",
    }


def test_every_operation_has_a_unique_id(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("method", "path", "route", "body", "status"),
    [
        ("GET", "/health", "/health", None, 200),
        ("GET", "/json", "/json", None, 200),
        ("GET", "/items?user_id=7&limit=3", "/items", None, 200),
        ("GET", "/items?user_id=7&status=closed&q=a", "/items", None, 200),
        ("GET", "/items?user_id=x", "/items", None, 400),
        ("GET", "/items/5", "/items/{id}", None, 200),
        ("GET", "/items/999999999", "/items/{id}", None, 404),
        ("GET", "/items/abc", "/items/{id}", None, 404),  # not an {id:int}: no route
        ("POST", "/items", "/items", {"user_id": 3, "title": "from the test"}, 201),
        ("POST", "/items", "/items", {"user_id": 3, "title": 7}, 400),
        ("POST", "/items", "/items", {"user_id": 3, "title": "x", "score": 11}, 400),
        ("POST", "/reports", "/reports", {"user_id": 7}, 202),
        ("POST", "/reports", "/reports", {"user_id": 0}, 400),
        ("GET", "/reports/1", "/reports/{id}", None, 200),  # the job the POST above made
        ("GET", "/reports/999999", "/reports/{id}", None, 404),
        ("DELETE", "/reports/999999", "/reports/{id}", None, 404),
    ],
)
def test_the_answers_fit_their_documented_schemas(
    demo: int, document: dict[str, Any], method: str, path: str, route: str, body: Any, status: int
) -> None:
    got, headers, answer = call(demo, method, path, body)
    assert got == status, answer
    assert headers["Content-Type"] == "application/json"
    validator = answer_schema(document, route, method.lower(), status)
    validator.validate(json.loads(answer))


def test_the_declared_rules_are_in_the_schema_and_enforced(demo: int, document: dict[str, Any]) -> None:
    """NewItem's MOLT_RULES: the document shows them, and a body that breaks one is refused."""
    new_item = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/NewItem", "components": document["components"]}
    )
    for body, field in (
        ({"user_id": 0, "title": "x"}, "body.user_id"),
        ({"user_id": 1, "title": "x" * 201}, "body.title"),
        ({"user_id": 1, "title": "x", "status": "pending"}, "body.status"),
        ({"user_id": 1, "title": "x", "score": 10.5}, "body.score"),
    ):
        assert not new_item.is_valid(body)
        status, _, answer = call(demo, "POST", "/items", body)
        assert status == 400, answer
        assert json.loads(answer)["error"]["field"] == field
    accepted = {"user_id": 1, "title": "é" * 200, "status": "closed", "score": 10}
    assert new_item.is_valid(accepted)
    assert call(demo, "POST", "/items", accepted)[0] == 201


def test_a_wrong_answer_does_not_fit(document: dict[str, Any]) -> None:
    """The schemas are strict enough to catch an answer that breaks the contract."""
    validator = answer_schema(document, "/items", "get", 200)
    good = {"items": [], "next_cursor": None, "counts": {"open": 1, "closed": 2}}
    validator.validate(good)
    for bad in (
        {**good, "counts": {"open": 1}},
        {**good, "next_cursor": 3},
        {**good, "items": [{"id": "1"}]},
        {"items": []},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(bad)


def test_the_docs_page_loads_the_document(demo: int) -> None:
    status, headers, page = call(demo, "GET", "/docs")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'SwaggerUIBundle({url: "/openapi.json"' in page
