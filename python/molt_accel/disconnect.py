"""Noticing that the HTTP client went away while a view waits for the worker."""

from __future__ import annotations

import inspect
import select
import socket
from collections.abc import Awaitable, Callable
from typing import Any

# Asked "has the caller gone away?" while a call waits. ``MoltClient`` takes only this plain
# kind: a sync call cannot await.
SyncCancelCheck = Callable[[], bool]
# What ``AsyncMoltClient`` takes: a plain check, or an async one, whose result it awaits.
CancelCheck = SyncCancelCheck | Callable[[], Awaitable[bool]]


_HANGUP = select.POLLRDHUP | select.POLLHUP | select.POLLERR if hasattr(select, "POLLRDHUP") else 0


def socket_closed_by_peer(sock: socket.socket) -> bool:
    """True when the peer has closed its side: the socket is readable and a peek reads
    nothing. Pipelined bytes of a next request are data, not a disconnect.

    The peek reads the TCP socket under any TLS (gunicorn's ``--certfile`` hands an
    ``SSLSocket``, which refuses a peek): a record in flight is data there too."""
    try:
        fd = sock.fileno()
        if fd < 0:
            return True  # closed here
        if _HANGUP:
            # Linux tells the peer's close apart from data still unread (a TLS close_notify).
            events = select.poll()
            events.register(fd, _HANGUP)
            return bool(events.poll(0))
        readable, _, _ = select.select([fd], [], [], 0)
        if not readable:
            return False
        raw = socket.socket(fileno=fd)  # the same descriptor, borrowed: detached below
        try:
            return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        finally:
            raw.detach()
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def request_cancel_check(request: Any, allow_async: bool = True) -> CancelCheck | None:
    """A check for the request's own abort signal, when it has one: ``is_aborted()`` or
    ``is_disconnected()`` helpers, or gunicorn's client socket under WSGI.

    The helper is returned as it is: the clients make a bool of its answer, and
    ``AsyncMoltClient`` awaits it first when it is async (ASGI frameworks). A sync view
    cannot await an ``async def`` helper, so with ``allow_async=False`` it is skipped."""
    for name in ("is_aborted", "is_disconnected"):
        check = getattr(request, name, None)
        if not callable(check):
            continue
        if inspect.iscoroutinefunction(check) and not allow_async:
            continue
        return check  # type: ignore[no-any-return]
    meta = getattr(request, "META", None)
    sock = meta.get("gunicorn.socket") if isinstance(meta, dict) else None
    if isinstance(sock, socket.socket):
        return lambda: socket_closed_by_peer(sock)
    return None
