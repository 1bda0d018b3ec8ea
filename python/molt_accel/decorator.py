"""``@molt_offload``: a Django view whose work runs in ``molt-worker``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from molt_accel.async_client import AsyncMoltClient
from molt_accel.client import MoltClient, MoltClientPool
from molt_accel.config import (
    OffloadSettings,
    check_timeout_ms,
    client_mode_from_env,
    pool_size_from_env,
)
from molt_accel.contracts import build_list_items_payload, request_too_big
from molt_accel.disconnect import request_cancel_check
from molt_accel.errors import (
    MoltAccelError,
    MoltBusy,
    MoltCancelled,
    MoltInternalError,
    MoltInvalidInput,
    MoltWorkerUnavailable,
)
from molt_accel.hooks import Hook
from molt_accel.responses import (
    ResponseFactory,
    error_body,
    error_status,
    json_response_factory,
    raw_json_response_factory,
    undecoded_response_factory,
)
from molt_accel.wire import CODECS

logger = logging.getLogger("molt_accel")

AnyClient = MoltClient | MoltClientPool
PayloadBuilder = Callable[..., Any]

__all__ = ["molt_offload", "raw_json_response_factory", "reset_shared_client", "shared_client"]

# How long a per_request worker gets to exit once its call is over (about 2 ms when its
# work stopped at the cancel).
PER_REQUEST_CLOSE_GRACE_S = 0.2

_shared: AnyClient | None = None
_shared_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    # A parent thread holding it at fork time would hold it forever in the child.
    global _shared_lock
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def shared_client(pool_size: int | None = None) -> AnyClient:
    """The process-wide client of ``client_mode="shared"``: one ``MoltClient``, or a
    ``MoltClientPool`` when ``pool_size`` (default ``MOLT_ACCEL_POOL_SIZE``) > 1. Its
    workers start at first use; the first caller's size wins."""
    global _shared
    client = _shared
    if client is None:
        with _shared_lock:
            if _shared is None:
                size = pool_size if pool_size is not None else pool_size_from_env()
                _shared = MoltClientPool(pool_size=size) if size > 1 else MoltClient()
            client = _shared
    return client


# One AsyncMoltClient per event loop; each closes its worker when its loop shuts down.
_shared_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncMoltClient] = (
    weakref.WeakKeyDictionary()
)


def shared_async_client() -> AsyncMoltClient:
    """The shared client of async views: one ``AsyncMoltClient`` per event loop.

    Its worker's pipes belong to the loop, and the client closes them when the loop shuts
    down (and then no longer holds the loop, so the entry goes with it). Under ASGI the loop
    lives as long as the server; under WSGI, Django runs each async view in a loop of its
    own (``async_to_sync``), so each request starts a worker and closes it."""
    loop = asyncio.get_running_loop()
    client = _shared_async.get(loop)
    if client is None:
        client = _shared_async[loop] = AsyncMoltClient()
    return client


def reset_shared_client() -> None:
    """Closes the shared client; the next request builds a new one. A sync view sizes it with
    the ``MOLT_ACCEL_POOL_SIZE`` it read when it was decorated: a later change of the
    variable does not reach views already decorated."""
    global _shared
    with _shared_lock:
        client, _shared = _shared, None
    if client is not None:
        client.close()


class ImproperlyConfiguredError(Exception):
    """Raised at decoration time when Django is not installed (else Django's own)."""


def _improperly_configured(message: str) -> Exception:
    try:
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        return ImproperlyConfiguredError(message)
    return ImproperlyConfigured(message)


def _check_client(client: Any) -> None:
    if client is not None and (isinstance(client, type) or not callable(getattr(client, "call", None))):
        what = f"the class {client.__name__}" if isinstance(client, type) else f"a {type(client).__name__}"
        raise _improperly_configured(
            f"molt_offload(client=...) takes a MoltClient, MoltClientPool or AsyncMoltClient, not {what}"
        )


def _check_flags(**flags: Any) -> None:
    # A string would count as true: idempotent="no" would re-send a call that must not be.
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise _improperly_configured(f"molt_offload({name}=...) takes True or False, not {flag!r}")


def _check_callables(**hooks: Any) -> None:
    for name, hook in hooks.items():
        if hook is not None and not callable(hook):
            raise _improperly_configured(
                f"molt_offload({name}=...) takes a function, not a {type(hook).__name__}"
            )


