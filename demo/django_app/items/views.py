"""The demo endpoints: each contract answered by Django itself and offloaded to molt-worker.

``/baseline/`` (ORM), ``/baseline_raw/`` (raw SQL) and ``/offload/`` answer ``list_items``
byte for byte alike in database mode; ``/baseline_fake/`` is the fake-DB contract that a worker
without a database answers. ``compute`` and ``offload_table`` come in pairs too.

The offloaded views keep a Django body: it is what runs when ``MOLT_DEMO_ALLOW_FALLBACK`` is
on and the worker fails, and it documents what the worker does instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET, require_POST

from items.compute import compute
from items.contract import InvalidRequest, ListItemsQuery, parse_list_items
from items.encoding import invalid_input, json_response
from items.fake import list_items_fake
from items.jsonbody import JsonObject, parse_json_object
from items.listing import list_items_orm, list_items_raw
from items.table import offload_table
from molt_accel import MoltInvalidInput, molt_offload, raw_json_response_factory
from molt_accel.contracts import build_compute_payload, build_offload_table_payload

TIMEOUT_MS: int = settings.MOLT_DEMO_TIMEOUT_MS
ALLOW_FALLBACK: bool = settings.MOLT_DEMO_ALLOW_FALLBACK


def _list_items(request: HttpRequest, answer: Callable[[ListItemsQuery], Any]) -> HttpResponse:
    try:
        return json_response(answer(parse_list_items(request.GET)))
    except (InvalidRequest, MoltInvalidInput) as exc:  # the latter: the checks shared with molt_accel
        return invalid_input(str(exc))


def _from_body(request: HttpRequest, answer: Callable[[JsonObject], Any]) -> HttpResponse:
    try:
        return json_response(answer(parse_json_object(request.body)))
    except (InvalidRequest, MoltInvalidInput) as exc:  # the latter: the checks shared with molt_accel
        return invalid_input(str(exc))


@require_GET
def baseline(request: HttpRequest) -> HttpResponse:
    return _list_items(request, list_items_orm)


@require_GET
def baseline_raw(request: HttpRequest) -> HttpResponse:
    return _list_items(request, list_items_raw)


@require_GET
def baseline_fake(request: HttpRequest) -> HttpResponse:
    return _list_items(request, list_items_fake)


@require_GET
@molt_offload(
    entry="list_items",
    timeout_ms=TIMEOUT_MS,
    decode_response=False,
    response_factory=raw_json_response_factory,
    allow_fallback=ALLOW_FALLBACK,
)
def offload(request: HttpRequest) -> HttpResponse:
    return _list_items(request, list_items_orm)


@require_POST
def compute_baseline(request: HttpRequest) -> HttpResponse:
    return _from_body(request, compute)


@require_POST
@molt_offload(
    entry="compute",
    timeout_ms=TIMEOUT_MS,
    payload_builder=build_compute_payload,
    allow_fallback=ALLOW_FALLBACK,
)
def compute_offload(request: HttpRequest) -> HttpResponse:
    return _from_body(request, compute)


@require_POST
def table_baseline(request: HttpRequest) -> HttpResponse:
    return _from_body(request, offload_table)


@require_POST
@molt_offload(
    entry="offload_table",
    codec="json",
    timeout_ms=TIMEOUT_MS,
    payload_builder=build_offload_table_payload,
    decode_response=False,
    response_factory=raw_json_response_factory,
    allow_fallback=ALLOW_FALLBACK,
)
def table_offload(request: HttpRequest) -> HttpResponse:
    return _from_body(request, offload_table)
