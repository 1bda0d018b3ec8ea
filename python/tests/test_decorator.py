"""@molt_offload in Django: every status mapping, fallback, cancellation, client modes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from conftest import child_pids, worker_env
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from molt_accel import (
    AsyncMoltClient,
    MoltClient,
    MoltClientPool,
    molt_offload,
    raw_json_response_factory,
    shared_client,
)
from molt_accel.contracts import build_compute_payload
from molt_accel.decorator import reset_shared_client
from molt_accel.disconnect import socket_closed_by_peer
from molt_accel.wire import RawAnswer

requests = RequestFactory()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("MOLT_ACCEL_", "MOLT_WORKER_CMD", "MOLT_WIRE", "MOLT_DB_", "MOLT_FAKE_DB_")):
            monkeypatch.delenv(name)
    yield
    reset_shared_client()


def stock_client(worker_bin: Path, *args: str, **env: str) -> MoltClient:
    return MoltClient([str(worker_bin), *args], env=worker_env(**env))


def body_of(response: HttpResponse) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


def list_view(client: Any, **options: Any) -> Any:
    @molt_offload(entry="list_items", client=client, **options)
    def view(request: Any) -> HttpResponse:
        return HttpResponse("fallback ran", status=218)

    return view


def test_ok_answers_the_worker_result(worker_bin: Path) -> None:
    with stock_client(worker_bin) as client:
        response = list_view(client)(requests.get("/items", {"user_id": "4", "limit": "2"}))
        assert response.status_code == 200
        assert [item["id"] for item in body_of(response)["items"]] == [4000, 4001]
        raw = list_view(client, decode_response=False, response_factory=raw_json_response_factory)(
            requests.get("/items", {"user_id": "4", "limit": "2"})
        )
        assert raw.status_code == 200
        assert raw.content == client.call("list_items", {"user_id": 4, "limit": 2}, decode_response=False)


def test_the_raw_json_factory_converts_an_answer_written_in_msgpack(worker_bin: Path) -> None:
    # Found by a new-user review: compute answers in MsgPack, and the pass-through sent its
    # bytes as application/json.
    with stock_client(worker_bin) as client:
        view = molt_offload(
            entry="compute",
            client=client,
            payload_builder=build_compute_payload,
            decode_response=False,
            response_factory=raw_json_response_factory,
        )(lambda request: HttpResponse("fallback ran", status=218))
        response = view(requests.post("/compute", b'{"values": [1, 2, 3]}', "application/json"))
        assert response.status_code == 200
        assert body_of(response) == client.call("compute", {"values": [1.0, 2.0, 3.0]})


def test_bad_input_from_the_request_is_400_with_its_reason(worker_bin: Path) -> None:
    with stock_client(worker_bin) as client:
        response = list_view(client)(requests.get("/items", {"limit": "2"}))
        assert response.status_code == 400
        assert body_of(response) == {"error": {"code": "invalid_input", "message": "user_id: required"}}


def test_the_workers_reason_for_a_400_is_a_warning_in_the_log(
    worker_bin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by a new-user review: it was logged at INFO, which the default logging hides, and
    # the answer says only "The request is invalid.".
    with stock_client(worker_bin) as client, caplog.at_level("WARNING", logger="molt_accel"):
        response = list_view(client)(requests.get("/items", {"user_id": str(10**13)}))
    assert response.status_code == 400
    assert "out of range" in caplog.text


def test_worker_text_stays_out_of_answers_unless_debugging(
    worker_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stock_client(worker_bin) as client:
        view = list_view(client)
        response = view(requests.get("/items", {"user_id": str(10**13)}))
        assert response.status_code == 400
        assert body_of(response) == {"error": {"code": "invalid_input", "message": "The request is invalid."}}
        monkeypatch.setenv("MOLT_ACCEL_DEBUG_ERRORS", "1")
        # Settings are read when a view is decorated: the view above keeps its own.
        assert "detail" not in body_of(view(requests.get("/items", {"user_id": str(10**13)})))["error"]
        response = list_view(client)(requests.get("/items", {"user_id": str(10**13)}))
        assert "out of range" in body_of(response)["error"]["detail"]


def test_internal_error_is_500_without_internals(test_worker_bin: Path) -> None:
    client = MoltClient([str(test_worker_bin)], env=worker_env())

    @molt_offload(entry="boom", codec="raw", client=client, payload_builder=lambda request: b"")
    def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    response = view(requests.get("/boom"))
    assert response.status_code == 500
    assert body_of(response) == {"error": {"code": "internal_error", "message": "The request failed."}}
    assert b"hunter2" not in response.content and b"Traceback" not in response.content
    client.close()


def test_timeout_is_504(worker_bin: Path) -> None:
    with stock_client(worker_bin, MOLT_FAKE_DB_DELAY_MS="2000") as client:
        response = list_view(client, timeout_ms=50)(requests.get("/items", {"user_id": "1"}))
        assert response.status_code == 504
        assert body_of(response)["error"]["code"] == "timeout"


@pytest.mark.parametrize(("setting", "status"), [(None, 429), ("503", 503)])
def test_busy_is_429_or_503_by_setting(
    worker_bin: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, status: int
) -> None:
    if setting:
        monkeypatch.setenv("MOLT_ACCEL_BUSY_STATUS", setting)
    with stock_client(
        worker_bin, "--threads", "1", "--max-queue", "0", MOLT_FAKE_DB_DELAY_MS="300"
    ) as client:
        client.ping()
        occupant = threading.Thread(
            target=client.call, args=("list_items", {"user_id": 1}), kwargs={"timeout_ms": 5000}
        )
        occupant.start()
        time.sleep(0.1)
        response = list_view(client, timeout_ms=5000)(requests.get("/items", {"user_id": "2"}))
        occupant.join()
        assert response.status_code == status
        assert body_of(response)["error"]["code"] == "busy"
        assert response["Retry-After"] == "1"


def test_unavailable_worker_is_503_or_falls_back(worker_bin: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "exports.json"
    manifest.write_text((Path(__file__).parents[1] / "molt_accel/default_exports.json").read_text())
    # It passes the startup check, which leaves the databases out, then fails to start.
    dead = MoltClient(
        [str(worker_bin), "--exports", str(manifest)],
        env=worker_env(MOLT_DB_SQLITE_PATH=str(tmp_path / "missing.sqlite3")),
    )
    response = list_view(dead)(requests.get("/items", {"user_id": "1"}))
    assert response.status_code == 503
    assert body_of(response)["error"]["code"] == "worker_unavailable"
    assert response["Retry-After"] == "1"
    fallback = list_view(dead, allow_fallback=True)(requests.get("/items", {"user_id": "1"}))
    assert (fallback.status_code, fallback.content) == (218, b"fallback ran")
    # Bad input is the caller's fault: no fallback for it.
    assert list_view(dead, allow_fallback=True)(requests.get("/items")).status_code == 400


def offload_sleep_left_by_caller(client: MoltClient, **options: Any) -> Any:
    """molt_offload of the test worker's 20 s sleep, with a caller that leaves after 50 ms."""
    started = time.monotonic()
    return molt_offload(
        entry="sleep",
        codec="raw",
        timeout_ms=20000,
        client=client,
        payload_builder=lambda request: b"20000",
        cancel_check=lambda request: time.monotonic() - started > 0.05,
        **options,
    )


