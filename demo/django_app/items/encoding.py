"""JSON answers written the way the worker writes them: compact, UTF-8, floats as Python
prints them, keys in the order given."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from molt_accel.responses import json_bytes

JSON_CONTENT_TYPE = "application/json"


def dumps(value: Any) -> bytes:
    # molt_accel's default answer, so that a sum that overflows to infinity reads the same
    # ("Infinity", a string: bare Infinity is not JSON).
    return json_bytes(value)


def json_response(value: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(dumps(value), status=status, content_type=JSON_CONTENT_TYPE)


def error_response(code: str, message: str, status: int) -> HttpResponse:
    """The error body molt_accel's decorator answers: ``{"error": {"code", "message"}}``."""
    return json_response({"error": {"code": code, "message": message}}, status=status)


def invalid_input(message: str) -> HttpResponse:
    return error_response("invalid_input", message, 400)
