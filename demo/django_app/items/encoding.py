"""JSON answers written the way the worker writes them: compact, UTF-8, floats as Python
prints them, keys in the order given."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse

JSON_CONTENT_TYPE = "application/json"


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(value: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(dumps(value), status=status, content_type=JSON_CONTENT_TYPE)


def error_response(code: str, message: str, status: int) -> HttpResponse:
    """The error body molt_accel's decorator answers: ``{"error": {"code", "message"}}``."""
    return json_response({"error": {"code": code, "message": message}}, status=status)


def invalid_input(message: str) -> HttpResponse:
    return error_response("invalid_input", message, 400)
