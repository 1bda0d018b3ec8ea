"""molt_accel: offload Django endpoints to a native ``molt-worker`` (DESIGN.md §6)."""

from __future__ import annotations

from molt_accel.async_client import AsyncMoltClient
from molt_accel.client import MoltClient, MoltClientPool
from molt_accel.decorator import molt_offload, reset_shared_client, shared_client
from molt_accel.errors import (
    MoltAccelError,
    MoltBusy,
    MoltCancelled,
    MoltInternalError,
    MoltInvalidInput,
    MoltPayloadTooLarge,
    MoltProtocolError,
    MoltTimeout,
    MoltWorkerUnavailable,
    MoltWrongEventLoop,
)
from molt_accel.responses import raw_json_response_factory

__version__ = "0.1.0"

__all__ = [
    "AsyncMoltClient",
    "MoltAccelError",
    "MoltBusy",
    "MoltCancelled",
    "MoltClient",
    "MoltClientPool",
    "MoltInternalError",
    "MoltInvalidInput",
    "MoltPayloadTooLarge",
    "MoltProtocolError",
    "MoltTimeout",
    "MoltWorkerUnavailable",
    "MoltWrongEventLoop",
    "molt_offload",
    "raw_json_response_factory",
    "reset_shared_client",
    "shared_client",
]