def test_cancel_check_cancels_the_worker_request(test_worker_bin: Path) -> None:
    client = MoltClient([str(test_worker_bin), "--threads", "1"], env=worker_env())

    @offload_sleep_left_by_caller(client)
    def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    response = view(requests.get("/sleep"))
    assert response.status_code == 499
    assert response.reason_phrase == "Client Closed Request"  # Django's log said "Unknown"
    assert body_of(response)["error"]["code"] == "cancelled"
    assert client.call("echo", b"free", codec="raw", timeout_ms=3000) == b"free"  # the thread was freed

    # Nor does allow_fallback run the view for a caller that went away: nobody would read it.
    ran: list[bool] = []

    @offload_sleep_left_by_caller(client, allow_fallback=True)
    def falling_back(request: Any) -> HttpResponse:
        ran.append(True)
        return HttpResponse("the view ran")

    assert falling_back(requests.get("/sleep")).status_code == 499
    assert ran == []
    client.close()


def test_request_disconnect_helpers_are_used_when_present(test_worker_bin: Path) -> None:
    client = MoltClient([str(test_worker_bin), "--threads", "1"], env=worker_env())

    @molt_offload(
        entry="sleep", codec="raw", timeout_ms=20000, client=client, payload_builder=lambda r: b"20000"
    )
    def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    request = requests.get("/sleep")
    deadline = time.monotonic() + 0.05
    request.is_disconnected = lambda: time.monotonic() > deadline  # type: ignore[attr-defined]
    assert view(request).status_code == 499
    client.close()


