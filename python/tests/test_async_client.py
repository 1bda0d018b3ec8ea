"""AsyncMoltClient and async views against the real worker binaries."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import child_pids, worker_env
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.urls import path
from test_client import CRASHES_UNANSWERED, NOT_A_WORKER, TEXT_THEN_QUIET, stopped_at_start

from molt_accel import (
    AsyncMoltClient,
    MoltClient,
    MoltInvalidInput,
    MoltPayloadTooLarge,
    MoltProtocolError,
    MoltTimeout,
    MoltWorkerUnavailable,
    decorator,
    molt_offload,
)


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


def test_a_worker_name_not_on_path_says_where_it_was_looked_for() -> None:
    async def ping() -> None:
        async with AsyncMoltClient(["molt-worker-that-is-nowhere"]) as client:
            await client.ping()

    with pytest.raises(MoltWorkerUnavailable, match="no such program in any folder of PATH"):
        run(ping())


def test_an_answer_over_a_smaller_client_limit_fails_its_call_alone(worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(worker_bin)], env=worker_env(), max_frame_size=4096) as client:
            await client.ping()
            pid = client.pid
            small = client.call("list_items", {"user_id": 3, "limit": 2})
            large = client.call("list_items", {"user_id": 3, "limit": 50})
            answers = await asyncio.gather(small, large, return_exceptions=True)
            assert answers[0]["items"][0]["id"] == 3000
            assert isinstance(answers[1], MoltProtocolError)
            assert "over this client's frame limit of 4096" in str(answers[1])
            assert (await client.call("list_items", {"user_id": 4, "limit": 1}))["items"][0]["id"] == 4000
            assert client.pid == pid

    run(scenario())


# asyncio itself complains of the transports of a loop closed under them (the last case).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_client_serves_one_loop_at_a_time_and_leaves_no_worker_behind(worker_bin: Path) -> None:
    # Found by a review: a second loop's call timed out, and the first loop's worker leaked.
    client = AsyncMoltClient([str(worker_bin)], env=worker_env())

    async def first_item(user: int) -> int:
        answer = await client.call("list_items", {"user_id": user, "limit": 1}, timeout_ms=2000)
        return int(answer["items"][0]["id"])

    async def pid_in_loop() -> int | None:
        await first_item(1)
        return client.pid

    # asyncio.run closes each loop's worker as the loop ends; the next loop starts its own.
    pids = [asyncio.run(pid_in_loop()) for _ in range(2)]
    assert None not in pids and pids[0] != pids[1]
    assert not set(pids) & child_pids()

    # While the loop serving it is open, another loop's call is refused at once.
    refused: list[BaseException] = []

    async def serve_while_another_loop_calls() -> None:
        assert await first_item(2) == 2000
        other = threading.Thread(target=lambda: refused.extend(try_in_own_loop(first_item(3))))
        other.start()
        await asyncio.to_thread(other.join)
        assert await first_item(4) == 4000

    asyncio.run(serve_while_another_loop_calls())
    assert len(refused) == 1 and isinstance(refused[0], RuntimeError)
    assert "one client per loop" in str(refused[0])
    # An HTTP answer maps it (an explicit client on an async view under WSGI meets it).
    assert isinstance(refused[0], MoltWorkerUnavailable)

    # A loop closed without asyncio.run's cleanup: its worker is killed, the next loop served.
    loop = asyncio.new_event_loop()
    stranded = loop.run_until_complete(pid_in_loop())
    loop.close()
    assert asyncio.run(first_item(5)) == 5000
    assert wait_for_exit(stranded)
    del loop
    gc.collect()  # asyncio's complaint comes now, not in a later test


def try_in_own_loop(coroutine: Any) -> list[BaseException]:
    try:
        asyncio.run(coroutine)
    except BaseException as exc:  # handed to the test's thread
        return [exc]
    return []


def wait_for_exit(pid: int | None, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pid not in child_pids():
            return True
        time.sleep(0.02)
    return False


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


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_worker_is_retried_only_when_idempotent(test_worker_bin: Path, sig: int) -> None:
    # SIGTERM: the worker answers its running call Cancelled as it shuts down; that is the
    # worker going away, not the caller (it was a 499 that was never resent).
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            for idempotent in (False, True):
                await client.ping()
                asyncio.get_running_loop().call_later(0.1, os.kill, client.pid, sig)
                call = client.call("sleep", b"300", codec="raw", timeout_ms=5000, idempotent=idempotent)
                if idempotent:
                    assert await call == b"slept"
                else:
                    with pytest.raises(MoltWorkerUnavailable):
                        await call

    run(scenario())


@pytest.fixture
def fake_db_worker(worker_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decorator's workers are the real binary in fake-database mode."""
    monkeypatch.setenv("MOLT_WORKER_CMD", f"{worker_bin} --stdio")
    for name in [n for n in os.environ if n.startswith("MOLT_DB_")]:
        monkeypatch.delenv(name)