def _check_entry(entry: str, codec: str, client: Any) -> None:
    """Fails at startup, not at the first request, when the worker does not export
    ``entry`` with ``codec`` (unless the client has no manifest: a test double)."""
    if client is not None and not hasattr(client, "exports"):
        return
    try:
        exports = (client or MoltClient()).exports()
    except (MoltAccelError, ValueError) as exc:
        raise _improperly_configured(f"molt_offload(entry={entry!r}): {exc}") from None
    spec = exports.get(entry)
    if spec is None:
        known = ", ".join(sorted(exports)) or "none"
        raise _improperly_configured(
            f"molt_offload(entry={entry!r}): the worker's manifest has no such export (it has: {known})"
        )
    if codec not in CODECS:
        raise _improperly_configured(
            f"molt_offload(entry={entry!r}, codec={codec!r}): not a codec (one of {', '.join(CODECS)}; "
            f"the export takes {spec.codec_in!r})"
        )
    if spec.codec_in != codec:
        raise _improperly_configured(
            f"molt_offload(entry={entry!r}, codec={codec!r}): the export takes {spec.codec_in!r}"
        )


def _with_retry_after(response: Any, error: MoltAccelError) -> Any:
    # A full queue or a worker being replaced clears within about a second.
    headers = getattr(response, "headers", None)  # an HttpResponse's; not a factory's dict
    if isinstance(error, (MoltBusy, MoltWorkerUnavailable)) and headers is not None:
        headers["Retry-After"] = "1"
    return response


