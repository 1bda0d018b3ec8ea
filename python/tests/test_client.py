"""MoltClient and MoltClientPool against the real worker binaries."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import child_pids, worker_env

from molt_accel import (
    MoltAccelError,
    MoltBusy,
    MoltCancelled,
    MoltClient,
    MoltClientPool,
    MoltInternalError,
    MoltInvalidInput,
    MoltPayloadTooLarge,
    MoltProtocolError,
    MoltTimeout,
    MoltWorkerUnavailable,
    process,
)
from molt_accel.framing import encode_frame
from molt_accel.retry import RestartBackoff
from molt_accel.wire import encode_request


def client_for(binary: Path, *args: str, wire: str | None = None, **env: str) -> MoltClient:
    return MoltClient([str(binary), "--stdio", *args], wire=wire, env=worker_env(**env))


def wait_until(predicate: Any, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def open_pipes() -> set[str]:
    """The pipes this process holds, as 'pipe:[inode]' (an earlier test's pipe may close meanwhile)."""
    pipes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("pipe:"):
            pipes.add(target)
    return pipes


def process_gone(pid: int) -> bool:
    return pid not in child_pids()


@pytest.mark.parametrize("wire", ["msgpack", "json"])
def test_every_stock_entry_answers_on_both_wires(worker_bin: Path, wire: str) -> None:
    with client_for(worker_bin, wire=wire) as client:
        assert client.ping()
        listed = client.call("list_items", {"user_id": 7, "limit": 3})
        assert [item["id"] for item in listed["items"]] == [7000, 7001, 7002]
        assert listed["next_cursor"] == "7:3" and listed["counts"] == {"open": 2, "closed": 1}
        raw = client.call("list_items", {"user_id": 7, "limit": 1}, decode_response=False)
        assert raw.startswith(b'{"items":[{"id":7000,')
        assert client.call("compute", {"values": [1, 2.5], "scale": 2.0, "offset": 1.0}) == {
            "count": 2,
            "sum": 3.5,
            "scaled": [3.0, 6.0],
        }
        table = client.call(
            "offload_table",
            {
                "rows": [{"g": "a", "v": 1}, {"g": "b", "v": 3}, {"g": "a", "v": 5}],
                "group_by": "g",
                "value": "v",
            },
            codec="json",
        )
        assert [(g["key"], g["count"], g["sum"]) for g in table["groups"]] == [("a", 2, 6.0), ("b", 1, 3.0)]
        health = client.call("health", {}, codec="json")
        assert health["ok"] is True and health["pid"] == client.pid


def test_bad_input_is_invalid_input_and_the_worker_keeps_serving(worker_bin: Path) -> None:
    with client_for(worker_bin) as client:
        pid = client.ping() and client.pid
        with pytest.raises(MoltInvalidInput, match=r"payload\.user_id"):
            client.call("list_items", {"user_id": "seven"})
        with pytest.raises(MoltInvalidInput, match="unknown entry"):
            client.call("no_such_entry", {})
        with pytest.raises(MoltInvalidInput, match="codec"):
            client.call("list_items", {"user_id": 1}, codec="json")
        assert client.call("list_items", {"user_id": 1, "limit": 1})["items"][0]["id"] == 1000
        assert client.pid == pid


def test_a_request_over_the_frame_limit_is_invalid_input_and_leaves_nothing_pending(
    test_worker_bin: Path,
) -> None:
    # Found by a review: the call stayed registered (a retired worker never drained) and
    # answered MoltProtocolError, a 502 as if the worker had misbehaved.
    client = MoltClient([str(test_worker_bin), "--stdio"], env=worker_env(), max_frame_size=4096)
    with client:
        client.ping()
        with pytest.raises(MoltInvalidInput, match="over the frame limit"):
            client.call("echo", b"x" * 10_000, codec="raw")
        worker = client._worker
        assert worker is not None and worker.pending == {}
        assert client.call("echo", b"ok", codec="raw") == b"ok"


def test_the_client_holds_itself_to_the_workers_frame_limit(test_worker_bin: Path) -> None:
    # Found by a review: with a smaller limit on the worker, a larger request was refused
    # there with no request id to answer to; the call timed out and a healthy worker was
    # retired. The client reads the worker's flag or variable and refuses it first.
    by_env = MoltClient([str(test_worker_bin)], env=worker_env(MOLT_WORKER_MAX_FRAME_SIZE="65536"))
    by_flag = MoltClient([str(test_worker_bin), "--max-frame-size", "65536"], env=worker_env())
    for client in (by_env, by_flag):
        with client:
            assert client.max_frame_size == 65536
            pid = client.ping() and client.pid
            with pytest.raises(MoltInvalidInput, match="over the frame limit"):
                client.call("echo", b"x" * 100_000, codec="raw", timeout_ms=2000)
            assert client.call("echo", b"x" * 1000, codec="raw") == b"x" * 1000
            assert client.pid == pid  # the same worker serves on


def test_a_frame_the_worker_refused_unread_fails_its_call_at_once(test_worker_bin: Path) -> None:
    # Found by a review: a limit the client cannot see (set by a wrapper) made the worker refuse
    # the frame unread, under request id 0, which the client ignored: the call waited for its
    # timeout (and the worker was retired as stuck), or for ever without one.
    wrapped = ["env", "MOLT_WORKER_MAX_FRAME_SIZE=1000", str(test_worker_bin)]
    with MoltClient(wrapped, env=worker_env()) as client:
        pid = client.ping() and client.pid
        started = time.monotonic()
        with pytest.raises(MoltPayloadTooLarge, match="over the worker's frame limit of 1000 bytes"):
            client.call("echo", b"x" * 5000, codec="raw", timeout_ms=5000)
        assert time.monotonic() - started < 2.0
        assert client.call("echo", b"ok", codec="raw") == b"ok"
        assert client.pid == pid  # the same worker serves on


@pytest.mark.parametrize("wire", ["msgpack", "json"])
def test_an_answer_over_a_smaller_client_limit_fails_its_call_alone(worker_bin: Path, wire: str) -> None:
    # Found by a review: a client given a smaller max_frame_size than the worker's refused a
    # large answer as a broken stream and killed the worker, with every call on it; an
    # idempotent call sent again then killed the next worker the same way.
    client = MoltClient([str(worker_bin)], wire=wire, env=worker_env(), max_frame_size=4096)
    with client:
        pid = client.ping() and client.pid
        small = {"user_id": 7, "limit": 2}
        results: list[Any] = []

        def call_small() -> None:
            results.append(client.call("list_items", small))

        others = [threading.Thread(target=call_small) for _ in range(4)]
        for thread in others:
            thread.start()
        with pytest.raises(MoltProtocolError, match="over this client's frame limit of 4096") as raised:
            client.call("list_items", {"user_id": 7, "limit": 50})
        for thread in others:
            thread.join()
        assert raised.value.code == "protocol_error" and raised.value.request_id is not None
        assert [answer["items"][0]["id"] for answer in results] == [7000] * 4
        assert client.call("list_items", small)["items"][1]["id"] == 7001
        assert client.pid == pid  # the worker was never killed nor replaced


def test_cancel_is_not_an_entry_to_call(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin) as client:
        with pytest.raises(ValueError, match="__cancel__"):
            client.call("__cancel__", {"request_id": 1})


def test_internal_error_hides_nothing_it_should_not(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin) as client:
        with pytest.raises(MoltInternalError) as raised:
            client.call("boom", b"", codec="raw")
        assert "hunter2" not in str(raised.value) and "hunter2" not in (raised.value.detail or "")
        assert client.call("echo", b"still here", codec="raw") == b"still here"


def test_worker_timeout_answers_timeout_without_a_restart(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin) as client:
        client.ping()
        pid = client.pid
        started = time.monotonic()
        with pytest.raises(MoltTimeout):
            client.call("sleep", b"5000", codec="raw", timeout_ms=100)
        assert time.monotonic() - started < 2.0
        assert client.call("echo", b"x", codec="raw") == b"x"
        assert client.pid == pid  # the worker enforced its deadline: it is healthy


def test_stuck_worker_is_cancelled_replaced_and_reaped_after_draining(test_worker_bin: Path) -> None:
    client = client_for(test_worker_bin)
    client.ping()
    stuck = client.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)  # alive but silent: only the client-side timeout can help
    try:
        with pytest.raises(MoltTimeout, match="no answer"):
            client.call("echo", b"x", codec="raw", timeout_ms=50)
        assert client.call("echo", b"y", codec="raw", timeout_ms=2000) == b"y"
        assert client.pid not in (None, stuck)
    finally:
        os.kill(stuck, signal.SIGCONT)
    # The old worker had nothing left in flight: its input was closed, so it exits.
    assert wait_until(lambda: process_gone(stuck))
    client.close()


