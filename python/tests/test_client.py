"""MoltClient and MoltClientPool against the real worker binaries."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import child_pids, worker_env

from molt_accel import (
    MoltBusy,
    MoltCancelled,
    MoltClient,
    MoltClientPool,
    MoltInternalError,
    MoltInvalidInput,
    MoltTimeout,
    MoltWorkerUnavailable,
)


def client_for(binary: Path, *args: str, wire: str | None = None, **env: str) -> MoltClient:
    return MoltClient([str(binary), "--stdio", *args], wire=wire, env=worker_env(**env))


def wait_until(predicate: Any, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


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


def kill_during_call(client: MoltClient, **options: Any) -> tuple[int, Any]:
    client.ping()
    victim = client.pid
    assert victim is not None
    threading.Timer(0.1, os.kill, (victim, signal.SIGKILL)).start()
    try:
        return victim, client.call("sleep", b"300", codec="raw", timeout_ms=5000, **options)
    except Exception as exc:
        return victim, exc


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


def test_an_idle_worker_that_died_is_replaced_without_losing_the_call(test_worker_bin: Path) -> None:
    with client_for(test_worker_bin) as client:
        client.ping()
        victim = client.pid or 0
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: client.pid is None)
        assert client.call("echo", b"fresh", codec="raw") == b"fresh"
        # The dead one is reaped, not left a zombie.
        assert wait_until(lambda: not Path(f"/proc/{victim}").exists())


def test_unstartable_worker_is_unavailable(tmp_path: Path) -> None:
    client = MoltClient([str(tmp_path / "missing-worker")])
    with pytest.raises(MoltWorkerUnavailable, match="cannot start"):
        client.ping()


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


def test_close_leaves_no_process_behind(worker_bin: Path) -> None:
    before = child_pids()
    pool = MoltClientPool([str(worker_bin)], pool_size=2, env=worker_env())
    pool.ping()
    assert len(child_pids() - before) == 2
    pool.close()
    assert child_pids() - before == set()