def test_async_view_is_offloaded_and_closes_per_request_clients(fake_db_worker: None) -> None:
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


def sleep_view(client: AsyncMoltClient, sleep_ms: int) -> Any:
    @molt_offload(
        entry="sleep",
        codec="raw",
        timeout_ms=30000,
        client=client,
        payload_builder=lambda request: str(sleep_ms).encode(),
    )
    async def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    return view


def asgi_request(disconnected: bool) -> Any:
    """A request whose `is_disconnected()` is a coroutine, as in ASGI frameworks."""

    async def is_disconnected() -> bool:
        return disconnected

    request = RequestFactory().get("/sleep")
    request.is_disconnected = is_disconnected  # type: ignore[attr-defined]
    return request


def test_an_async_is_disconnected_is_awaited(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin), "--threads", "1"], env=worker_env()) as client:
            connected = await sleep_view(client, 50)(asgi_request(disconnected=False))
            assert (connected.status_code, connected.content) == (200, b"slept")
            gone = await sleep_view(client, 20000)(asgi_request(disconnected=True))
            assert gone.status_code == 499
            # One handler thread: this answers only if the cancelled sleep really stopped.
            assert await client.call("echo", b"free", codec="raw", timeout_ms=3000) == b"free"

    run(scenario())


# From an async review: Django cancels the task of an async view whose client left; that
# was logged nowhere (a sync view logs its MoltCancelled at INFO).
def test_an_async_view_cancelled_by_its_server_is_logged(
    test_worker_bin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin), "--threads", "1"], env=worker_env()) as client:
            task = asyncio.ensure_future(sleep_view(client, 20000)(RequestFactory().get("/sleep")))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with caplog.at_level(logging.INFO, logger="molt_accel"):
        run(scenario())
    cancelled = [r for r in caplog.records if "molt_offload(sleep): cancelled" in r.getMessage()]
    assert [r.levelno for r in cancelled] == [logging.INFO], caplog.text


def test_a_sync_view_ignores_an_async_is_disconnected(test_worker_bin: Path) -> None:
    with MoltClient([str(test_worker_bin)], env=worker_env()) as client:

        @molt_offload(entry="sleep", codec="raw", client=client, payload_builder=lambda r: b"50")
        def view(request: Any) -> HttpResponse:
            return HttpResponse("unused")

        response = view(asgi_request(disconnected=False))
        assert (response.status_code, response.content) == (200, b"slept")


def test_a_raising_cancel_check_is_ignored(test_worker_bin: Path) -> None:
    def broken() -> bool:
        raise RuntimeError("check bug")

    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            assert await client.call("sleep", b"100", codec="raw", cancel_check=broken) == b"slept"

    run(scenario())


class Abort(BaseException):
    """Not an Exception: a cancel_check raising it is not swallowed."""


