"""The observability hooks of a call (before_send, after_recv, metrics_hook), shared by the
sync and async clients. A hook that raises is logged and ignored: it must never fail the call
it observes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from molt_accel.wire import Answer

logger = logging.getLogger("molt_accel")

Hook = Callable[[dict[str, Any]], None]


def run_hook(hook: Hook | None, info: dict[str, Any]) -> None:
    if hook is None:
        return
    try:
        hook(info)
    except Exception:
        logger.exception("molt_accel hook %r raised", hook)


def report_send(
    before_send: Hook | None, entry: str, request_id: int, codec: str, payload_bytes: int, timeout_ms: int
) -> None:
    if before_send is not None:
        run_hook(
            before_send,
            {
                "entry": entry,
                "request_id": request_id,
                "codec": codec,
                "payload_bytes": payload_bytes,
                "timeout_ms": timeout_ms,
            },
        )


def report_answer(
    after_recv: Hook | None,
    metrics_hook: Hook | None,
    entry: str,
    request_id: int,
    answer: Answer,
    payload_bytes: int,
    client_ms: float,
) -> None:
    """after_recv gets the answer's outline; metrics_hook the worker's metrics plus the
    client's own (client_ms, payload_bytes, response_bytes)."""
    if after_recv is not None:
        run_hook(
            after_recv,
            {
                "entry": entry,
                "request_id": request_id,
                "status": answer.status,
                "codec": answer.codec,
                "response_bytes": len(answer.payload),
                "client_ms": client_ms,
            },
        )
    if metrics_hook is not None:
        metrics = dict(answer.metrics)
        metrics.update(
            entry=entry,
            status=answer.status,
            client_ms=client_ms,
            payload_bytes=payload_bytes,
            response_bytes=len(answer.payload),
        )
        run_hook(metrics_hook, metrics)