def stopped_at_start(worker_bin: Path) -> list[str]:
    """A worker that stops itself before it starts: alive, silent, and young."""
    return ["sh", "-c", 'kill -STOP $$; exec "$0" "$@"', str(worker_bin)]


# From an async review (the same in this client): a stuck worker retired and closed by the
# client counted as one that died right after starting, and two such made calls fail 503
# ("the worker died right after starting 2 times in a row") for a cooldown.
def test_stuck_young_workers_closed_by_the_client_are_no_early_deaths(test_worker_bin: Path) -> None:
    client = MoltClient(stopped_at_start(test_worker_bin), env=worker_env())
    for _ in range(3):
        before = child_pids()
        with pytest.raises(MoltTimeout, match="no answer"):
            client.call("echo", b"x", codec="raw", timeout_ms=50)
        (stuck,) = child_pids() - before
        os.kill(stuck, signal.SIGCONT)  # it reads its closed input and exits
        assert wait_until(lambda pid=stuck: process_gone(pid))
        time.sleep(0.02)  # its reader notes the end
    client.close()


# From the diff review: a worker that crashes after the client closed it (its call timed out
# first) still counts, or a worker that fails half a second after every start never made
# the backoff engage.
CRASHES_UNANSWERED = ["sh", "-c", "sleep 0.3; exit 1"]


