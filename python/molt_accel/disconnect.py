"""Noticing that the HTTP client went away while a sync view waits for the worker."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from typing import Any


def socket_closed_by_peer(sock: socket.socket) -> bool:
    """True when the peer has closed its side: the socket is readable and a peek reads
    nothing. Pipelined bytes of a next request are data, not a disconnect."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True  # reset or already closed


def request_cancel_check(request: Any) -> Callable[[], bool] | None:
    """A check for the request's own abort signal, when it has one: ``is_aborted()`` or
    ``is_disconnected()`` helpers, or gunicorn's client socket under WSGI."""
    for name in ("is_aborted", "is_disconnected"):
        check = getattr(request, name, None)
        if callable(check):
            return lambda: bool(check())
    meta = getattr(request, "META", None)
    sock = meta.get("gunicorn.socket") if isinstance(meta, dict) else None
    if isinstance(sock, socket.socket):
        return lambda: socket_closed_by_peer(sock)
    return None