def test_a_call_ended_by_anything_is_withdrawn_and_cancelled(test_worker_bin: Path) -> None:
    started = time.monotonic()

    def aborting() -> bool:
        if time.monotonic() - started > 0.05:
            raise Abort
        return False

    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin), "--threads", "1"], env=worker_env()) as client:
            with pytest.raises(Abort):
                await client.call("sleep", b"20000", codec="raw", timeout_ms=30000, cancel_check=aborting)
            assert client._worker is not None and client._worker.pending == {}
            # One handler thread: this answers only if the worker got `__cancel__`.
            assert await client.call("echo", b"free", codec="raw", timeout_ms=3000) == b"free"

    run(scenario())


def test_async_views_under_wsgi_leave_no_worker_behind(fake_db_worker: None) -> None:
    before = child_pids()

    @molt_offload(entry="list_items", timeout_ms=5000)
    async def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    # django.test.Client is the WSGI path: each async view runs in an event loop of its own.
    urls = ModuleType("async_view_urls")
    urls.urlpatterns = [path("items", view)]  # type: ignore[attr-defined]
    with override_settings(ROOT_URLCONF=urls):
        browser = Client()
        for user in range(1, 7):
            response = browser.get("/items", {"user_id": str(user), "limit": "1"})
            assert json.loads(response.content)["items"][0]["id"] == user * 1000
            assert len(child_pids() - before) <= 1
    # Nor the event loops of the requests: the clients let go of them as they shut down,
    # and an event loop, which holds cycles of its own, goes at the next collection.
    gc.collect()
    assert len(decorator._shared_async) == 0


def test_busy_is_retried_when_asked(test_worker_bin: Path) -> None:
    async def scenario() -> list[bytes]:
        command = [str(test_worker_bin), "--threads", "1", "--max-queue", "1"]
        async with AsyncMoltClient(command, env=worker_env()) as client:
            await client.ping()
            # One runs, one waits in the queue, the third is refused `Busy` and retried
            # (after 100-200 ms, then 200-400 ms) until the queue has room.
            return await asyncio.gather(
                *(
                    client.call(
                        "sleep",
                        b"150",
                        codec="raw",
                        timeout_ms=5000,
                        retry_on_busy=True,
                        retry_backoff_ms=200,
                        retry_backoff_max_ms=400,
                    )
                    for _ in range(3)
                )
            )

    assert run(scenario()) == [b"slept"] * 3


def test_a_worker_that_breaks_the_protocol_is_reported_as_such() -> None:
    async def scenario() -> None:
        client = AsyncMoltClient(NOT_A_WORKER, max_restarts=0)
        try:
            with pytest.raises(MoltWorkerUnavailable, match="worker broke the protocol") as raised:
                await client.call("echo", b"x", codec="raw", timeout_ms=5000)
            assert "signal" not in raised.value.message
        finally:
            await client.close()

    run(scenario())


def test_text_on_the_workers_stdout_is_a_broken_protocol_at_once() -> None:
    async def scenario() -> None:
        client = AsyncMoltClient(TEXT_THEN_QUIET, max_restarts=0)
        started = time.monotonic()
        try:
            with pytest.raises(MoltWorkerUnavailable, match="worker output is not frames"):
                await client.call("echo", b"x", codec="raw", timeout_ms=5000)
            assert time.monotonic() - started < 3
        finally:
            await client.close()

    run(scenario())


def test_a_worker_that_dies_at_startup_is_not_restarted_in_a_storm(tmp_path: Path) -> None:
    starts = tmp_path / "starts.log"
    crashing = ["/bin/sh", "-c", 'echo started >> "$STARTS"; exit 3']

    async def scenario() -> None:
        async with AsyncMoltClient(crashing, env=worker_env(STARTS=str(starts))) as client:
            for _ in range(100):
                with pytest.raises(MoltWorkerUnavailable):
                    await client.call("echo", b"x", codec="raw", idempotent=True)

    run(scenario())
    assert 2 <= len(starts.read_text().splitlines()) <= 4