def test_a_worker_that_crashes_after_it_was_closed_is_an_early_death() -> None:
    client = MoltClient(CRASHES_UNANSWERED)
    for _ in range(2):
        before = child_pids()
        with pytest.raises(MoltTimeout, match="no answer"):
            client.call("echo", b"x", codec="raw", timeout_ms=50)
        (worker,) = child_pids() - before
        assert wait_until(lambda pid=worker: process_gone(pid))
        time.sleep(0.05)  # its reader notes the end
    with pytest.raises(MoltWorkerUnavailable, match="died right after starting 2 times"):
        client.call("echo", b"x", codec="raw", timeout_ms=50)
    client.close()


def test_a_retired_worker_finishes_its_in_flight_calls_before_it_exits(test_worker_bin: Path) -> None:
    client = client_for(test_worker_bin)
    client.ping()
    old = client.pid
    assert old is not None
    slow = threading.Thread(
        target=lambda: results.append(client.call("sleep", b"400", codec="raw", timeout_ms=10000))
    )
    results: list[bytes] = []
    slow.start()
    time.sleep(0.1)
    os.kill(old, signal.SIGSTOP)
    try:
        with pytest.raises(MoltTimeout, match="no answer"):
            client.call("echo", b"x", codec="raw", timeout_ms=50)
        assert client.call("echo", b"new", codec="raw", timeout_ms=2000) == b"new"  # a new worker
        assert old in child_pids()  # the old one still owes an answer: it is kept
    finally:
        os.kill(old, signal.SIGCONT)
    slow.join(10)
    assert results == [b"slept"]  # drained, not cut off
    assert wait_until(lambda: process_gone(old))  # then closed
    client.close()