def test_socket_disconnect_check() -> None:
    server_side, client_side = socket.socketpair()
    try:
        assert not socket_closed_by_peer(server_side)
        client_side.sendall(b"GET /next HTTP/1.1\r\n")  # a pipelined request is not a disconnect
        assert not socket_closed_by_peer(server_side)
        server_side.recv(100)
        client_side.close()
        assert socket_closed_by_peer(server_side)
    finally:
        server_side.close()


def test_socket_disconnect_check_under_tls() -> None:
    # gunicorn --certfile hands an SSLSocket, which refuses a peek: that was taken for a
    # disconnect, and a pipelined request over TLS cancelled the call in flight (499).
    server_side, client_side = socket.socketpair()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_socket(
        server_side, do_handshake_on_connect=False, server_hostname="molt.test"
    )
    try:
        assert not socket_closed_by_peer(tls)
        client_side.sendall(b"\x17\x03\x03\x00\x05hello")  # a TLS record in flight is data
        assert not socket_closed_by_peer(tls)
        os.read(tls.fileno(), 100)  # the record taken, as TLS would take it
        client_side.sendall(b"\x15\x03\x03\x00\x02\x01\x00")  # close_notify, left unread
        client_side.close()
        assert socket_closed_by_peer(tls)
    finally:
        tls.close()


def test_a_body_larger_than_django_takes_is_413() -> None:
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        view = molt_offload(entry="compute", client=ResultStub({}), payload_builder=build_compute_payload)(
            lambda request: HttpResponse("unused")
        )
        request = requests.post("/compute", b'{"values": [' + b"1," * 200 + b"1]}", "application/json")
        response = view(request)
    assert response.status_code == 413
    assert body_of(response)["error"]["code"] == "payload_too_large"
    # A builder of the user's own that reads the body gets the same JSON 413 (it was Django's
    # HTML 400).
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        own = molt_offload(
            entry="compute", client=ResultStub({}), payload_builder=lambda request: request.body
        )(lambda request: HttpResponse("unused"))
        response = own(requests.post("/compute", b"x" * 200, "application/octet-stream"))
    assert response.status_code == 413
    assert body_of(response)["error"]["code"] == "payload_too_large"


def test_answers_left_undecoded_are_typed_by_the_codec_they_came_in() -> None:
    for codec, content_type in [
        ("json", "application/json"),
        ("msgpack", "application/msgpack"),
        ("raw", "application/octet-stream"),
    ]:
        view = list_view(ResultStub(RawAnswer(b"\x01", codec)), decode_response=False)
        assert view(requests.get("/items", {"user_id": "1"}))["Content-Type"] == content_type


def test_misconfiguration_fails_at_decoration(worker_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = stock_client(worker_bin)
    with pytest.raises(ImproperlyConfigured, match="no such export"):
        molt_offload(entry="lsit_items", client=client)
    with pytest.raises(ImproperlyConfigured, match="takes 'msgpack'"):
        molt_offload(entry="list_items", codec="json", client=client)
    with pytest.raises(ImproperlyConfigured, match="'jsn'\\): not a codec \\(one of msgpack, json"):
        molt_offload(entry="list_items", codec="jsn", client=client)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ImproperlyConfigured, match="MOLT_WORKER_CMD is not set"):
        molt_offload(entry="list_items")
    monkeypatch.setenv("MOLT_ACCEL_CLIENT_MODE", "sometimes")
    with pytest.raises(ImproperlyConfigured, match="MOLT_ACCEL_CLIENT_MODE"):
        molt_offload(entry="list_items", client=client)
    monkeypatch.delenv("MOLT_ACCEL_CLIENT_MODE")
    monkeypatch.setenv("MOLT_ACCEL_RETRY_BACKOFF_MS", "soon")
    with pytest.raises(ImproperlyConfigured, match="MOLT_ACCEL_RETRY_BACKOFF_MS must be an integer"):
        molt_offload(entry="list_items", client=client)
    # Found by a review: a backoff past what a sleep takes was accepted, then each retry
    # failed with Django's 500 page; a pool of 100,000 workers was accepted too.
    monkeypatch.setenv("MOLT_ACCEL_RETRY_BACKOFF_MS", "99999999999999999999")
    with pytest.raises(ImproperlyConfigured, match="MOLT_ACCEL_RETRY_BACKOFF_MS must be at most 60000"):
        molt_offload(entry="list_items", client=client)
    monkeypatch.delenv("MOLT_ACCEL_RETRY_BACKOFF_MS")
    monkeypatch.setenv("MOLT_ACCEL_POOL_SIZE", "100000")
    with pytest.raises(ImproperlyConfigured, match="MOLT_ACCEL_POOL_SIZE must be at most 1024"):
        molt_offload(entry="list_items", client=client)
    with pytest.raises(ValueError, match="retry_backoff_ms takes whole milliseconds"):
        client.call("list_items", {"user_id": 1}, retry_backoff_ms=10**20)


