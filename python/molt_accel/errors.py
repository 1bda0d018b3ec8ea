"""Errors raised by molt_accel, one per worker status, with the HTTP answer each maps to."""

from __future__ import annotations


class MoltAccelError(Exception):
    """Base of every molt_accel error.

    ``code`` is stable and safe to show to an HTTP client; ``detail`` is the worker's own
    text (or other diagnostics), kept out of HTTP answers unless a debug setting allows it.
    """

    code = "molt_error"
    http_status = 500

    def __init__(self, message: str, *, detail: str | None = None, request_id: int | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.request_id = request_id


class MoltWorkerUnavailable(MoltAccelError):
    """The worker could not be started, died, or its pipe broke."""

    code = "worker_unavailable"
    http_status = 503


class MoltWrongEventLoop(MoltWorkerUnavailable, RuntimeError):
    """A call from an event loop other than the open one that serves the client. Under WSGI,
    Django runs each async view in a loop of its own, so a client given to the decorator
    (rather than its one-per-loop shared client) meets this as soon as two requests overlap.
    A RuntimeError too, as it was; an HTTP answer maps it to 503 ``worker_unavailable``,
    with this text in the log."""


class MoltTimeout(MoltAccelError):
    """The call's deadline passed (answered by the worker, or noticed by the client)."""

    code = "timeout"
    http_status = 504


class MoltBusy(MoltAccelError):
    """The worker's queue is full; nothing was executed."""

    code = "busy"
    http_status = 429


class MoltCancelled(MoltAccelError):
    """The call was cancelled (client went away, or the worker shut down)."""

    code = "cancelled"
    http_status = 499


class MoltInvalidInput(MoltAccelError):
    """The worker refused the request: unknown entry, wrong codec or a bad payload."""

    code = "invalid_input"
    http_status = 400


class MoltPayloadTooLarge(MoltInvalidInput):
    """The request is larger than the worker's frame limit; nothing was sent."""

    code = "payload_too_large"
    http_status = 413


class MoltInternalError(MoltAccelError):
    """The export failed inside the worker."""

    code = "internal_error"
    http_status = 500


class MoltProtocolError(MoltAccelError):
    """The worker sent something that is not a valid answer (or the client was misused)."""

    code = "protocol_error"
    http_status = 502


_BY_STATUS: dict[str, type[MoltAccelError]] = {
    "InvalidInput": MoltInvalidInput,
    "Busy": MoltBusy,
    "Timeout": MoltTimeout,
    "Cancelled": MoltCancelled,
    "InternalError": MoltInternalError,
}


def worker_stopped_the_call(answer_text: str | None, request_id: int) -> MoltWorkerUnavailable:
    """A ``Cancelled`` answer the client did not ask for: the worker stopped the call on its
    own (it is shutting down). For the caller the worker went away, as if it had died: 503,
    and sent again only when idempotent. Not a 499, which says the HTTP client left."""
    return MoltWorkerUnavailable(
        "the worker stopped the call (it is shutting down)", detail=answer_text, request_id=request_id
    )


def error_for_status(status: str, worker_text: str | None, request_id: int) -> MoltAccelError:
    """The exception for a non-``Ok`` worker answer."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        return MoltProtocolError(
            f"worker answered an unknown status {status!r}", detail=worker_text, request_id=request_id
        )
    message = worker_text or status
    return cls(message, detail=worker_text, request_id=request_id)