def test_every_timed_out_call_reaches_a_stuck_worker_as_a_cancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "seen.log"
    silent = Path(__file__).parent / "workers/silent_worker.py"
    client = MoltClient([sys.executable, str(silent)], env=worker_env(SILENT_WORKER_LOG=str(log)))
    client.start()
    worker = client._worker
    assert worker is not None
    stdin_fd = worker._stdin_fd
    pipe = os.readlink(f"/proc/self/fd/{stdin_fd}")
    # What each write to the worker's fd number really wrote to: once the pipe is closed the
    # number is free, and a late write fails or lands in whatever file reused it.
    targets: list[str] = []
    real_write = os.write

    def spying_write(fd: int, data: Any) -> int:
        if fd == stdin_fd:
            try:
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                targets.append("closed")
        return real_write(fd, data)

    monkeypatch.setattr(process.os, "write", spying_write)

    def timed_out_call(timeout_ms: int) -> None:
        with pytest.raises(MoltTimeout):
            client.call("echo", b"x", codec="raw", timeout_ms=timeout_ms)

    callers = [threading.Thread(target=timed_out_call, args=(ms,)) for ms in (100, 400)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    # The last timed-out call closed the retired worker: it reads EOF and exits.
    # The silent worker creates its log when it starts, which may be after this point.
    assert wait_until(lambda: log.exists() and log.read_text().endswith("EOF\n"))
    seen = log.read_text().split("\n")
    assert sorted(line for line in seen if line.startswith("__cancel__")) == ["__cancel__ 1", "__cancel__ 2"]
    assert targets == [pipe] * 4  # two requests, two cancels, all into the worker's pipe
    client.close()


def test_a_closed_worker_refuses_a_frame_without_writing_it(
    test_worker_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MoltClient([str(test_worker_bin)], env=worker_env())
    client.start()
    worker = client._worker
    assert worker is not None
    stdin_fd = worker._stdin_fd
    written: list[int] = []
    real_write = os.write

    def spying_write(fd: int, data: Any) -> int:
        if fd == stdin_fd:
            written.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(process.os, "write", spying_write)
    worker.close()
    frame = encode_frame(encode_request(worker.wire, 1, "__ping__", 1000, "raw", b""))
    with pytest.raises(MoltWorkerUnavailable):
        worker.send(frame)
    # Refused before any byte: the fd may already be closed and reused by another file.
    assert written == []
    client.close()


def test_close_does_not_wait_for_a_writer_blocked_on_a_stopped_worker(
    test_worker_bin: Path,
) -> None:
    grace_s = 0.3  # short, to keep the test fast: close() must return soon after it, not never
    client = MoltClient([str(test_worker_bin)], env=worker_env())
    client.ping()
    worker = client._worker
    assert worker is not None
    os.kill(worker.pid, signal.SIGSTOP)
    failures: list[MoltWorkerUnavailable] = []

    def big_call() -> None:
        try:
            client.call("echo", b"x" * (4 << 20), codec="raw", timeout_ms=1000)
        except MoltWorkerUnavailable as exc:
            failures.append(exc)

    writer = threading.Thread(target=big_call, daemon=True)
    closer = threading.Thread(target=lambda: client.close(grace_s=grace_s), daemon=True)
    try:
        writer.start()
        # 4 MiB does not fit in the pipe: the writer holds the write lock, blocked in os.write.
        assert wait_until(worker._write_lock.locked)
        started = time.monotonic()
        closer.start()
        closer.join(grace_s + 5.0)
        assert not closer.is_alive(), "close() hangs behind the blocked writer"
        assert time.monotonic() - started < grace_s + 2.0
        writer.join(5.0)
        assert not writer.is_alive() and len(failures) == 1  # the kill broke its pipe
        assert process_gone(worker.pid)
    finally:
        # Never leave a stopped worker behind, even when the test fails; its death also
        # frees the blocked writer and a hung close(). Popen does not signal a reaped pid.
        worker.kill()
        closer.join(5.0)


def test_a_call_whose_request_a_stopped_worker_does_not_read_times_out_on_time(
    test_worker_bin: Path,
) -> None:
    # Found by a review: the write blocked with no deadline, holding the write lock, so this
    # call and every other one on the client hung for as long as the worker was stopped.
    client = MoltClient([str(test_worker_bin)], env=worker_env())
    client.ping()
    worker = client._worker
    assert worker is not None
    os.kill(worker.pid, signal.SIGSTOP)
    outcomes: dict[str, Any] = {}

    def call(name: str, payload: bytes) -> None:
        started = time.monotonic()
        try:
            outcome: Any = client.call("echo", payload, codec="raw", timeout_ms=250)
        except Exception as exc:
            outcome = type(exc)
        outcomes[name] = (outcome, time.monotonic() - started)

    big = threading.Thread(target=call, args=("big", b"x" * (1 << 20)), daemon=True)
    small = threading.Thread(target=call, args=("small", b"x"), daemon=True)
    try:
        big.start()
        assert wait_until(worker._write_lock.locked)
        small.start()
        big.join(5.0)
        small.join(5.0)
        assert not big.is_alive() and not small.is_alive()
        kind, took = outcomes["big"]
        assert kind is MoltTimeout and took < 2.0, outcomes
        # The small call timed out waiting behind it, or, taking the lock just after the big
        # one gave up, found the worker killed before any of its frame went out and was sent
        # to a new worker: either way on time.
        kind, took = outcomes["small"]
        assert kind in (MoltTimeout, b"x") and took < 2.0, outcomes
        assert worker.dead  # it had taken part of the big request: killed, not reused
        assert client.call("echo", b"fresh", codec="raw") == b"fresh"  # a new worker
    finally:
        worker.kill()
        client.close()


def test_a_call_meeting_a_retired_worker_goes_to_the_next_one(test_worker_bin: Path) -> None:
    client = MoltClient([str(test_worker_bin)], max_restarts=0, env=worker_env())
    client.ping()
    old = client._worker
    assert old is not None
    # What another thread's timeout does between this call picking the worker and using it.
    old.retire()
    assert client.call("echo", b"x", codec="raw") == b"x"  # not a restart: nothing was sent
    assert client.pid not in (None, old.pid)
    assert wait_until(lambda: process_gone(old.pid))
    client.close()


def test_cancel_check_stops_the_work_in_the_worker(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin, "--threads", "1") as client:
        client.ping()
        started = time.monotonic()
        with pytest.raises(MoltCancelled):
            client.call(
                "sleep",
                b"10000",
                codec="raw",
                timeout_ms=20000,
                cancel_check=lambda: time.monotonic() - started > 0.05,
            )
        # With one thread, this only answers if the cancelled sleep really stopped.
        assert client.call("echo", b"next", codec="raw", timeout_ms=3000) == b"next"


def test_a_sync_cancel_check_returning_a_coroutine_is_warned_about_once(
    test_worker_bin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def is_disconnected() -> bool:
        return False

    with client_for(test_worker_bin) as client, caplog.at_level(logging.WARNING, logger="molt_accel"):
        # 300 ms is about 30 polls: the check is asked once, found async, and not asked again.
        result = client.call(
            "sleep", b"300", codec="raw", timeout_ms=2000, cancel_check=lambda: is_disconnected()
        )
    assert result == b"slept"
    assert len([r for r in caplog.records if "is async" in r.getMessage()]) == 1


def test_full_queue_answers_busy(worker_bin: Path) -> None:
    with client_for(worker_bin, "--threads", "1", "--max-queue", "1", MOLT_FAKE_DB_DELAY_MS="400") as client:
        client.ping()
        outcomes: list[str] = []

        def one_call() -> None:
            try:
                client.call("list_items", {"user_id": 1, "limit": 1}, timeout_ms=5000)
                outcomes.append("ok")
            except MoltBusy:
                outcomes.append("busy")

        threads = [threading.Thread(target=one_call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["busy", "busy", "ok", "ok"]


def test_busy_is_retried_when_asked(worker_bin: Path) -> None:
    with client_for(worker_bin, "--threads", "1", "--max-queue", "0", MOLT_FAKE_DB_DELAY_MS="150") as client:
        client.ping()
        first = threading.Thread(
            target=client.call, args=("list_items", {"user_id": 1}), kwargs={"timeout_ms": 5000}
        )
        first.start()
        time.sleep(0.05)
        with pytest.raises(MoltBusy):
            client.call("list_items", {"user_id": 2}, timeout_ms=5000)
        result = client.call(
            "list_items",
            {"user_id": 2},
            timeout_ms=5000,
            retry_on_busy=True,
            retry_backoff_ms=150,
            retry_backoff_max_ms=300,
        )
        assert result["items"][0]["id"] == 2000
        first.join()


def kill_during_call(client: MoltClient, sig: int = signal.SIGKILL, **options: Any) -> tuple[int, Any]:
    client.ping()
    victim = client.pid
    assert victim is not None
    threading.Timer(0.1, os.kill, (victim, sig)).start()
    try:
        return victim, client.call("sleep", b"300", codec="raw", timeout_ms=5000, **options)
    except Exception as exc:
        return victim, exc


def test_a_worker_that_stops_a_call_as_it_shuts_down_is_unavailable_not_a_cancel(
    test_worker_bin: Path,
) -> None:
    # Found by a review: SIGTERM made the worker answer its running call Cancelled, which the
    # client took for its own cancel (a 499, "the client went away"), and never resent.
    with client_for(test_worker_bin) as client:
        _, outcome = kill_during_call(client, signal.SIGTERM)
        assert isinstance(outcome, MoltWorkerUnavailable), outcome
        assert "shutting down" in outcome.message
        _, again = kill_during_call(client, signal.SIGTERM, idempotent=True)
        assert again == b"slept", again  # sent again, to a new worker


def test_worker_killed_mid_request_fails_a_non_idempotent_call(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin) as client:
        victim, outcome = kill_during_call(client)
        assert isinstance(outcome, MoltWorkerUnavailable)
        assert "signal 9" in outcome.message
        assert client.call("echo", b"after", codec="raw") == b"after"  # a new worker serves
        assert client.pid != victim


def test_worker_killed_mid_request_is_retried_once_when_idempotent(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin) as client:
        victim, outcome = kill_during_call(client, idempotent=True)
        assert outcome == b"slept"
        assert client.pid != victim


def test_without_restart_on_failure_a_dead_worker_stays_dead(test_worker_bin: Path) -> None:
    client = MoltClient([str(test_worker_bin)], restart_on_failure=False, env=worker_env())
    client.ping()
    os.kill(client.pid or 0, signal.SIGKILL)
    assert wait_until(lambda: client.pid is None)
    with pytest.raises(MoltWorkerUnavailable, match="restart_on_failure is off"):
        client.call("echo", b"x", codec="raw")
    client.close()


# Found by a review: restart_on_failure=False counted the parent's worker as the child's one
# start, so a client made before a fork could never serve in the child.
def test_a_forked_child_starts_its_own_worker_even_without_restarts(test_worker_bin: Path) -> None:
    client = MoltClient([str(test_worker_bin)], restart_on_failure=False, env=worker_env())
    client.ping()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            code = 0 if client.call("echo", b"c", codec="raw", timeout_ms=3000) == b"c" else 2
            client.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.call("echo", b"p", codec="raw") == b"p"
    client.close()


# Found by a review: a pool closed its workers one after the other, each waiting its grace.
def test_a_pool_closes_its_workers_at_once(test_worker_bin: Path) -> None:
    command = [str(test_worker_bin), "--shutdown-grace-ms", "1000"]
    pool = MoltClientPool(command, pool_size=3, env=worker_env())
    spins = [
        threading.Thread(
            target=lambda c=c: _ignore(lambda: c.call("spin", b"3000", codec="raw", timeout_ms=100))
        )
        for c in pool.clients
    ]
    for spin in spins:
        spin.start()
    for spin in spins:
        spin.join()
    started = time.monotonic()
    pool.close()  # each worker takes its 1 s grace to give up on its spin
    assert time.monotonic() - started < 2.5


def _ignore(call: Any) -> None:
    try:
        call()
    except MoltAccelError:
        pass


def test_an_idle_worker_that_died_is_replaced_without_losing_the_call(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin) as client:
        client.ping()
        victim = client.pid or 0
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: client.pid is None)
        assert client.call("echo", b"fresh", codec="raw") == b"fresh"
        # The dead one is reaped, not left a zombie.
        assert wait_until(lambda: not Path(f"/proc/{victim}").exists())


def test_a_worker_that_dies_at_startup_is_not_restarted_in_a_storm(tmp_path: Path) -> None:
    starts = tmp_path / "starts.log"
    crashing = ["/bin/sh", "-c", 'echo started >> "$STARTS"; exit 3']
    client = MoltClient(crashing, env=worker_env(STARTS=str(starts)))

    def start_count() -> int:
        return len(starts.read_text().splitlines()) if starts.exists() else 0

    for _ in range(100):
        with pytest.raises(MoltWorkerUnavailable):
            client.call("echo", b"x", codec="raw", idempotent=True)
    # Two starts die young (the call and its one restart), then calls fail fast during a
    # cooldown instead of starting a process each: 100 calls, not 200 processes.
    after_storm = start_count()
    assert 2 <= after_storm <= 4
    # Once the cooldown (100 ms after the second death, doubling after each more) is over,
    # a start is tried again.
    time.sleep(RestartBackoff.COOLDOWN_MIN_S * 2 ** (after_storm - 2) + 0.05)
    with pytest.raises(MoltWorkerUnavailable):
        client.call("echo", b"x", codec="raw")
    assert wait_until(lambda: start_count() == after_storm + 1)
    client.close()


def test_calls_in_a_restart_cooldown_do_not_close_the_dead_worker_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A long cooldown: every call below falls in it, however slow the machine.
    monkeypatch.setattr(RestartBackoff, "COOLDOWN_MIN_S", RestartBackoff.COOLDOWN_MAX_S)
    closes: list[int] = []
    real_close = process.WorkerProcess.close

    def counting_close(self: process.WorkerProcess, wait: bool = False) -> None:
        closes.append(self.pid)
        real_close(self, wait)

    monkeypatch.setattr(process.WorkerProcess, "close", counting_close)
    client = MoltClient(["/bin/sh", "-c", "exit 3"])
    for _ in range(2):  # two workers that die idle, right after their start
        client.start()
        assert wait_until(lambda: client.pid is None)
    for _ in range(50):
        with pytest.raises(MoltWorkerUnavailable, match="next start in"):
            client.call("echo", b"x", codec="raw")
    # Each dead worker is closed (and reaped by one thread) once, not once per call.
    assert len(closes) == 2 and len(set(closes)) == 2
    client.close()


def test_a_retrys_wait_never_passes_a_minute() -> None:
    from molt_accel.retry import MAX_BACKOFF_MS, backoff_delay

    assert MAX_BACKOFF_MS == 60_000
    for attempt in range(1, 6):
        assert backoff_delay(60_000, 0, attempt) <= 60.0
        assert backoff_delay(100, 250, attempt) <= 0.25
    assert 0.05 <= backoff_delay(100, 0, 1) <= 0.1


# From a new-user review: a custom worker built on run_worker logged as "molt-worker".
def test_a_custom_worker_logs_under_its_own_name(test_worker_bin: Path) -> None:
    worker = subprocess.Popen(
        [str(test_worker_bin)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(encode_frame(encode_request("msgpack", 1, "boom", 5000, "raw", b"")))
    worker.stdin.flush()
    assert b"InternalError" in worker.stdout.read(4 + 40)  # answered, so the failure is logged
    _, stderr = worker.communicate(timeout=10)
    lines = stderr.decode().splitlines()
    assert lines[0].startswith("molt-test-worker: serving 4 exports")
    assert lines[1].startswith("molt-test-worker: export 'boom' (request 1) failed")


def test_unstartable_worker_is_unavailable(tmp_path: Path) -> None:
    client = MoltClient([str(tmp_path / "missing-worker")])
    with pytest.raises(MoltWorkerUnavailable, match=r"cannot start.*No such file"):
        client.ping()


# From a new-user review: a bare name is looked up on PATH only, which the message says.
def test_a_worker_name_not_on_path_says_where_it_was_looked_for() -> None:
    client = MoltClient(["molt-worker-that-is-nowhere"])
    with pytest.raises(MoltWorkerUnavailable, match="no such program in any folder of PATH"):
        client.ping()


# Five bytes of text in a frame: what a wrapper script printing to stdout looks like.
NOT_A_WORKER = ["sh", "-c", r"printf '\005\000\000\000hello'; exec sleep 30"]


def test_a_worker_that_breaks_the_protocol_is_reported_as_such() -> None:
    client = MoltClient(NOT_A_WORKER, max_restarts=0)
    # The client kills it; its death by that signal is not the reason a user should read.
    with pytest.raises(MoltWorkerUnavailable, match="worker broke the protocol") as raised:
        client.call("echo", b"x", codec="raw", timeout_ms=5000)
    assert "signal" not in raised.value.message
    client.close()


# Text on stdout whose first four bytes read as a length past the frame limit, then nothing:
# found by a review, the reader waited for the rest of that "frame" until each call timed out.
TEXT_THEN_QUIET = ["sh", "-c", "echo garbage on stdout; exec sleep 30"]


def test_text_on_the_workers_stdout_is_a_broken_protocol_at_once() -> None:
    client = MoltClient(TEXT_THEN_QUIET, max_restarts=0)
    started = time.monotonic()
    with pytest.raises(MoltWorkerUnavailable, match="worker output is not frames"):
        client.call("echo", b"x", codec="raw", timeout_ms=5000)
    assert time.monotonic() - started < 3
    client.close()


def test_hooks_see_sizes_and_metrics(worker_bin: Path) -> None:
    seen: dict[str, dict[str, Any]] = {}
    with client_for(worker_bin) as client:
        client.call(
            "list_items",
            {"user_id": 2, "limit": 5},
            before_send=lambda info: seen.setdefault("before", info),
            after_recv=lambda info: seen.setdefault("after", info),
            metrics_hook=lambda info: seen.setdefault("metrics", info),
        )
    assert seen["before"]["entry"] == "list_items" and seen["before"]["payload_bytes"] > 0
    assert seen["after"]["status"] == "Ok" and seen["after"]["response_bytes"] > 100
    metrics = seen["metrics"]
    assert metrics["client_ms"] > 0 and "exec_us" in metrics and metrics["response_bytes"] > 100


def test_a_failing_hook_does_not_fail_the_call(worker_bin: Path) -> None:
    def broken(info: dict[str, Any]) -> None:
        raise RuntimeError("hook bug")

    with client_for(worker_bin) as client:
        assert client.call("list_items", {"user_id": 1, "limit": 1}, metrics_hook=broken)["items"]


def test_concurrent_callers_each_get_their_own_answer(worker_bin: Path) -> None:
    with client_for(worker_bin, "--threads", "2") as client:
        errors: list[str] = []

        def caller(user: int) -> None:
            for limit in range(1, 40):
                answer = client.call("list_items", {"user_id": user, "limit": limit}, timeout_ms=5000)
                if len(answer["items"]) != limit or answer["items"][0]["id"] != user * 1000:
                    errors.append(f"user {user} limit {limit}")

        threads = [threading.Thread(target=caller, args=(user,)) for user in range(1, 9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


def test_pool_spreads_calls_round_robin(worker_bin: Path) -> None:
    with MoltClientPool([str(worker_bin)], pool_size=3, env=worker_env()) as pool:
        pids = [pool.call("health", {}, codec="json")["pid"] for _ in range(6)]
    assert len(set(pids)) == 3
    assert pids[:3] == pids[3:]


# Found by a review: a closed worker's output pipe stayed open until garbage collection.
def test_a_closed_client_keeps_no_pipe_open(worker_bin: Path) -> None:
    gc.disable()  # what is asked is that nothing waits for the collector
    try:
        before = open_pipes()
        client = MoltClient([str(worker_bin)], env=worker_env())
        client.ping()
        opened = open_pipes() - before
        assert opened  # the client's own pipes, named by inode: fd numbers are reused
        client.close()
        assert wait_until(lambda: not (open_pipes() & opened)), open_pipes() & opened
    finally:
        gc.enable()


def test_close_leaves_no_process_behind(worker_bin: Path) -> None:
    before = child_pids()
    pool = MoltClientPool([str(worker_bin)], pool_size=2, env=worker_env())
    pool.ping()
    assert len(child_pids() - before) == 2
    pool.close()
    assert child_pids() - before == set()