def molt_offload(
    *,
    entry: str,
    codec: str = "msgpack",
    timeout_ms: int = 250,
    client: AnyClient | None = None,
    client_mode: str | None = None,
    payload_builder: PayloadBuilder | None = None,
    response_factory: ResponseFactory | None = None,
    allow_fallback: bool = False,
    decode_response: bool = True,
    before_send: Hook | None = None,
    after_recv: Hook | None = None,
    metrics_hook: Hook | None = None,
    cancel_check: Callable[[Any], bool] | Callable[[Any], Awaitable[bool]] | None = None,
    idempotent: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Runs ``entry`` in the worker instead of the decorated view.

    The view itself runs only with ``allow_fallback=True``, when the worker fails. Errors
    become small JSON answers (see ``molt_accel.responses``).
    """
    if client_mode is not None and not isinstance(client_mode, str):
        raise _improperly_configured(f"client_mode must be 'shared' or 'per_request', got {client_mode!r}")
    try:
        mode = client_mode.strip().lower() if client_mode else client_mode_from_env()
    except ValueError as exc:
        raise _improperly_configured(str(exc)) from None
    if mode not in ("shared", "per_request"):
        raise _improperly_configured(f"client_mode must be 'shared' or 'per_request', got {mode!r}")
    try:
        check_timeout_ms(timeout_ms)
    except ValueError as exc:
        raise _improperly_configured(f"molt_offload: {exc}") from None
    _check_client(client)
    _check_flags(allow_fallback=allow_fallback, decode_response=decode_response, idempotent=idempotent)
    _check_callables(
        payload_builder=payload_builder,
        response_factory=response_factory,
        cancel_check=cancel_check,
        before_send=before_send,
        after_recv=after_recv,
        metrics_hook=metrics_hook,
    )
    _check_entry(entry, codec, client)
    chosen_builder = payload_builder or build_list_items_payload

    def build_payload(request: Any, *args: Any, **kwargs: Any) -> Any:
        # A body past DATA_UPLOAD_MAX_MEMORY_SIZE, whichever builder read it: the JSON 413.
        try:
            return chosen_builder(request, *args, **kwargs)
        except Exception as exc:
            if too_big := request_too_big(exc):
                raise too_big from None
            raise

    build_response = response_factory or (
        json_response_factory if decode_response else undecoded_response_factory
    )

    try:
        settings = OffloadSettings.from_env()
    except ValueError as exc:
        raise _improperly_configured(str(exc)) from None
    retry = settings.retry

    def call_options(request: Any, in_async_view: bool) -> dict[str, Any]:
        # An async `is_disconnected()` can only be awaited by the AsyncMoltClient.
        check = request_cancel_check(request, allow_async=in_async_view)
        if cancel_check is not None:
            check = functools.partial(cancel_check, request)
        return {
            "entry": entry,
            "codec": codec,
            "timeout_ms": timeout_ms,
            "idempotent": idempotent,
            "decode_response": decode_response,
            "before_send": before_send,
            "after_recv": after_recv,
            "metrics_hook": metrics_hook,
            "cancel_check": check,
            "retry_on_timeout": retry.on_timeout,
            "retry_on_busy": retry.on_busy,
            "retry_backoff_ms": retry.backoff_ms,
            "retry_backoff_max_ms": retry.backoff_max_ms,
        }

    def failure_response(error: MoltAccelError) -> Any:
        _log_failure(entry, error)
        body = error_body(error, settings.debug_errors)
        status = error_status(error, settings.busy_status)
        try:
            return _with_retry_after(build_response(body, status), error)
        except Exception:
            logger.exception("molt_offload(%s): the response factory failed on an error", entry)
            return _with_retry_after(json_response_factory(body, status), error)

    def result_response(result: Any) -> Any:
        try:
            return build_response(result, 200)
        except Exception:
            # Never a Django error page: the same small JSON body as any other failure.
            logger.exception("molt_offload(%s): the response factory failed", entry)
            return json_response_factory(error_body(MoltInternalError("response factory failed")), 500)

    def falls_back(error: MoltAccelError) -> bool:
        # Not for bad input (the caller's), nor for a caller that went away: nobody would read
        # what the view made.
        if allow_fallback and not isinstance(error, (MoltInvalidInput, MoltCancelled)):
            logger.warning(
                "molt_offload(%s) failed (%s: %s); running the view",
                entry,
                error.code,
                error.detail or error.message,
            )
            return True
        return False

    per_request = client is None and mode == "per_request"

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(view):
            if client is not None and not isinstance(client, AsyncMoltClient):
                raise _improperly_configured(
                    f"molt_offload on async view {view.__qualname__} needs an AsyncMoltClient"
                )
            return _decorate_async(view)
        if inspect.iscoroutinefunction(cancel_check):
            raise _improperly_configured(
                f"molt_offload on sync view {view.__qualname__}: an async cancel_check needs an async view"
            )
        if isinstance(client, AsyncMoltClient):
            # Its call() is a coroutine: a sync view would fail at every request instead.
            raise _improperly_configured(
                f"molt_offload on sync view {view.__qualname__} needs a MoltClient or MoltClientPool, "
                "not an AsyncMoltClient"
            )

        @functools.wraps(view)
        def offloaded(request: Any, *args: Any, **kwargs: Any) -> Any:
            active: AnyClient | None = None
            try:
                payload = build_payload(request, *args, **kwargs)
                active = client or (MoltClient() if per_request else shared_client(settings.pool_size))
                result = active.call(payload=payload, **call_options(request, in_async_view=False))
            except MoltAccelError as exc:
                return view(request, *args, **kwargs) if falls_back(exc) else failure_response(exc)
            finally:
                if per_request and active is not None:
                    # Its one call is over: a worker still stopping an export that ignores
                    # cancellation is killed soon, not waited for (a 504 at 100 ms, not 5 s),
                    # nor left to run on beside the next requests' workers.
                    active.close(grace_s=PER_REQUEST_CLOSE_GRACE_S)
            return result_response(result)

        offloaded.molt_entry = entry  # type: ignore[attr-defined]
        return offloaded

    def _decorate_async(view: Callable[..., Any]) -> Callable[..., Any]:
        # Django cancels the task of an async view whose client disconnected; the
        # AsyncMoltClient turns that cancellation into a `__cancel__` for the worker.
        @functools.wraps(view)
        async def offloaded(request: Any, *args: Any, **kwargs: Any) -> Any:
            active: AsyncMoltClient | None = None
            try:
                payload = build_payload(request, *args, **kwargs)
                if client is not None:
                    active = client  # type: ignore[assignment]
                else:
                    active = AsyncMoltClient() if per_request else shared_async_client()
                result = await active.call(payload=payload, **call_options(request, in_async_view=True))
            except MoltAccelError as exc:
                return await view(request, *args, **kwargs) if falls_back(exc) else failure_response(exc)
            except asyncio.CancelledError:
                # How ASGI says the client left: the worker was told; logged as a sync view's.
                _log_failure(
                    entry,
                    MoltCancelled("the request was cancelled (the client left, or the server is stopping)"),
                )
                raise
            finally:
                if per_request and active is not None:
                    # As the sync view's (under WSGI its event loop ends with the request,
                    # so nothing could go on in the background).
                    await active.close(grace_s=PER_REQUEST_CLOSE_GRACE_S)
            return result_response(result)

        offloaded.molt_entry = entry  # type: ignore[attr-defined]
        return offloaded

    return decorate


def _log_failure(entry: str, error: MoltAccelError) -> None:
    # A client that left is nothing to act on. Bad input is the caller's doing, but its reason
    # is in the worker's text, which stays out of the answer: a warning, as Django logs its
    # own 4xx ("Bad Request"), so that a developer sees it with the default logging.
    level = logging.INFO if isinstance(error, MoltCancelled) else logging.WARNING
    logger.log(level, "molt_offload(%s): %s: %s", entry, error.code, error.detail or error.message)
