"""molt-demo's WebSocket (/ws/items) spoken to by a client that did not write it: the
`websockets` library, strict about RFC 6455 (the handshake, masking, close codes, UTF-8)."""

from __future__ import annotations

import http.client
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_molt_demo_binary import start
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def demo(demo_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    process, port = start(demo_bin, tmp_path_factory.mktemp("websocket") / "demo.sqlite3")
    yield port
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def get_items(port: int, query: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/items?" + query)
    return connection.getresponse().read()


def test_pages_over_the_socket_are_the_bytes_of_get_items(demo: int) -> None:
    with connect(f"ws://127.0.0.1:{demo}/ws/items", open_timeout=10, close_timeout=10) as socket:
        for query, message in [
            ("user_id=7&limit=3", {"user_id": 7, "limit": 3}),
            ("user_id=3&q=beta&limit=4", {"user_id": 3, "q": "beta", "limit": 4}),
        ]:
            socket.send(json.dumps(message))
            answer = socket.recv(timeout=10)
            assert isinstance(answer, str)  # a text frame
            assert answer.encode() == get_items(demo, query)
        socket.send(json.dumps({"user_id": "seven"}))
        error = json.loads(socket.recv(timeout=10))
        assert error["error"]["code"] == "invalid_input"
        assert error["error"]["field"] == "message.user_id"
        socket.send(b'{"user_id": 7, "limit": 2}')  # binary frames are read as JSON too
        assert len(json.loads(socket.recv(timeout=10))["items"]) == 2
    assert socket.close_code == 1000


def test_a_message_that_is_not_json_is_answered_and_the_socket_stays_open(demo: int) -> None:
    with connect(f"ws://127.0.0.1:{demo}/ws/items", open_timeout=10) as socket:
        socket.send("[1, 2")
        error = json.loads(socket.recv(timeout=10))
        assert error["error"]["code"] == "invalid_input"
        socket.send(json.dumps({"user_id": 7, "limit": 1}))
        assert len(json.loads(socket.recv(timeout=10))["items"]) == 1


def test_a_message_larger_than_the_limit_closes_with_1009(demo: int) -> None:
    with connect(f"ws://127.0.0.1:{demo}/ws/items", open_timeout=10, max_size=None) as socket:
        socket.send("x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosedError) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


def test_a_plain_get_of_the_socket_is_426(demo: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", demo, timeout=10)
    connection.request("GET", "/ws/items")
    response = connection.getresponse()
    assert response.status == 426
    assert response.getheader("Upgrade") == "websocket"
    assert json.loads(response.read())["error"]["code"] == "upgrade_required"


def test_an_unknown_path_refuses_the_handshake_with_404(demo: int) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{demo}/ws/nothing-here", open_timeout=10)
    assert refused.value.response.status_code == 404
