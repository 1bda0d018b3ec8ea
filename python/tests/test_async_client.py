"""AsyncMoltClient and async views against the real worker binaries."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import child_pids, worker_env
from django.http import HttpResponse
from django.test import RequestFactory

from molt_accel import AsyncMoltClient, MoltInvalidInput, MoltTimeout, MoltWorkerUnavailable, molt_offload


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_calls_answer_and_errors_map(worker_bin: Path, test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(worker_bin)], env=worker_env()) as client:
            assert await client.ping()
            answers = await asyncio.gather(
                *(client.call("list_items", {"user_id": user, "limit": 2}) for user in range(1, 20))
            )
            assert [answer["items"][0]["id"] for answer in answers] == [u * 1000 for u in range(1, 20)]
            with pytest.raises(MoltInvalidInput):
                await client.call("list_items", {"user_id": "x"})
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            with pytest.raises(MoltTimeout):
                await client.call("sleep", b"5000", codec="raw", timeout_ms=50)
            assert await client.call("echo", b"e", codec="raw") == b"e"

    run(scenario())


def test_cancelling_the_awaiting_task_cancels_the_worker_request(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin), "--threads", "1"], env=worker_env()) as client:
            await client.ping()
            task = asyncio.ensure_future(client.call("sleep", b"20000", codec="raw", timeout_ms=30000))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # One handler thread: this answers only if the sleep really stopped.
            assert await client.call("echo", b"free", codec="raw", timeout_ms=3000) == b"free"

    run(scenario())


def test_killed_worker_is_retried_only_when_idempotent(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            for idempotent in (False, True):
                await client.ping()
                asyncio.get_running_loop().call_later(0.1, os.kill, client.pid, signal.SIGKILL)
                call = client.call("sleep", b"300", codec="raw", timeout_ms=5000, idempotent=idempotent)
                if idempotent:
                    assert await call == b"slept"
                else:
                    with pytest.raises(MoltWorkerUnavailable, match="signal 9"):
                        await call

    run(scenario())


def test_async_view_is_offloaded_and_closes_per_request_clients(
    worker_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLT_WORKER_CMD", f"{worker_bin} --stdio")
    for name in [n for n in os.environ if n.startswith("MOLT_DB_")]:
        monkeypatch.delenv(name)
    before = child_pids()

    @molt_offload(
        entry="list_items",
        client_mode="per_request",
        timeout_ms=5000,
        client=None,
    )
    async def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    async def scenario() -> HttpResponse:
        return await view(RequestFactory().get("/items", {"user_id": "5", "limit": "1"}))

    response = run(scenario())
    assert response.status_code == 200
    assert json.loads(response.content)["items"][0]["id"] == 5000
    assert child_pids() - before == set()