# Found by a review: the client wrote every frame into the pipe's buffer at once, so calls to
# a worker that reads nothing (stopped) held their payloads in memory without bound.
def test_calls_to_a_worker_that_reads_nothing_wait_their_turn_within_their_deadline(
    test_worker_bin: Path,
) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            await client.ping()
            worker = client._worker
            assert worker is not None and worker.proc.stdin is not None
            os.kill(worker.proc.pid, signal.SIGSTOP)
            try:
                calls = [
                    asyncio.ensure_future(client.call("echo", b"x" * (1 << 20), codec="raw", timeout_ms=800))
                    for _ in range(40)
                ]
                await asyncio.sleep(0.3)
                buffered = worker.proc.stdin.transport.get_write_buffer_size()
                outcomes = await asyncio.gather(*calls, return_exceptions=True)
            finally:
                os.kill(worker.proc.pid, signal.SIGCONT)
            assert buffered < 4 << 20, buffered  # 40 MiB before
            assert all(isinstance(outcome, MoltTimeout) for outcome in outcomes), outcomes
            assert await client.call("echo", b"after", codec="raw", timeout_ms=3000) == b"after"

    run(scenario())


# From an async review: a stall of the event loop (a view that blocks it) past a call's
# deadline made an answer already in the pipe a 504, and retired the healthy worker.
def test_an_answer_that_came_during_a_stall_of_the_loop_is_taken(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            await client.ping()
            pid = client.pid
            call = asyncio.ensure_future(client.call("sleep", b"50", codec="raw", timeout_ms=200))
            await asyncio.sleep(0.02)  # sent
            time.sleep(0.5)  # the loop is blocked past the deadline; the answer came at 50 ms
            assert await call == b"slept"
            assert client.pid == pid  # kept: it answered in time

    run(scenario())


# From the async review: a call made in the loop turn where an idle worker's death was not
# yet seen was written into the dead pipe (asyncio drops that silently) and failed 503;
# MoltClient re-sends it, the worker never having read it.
def test_a_call_to_a_worker_that_died_idle_is_sent_to_a_new_one(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            await client.ping()
            dead = client.pid
            assert dead is not None
            os.kill(dead, signal.SIGKILL)
            time.sleep(0.1)  # dead, and the loop has not run since
            assert await client.call("echo", b"x", codec="raw", timeout_ms=3000) == b"x"
            assert client.pid != dead

    run(scenario())


# From the diff review: a worker that died during such a stall is the call's failure (a 503),
# not a timeout.
def test_a_worker_that_died_during_a_stall_of_the_loop_is_no_timeout(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            await client.ping()
            pid = client.pid
            assert pid is not None
            call = asyncio.ensure_future(client.call("sleep", b"5000", codec="raw", timeout_ms=200))
            await asyncio.sleep(0.05)  # sent
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)  # the loop is blocked past the deadline; the worker died in it
            with pytest.raises(MoltWorkerUnavailable, match="killed by signal 9"):
                await call

    run(scenario())


# From the same review: a worker retired because it did not answer, and then closed by the
# client, counted as one that died right after starting: two such, and calls failed 503.
def test_stuck_young_workers_closed_by_the_client_are_no_early_deaths(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient(stopped_at_start(test_worker_bin), env=worker_env()) as client:
            for _ in range(3):
                before = child_pids()
                with pytest.raises(MoltTimeout, match="no answer"):
                    await client.call("echo", b"x", codec="raw", timeout_ms=50)
                (stuck,) = child_pids() - before
                os.kill(stuck, signal.SIGCONT)  # it reads its closed input and exits
                while stuck in child_pids():
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.02)  # its reader notes the end

    run(scenario())


def test_a_worker_that_crashes_after_it_was_closed_is_an_early_death() -> None:
    async def scenario() -> None:
        async with AsyncMoltClient(CRASHES_UNANSWERED) as client:
            for _ in range(2):
                before = child_pids()
                with pytest.raises(MoltTimeout, match="no answer"):
                    await client.call("echo", b"x", codec="raw", timeout_ms=50)
                (worker,) = child_pids() - before
                while worker in child_pids():
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)  # its reader notes the end
            with pytest.raises(MoltWorkerUnavailable, match="died right after starting 2 times"):
                await client.call("echo", b"x", codec="raw", timeout_ms=50)

    run(scenario())


# Found by a review: close() while the first call was starting the worker left a closed
# client whose new worker went on serving.
def test_a_client_closed_while_its_worker_starts_serves_nobody(test_worker_bin: Path) -> None:
    before = child_pids()

    async def scenario() -> None:
        client = AsyncMoltClient([str(test_worker_bin)], env=worker_env())
        first = asyncio.ensure_future(client.call("echo", b"x", codec="raw"))
        await asyncio.sleep(0)  # the call is starting the worker
        await client.close()
        with pytest.raises(MoltWorkerUnavailable, match="closed"):
            await first
        with pytest.raises(MoltWorkerUnavailable, match="closed"):
            await client.call("echo", b"y", codec="raw")
        assert client.pid is None

    run(scenario())
    assert child_pids() - before == set()


# Found by a review: on Python 3.11, asyncio.wait_for handed back the answer of a call whose
# task had been cancelled just as the answer came, so the cancel was lost.
def test_a_cancelled_call_always_raises_cancelled(test_worker_bin: Path) -> None:
    async def scenario() -> None:
        async with AsyncMoltClient([str(test_worker_bin)], env=worker_env()) as client:
            await client.ping()
            lost = 0
            for turn in range(200):
                task = asyncio.ensure_future(client.call("echo", b"a", codec="raw", timeout_ms=3000))
                for _ in range(turn % 12):
                    await asyncio.sleep(0)
                if task.cancel():
                    try:
                        await task
                        lost += 1
                    except asyncio.CancelledError:
                        pass
                else:
                    await task
            assert lost == 0

    run(scenario())


# Found by a review: a child forked from a process whose client had a worker kept the
# parent's event loop (every call refused) and the worker's input, so the parent's close()
# waited for the grace and killed its worker.
def test_a_forked_child_starts_its_own_worker_and_lets_go_of_the_parents(
    test_worker_bin: Path,
) -> None:
    client = AsyncMoltClient([str(test_worker_bin)], env=worker_env())
    loop = asyncio.new_event_loop()
    serving = threading.Thread(target=loop.run_forever, daemon=True)
    serving.start()
    try:
        assert (
            asyncio.run_coroutine_threadsafe(client.call("echo", b"p", codec="raw"), loop).result(10) == b"p"
        )
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                code = (
                    0 if asyncio.run(client.call("echo", b"c", codec="raw", timeout_ms=3000)) == b"c" else 2
                )
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        started = time.monotonic()
        asyncio.run_coroutine_threadsafe(client.close(), loop).result(15)
        assert time.monotonic() - started < 3.0  # it saw its input end, not the grace's kill
    finally:
        loop.call_soon_threadsafe(loop.stop)
        serving.join()
        loop.close()


def test_a_frame_the_worker_refused_unread_fails_its_call_at_once(test_worker_bin: Path) -> None:
    # The same as for MoltClient: a refusal under request id 0 fails the call it was for.
    wrapped = ["env", "MOLT_WORKER_MAX_FRAME_SIZE=1000", str(test_worker_bin)]

    async def scenario() -> None:
        async with AsyncMoltClient(wrapped, env=worker_env()) as client:
            assert await client.call("echo", b"p", codec="raw") == b"p"
            started = time.monotonic()
            with pytest.raises(MoltPayloadTooLarge, match="frame limit of 1000 bytes"):
                await client.call("echo", b"x" * 5000, codec="raw", timeout_ms=5000)
            assert time.monotonic() - started < 2.0
            assert await client.call("echo", b"ok", codec="raw") == b"ok"

    asyncio.run(scenario())
