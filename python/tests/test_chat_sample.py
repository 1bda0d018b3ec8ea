"""The chat sample (apps/samples/chat): rooms of WebSockets on two I/O threads, each room a
Topic that carries what one member says to every other, whichever thread they are on."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect


@pytest.fixture(scope="module")
def chat(chat_bin: Path) -> Iterator[int]:
    process = subprocess.Popen(
        [str(chat_bin), "--port", "0", "--threads", "2"], stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    match = re.search(r"serving http://127\.0\.0\.1:(\d+)", process.stderr.readline())
    assert match, "chat did not report its port"
    yield int(match.group(1))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def join(port: int, room: str, name: str) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{port}/ws/{room}?name={name}", open_timeout=10, close_timeout=10)


def said(socket: ClientConnection) -> tuple[str, str]:
    message = json.loads(socket.recv(timeout=10))
    return message["from"], message["text"]


def test_what_one_member_says_reaches_every_member_of_the_room_only(chat: int) -> None:
    # Eight members: the server's two threads take connections as the kernel hands them
    # out, so some members of the room live on each thread.
    with ExitStack() as stack:
        members = [stack.enter_context(join(chat, "lobby", f"m{i}")) for i in range(8)]
        outsider = stack.enter_context(join(chat, "kitchen", "cook"))
        # Each member sees the joins after its own.
        for i, member in enumerate(members):
            seen = [said(member) for _ in range(len(members) - i)]
            assert seen == [("*", f"m{j} joined") for j in range(i, len(members))]
        assert said(outsider) == ("*", "cook joined")
        for i, member in enumerate(members):
            member.send(json.dumps({"text": f"hello from {i}"}))
        expected = {(f"m{i}", f"hello from {i}") for i in range(len(members))}
        for member in members:
            assert {said(member) for _ in range(len(members))} == expected
        members[0].close()
        assert said(members[1]) == ("*", "m0 left")
        # The other room heard none of it.
        outsider.send(json.dumps({"text": "soup"}))
        assert said(outsider) == ("cook", "soup")


def test_a_bad_name_is_refused_and_a_bad_message_is_told_to_its_sender(chat: int) -> None:
    with pytest.raises(InvalidStatus) as refused:
        join(chat, "lobby", "no%20spaces")
    assert refused.value.response.status_code == 400
    with join(chat, "hall", "ann") as socket:
        assert said(socket) == ("*", "ann joined")
        socket.send(json.dumps({"text": ""}))  # below the message's declared length
        sender, text = said(socket)
        assert sender == "*" and text.startswith("not sent: message.text")
        socket.send(json.dumps({"text": "still here"}))
        assert said(socket) == ("ann", "still here")
    assert socket.close_code == 1000


def test_the_page_serves_the_browser_client(chat: int) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", chat, timeout=10)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert b"new WebSocket" in response.read()


def test_a_listener_gets_the_room_as_server_sent_events(chat: int) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", chat, timeout=10)
    connection.request("GET", "/events/porch", headers={"Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.getheader("Cache-Control") == "no-cache"

    def next_event() -> dict[str, str]:
        fields: dict[str, str] = {}
        while (line := response.readline().decode()) not in ("\n", ""):
            name, _, value = line.rstrip("\n").partition(": ")
            fields[name] = value
        return fields

    with join(chat, "porch", "ann") as socket:
        assert said(socket) == ("*", "ann joined")
        socket.send(json.dumps({"text": "anyone listening?"}))
        assert said(socket) == ("ann", "anyone listening?")
        first, second = next_event(), next_event()
    assert first == {
        "event": "said",
        "data": json.dumps({"from": "*", "text": "ann joined"}, separators=(",", ":")),
    }
    assert second["event"] == "said" and json.loads(second["data"]) == {
        "from": "ann",
        "text": "anyone listening?",
    }
    assert json.loads(next_event()["data"]) == {"from": "*", "text": "ann left"}
    connection.close()