def test_a_bad_client_or_timeout_fails_at_decoration(worker_bin: Path) -> None:
    for client in ("shared", {}, object(), MoltClient):
        with pytest.raises(ImproperlyConfigured, match="takes a MoltClient"):
            molt_offload(entry="list_items", client=client)  # type: ignore[arg-type]
    for hook in ("payload_builder", "response_factory", "cancel_check", "metrics_hook"):
        with pytest.raises(ImproperlyConfigured, match=f"{hook}=...\\) takes a function"):
            molt_offload(entry="list_items", client=ResultStub({}), **{hook: True})
    with pytest.raises(ImproperlyConfigured, match="client_mode must be"):
        molt_offload(entry="list_items", client=ResultStub({}), client_mode=1)  # type: ignore[arg-type]
    # A string counts as true: idempotent="no" would re-send a call that must not be.
    for flag in ("idempotent", "allow_fallback", "decode_response"):
        with pytest.raises(ImproperlyConfigured, match=f"{flag}=...\\) takes True or False"):
            molt_offload(entry="list_items", client=ResultStub({}), **{flag: "no"})
    client = stock_client(worker_bin)
    for timeout_ms in (2**64 - 1, "250", 0.5, True, -1):
        with pytest.raises(ImproperlyConfigured, match="timeout_ms takes whole milliseconds"):
            molt_offload(entry="list_items", client=client, timeout_ms=timeout_ms)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_ms takes whole milliseconds"):
        client.call("list_items", {"user_id": 1}, timeout_ms=2**64 - 1)


def test_a_setting_the_worker_refuses_fails_at_decoration_with_its_reason(
    worker_bin: Path, tmp_path: Path
) -> None:
    # Also with a manifest given, when the worker need not be asked for its exports.
    manifest = tmp_path / "exports.json"
    manifest.write_text((Path(__file__).parents[1] / "molt_accel/default_exports.json").read_text())
    client = MoltClient(
        [str(worker_bin), "--exports", str(manifest)], env=worker_env(MOLT_WORKER_THREADS="abc")
    )
    with pytest.raises(ImproperlyConfigured, match=r"(?s)failed with code 2.*abc"):
        molt_offload(entry="list_items", client=client)
    # The database settings too, but for where the database is (not there yet, maybe).
    pool = MoltClient([str(worker_bin)], env=worker_env(MOLT_DB_POOL_SIZE="abc"))
    with pytest.raises(ImproperlyConfigured, match="MOLT_DB_POOL_SIZE"):
        molt_offload(entry="list_items", client=pool)
    later = MoltClient([str(worker_bin)], env=worker_env(MOLT_DB_SQLITE_PATH=str(tmp_path / "later.db")))
    molt_offload(entry="list_items", client=later)


class ResultStub:
    """A client whose every call answers ``result`` (it has no manifest to check)."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def call(self, **options: Any) -> Any:
        return self.result


def test_the_default_answer_is_json_any_parser_takes() -> None:
    result = {"blob": b"\x00\xff", "values": [1.5, float("nan"), float("inf"), -float("inf")]}
    response = list_view(ResultStub(result))(requests.get("/items", {"user_id": "1"}))
    assert response.status_code == 200
    assert response.content == (b'{"blob":"AP8=","values":[1.5,"NaN","Infinity","-Infinity"]}')
    json.loads(response.content, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))


def test_odd_results_still_make_json() -> None:
    result = {b"\x01": 1, float("nan"): "x", "text": "\ud800", "pair": (1, 2)}
    response = list_view(ResultStub(result))(requests.get("/items", {"user_id": "1"}))
    assert response.status_code == 200
    assert json.loads(response.content) == {"AQ==": 1, "NaN": "x", "text": "\ud800", "pair": [1, 2]}


def test_a_failing_response_factory_is_a_json_500(caplog: pytest.LogCaptureFixture) -> None:
    def broken(payload: Any, status: int) -> HttpResponse:
        raise TypeError("cannot write this")

    view = list_view(ResultStub({"ok": True}), response_factory=broken)
    with caplog.at_level("ERROR", logger="molt_accel"):
        response = view(requests.get("/items", {"user_id": "1"}))
    assert response.status_code == 500
    assert body_of(response) == {"error": {"code": "internal_error", "message": "The request failed."}}
    assert "cannot write this" in caplog.text and b"cannot write" not in response.content


# Found by a review: a payload only the builder could have got wrong was a 400, as if the
# client had sent something wrong, and logged at INFO.
@pytest.mark.parametrize(
    "binary,entry,codec,payload,words",
    [
        ("worker_bin", "list_items", "msgpack", {"user_id": object()}, "serialize"),
        ("test_worker_bin", "echo", "raw", "text", "bytes payload"),
    ],
)
def test_a_payload_the_builder_got_wrong_is_a_logged_500(
    request: pytest.FixtureRequest,
    binary: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    entry: str,
    codec: str,
    payload: Any,
    words: str,
) -> None:
    monkeypatch.setenv("MOLT_WORKER_CMD", str(request.getfixturevalue(binary)))

    @molt_offload(entry=entry, codec=codec, payload_builder=lambda request: payload)
    def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    with caplog.at_level("WARNING", logger="molt_accel"):
        response = view(requests.get("/items"))
    assert response.status_code == 500
    assert body_of(response) == {"error": {"code": "internal_error", "message": "The request failed."}}
    assert "internal_error" in caplog.text and words in caplog.text
    assert words.encode() not in response.content


def test_a_request_over_the_frame_limit_is_413(worker_bin: Path) -> None:
    client = MoltClient([str(worker_bin)], env=worker_env(), max_frame_size=2000)
    response = list_view(client)(requests.get("/items", {"user_id": "1", "q": "x" * 5000}))
    assert response.status_code == 413
    assert body_of(response) == {
        "error": {"code": "payload_too_large", "message": "The request is too large."}
    }
    client.close()


def test_undecoded_answers_keep_their_content_type(
    worker_bin: Path, test_worker_bin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with stock_client(worker_bin) as client:
        listed = list_view(client, decode_response=False)(requests.get("/items", {"user_id": "1"}))
        assert listed["Content-Type"] == "application/json"
        assert json.loads(listed.content)["items"]

        @molt_offload(
            entry="compute",
            client=client,
            decode_response=False,
            payload_builder=lambda request: {"values": [1, 2]},
        )
        def compute_view(request: Any) -> HttpResponse:
            return HttpResponse("unused")

        computed = compute_view(requests.get("/compute"))
        assert computed["Content-Type"] == "application/msgpack"
        assert msgpack.unpackb(computed.content)["sum"] == 3

        # Its errors are JSON, as everywhere, and no factory failure to log.
        @molt_offload(
            entry="compute",
            client=client,
            decode_response=False,
            payload_builder=lambda request: {"values": "not a list"},
        )
        def refused_view(request: Any) -> HttpResponse:
            return HttpResponse("unused")

        with caplog.at_level("ERROR", logger="molt_accel"):
            refused = refused_view(requests.get("/compute"))
        assert refused.status_code == 400 and body_of(refused)["error"]["code"] == "invalid_input"
        assert "factory failed" not in caplog.text

    test_client = MoltClient([str(test_worker_bin)], env=worker_env())

    @molt_offload(
        entry="echo",
        codec="raw",
        client=test_client,
        decode_response=False,
        payload_builder=lambda request: b"\x00\xff",
    )
    def echo_view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    echoed = echo_view(requests.get("/echo"))
    assert (echoed["Content-Type"], echoed.content) == ("application/octet-stream", b"\x00\xff")
    test_client.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MOLT_ACCEL_POOL_SIZE", "0"),
        ("MOLT_ACCEL_POOL_SIZE", "two"),
        ("MOLT_ACCEL_BUSY_STATUS", "500"),
        ("MOLT_ACCEL_DEBUG_ERRORS", "maybe"),
    ],
)
def test_malformed_settings_fail_at_decoration_not_per_request(
    worker_bin: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with stock_client(worker_bin) as client, pytest.raises(ImproperlyConfigured, match=name):
        list_view(client)


def test_settings_changed_after_decoration_cannot_fail_a_request(
    worker_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stock_client(worker_bin) as client:
        view = list_view(client)
        monkeypatch.setenv("MOLT_ACCEL_BUSY_STATUS", "500")
        monkeypatch.setenv("MOLT_ACCEL_DEBUG_ERRORS", "maybe")
        assert view(requests.get("/items", {"limit": "1"})).status_code == 400


def test_a_wrapped_worker_command_is_asked_for_its_exports_whole(worker_bin: Path) -> None:
    # `nice -n 5 molt-worker --threads 2`: the manifest must come from the worker, not `nice`.
    with MoltClient(["nice", "-n", "5", str(worker_bin), "--threads", "2"], env=worker_env()) as client:
        view = list_view(client)
        assert body_of(view(requests.get("/items", {"user_id": "3", "limit": "1"})))["items"][0]["id"] == 3000


def test_a_sync_view_refuses_an_async_client(worker_bin: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="not an AsyncMoltClient"):
        list_view(AsyncMoltClient([str(worker_bin)], env=worker_env()))


def test_per_request_mode_leaves_no_process_behind(worker_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLT_WORKER_CMD", f"{worker_bin} --stdio")
    before = child_pids()

    @molt_offload(entry="list_items", client_mode="per_request")
    def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    for user in (1, 2, 3):
        response = view(requests.get("/items", {"user_id": str(user), "limit": "1"}))
        assert body_of(response)["items"][0]["id"] == user * 1000
    assert child_pids() - before == set()


# Found by a review: the answer waited for the per_request worker to exit, which an export
# that ignores cancellation made last its whole shutdown grace (a 504 after 5 s, not 0.2).
def test_per_request_mode_answers_without_waiting_for_its_worker_to_stop(
    test_worker_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLT_WORKER_CMD", f"{test_worker_bin}")
    before = child_pids()
    options: dict[str, Any] = {
        "entry": "spin",
        "codec": "raw",
        "timeout_ms": 200,
        "client_mode": "per_request",
        "payload_builder": lambda request: b"3000",
    }

    @molt_offload(**options)
    def sync_view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    @molt_offload(**options)
    async def async_view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    for view in (sync_view, lambda request: asyncio.run(async_view(request))):
        started = time.monotonic()
        response = view(requests.get("/spin"))
        assert response.status_code == 504
        assert time.monotonic() - started < 2.0
        assert child_pids() - before == set()  # killed after its 0.2 s, not left running


def test_shared_mode_uses_a_pool_sized_from_the_environment(
    worker_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLT_WORKER_CMD", f"{worker_bin} --stdio")
    monkeypatch.setenv("MOLT_ACCEL_POOL_SIZE", "2")

    @molt_offload(entry="health", codec="json", payload_builder=lambda request: {})
    def view(request: Any) -> HttpResponse:
        return HttpResponse("unused")

    pids = [body_of(view(requests.get("/health")))["pid"] for _ in range(4)]
    assert isinstance(shared_client(), MoltClientPool)
    assert len(set(pids)) == 2 and pids[0] == pids[2]


def test_retry_policy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class RecordingClient:
        def call(self, **options: Any) -> dict[str, bool]:
            seen.update(options)
            return {"ok": True}

    monkeypatch.setenv("MOLT_ACCEL_RETRY_ON_TIMEOUT", "1")
    monkeypatch.setenv("MOLT_ACCEL_RETRY_ON_BUSY", "true")
    monkeypatch.setenv("MOLT_ACCEL_RETRY_BACKOFF_MS", "9")
    monkeypatch.setenv("MOLT_ACCEL_RETRY_BACKOFF_MAX_MS", "21")
    response = list_view(RecordingClient(), idempotent=True)(requests.get("/items", {"user_id": "1"}))
    assert response.status_code == 200
    assert (seen["retry_on_timeout"], seen["retry_on_busy"], seen["retry_backoff_ms"]) == (True, True, 9)
    assert seen["retry_backoff_max_ms"] == 21 and seen["idempotent"] is True


def test_killed_worker_fails_non_idempotent_views_and_retries_idempotent_ones(test_worker_bin: Path) -> None:
    client = MoltClient([str(test_worker_bin)], env=worker_env())

    def sleep_view(idempotent: bool) -> Any:
        @molt_offload(
            entry="sleep",
            codec="raw",
            timeout_ms=5000,
            client=client,
            payload_builder=lambda r: b"300",
            idempotent=idempotent,
        )
        def view(request: Any) -> HttpResponse:
            return HttpResponse("unused")

        return view

    for idempotent, status in ((False, 503), (True, 200)):
        client.ping()
        threading.Timer(0.1, os.kill, (client.pid, signal.SIGKILL)).start()
        assert sleep_view(idempotent)(requests.get("/sleep")).status_code == status
    client.close()
